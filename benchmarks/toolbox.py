"""Benchmarks of the classic toolbox (cnnvis.interpret) against its targets.

* occlusion: ResNet-18 (random weights, eval mode) on one 224x224 image, window 16, stride 8
  (27 x 27 = 729 occluded copies), ``cnnvis.interpret.occlusion`` against Captum's ``Occlusion``
  at each ``perturbations_per_eval`` of ``--per-eval``; target: at least as fast as Captum's best.
* sanity: Adebayo et al.'s model-randomisation test on the trained demo CNN, every gradient map.
* adversarial: DeepFool's median L2 against FGSM's smallest flipping epsilon on 100 demo digits.
* maximize: activation maximisation on 10 demo neurons against the best real digit, and the
  high-frequency energy of Fourier-parameterised ascent against pixel-space ascent.
* latency: each map for one demo sample, as a viewer tab would wait for it (target < 1 s).
* pictures (not run by default): writes docs/toolbox-*.png from the demo session.
* inspector (not run by default, needs a display): the viewer's response, from a click on a
  sample to its gradient-map or occlusion tab drawn (target < 1 s); inspector-pictures writes
  docs/inspector-*.png.

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


def _demo(args):
    """The final model of the demo session (``--session``, else the built-in one, made first
    when missing) and the held-out digits it was recorded on."""
    from cnnvis.commands.viewer import ensure_demo_session
    from cnnvis.session import session_model_and_data

    session = args.session or ensure_demo_session(progress=False)
    _, model, data = session_model_and_data(session)
    return model, data.images, data.targets


def bench_sanity(args) -> None:
    from cnnvis.interpret import METHODS, randomization_check

    model, images, _ = _demo(args)
    x = images[:100]
    print("\nmodel-randomisation test (Adebayo et al. 2018), demo CNN, 100 held-out digits, "
          "predicted class; Spearman rank correlation of the heat maps\n")  # fmt: skip
    print("| method | top 1 re-drawn (fc2) | top 2 (fc1, fc2) | top 4 (down to block3.conv) |")
    print("|---|---:|---:|---:|")
    for method in METHODS:
        rho = [randomization_check(model, x, method, top=k).spearman for k in (1, 2, 4)]
        print(f"| {method} | " + " | ".join(f"{r.mean():.2f} ± {r.std():.2f}" for r in rho) + " |")


def _fgsm_smallest_flip(model, x, grid):
    """Per sample, the L2 norm of FGSM's perturbation at the smallest epsilon of ``grid`` that
    flips it (NaN when none does)."""
    import numpy as np

    from cnnvis.interpret import adversarial

    l2 = np.full(len(x), np.nan)
    for eps in grid:
        out = adversarial(model, x, "fgsm", epsilon=float(eps), bounds=(0.0, 1.0), layers=[])
        new = out.flipped & np.isnan(l2)
        l2[new] = out.l2[new]
    return l2


def bench_adversarial(args) -> None:
    import numpy as np

    from cnnvis.interpret import adversarial

    model, images, _ = _demo(args)
    x = images[:100]
    t0 = time.perf_counter()
    df = adversarial(model, x, "deepfool", bounds=(0.0, 1.0))
    t_df = time.perf_counter() - t0
    grid = np.round(np.arange(0.005, 1.0001, 0.005), 3)
    fgsm = _fgsm_smallest_flip(model, x, grid)
    ratio = np.nanmedian(fgsm) / np.median(df.l2)
    print("\nDeepFool against FGSM, demo CNN, 100 held-out digits, inputs clamped to [0, 1]\n")
    print("| attack | flipped | median L2 | mean L2 |\n|---|---:|---:|---:|")
    print(f"| DeepFool (overshoot 0.02, {t_df:.2f} s) | {df.flip_rate:.0%} | "
          f"{np.median(df.l2):.3f} | {df.l2.mean():.3f} |")  # fmt: skip
    print(
        f"| FGSM, smallest flipping epsilon (grid step 0.005) | "
        f"{np.isfinite(fgsm).mean():.0%} | {np.nanmedian(fgsm):.3f} | {np.nanmean(fgsm):.3f} |"
    )
    print(f"\nFGSM median / DeepFool median: {ratio:.1f}x (target >= 3x: "
          f"{'met' if ratio >= 3 and df.flip_rate >= 0.95 else 'missed'})")  # fmt: skip


def bench_maximize(args) -> None:
    from cnnvis.interpret import high_frequency_energy, maximize
    from cnnvis.interpret._targets import objective_function, parse_target

    model, images, _ = _demo(args)
    neurons = [("block3.relu", c) for c in (0, 9, 26, 39, 52)] + [
        ("head.relu", c) for c in (1, 20, 33)] + [3, 8]  # fmt: skip
    print(f"\nactivation maximisation, demo CNN, {args.steps} steps, seed 0, Fourier decay "
          f"{args.decay}; objective = mean "
          "activation of the channel (logit for a class)\n")  # fmt: skip
    print("| target | best real digit | fourier | pixel (L2 + blur) | HF fourier | HF pixel |")
    print("|---|---:|---:|---:|---:|---:|")
    wins = smoother = 0
    for t in neurons:
        with torch.no_grad(), objective_function(model, parse_target(model, t)) as f:
            best = float(f(images).max())
        fo = maximize(model, t, shape=(1, 8, 8), steps=args.steps, decay=args.decay)
        px = maximize(model, t, shape=(1, 8, 8), steps=args.steps, param="pixel")
        hf_f, hf_p = high_frequency_energy(fo.image), high_frequency_energy(px.image)
        wins += fo.value > best
        smoother += hf_f < hf_p
        print(f"| {t} | {best:.2f} | {fo.value:.2f} | {px.value:.2f} | {hf_f:.3f} | {hf_p:.3f} |")
    n = len(neurons)
    print(f"\nfourier beats the best real digit for {wins}/{n} targets (target >= 80%); "
          f"less high-frequency energy than pixel ascent for {smoother}/{n}")  # fmt: skip


def pictures(args) -> None:
    """The pictures of docs/: each toolbox result on the demo, as its viewer tab would show it."""
    import numpy as np
    from PIL import Image

    from cnnvis import interpret
    from cnnvis.interpret.picture import heat_rgb, image_rgb, overlay, side_by_side
    from cnnvis.session import session_model_and_data

    rec, model, data = session_model_and_data(args.session)
    x, label = data[3]
    shown = image_rgb(x)

    def save(name, panels, size=128):
        Image.fromarray(side_by_side(panels, size=size)).save(f"docs/toolbox-{name}.png")

    maps = [interpret.heatmap(fn(model, x, label))[0] for fn in interpret.METHODS.values()]
    save("gradients", [shown, *[overlay(shown, heat_rgb(m), 0.7) for m in maps]])
    occ = interpret.spread(interpret.occlusion(model, x, label, window=3, stride=1), (8, 8), 3, 1)
    adv = interpret.adversarial(model, x, "deepfool", bounds=(0.0, 1.0))
    save("occlusion-adversarial", [shown, heat_rgb(occ[0].max() - occ[0]),
                                   heat_rgb(adv.perturbation[0, 0], symmetric=True),
                                   image_rgb(adv.x_adv[0], [0.0], [1.0])])  # fmt: skip
    save("maximize", [image_rgb(interpret.maximize(model, ("block3.relu", c), shape=(1, 8, 8),
                                                   steps=256).image[0], [0.0], [1.0])
                      for c in (0, 9, 26, 39, 52)])  # fmt: skip
    inv = [
        interpret.invert(model, x, n, steps=200).image[0]
        for n in ("block1.relu", "block2.relu", "block3.relu")
    ]
    save("inversion", [shown, *[image_rgb(i, [0.0], [1.0]) for i in inv]])
    conf = interpret.confusion(rec)
    cells = [
        image_rgb(data[int(i)][0]) if i >= 0 else np.ones((8, 8, 3)) for i in conf.example.ravel()
    ]
    grid = interpret.tile(np.stack(cells), columns=rec.n_classes)
    Image.fromarray((np.kron(grid, np.ones((6, 6, 1))) * 255).astype(np.uint8)).save(
        "docs/toolbox-confusion.png")  # fmt: skip
    w = interpret.weight_images(model, "block1.conv")
    filters = interpret.to_unit(w.images[:, 0])
    save("weights", [interpret.tile(np.repeat(filters[..., None], 3, axis=3), columns=8)], size=640)
    print("written docs/toolbox-*.png")


def bench_latency(args) -> None:
    """What a viewer tab would wait for: one demo sample, each map, median of ``--repeat``."""
    from cnnvis import interpret

    model, images, _ = _demo(args)
    x = images[3]
    calls = {name: (lambda f=fn: f(model, x, None)) for name, fn in interpret.METHODS.items()}
    calls["occlusion (window 3, stride 1)"] = lambda: interpret.occlusion(model, x, window=3)
    calls["randomisation check (saliency)"] = lambda: interpret.randomization_check(
        model, x, "saliency"
    )
    calls["deepfool"] = lambda: interpret.adversarial(model, x, "deepfool", bounds=(0.0, 1.0))
    print("\none demo sample, target 1 s per map (the viewer's response)\n")
    print("| map | median s | best s |\n|---|---:|---:|")
    for name, call in calls.items():
        med, best = _best_of(call, args.repeat)
        print(f"| {name} | {med:.3f} | {best:.3f} |")


def _window(args, tmp: str):
    """The viewer on a copy of the demo session in ``tmp``, shown, with its model loaded."""
    import shutil

    from cnnvis.commands.viewer import ensure_demo_session
    from cnnvis.viewer.app import ViewerWindow, open_session, qt_app

    app = qt_app()
    path = shutil.copytree(args.session or ensure_demo_session(progress=False), f"{tmp}/session")
    win = ViewerWindow(open_session(path), str(path))
    win.resize(1600, 900)
    win.show()
    _until(app, lambda: all(j.done.is_set() for j in win.toolbox.worker.jobs))
    return app, win


def _until(app, condition, timeout: float = 600.0) -> float:
    """Seconds until ``condition()`` holds, processing Qt events meanwhile."""
    t0 = time.perf_counter()
    while not condition():
        if time.perf_counter() - t0 > timeout:
            raise TimeoutError("the viewer did not answer")
        app.processEvents()
        time.sleep(0.001)
    return time.perf_counter() - t0


def _settle(app, seconds: float = 0.4) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.02)


def bench_inspector(args) -> None:
    """The viewer's response: a click on a sample until its tab is drawn (needs a display)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        app, win = _window(args, tmp)
        ui, rows = win.toolbox, {"gradients": [], "occlusion": [], "cached": []}
        tabs = ui.inspector.tabs
        for sample in range(args.repeat * 4):
            tabs.setCurrentIndex(0)
            ui.inspect(sample)
            rows["gradients"].append(
                _until(app, lambda: ui.inspector.pages["gradients"].state == "done")
            )
            t0 = time.perf_counter()
            tabs.setCurrentIndex(1)
            _until(app, lambda: ui.inspector.pages["occlusion"].state == "done")
            rows["occlusion"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            ui.inspect(sample)  # the occlusion tab again, now from the session's cache
            _until(app, lambda: ui.inspector.pages["occlusion"].state == "done")
            rows["cached"].append(time.perf_counter() - t0)
        ui.worker.shutdown()
    n = len(rows["cached"])
    print(f"\nviewer response, demo session, {n} samples, {torch.get_num_threads()} torch "
          "threads: from the click to the tab drawn (target < 1 s)\n")  # fmt: skip
    print("| tab | median s | worst s |\n|---|---:|---:|")
    for name, what in (("gradients", "gradient maps (5 maps + 5 randomisation tests)"),
                       ("occlusion", "occlusion (window 2, stride 1)"),
                       ("cached", "occlusion again, read from the session's cache")):  # fmt: skip
        print(f"| {what} | {statistics.median(rows[name]):.3f} | {max(rows[name]):.3f} |")


def inspector_pictures(args) -> None:
    """docs/inspector-*.png: each tab of the inspector, the confusion dock and the details'
    maximisation, on the demo (needs a display)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        app, win = _window(args, tmp)
        ui = win.toolbox
        insp = ui.inspector
        ui.inspect(args.sample)
        for i, key in enumerate(insp.pages):
            insp.resize(1100, 760 if key == "adversarial" else 430)
            insp.tabs.setCurrentIndex(i)
            _until(app, lambda k=key: insp.pages[k].state == "done")
            _settle(app)
            insp.grab().save(f"docs/inspector-{key}.png")
        ui.dock.setFloating(True)
        ui.dock.show()
        ui.dock.resize(900, 640)
        _settle(app)
        ui.confusion.grab().save("docs/inspector-confusion.png")
        win.controller.select_cluster("block3.relu", 1)
        _until(app, lambda: not win.details.maximization.pixmap().isNull())
        _settle(app)
        win.details.grab().save("docs/inspector-details.png")
        ui.worker.shutdown()
    print("written docs/inspector-*.png")


BENCHES = {
    "occlusion": bench_occlusion,
    "sanity": bench_sanity,
    "adversarial": bench_adversarial,
    "maximize": bench_maximize,
    "latency": bench_latency,
    "pictures": pictures,
    "inspector": bench_inspector,
    "inspector-pictures": inspector_pictures,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("which", nargs="*", default=list(BENCHES)[:5], choices=list(BENCHES))
    parser.add_argument("--size", type=int, default=224, help="occlusion image side (224)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--session", default=None, help="demo session (default: built-in)")
    parser.add_argument("--steps", type=int, default=512, help="maximisation steps (512)")
    parser.add_argument("--decay", type=float, default=2.0, help="Fourier spectrum decay (2)")
    parser.add_argument("--sample", type=int, default=3, help="the inspector pictures' sample")
    parser.add_argument("--per-eval", type=int, nargs="+", default=[1, 16, 64])
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    for name in args.which:
        BENCHES[name](args)


if __name__ == "__main__":
    main()
