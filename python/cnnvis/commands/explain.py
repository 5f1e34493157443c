"""``python -m cnnvis explain METHOD SESSION --sample I [--target C] --out F.png``.

Explains one sample of a session's data set with a method of :mod:`cnnvis.interpret`, on the
session's own model (its checkpoint), and writes the picture: the input, the map, and the map
over the input (for an attack: the input, the perturbation magnified, the perturbed input; for
``maximize``: the input, then the Fourier and pixel-space images of the target; for ``invert``:
the input rebuilt from each recorded layer but the logits).
Gradient maps also print the rank correlation of the model-randomisation test beside the map.
"""

from __future__ import annotations

import argparse
from pathlib import Path

GRADIENT_METHODS = ("saliency", "deconvnet", "guided_backprop", "grad_cam", "integrated_gradients")
METHOD_NAMES = (*GRADIENT_METHODS, "occlusion", "deepfool", "fgsm", "pgd", "maximize", "invert")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("method", choices=METHOD_NAMES, help="what to compute")
    parser.add_argument("session", help="session folder (with a checkpoint, e.g. the demo)")
    parser.add_argument("--sample", type=int, required=True, help="sample index in the data set")
    parser.add_argument("--target", type=int, default=None, help="class (default: predicted)")
    parser.add_argument(
        "--neuron", default=None, metavar="LAYER:CH[,CH...]",
        help="explain a neuron (one channel) or a cluster (its channels' mean) instead of a class",
    )  # fmt: skip
    parser.add_argument("--out", required=True, help="PNG file to write")
    parser.add_argument("--window", type=int, default=None, help="occlusion window (H/4)")
    parser.add_argument("--stride", type=int, default=None, help="occlusion stride (window/2)")
    parser.add_argument("--epsilon", type=float, default=0.05, help="FGSM/PGD radius (0.05)")
    parser.add_argument("--steps", type=int, default=256, help="maximize/invert steps (256)")
    parser.add_argument("--size", type=int, default=256, help="side of each panel (256)")


def parse_neuron(spec: str) -> tuple[str, int | list[int]]:
    """``"block2.relu:5"`` -> ``("block2.relu", 5)``; ``"block2.relu:1,4"`` -> a cluster."""
    layer, sep, chans = spec.rpartition(":")
    try:
        channels = [int(c) for c in chans.split(",")]
    except ValueError:
        channels = []
    if not sep or not layer or not channels:
        raise ValueError(f"--neuron must be LAYER:CHANNEL[,CHANNEL...], got {spec!r}")
    return (layer, channels[0]) if len(channels) == 1 else (layer, channels)


def run(args: argparse.Namespace) -> int:
    import numpy as np
    from PIL import Image

    from cnnvis.session import session_model_and_data

    rec, model, data = session_model_and_data(args.session)
    if not 0 <= args.sample < len(data):
        raise ValueError(f"--sample must be in 0..{len(data) - 1}, got {args.sample}")
    x, label = data[args.sample]
    target = parse_neuron(args.neuron) if args.neuron else args.target
    dr = rec.meta.get("display_range") or {}
    from cnnvis.interpret.picture import image_rgb, side_by_side

    display = (dr.get("low"), dr.get("high"))
    shown = image_rgb(x, *display)
    if args.method in ("maximize", "invert"):
        panels, lines = _optimised(args, model, x, target, rec.layer_names[:-1], display)
    else:
        panels, lines = _explain(args, model, x, target, shown, display)
    out = Path(args.out)
    Image.fromarray(side_by_side([shown, *panels], size=args.size)).save(out)
    with np.printoptions(precision=3):
        predicted = int(model(x[None]).argmax(1))
        print(f"sample {args.sample}: label {rec.class_names[label]}, "
              f"predicted {rec.class_names[predicted]}")  # fmt: skip
        for line in lines:
            print(line)
    print(f"written {out}")
    return 0


