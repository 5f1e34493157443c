"""Time a cached opening of a session, as the viewer does it: ``open_session`` (reads the saved
analysis), ``overview_input`` (facet images, row orders, connections) and ``build_scene``, each in
a fresh process so imports count. Issue 16's target: under 10 s on ResNet-50.

Usage: ``PYTHONPATH=python python benchmarks/opening.py SESSION [--repeats 3] [--prepare]``.
The session must have been opened once (``python -m cnnvis viewer SESSION``, or ``--prepare``:
the same first opening without a window), so what it caches is saved: row orders, tile
positions and cluster connections.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

CHILD = """
import json, sys, time
t0 = time.perf_counter()
from cnnvis.session import open_session
from cnnvis.scene import build_scene, overview_input
t1 = time.perf_counter(); a = open_session(sys.argv[1])
t2 = time.perf_counter(); data = overview_input(a, projection=False)
t3 = time.perf_counter(); build_scene(data, projection=False, legend=False)
t4 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "open_session": t2 - t1, "overview_input": t3 - t2,
                  "build_scene": t4 - t3, "total": t4 - t0}))
"""

PREPARE = """
import sys
from cnnvis.session import open_session
from cnnvis.scene import overview_input
a = open_session(sys.argv[1])
overview_input(a, projection=False)
if a.unsaved_row_orders:
    a.save(sys.argv[1])
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("session")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--prepare", action="store_true", help="open once first and save the caches")
    args = ap.parse_args()
    if args.prepare:
        subprocess.run([sys.executable, "-c", PREPARE, args.session], check=True)
    for _ in range(args.repeats):
        t = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", CHILD, args.session], capture_output=True, text=True, check=True
        )
        times = json.loads(out.stdout.strip().splitlines()[-1])
        wall = time.perf_counter() - t
        print(" ".join(f"{k} {v:.2f}" for k, v in times.items()), f"process {wall:.2f} s")


if __name__ == "__main__":
    main()
