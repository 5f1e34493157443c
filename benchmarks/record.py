"""Recording cost against the bare forward pass over the same data, and peak memory vs data size.

Anchor: the bare forward pass (``model(x)`` under ``torch.no_grad()`` over the same DataLoader).
Claim: ``cnnvis.record`` costs at most 1.3x the bare pass on the target rows (ResNet-18, and the
demo CNN over 20,000 images), and its peak memory does not grow with the number of samples. The
digits row (a 0.07 s pass) is shown but is no target.

* ResNet-18 (torchvision, random weights, 10 classes) on random 3x64x64 images, default layers
  (the table gives the layer and channel counts), top-k 9, 32-pixel patches, 2,000 pooled samples;
* DemoCNN on the 1,797 digits (the five demo layers, 16-pixel patches), and on ``--demo-n``
  random 1x8x8 images: a pass that long shows what each batch adds, apart from the costs paid
  once per recording (tracing the graph, the first batch's checks, the final assembly).

The "patches" column says whether the recording kept the images its top-k patches are cut from
on read (a pass short enough that they take fewer bytes than the patches) or cut the patches
during the pass (with the number of bulk cuts).

Times are the best of ``--repeats`` alternating runs (``--demo-repeats`` for the demo CNN,
whose pass takes a tenth of a second); the machine is shared, so the table also gives the
median ratio of the (bare, record) pairs, the median time a recording adds to its pair's bare
pass and the ratio of process CPU times. ``BENCH_THREADS`` torch threads (default 2). Peak memory is the growth of the resident set size
during the bare pass and then during one recording over the same data (sampled every 2 ms), in
a fresh subprocess per size after a warm-up recording, with images generated on the fly so that
the data set itself takes no memory.

Large folders (``--folder 2000,20000``): an ImageFolder of small PNG images (3x32x32 tiles of
scikit-learn's sample photos, 10 class folders) written to a temporary folder and recorded by
the library as ``python -m cnnvis record --model basecnn`` does (random weights; the session
saved), in a fresh process per size; the table gives the process's peak resident set size
(``ru_maxrss``) and its growth from before the data set was opened. Flat means the same peak
whatever the number of images. ``--folder-budget MB`` sets ``patch_budget``: memory grows until
the image store reaches it (default 32 MiB, about 11,000 of these images) and the patch block
(the result) exists, then stays flat.

The GPU row (``--cuda``): ResNet-50 (random weights, 1,000 classes) on 10,000 on-the-fly
images of 3x224x224, batches of 128, both passes reading through 4 DataLoader workers into
pinned memory; recorded/bare (target at most 1.15x) and images per second of each.

Usage::

    PYTHONPATH=python python benchmarks/record.py [--n 512,2048] [--repeats 3]
        [--demo-n 20000] [--demo-repeats 60] [--out FILE.md]
    PYTHONPATH=python python benchmarks/record.py --only-folder --folder 2000,20000
    PYTHONPATH=python python benchmarks/record.py --only-cuda --cuda
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from torch.utils.data import Dataset


def _torch():
    import torch

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    return torch


class OnTheFly(Dataset):
    """n images made from their index (no storage), labels cycling over 10 classes (a torch
    Dataset: ``cnnvis.record`` takes Datasets and sequences, not any object with an index)."""

    def __init__(self, n: int, shape: tuple[int, int, int]) -> None:
        self.n, self.shape = n, shape

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        torch = _torch()
        g = torch.Generator().manual_seed(int(i))
        return torch.rand(self.shape, generator=g), int(i) % 10


def make_case(name: str, n: int, materialise: bool = True):
    torch = _torch()
    from torch.utils.data import TensorDataset

    torch.manual_seed(0)
    if name == "resnet18":
        import torchvision

        model = torchvision.models.resnet18(num_classes=10).eval()
        shape = (3, 64, 64)
        kw = {"patch_size": 32}
        data = OnTheFly(n, shape)
    else:
        from cnnvis.data.digits import DigitsDataset
        from cnnvis.models.demo import DEMO_LAYERS, DemoCNN

        model = DemoCNN().eval()
        shape = (1, 8, 8)
        kw = {"patch_size": 16, "layers": DEMO_LAYERS}
        data = DigitsDataset("all") if n <= 0 else OnTheFly(n, shape)
    if materialise and isinstance(data, OnTheFly):
        x = torch.stack([data[i][0] for i in range(len(data))])
        data = TensorDataset(x, torch.arange(len(data)) % 10)
    return model, data, kw


def bare_pass(model, data, batch_size: int = 64, cpu: list | None = None) -> float:
    """Wall seconds of the bare pass (its process CPU seconds go to ``cpu`` if given)."""
    torch = _torch()
    from torch.utils.data import DataLoader

    c, t = time.process_time(), time.perf_counter()
    with torch.no_grad():
        for x, _y in DataLoader(data, batch_size=batch_size, shuffle=False):
            model(x)
    if cpu is not None:
        cpu.append(time.process_time() - c)
    return time.perf_counter() - t


def record_pass(model, data, kw, batch_size: int = 64, cpu: list | None = None):
    """(wall seconds, Recording) of one recording (its CPU seconds go to ``cpu`` if given)."""
    import cnnvis

    c, t = time.process_time(), time.perf_counter()
    rec = cnnvis.record(model, data, batch_size=batch_size, progress=False, **kw)
    if cpu is not None:
        cpu.append(time.process_time() - c)
    return time.perf_counter() - t, rec


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def child_memory(name: str, n: int) -> None:
    """Print JSON: peak RSS growth (MB) during one recording of n on-the-fly samples.

    A thread samples the resident set size every 2 ms (ru_maxrss cannot be used: the process's
    peak is set earlier, while torch loads)."""
    import gc
    import threading

    model, data, kw = make_case(name, n, materialise=False)
    record_pass(model, OnTheFly(64, data.shape), kw)  # warm up allocators, kernels and imports

    def peak_growth(fn):
        gc.collect()
        before = _rss_mb()
        peak = [before]
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], _rss_mb())
                time.sleep(0.002)

        th = threading.Thread(target=sample, daemon=True)
        th.start()
        result = fn()
        done.set()
        th.join()
        return max(peak[0], _rss_mb()) - before, result

    bare_growth, _ = peak_growth(lambda: bare_pass(model, data))
    growth, (_t, rec) = peak_growth(lambda: record_pass(model, data, kw))
    pooled = rec.pooled_index.shape[0]
    print(json.dumps({"growth_mb": growth, "bare_growth_mb": bare_growth, "peak_mb": _rss_mb(),
                      "pooled_rows": int(pooled), "n": rec.n_samples}))  # fmt: skip


def write_folder(root: str, n: int) -> None:
    """n PNG images of 3x32x32, tiles of scikit-learn's two sample photos, in 10 class folders."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_sample_images

    photos = load_sample_images().images
    rng = np.random.default_rng(0)
    for c in range(10):
        os.makedirs(os.path.join(root, f"class{c}"), exist_ok=True)
    for i in range(n):
        photo = photos[i % len(photos)]
        y, x = rng.integers(0, photo.shape[0] - 32), rng.integers(0, photo.shape[1] - 32)
        Image.fromarray(photo[y : y + 32, x : x + 32]).save(
            os.path.join(root, f"class{i % 10}", f"{i:06d}.png")
        )


