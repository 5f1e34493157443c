"""Benchmarks of the classic toolbox (cnnvis.interpret) against its targets.

* occlusion: ResNet-18 (random weights, eval mode) on one 224x224 image, window 16, stride 8
  (27 x 27 = 729 occluded copies), ``cnnvis.interpret.occlusion`` against Captum's ``Occlusion``
  at each ``perturbations_per_eval`` of ``--per-eval``; target: at least as fast as Captum's best.
* sanity: Adebayo et al.'s model-randomisation test on the trained demo CNN, every gradient map.
* adversarial: DeepFool's median L2 against FGSM's smallest flipping epsilon on 100 demo digits.
* maximize: activation maximisation on 10 demo neurons against the best real digit, and the
  high-frequency energy of Fourier-parameterised ascent against pixel-space ascent.

    PYTHONPATH=python python benchmarks/toolbox.py [occlusion|sanity|adversarial|maximize ...]
        [--size 224] [--repeat 3] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch


def _best_of(fn, repeat: int) -> tuple[float, float]:
    """(median, best) seconds of ``repeat`` runs of ``fn`` after one warm-up run."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times)


def bench_occlusion(args) -> None:
    import torchvision
    from captum.attr import Occlusion

    from cnnvis.interpret import occlusion

    torch.manual_seed(0)
    model = torchvision.models.resnet18().eval()
    x = torch.rand(1, 3, args.size, args.size)

    def probability(z):
        return torch.softmax(model(z), dim=1)

    def captum(per_eval: int):
        with torch.no_grad():
            Occlusion(probability).attribute(
                x, sliding_window_shapes=(3, 16, 16), strides=(3, 8, 8), target=1,
                baselines=0.0, perturbations_per_eval=per_eval,
            )  # fmt: skip

    rows = []
    for per_eval in args.per_eval:
        rows.append((f"Captum Occlusion, perturbations_per_eval={per_eval}",
                     *_best_of(lambda p=per_eval: captum(p), args.repeat)))  # fmt: skip
    for batch in args.per_eval:
        rows.append((f"cnnvis occlusion, batch_size={batch}",
                     *_best_of(lambda b=batch: occlusion(model, x, 1, window=16, stride=8,
                                                         batch_size=b), args.repeat)))  # fmt: skip
    captum_best = min(r[2] for r in rows if r[0].startswith("Captum"))
    ours_best = min(r[2] for r in rows if r[0].startswith("cnnvis"))
    print(f"\nocclusion, ResNet-18, {args.size}x{args.size}, window 16, stride 8, "
          f"{torch.get_num_threads()} threads\n")  # fmt: skip
    print("| method | median s | best s |\n|---|---:|---:|")
    for name, med, best in rows:
        print(f"| {name} | {med:.2f} | {best:.2f} |")
    print(f"\nbest Captum / best cnnvis: {captum_best / ours_best:.2f}x "
          f"({'met' if ours_best <= captum_best else 'missed'})")  # fmt: skip


BENCHES = {"occlusion": bench_occlusion}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("which", nargs="*", default=list(BENCHES), choices=list(BENCHES))
    parser.add_argument("--size", type=int, default=224, help="occlusion image side (224)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--per-eval", type=int, nargs="+", default=[1, 16, 64])
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    for name in args.which:
        BENCHES[name](args)


if __name__ == "__main__":
    main()
