"""The inspector's tabs (:data:`TABS`), one function each:
``tab(toolbox, sample, progress, should_stop)`` -> :class:`TabResult`, and
:func:`maximize_unit` for the details panel. No Qt here; :class:`~cnnvis.viewer.toolbox.Toolbox`
loads the model and caches what they return."""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

from cnnvis import interpret
from cnnvis.interpret._targets import captured
from cnnvis.interpret.paths import sample_paths
from cnnvis.interpret.picture import enlarge, heat_rgb, image_rgb, overlay
from cnnvis.interpret.progress import step
from cnnvis.scene.colors import HIGHLIGHT, class_colors

#: Tab key -> title, in the inspector's order.
TABS = {
    "gradients": "Gradient maps",
    "occlusion": "Occlusion",
    "adversarial": "Adversarial",
    "inversion": "Inversion",
    "maximize": "Maximisation",
}
GRADIENT_NAMES = {
    "saliency": "saliency",
    "deconvnet": "deconvnet",
    "guided_backprop": "guided backprop",
    "grad_cam": "Grad-CAM",
    "integrated_gradients": "integrated gradients",
}


@dataclass
class TabResult:
    """Pictures (uint8 RGB ``(h, w, 3)``) with one caption each, lines of text, and bars
    ``[(label, value)]`` under the title ``bars_title`` (none when empty)."""

    panels: list[np.ndarray]
    captions: list[str]
    lines: list[str] = field(default_factory=list)
    bars: list[tuple[str, float]] = field(default_factory=list)
    bars_title: str = ""
    from_cache: bool = False
    #: The adversarial tab's :attr:`SamplePaths.positions <cnnvis.interpret.paths.SamplePaths>`.
    paths: np.ndarray | None = None

    def to_arrays(self) -> dict[str, np.ndarray]:
        meta = {"captions": self.captions, "lines": self.lines, "bars_title": self.bars_title,
                "bars": [[str(k), float(v)] for k, v in self.bars]}  # fmt: skip
        arrays = {f"panel{i}": np.asarray(p, np.uint8) for i, p in enumerate(self.panels)}
        if self.paths is not None:
            arrays["paths"] = np.asarray(self.paths, np.float64)
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
        arrays["sha256"] = np.frombuffer(_digest(arrays), np.uint8)
        return arrays

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> TabResult:
        """Rebuild a result; ValueError or KeyError when anything does not check out."""
        body = {k: v for k, v in arrays.items() if k != "sha256"}
        if arrays["sha256"].tobytes() != _digest(body):
            raise ValueError("checksum mismatch")
        meta = json.loads(arrays["meta"].tobytes().decode())
        panels = [arrays[f"panel{i}"] for i in range(len(meta["captions"]))]
        if any(p.ndim != 3 or p.shape[2] != 3 or p.dtype != np.uint8 for p in panels):
            raise ValueError("a panel is not an RGB picture")
        bars = [(str(k), float(v)) for k, v in meta["bars"]]
        paths = arrays.get("paths")
        if paths is not None and (paths.ndim != 3 or paths.shape[1:] != (2, 2)):
            raise ValueError("the paths are not (layers, 2, 2)")
        return cls(panels, list(meta["captions"]), list(meta["lines"]), bars, meta["bars_title"],
                   from_cache=True, paths=paths)  # fmt: skip


def _digest(arrays: dict[str, np.ndarray]) -> bytes:
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}:{a.dtype.str}:{a.shape};".encode())
        h.update(a.tobytes())
    return h.digest()


#: Side of a tab's pictures in pixels (small inputs are enlarged with sharp pixels).
PANEL = 160
#: What the adversarial tab calls ``scene.colors.HIGHLIGHT``, its adversarial point's colour.
HIGHLIGHT_NAME = "magenta"
#: A map whose rank correlation after randomisation is at least this is said to fail the test.
FAILS_AT = 0.5


def _pic(rgb: np.ndarray) -> np.ndarray:
    return (
        (np.clip(enlarge(np.asarray(rgb, np.float64), PANEL), 0, 1) * 255).round().astype(np.uint8)
    )


def _part(progress, i: int, n: int, steps: int):
    """``progress`` for the ``i``-th of ``n`` runs of ``steps`` steps each, as one bar."""
    if progress is None:
        return None
    return lambda done, _total: progress(i * steps + done, n * steps)