def folder_rows(sizes: str, budget_mb: int) -> list[tuple]:
    """Peak RSS of ``cnnvis record`` over an ImageFolder of each size, each in a fresh process."""
    import tempfile

    rows = []
    for n in (int(v) for v in sizes.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            write_folder(os.path.join(tmp, "images"), n)
            cmd = [sys.executable, __file__, "--folder-child", tmp, str(budget_mb)]
            t = time.perf_counter()
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            rows.append((n, r["peak_mb"], r["growth_mb"], time.perf_counter() - t))
        print(f"folder n={n}: peak {r['peak_mb']:.0f} MB, growth {r['growth_mb']:.1f} MB")
    return rows


def folder_child(tmp: str, budget_mb: int) -> None:
    """Record the folder (as ``cnnvis record --model basecnn`` does) and save the session in this
    process; print its peak RSS and its growth from before the data set was opened."""
    import resource

    _torch()
    from cnnvis.data import load_dataset
    from cnnvis.models.checkpoints import load_model
    from cnnvis.record import record

    before = _rss_mb()
    data = load_dataset(f"imagefolder:{tmp}/images", "test")
    model, name = load_model("basecnn", num_classes=10, in_channels=3, input_size=32)
    rec = record(model.eval(), data, model_name=name, progress=False,
                 patch_budget=budget_mb << 20 if budget_mb else None)  # fmt: skip
    rec.save(f"{tmp}/session")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"peak_mb": peak, "growth_mb": peak - before}))


