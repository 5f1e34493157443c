"""How long the interactive steps on the demo session take: analysing it, and refreshing what the
viewer shows after a cluster edit (the bounds the correctness tests used to assert).

* analyse: ``cnnvis.analyze`` on the recording (target: < 10 s);
* move: one neuron moved, then every facet of its layer and every connection refreshed (< 1 s);
* merge: two clusters merged and the scene rebuilt by the viewer's controller, no window (< 3 s).

    PYTHONPATH=python python benchmarks/edits.py [SESSION] [--repeat 5]

Without SESSION the built-in demo is used (created first when missing).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

TARGETS = {"analyse": 10.0, "move + refresh": 1.0, "merge + scene": 3.0}


def _timed(fn, *args):
    """``fn(*args)`` and the seconds it took."""
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


def _move(an) -> None:
    layer = an.layers[2]
    an.move_neuron(layer, 5, (an.cluster_of(layer, 5) + 1) % an.n_clusters(layer))
    for c in range(an.n_clusters(layer)):
        an.activation_matrix(layer, c)
        an.learned_features(layer, c)
    for a, b in an.layer_pairs:
        an.connections(a, b)


def _merge(an) -> None:
    from cnnvis.scene import build_scene

    layer = next(n for n in an.layers if an.n_clusters(n) >= 2)
    an.merge_clusters(layer, [0, 1])
    build_scene(an)


def measure(session: str, repeat: int) -> dict[str, list[float]]:
    import cnnvis
    from cnnvis.scene import build_scene

    rec = cnnvis.load(session)
    times: dict[str, list[float]] = {name: [] for name in TARGETS}
    for _ in range(repeat):
        an, seconds = _timed(cnnvis.analyze, rec)
        times["analyse"].append(seconds)
        build_scene(an)  # the state the viewer is in before an edit
        for c in range(an.n_clusters(an.layers[2])):
            an.learned_features(an.layers[2], c)
        times["move + refresh"].append(_timed(_move, an)[1])
        times["merge + scene"].append(_timed(_merge, an)[1])
    return times


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("session", nargs="?", default=None)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    session = args.session
    if session is None:
        from cnnvis.commands.viewer import ensure_demo_session

        session = ensure_demo_session(progress=False)
    times = measure(session, args.repeat)
    load = os.getloadavg()
    print(f"{session}: {args.repeat} runs; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print("| step | median s | best s | target s | |")
    print("|---|---:|---:|---:|---|")
    for name, ts in times.items():
        med = statistics.median(ts)
        ok = "met" if med < TARGETS[name] else "missed"
        print(f"| {name} | {med:.3f} | {min(ts):.3f} | {TARGETS[name]:.0f} | {ok} |")


if __name__ == "__main__":
    main()