def _predict(tb, x: torch.Tensor) -> tuple[int, float]:
    with torch.no_grad():
        p = torch.softmax(tb.model(x[None]), dim=1)[0]
    return int(p.argmax()), float(p.max())


def _class(tb, c: int) -> str:
    return str(tb.rec.class_names[c])


def _heading(tb, sample: int, x: torch.Tensor) -> str:
    c, conf = _predict(tb, x)
    label = int(tb.data[sample][1])
    verdict = "correct" if c == label else "wrong"
    return (f"Sample {sample}: label {_class(tb, label)}, predicted {_class(tb, c)} "
            f"({conf:.0%}, {verdict}).")  # fmt: skip


def _rho(rho: float) -> str:
    if not np.isfinite(rho):
        return "ρ undefined (flat map)"
    return f"ρ = {rho:.2f}, " + ("fails" if rho >= FAILS_AT else "passes")


def gradients(tb, sample: int, progress=None, should_stop=None):
    """Each gradient map over the input, with its model-randomisation rank correlation."""

    x = tb.data[sample][0]
    shown = tb.image(sample)
    panels, captions, layers = [_pic(shown)], ["input"], []
    for i, method in enumerate(GRADIENT_NAMES):
        step(i, len(GRADIENT_NAMES), progress, should_stop, "gradient maps")
        with warnings.catch_warnings():  # a flat map's undefined ρ is said in its caption
            warnings.filterwarnings("ignore", message="An input array is constant")
            check = interpret.randomization_check(tb.model, x, method)
        panels.append(_pic(overlay(shown, heat_rgb(check.original[0]), 0.7)))
        captions.append(f"{GRADIENT_NAMES[method]}\n{_rho(float(check.spearman[0]))}")
        layers = check.randomized
    step(len(GRADIENT_NAMES), len(GRADIENT_NAMES), progress, None, "gradient maps")
    lines = [
        _heading(tb, sample, x) + " Maps of the predicted class.",
        f"Sanity check (model randomisation, Adebayo et al. 2018): the top layers "
        f"({', '.join(layers)}) are re-drawn at random and each map is made again; ρ is the "
        f"Spearman rank correlation of the two maps. A map that hardly changes (ρ ≥ {FAILS_AT}) "
        "does not show what those layers learned: guided backprop is known to fail.",
    ]
    return TabResult(panels, captions, lines)