def _optimised(args, model, x, target, layers, display):
    """Panels and lines for the images made by ascent: ``maximize`` (Fourier and pixel) for the
    target, or ``invert``: the sample rebuilt from its code at each recorded layer but the last."""
    from cnnvis import interpret
    from cnnvis.interpret.picture import image_rgb

    low, high = display
    bounds = (min(low), max(high)) if low and high else (float(x.min()), float(x.max()))
    if args.method == "invert":
        runs = [interpret.invert(model, x, n, steps=args.steps, value_range=bounds) for n in layers]
        lines = [f"invert {n}: code loss {r.code_loss[-1] / r.code_loss[0]:.2g} of its start"
                 for n, r in zip(layers, runs, strict=True)]  # fmt: skip
        return [image_rgb(r.image[0], *display) for r in runs], lines
    if target is None:
        raise ValueError("maximize needs --target CLASS or --neuron LAYER:CH")
    runs = [interpret.maximize(model, target, shape=tuple(x.shape), steps=args.steps,
                               param=p, value_range=bounds) for p in ("fourier", "pixel")]  # fmt: skip
    lines = [f"maximize {target}: Fourier {runs[0].value:.3f}, pixel (L2 + blur) "
             f"{runs[1].value:.3f}"]  # fmt: skip
    return [image_rgb(r.image[0], *display) for r in runs], lines


def _explain(args, model, x, target, shown, display):
    """The panels after the input, and the lines to print, for ``args.method``."""
    import torch

    from cnnvis import interpret
    from cnnvis.interpret.picture import heat_rgb, image_rgb, overlay

    if args.method in ("deepfool", "fgsm", "pgd"):
        if target is not None:
            raise ValueError(
                "an attack moves the sample away from its predicted class: no --target"
            )
        adv = interpret.adversarial(model, x, args.method, epsilon=args.epsilon, bounds=_bounds(x))
        p = adv.perturbation[0].abs().amax(0)
        lines = [
            f"{args.method}: class {adv.class_before[0]} ({adv.confidence_before[0]:.1%}) -> "
            f"{adv.class_after[0]} ({adv.confidence_after[0]:.1%}); L2 {adv.l2[0]:.3f}, "
            f"Linf {adv.linf[0]:.3f}",
            "representation distance: " + ", ".join(
                f"{n} {d[0]:.3f}" for n, d in adv.layer_distance.items()
            ),
        ]  # fmt: skip
        return [heat_rgb(p), image_rgb(adv.x_adv[0], *display)], lines
    if args.method == "occlusion":
        h = x.shape[-1]
        window = args.window or max(1, h // 4)
        stride = args.stride or max(1, window // 2)
        grid = interpret.occlusion(model, x, target, window=window, stride=stride)
        heat = interpret.spread(grid, tuple(x.shape[-2:]), window, stride)[0]
        lines = [f"occlusion, window {window}, stride {stride}: target value from "
                 f"{float(grid.min()):.3f} to {float(grid.max()):.3f}"]  # fmt: skip
        heat = torch.nan_to_num(heat.max() - heat)  # bright where hiding costs the most
    else:
        heat = interpret.heatmap(interpret.METHODS[args.method](model, x, target))[0]
        check = interpret.randomization_check(model, x, args.method, target)
        lines = [f"{args.method}: model-randomisation test (top layers {', '.join(check.randomized)}"
                 f" re-drawn): Spearman rank correlation {check.spearman[0]:.2f} "
                 "(near 1: the map ignores those weights)"]  # fmt: skip
    colours = heat_rgb(heat)
    return [colours, overlay(shown, colours)], lines


def _bounds(x) -> tuple[float, float] | None:
    """Inputs in [0, 1] stay there; others (normalised images) are not clamped."""
    lo, hi = float(x.min()), float(x.max())
    return (0.0, 1.0) if lo >= 0 and hi <= 1 else None