def cuda_row(repeats: int) -> tuple:
    """ResNet-50 on 10,000 on-the-fly 3x224x224 images on the GPU: (bare s, record s)."""
    torch = _torch()
    import torchvision
    from torch.utils.data import DataLoader

    import cnnvis

    if not torch.cuda.is_available():
        raise SystemExit("--cuda needs a GPU (torch.cuda.is_available() is False)")
    torch.manual_seed(0)
    model = torchvision.models.resnet50().eval().cuda()
    data, bs, workers = OnTheFly(10_000, (3, 224, 224)), 128, 4

    def bare() -> float:
        t = time.perf_counter()
        loader = DataLoader(data, batch_size=bs, num_workers=workers, pin_memory=True)
        with torch.no_grad():
            for x, _y in loader:
                model(x.cuda(non_blocking=True))
        torch.cuda.synchronize()
        return time.perf_counter() - t

    def recorded() -> float:
        t = time.perf_counter()
        cnnvis.record(model, data, batch_size=bs, num_workers=workers, progress=False)
        return time.perf_counter() - t

    bare()  # warm-up: cuDNN's kernel choice, the workers, the record's imports
    recorded()
    bares, recs = [], []
    for _ in range(repeats):
        bares.append(bare())
        recs.append(recorded())
    return min(bares), min(recs), statistics.median(r / b for b, r in zip(bares, recs))


def time_rows(args) -> list[tuple]:
    """One row per case: alternating (bare, record) pairs of passes over the same data."""
    rows = []
    cases = [("resnet18", int(n)) for n in str(args.n).split(",") if n]
    cases += [("demo", int(n)) for n in f"0,{args.demo_n}".split(",") if n]
    for name, n in cases:
        model, data, kw = make_case(name, n)
        bare_pass(model, data)  # warm-up (and the record's imports)
        record_pass(model, data, kw)
        bares, recs, bare_cpu, rec_cpu = [], [], [], []
        rec = None
        repeats = args.demo_repeats if name == "demo" else args.repeats
        for _ in range(repeats):
            bares.append(bare_pass(model, data, cpu=bare_cpu))
            t, rec = record_pass(model, data, kw, cpu=rec_cpu)
            recs.append(t)
        channels = sum(lr.n_channels for lr in rec.layers.values())
        flushes = rec.meta["patch_flushes"]
        kept = "images kept" if flushes == 0 else f"cut ({flushes} bulk cut{'s' * (flushes > 1)})"
        label = {"resnet18": "ResNet-18, 3x64x64", "demo": "DemoCNN, digits 1x8x8"}[name]
        if name == "demo" and n > 0:
            label = "DemoCNN, random 1x8x8"
        # the digits pass (0.07 s) is no target: most of what a recording adds there is paid
        # once per recording (graph tracing, the first batch's setup, the final assembly)
        target = "yes" if name == "resnet18" or n > 0 else "no"
        # ratio of each alternating (bare, record) pair: its median is robust to a noisy run
        median = statistics.median(r / b for b, r in zip(bares, recs))
        added = statistics.median(r - b for b, r in zip(bares, recs))
        cpu_ratio = min(rec_cpu) / min(bare_cpu)
        rows.append((label, len(data), target, len(rec.layers), channels, kept, repeats,
                     min(bares), min(recs), median, added, cpu_ratio))  # fmt: skip
        print(
            f"{label}, {len(data)}: bare {min(bares):.2f} s, record {min(recs):.2f} s, "
            f"median pair {median:.2f}x, CPU ratio {cpu_ratio:.2f}",
            flush=True,
        )
    return rows


def memory_rows(spec_text: str) -> list[tuple]:
    """Peak RSS growth of one recording per (model, size), each in a fresh subprocess."""
    mem_rows = []
    for spec in spec_text.split(";"):
        name, sizes = spec.split(":")
        for n in sizes.split(","):
            out = subprocess.run(
                [sys.executable, __file__, "--child", name, n],
                check=True, capture_output=True, text=True, env=os.environ,
            ).stdout  # fmt: skip
            r = json.loads(out.strip().splitlines()[-1])
            mem_rows.append((name, int(n), r["bare_growth_mb"], r["growth_mb"], r["pooled_rows"]))
            print(f"memory {name} n={n}: +{r['growth_mb']:.1f} MB", flush=True)
    return mem_rows