def occlusion(tb, sample: int, progress=None, should_stop=None):
    """How much the predicted class's probability drops where a grey patch hides the input."""

    x = tb.data[sample][0]
    h, w = x.shape[-2:]
    window = max(1, min(h, w) // 4)
    stride = max(1, window // 2)
    c, conf = _predict(tb, x)
    grid = interpret.occlusion(tb.model, x, None, window=window, stride=stride,
                               progress=progress, should_stop=should_stop)  # fmt: skip
    drop = torch.nan_to_num(conf - interpret.spread(grid, (h, w), window, stride)[0])
    shown = tb.image(sample)
    heat = heat_rgb(drop)
    captions = [f"input: {_class(tb, c)} ({conf:.0%})",
                f"drop of p({_class(tb, c)})\n0 (black) to {float(drop.max()):.2f} (yellow)",
                "over the input"]  # fmt: skip
    lines = [
        _heading(tb, sample, x),
        f"A {window}x{window} patch of zeros slides by {stride}; each pixel shows the mean drop "
        f"of the predicted class's probability when the patches covering it are hidden. Hiding "
        f"the most important patch leaves p = {float(grid.min()):.2f}.",
    ]
    return TabResult([_pic(shown), _pic(heat), _pic(overlay(shown, heat))], captions, lines)


def adversarial(tb, sample: int, progress=None, should_stop=None):
    """DeepFool's smallest flip: the perturbation magnified, the class before and after, and
    how far the representation moved at each layer."""

    x = tb.data[sample][0]
    adv = interpret.adversarial(tb.model, x, "deepfool", bounds=tb.bounds, progress=progress,
                                should_stop=should_stop)  # fmt: skip
    delta = adv.perturbation[0].detach().cpu().numpy()
    m = float(np.abs(delta).max()) or 1.0
    if delta.shape[0] == 1:
        pert = heat_rgb(delta[0], symmetric=True)
    else:
        pert = np.clip(0.5 + 0.5 * delta.transpose(1, 2, 0) / m, 0, 1)
    before, after = int(adv.class_before[0]), int(adv.class_after[0])
    captions = [
        f"before: {_class(tb, before)} ({adv.confidence_before[0]:.0%})",
        f"perturbation x{0.5 / m:.0f}\nL2 {adv.l2[0]:.3f}, Linf {adv.linf[0]:.3f}",
        f"after: {_class(tb, after)} ({adv.confidence_after[0]:.0%})",
    ]
    outcome = "flips" if adv.flipped[0] else "does not flip"
    lines = [
        _heading(tb, sample, x),
        f"DeepFool (the smallest L2 step across the nearest decision boundary) {outcome} it: "
        f"{_class(tb, before)} -> {_class(tb, after)}. The perturbation is shown magnified "
        f"(red +, blue -, ±{m:.3f} at full colour).",
    ]
    bars = [(name, float(d[0])) for name, d in adv.layer_distance.items()]
    paths = sample_paths(tb.model, x, adv.x_adv[0].to(x.device), tb.references())
    thumbs, notes = _path_panels(tb, paths)
    lines.append(
        f"Second row: the sample (black) and its adversarial version ({HIGHLIGHT_NAME}) in each "
        f"layer's projection of the recorded samples (coloured by class), each placed at the mean "
        f"position of its {paths.neighbours.shape[2]} nearest recorded samples in that layer's "
        "activations; the count is how many of those neighbours the two still share."
    )
    return TabResult([_pic(tb.image(sample)), _pic(pert),
                      _pic(image_rgb(adv.x_adv[0], *tb.display)), *thumbs],
                     captions + notes, lines, bars,
                     "Representation moved, per layer: |a(x_adv) - a(x)| / |a(x)|",
                     paths=paths.positions)  # fmt: skip


def _path_panels(tb, paths) -> tuple[list[np.ndarray], list[str]]:
    """One picture per layer: the recorded samples as class-coloured dots, faded, and the two
    placed points joined by a line; captions with the shared neighbours."""
    labels = np.asarray(tb.rec.pooled_labels)
    colours = class_colors(int(tb.rec.n_classes))[:, :3]
    panels, captions = [], []
    for i, layer in enumerate(paths.layers):
        coords = tb.references()[layer][1]
        panels.append(_scatter(coords, colours[labels], paths.positions[i]))
        shared = len(np.intersect1d(paths.neighbours[i, 0], paths.neighbours[i, 1]))
        captions.append(f"{layer}\n{shared}/{paths.neighbours.shape[2]} neighbours shared")
    return panels, captions


def _scatter(coords: np.ndarray, rgb: np.ndarray, pair: np.ndarray) -> np.ndarray:
    """A ``PANEL``-square picture of ``coords`` (dots of ``rgb``, faded toward white) with
    ``pair[0]`` (black) and ``pair[1]`` (the highlight) marked and joined by a grey line."""
    low, high = coords.min(axis=0), coords.max(axis=0)
    scale = (PANEL - 17) / max(float((high - low).max()), 1e-12)

    def px(p: np.ndarray) -> np.ndarray:
        return np.clip(np.rint((np.atleast_2d(p) - low) * scale) + 8, 0, PANEL - 1).astype(int)

    img = np.ones((PANEL, PANEL, 3))
    dots = px(coords)
    for dy in (-1, 0):  # 2x2 dots, y up as on the canvas (the margin keeps them inside)
        for dx in (-1, 0):
            img[PANEL - 1 - dots[:, 1] + dy, dots[:, 0] + dx] = 0.45 + 0.55 * rgb
    a, b = px(pair)
    for t in np.linspace(0.0, 1.0, 2 * PANEL):
        x, y = np.rint(a + t * (b - a)).astype(int)
        img[PANEL - 1 - y, max(x - 1, 0) : x + 1] = 0.25
    # the adversarial on top and smaller: where the two coincide it shows inside the black
    for (x, y), c, r in ((a, (0.0, 0.0, 0.0), 4), (b, HIGHLIGHT[:3], 2)):
        y = PANEL - 1 - y
        img[max(y - r - 1, 0) : y + r + 2, max(x - r - 1, 0) : x + r + 2] = 1.0  # a white rim
        img[max(y - r, 0) : y + r + 1, max(x - r, 0) : x + r + 1] = c
    return (img * 255).round().astype(np.uint8)


def inversion(tb, sample: int, progress=None, should_stop=None):
    """The sample rebuilt from its code at each recorded layer but the logits."""

    x = tb.data[sample][0]
    layers = list(tb.rec.layer_names[:-1]) or list(tb.rec.layer_names)
    panels, captions = [_pic(tb.image(sample))], ["input"]
    for i, name in enumerate(layers):
        r = interpret.invert(tb.model, x, name, steps=tb.steps, value_range=tb.bounds,
                             progress=_part(progress, i, len(layers), tb.steps),
                             should_stop=should_stop)  # fmt: skip
        panels.append(_pic(image_rgb(r.image[0], *tb.display)))
        captions.append(f"{name}\ncode loss {r.code_loss[-1] / r.code_loss[0]:.2g} of start")
    lines = [
        _heading(tb, sample, x),
        "Each picture starts from noise and is changed until its code at the layer matches the "
        f"sample's ({tb.steps} steps, Mahendran & Vedaldi 2015: code loss, alpha-norm and total "
        "variation). What survives is what the layer keeps; deeper layers keep less.",
    ]
    return TabResult(panels, captions, lines)


def _decay(shape) -> float:
    """Small images need a steeper spectrum to stay legible (benchmarks/README.md: 3 on 8x8)."""
    return 3.0 if max(shape[-2:]) <= 32 else 2.0


def _strongest_channels(tb, x: torch.Tensor, k: int = 3) -> tuple[str, list[int]]:
    """The deepest recorded layer with a spatial map, and its ``k`` most active channels."""
    names = list(tb.rec.layer_names[:-1]) or list(tb.rec.layer_names)
    with torch.no_grad(), captured(tb.model, names) as acts:
        tb.model(x[None])
    spatial = [n for n in names if acts[n].dim() == 4 and math.prod(acts[n].shape[2:]) > 1]
    layer = (spatial or names)[-1]
    mean = acts[layer].flatten(2).mean(2)[0] if acts[layer].dim() > 2 else acts[layer][0]
    return layer, [int(c) for c in mean.argsort(descending=True)[:k]]


def maximize(tb, sample: int, progress=None, should_stop=None):
    """The images that most excite the predicted class and the sample's strongest neurons."""

    x = tb.data[sample][0]
    c, _ = _predict(tb, x)
    layer, chans = _strongest_channels(tb, x)
    targets = [c, *[(layer, ch) for ch in chans]]
    panels, captions = [_pic(tb.image(sample))], ["input"]
    for i, t in enumerate(targets):
        r = interpret.maximize(tb.model, t, shape=tuple(x.shape), steps=tb.steps,
                               decay=_decay(x.shape), value_range=tb.bounds or (0.0, 1.0),
                               progress=_part(progress, i, len(targets), tb.steps),
                               should_stop=should_stop)  # fmt: skip
        panels.append(_pic(image_rgb(r.image[0], *tb.display)))
        what = f"class {_class(tb, t)}" if isinstance(t, int) else f"{t[0]} #{t[1]}"
        captions.append(f"{what}\nvalue {r.value:.2f}")
    lines = [
        _heading(tb, sample, x),
        f"Activation maximisation ({tb.steps} steps of ascent on a decorrelated Fourier image, "
        f"jittered, scaled and rotated at each step): the predicted class, then the three "
        f"neurons of {layer} this sample excites most.",
    ]
    return TabResult(panels, captions, lines)


def maximize_unit(tb, layer: str, channels: list[int], progress=None, should_stop=None):
    """One neuron's (or a cluster's mean) maximisation image, for the details panel."""

    shape = tuple(tb.rec.input_shape)
    target = (layer, channels[0]) if len(channels) == 1 else (layer, list(channels))
    r = interpret.maximize(tb.model, target, shape=shape, steps=tb.steps, decay=_decay(shape),
                           value_range=tb.bounds or (0.0, 1.0), progress=progress,
                           should_stop=should_stop)  # fmt: skip
    return TabResult([_pic(image_rgb(r.image[0], *tb.display))], [f"value {r.value:.2f}"])