def table(rows: list[tuple], mem_rows: list[tuple]) -> str:
    torch = _torch()
    lines = [
        f"threads: {torch.get_num_threads()}, torch {torch.__version__}; times: best of the pairs",
        "",
        "| model | samples | target | layers | channels | patches | pairs | bare forward (s) | "
        "record (s) | ratio (best) | ratio (median pair) | added (median pair, ms) | "
        "CPU time ratio (best) |",
        "|---|---:|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, n, target, nl, ch, kept, pairs, b, r, med, added, cpu in rows:
        lines.append(
            f"| {label} | {n} | {target} | {nl} | {ch} | {kept} | {pairs} | {b:.3f} | {r:.3f} | "
            f"{r / b:.2f}x | {med:.2f}x | {added * 1e3:.1f} | {cpu:.2f}x |"
        )
    lines += [
        "",
        "| model | samples | peak RSS growth, bare pass (MB) | peak RSS growth, record (MB) | "
        "pooled rows |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, n, bare_g, g, pooled in mem_rows:
        lines.append(f"| {name} | {n} | {bare_g:.1f} | {g:.1f} | {pooled} |")
    return "\n".join(lines)


def folder_table(rows: list[tuple]) -> str:
    lines = [
        "| ImageFolder images (3x32x32 PNG) | peak RSS (MB) | growth from before the data set "
        "was opened (MB) | wall (s, with saving the session) |",
        "|---:|---:|---:|---:|",
    ]
    lines += [f"| {n} | {peak:.0f} | {g:.0f} | {wall:.0f} |" for n, peak, g, wall in rows]
    return "\n".join(lines)


def cuda_table(bare: float, rec: float, median: float) -> str:
    return "\n".join([
        "| device | model | images | bare (s) | record (s) | ratio (best) | ratio (median pair) "
        "| images/s bare | images/s record |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
        f"| cuda | ResNet-50, 3x224x224 | 10000 | {bare:.2f} | {rec:.2f} | {rec / bare:.2f}x | "
        f"{median:.2f}x | {10_000 / bare:.0f} | {10_000 / rec:.0f} |",
    ])  # fmt: skip


def write_markdown(path: str, text: str) -> None:
    threads = os.environ.get("BENCH_THREADS", "2")
    argv = " ".join(f"'{a}'" if ";" in a else a for a in sys.argv[1:])
    cmd = f"BENCH_THREADS={threads} PYTHONPATH=python python benchmarks/record.py {argv}"
    load = open("/proc/loadavg").read().split()[:3] if os.path.exists("/proc/loadavg") else []
    with open(path, "w") as f:
        f.write("# record: recording cost vs the bare forward pass, and memory\n\n")
        f.write(f"Command: `{cmd}`\n\n")
        if load:
            f.write(f"Load average at the end of the run: {' '.join(load)}\n\n")
        f.write(f"{text}\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", default="512,2048", help="ResNet-18 images, comma-separated")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--demo-n", default="20000", help="random images for the demo CNN's long pass")
    ap.add_argument("--demo-repeats", type=int, default=60)
    ap.add_argument("--mem-sizes", default="resnet18:2000,8000,16000;demo:2000,40000")
    ap.add_argument("--out", default=None, help="also write the tables to this markdown file")
    ap.add_argument(
        "--folder", default="", help="ImageFolder sizes for the peak RSS, e.g. 2000,20000"
    )
    ap.add_argument("--only-folder", action="store_true", help="only the ImageFolder table")
    ap.add_argument("--folder-budget", type=int, default=0, help="patch_budget in MiB (0: default)")
    ap.add_argument("--cuda", action="store_true", help="the GPU row (ResNet-50, 10,000 images)")
    ap.add_argument("--only-cuda", action="store_true", help="only the GPU row")
    ap.add_argument("--child", nargs=2, metavar=("MODEL", "N"), help=argparse.SUPPRESS)
    ap.add_argument("--folder-child", nargs=2, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child_memory(args.child[0], int(args.child[1]))
        return
    if args.folder_child:
        folder_child(args.folder_child[0], int(args.folder_child[1]))
        return
    parts = []
    if not (args.only_folder or args.only_cuda):
        parts.append(table(time_rows(args), memory_rows(args.mem_sizes) if args.mem_sizes else []))
    if args.folder:
        parts.append(folder_table(folder_rows(args.folder, args.folder_budget)))
    if args.cuda:
        parts.append(cuda_table(*cuda_row(args.repeats)))
    text = "\n\n".join(parts)
    print()
    print(text)
    if args.out:
        write_markdown(args.out, text)


if __name__ == "__main__":
    main()
