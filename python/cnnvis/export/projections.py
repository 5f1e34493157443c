"""``python -m cnnvis export projections SESSION --out DIR``: the hidden activity of a session
the Rauber way, as pictures and tables (issue 17).

Into the folder ``DIR``:

* ``samples__<layer>__<stop>.png`` - one panel per cell of the grid (a row per layer, a column
  per snapshot): the samples' t-SNE coloured by class, misclassified samples ringed in black,
  titled with the neighbourhood hit; ``grid.png`` - all of them side by side (with
  ``--neuron LAYER:CHANNEL`` also every panel coloured by that neuron's activation);
* ``neurons__<layer>__<stop>.png`` - the neuron projection of each cell: a disc per neuron
  coloured by the class it tells apart best and sized by how well, rotated onto the column
  before it (same neurons); ``neurons_grid.png`` - all of them side by side;
* ``trajectories__layers.png`` and ``trajectories__<layer>__snapshots.png`` - the samples
  followed through the grid's layers (recorded model) and through every snapshot the session
  keeps (the grid's last layer),
  bundled, coloured from the first stop (dark) to the last (light), the top outliers in magenta;
* ``image_map__<layer>.png`` - the last layer's projection drawn with each sample's thumbnail,
  snapped to a grid without overlap;
* ``positions.csv`` (sample, row, label, prediction, layer, snapshot, epoch, x, y for every
  panel) and ``neurons.csv``;
* ``projector/`` - TensorBoard projector files: one tensor TSV per layer, ``metadata.tsv``,
  ``sprite.png`` and ``projector_config.pbtxt``;
* ``projections.json`` - what was written.

Drawn with Pillow on plain arrays (:func:`render_samples`, :func:`render_neurons`,
:func:`render_trajectories`, :func:`image_map`, :func:`write_image_map`); no OpenGL needed.
``export png|svg SESSION --view imagemap --layer L --out F`` writes one image map as a PNG or as
an SVG of classed thumbnails (:func:`image_map_svg`).
"""

from __future__ import annotations

import csv
import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from cnnvis.export.facets import _font, colormap

__all__ = [
    "export_projections",
    "image_map",
    "image_map_svg",
    "render_neurons",
    "render_samples",
    "render_trajectories",
    "write_image_map",
    "write_projector",
]

_BG, _FG, _GREY = (255, 255, 255), (30, 30, 30), (170, 170, 170)
_HIGHLIGHT = (214, 26, 140)


def _class_rgb(n_classes: int) -> np.ndarray:
    from cnnvis.scene.colors import class_colors

    return np.rint(class_colors(n_classes)[:, :3] * 255).astype(np.uint8)


def _to_pixels(coords: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """Coordinates fitted into ``box`` (x0, y0, x1, y1) with their aspect kept, y up."""
    x0, y0, x1, y1 = box
    c = np.asarray(coords, dtype=np.float64).reshape(-1, 2)
    lo, hi = c.min(axis=0), c.max(axis=0)
    span = max(float(np.max(hi - lo)), 1e-12)
    scale = min(x1 - x0, y1 - y0) / span
    mid = (lo + hi) / 2.0
    px = (x0 + x1) / 2.0 + (c[:, 0] - mid[0]) * scale
    py = (y0 + y1) / 2.0 - (c[:, 1] - mid[1]) * scale
    return np.stack([px, py], axis=1)


def _canvas(size: int, title: str, subtitle: str = ""):
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (size, size + 44), _BG)
    draw = ImageDraw.Draw(img, "RGBA")
    draw.text((10, 6), title, fill=_FG, font=_font(15))
    if subtitle:
        draw.text((10, 25), subtitle, fill=(90, 90, 90), font=_font(12))
    return img, draw, (14, 58, size - 14, size + 30)


def _legend(draw, names: list[str], rgb: np.ndarray, x: int, y: int) -> None:
    font = _font(11)
    for i, name in enumerate(names):
        yy = y + 14 * i
        draw.ellipse([x, yy + 2, x + 9, yy + 11], fill=tuple(int(v) for v in rgb[i]))
        draw.text((x + 13, yy), str(name), fill=_FG, font=font)


def render_samples(
    proj: Any, class_names: list[str], title: str, *, size: int = 480, values: Any = None
):
    """A :class:`~cnnvis.analysis.SampleProjection` as a PIL image: a disc per sample in its
    class colour, a black ring where the prediction is wrong, the neighbourhood hit above.

    With ``values`` (one per sample, e.g. :func:`~cnnvis.analysis.projections.neuron_activation`)
    the discs are coloured by them instead (viridis, low to high), with a colour bar.
    """
    rgb = _class_rgb(len(class_names))
    sub = f"t-SNE of {len(proj.coords)} samples, neighbourhood hit (k={proj.k}) "
    img, draw, box = _canvas(size, title, sub + f"{proj.neighbourhood_hit:.3f}")
    pts = _to_pixels(proj.coords, (box[0], box[1], box[2] - 70, box[3]))
    r = max(2.0, min(5.0, 1.8 * size / math.sqrt(len(pts) + 1) / 4))
    if values is None:
        fills, order = rgb[proj.labels], np.arange(len(pts))
    else:
        values = np.asarray(values, dtype=np.float64).reshape(-1)
        if values.shape != (len(pts),) or not np.all(np.isfinite(values)):
            raise ValueError(f"values must be {len(pts)} finite numbers, got {values.shape}")
        lo, hi = float(values.min()), float(values.max())
        fills = colormap((values - lo) / (hi - lo) if hi > lo else np.zeros_like(values))
        order = np.argsort(values, kind="stable")  # the strongest on top
    wrong = proj.labels != proj.predictions
    for i in order:
        x, y = pts[i]
        outline = (0, 0, 0, 255) if wrong[i] else None
        draw.ellipse([x - r, y - r, x + r, y + r], fill=(*fills[i], 210), outline=outline)
    if values is None:
        _legend(draw, class_names, rgb, box[2] - 60, box[1])
    else:
        _colour_bar(draw, lo, hi, box[2] - 50, box[1], box[1] + 160)
    return img


def _colour_bar(draw, lo: float, hi: float, x: int, y0: int, y1: int) -> None:
    ramp = colormap(np.linspace(1.0, 0.0, y1 - y0))
    for i, c in enumerate(ramp):
        draw.line([(x, y0 + i), (x + 12, y0 + i)], fill=tuple(int(v) for v in c))
    font = _font(11)
    draw.text((x + 16, y0 - 2), f"{hi:.3g}", fill=_FG, font=font)
    draw.text((x + 16, y1 - 12), f"{lo:.3g}", fill=_FG, font=font)


def render_neurons(proj: Any, class_names: list[str], title: str, *, size: int = 480):
    """A :class:`~cnnvis.analysis.NeuronProjection` as a PIL image: a disc per neuron in the
    colour of the class it tells apart best (grey: none), its area growing with the score."""
    rgb = _class_rgb(len(class_names))
    sub = f"{len(proj.coords)} neurons by {proj.method.upper()} of 1-|r|; mean score "
    img, draw, box = _canvas(size, title, sub + f"{float(np.mean(proj.score)):.2f}")
    pts = _to_pixels(proj.coords, (box[0] + 10, box[1] + 10, box[2] - 80, box[3] - 10))
    label = len(pts) <= 64
    for j in np.argsort(proj.score, kind="stable"):  # the strongest on top
        x, y = pts[j]
        r = 2.5 + 9.0 * math.sqrt(float(proj.score[j]))
        c = proj.best_class[j]
        fill = (*rgb[c], 220) if c >= 0 else (*_GREY, 220)
        draw.ellipse([x - r, y - r, x + r, y + r], fill=fill, outline=(60, 60, 60, 255))
        if label:
            draw.text((x + r + 1, y - 6), str(j), fill=(80, 80, 80), font=_font(9))
    _legend(draw, class_names, rgb, box[2] - 60, box[1])
    return img


def render_trajectories(traj: Any, names: list[str], title: str, *, size: int = 640, top: int = 5):
    """:class:`~cnnvis.analysis.Trajectories` as a PIL image: each (bundled) curve coloured
    from its first stop (dark) to its last (light), thin and translucent; the ``top`` samples
    with the highest outlier score drawn over them in magenta, straight through their stops."""
    lines = traj.polylines if traj.polylines is not None else traj.positions
    sub = "stops: " + " > ".join(names)
    img, draw, box = _canvas(size, title, sub if len(sub) < 90 else sub[:87] + "...")
    flat = _to_pixels(np.concatenate([lines.reshape(-1, 2), traj.positions.reshape(-1, 2)]), box)
    curves = flat[: lines.shape[0] * lines.shape[1]].reshape(lines.shape)
    stops = flat[curves.size // 2 :].reshape(traj.positions.shape)
    colours = colormap(np.linspace(0.0, 0.9, lines.shape[1] - 1))
    for curve in curves:
        for i in range(len(curve) - 1):
            draw.line([tuple(curve[i]), tuple(curve[i + 1])], fill=(*colours[i], 40), width=1)
    for s in np.argsort(-traj.outlier, kind="stable")[:top]:  # unbundled, through its stops
        draw.line([tuple(p) for p in stops[s]], fill=(*_HIGHLIGHT, 255), width=2)
        for x, y in stops[s]:
            draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=(*_HIGHLIGHT, 255))
    for i, name in enumerate([names[0], names[-1]]):
        c = tuple(int(v) for v in colormap(np.array([0.0, 0.9]))[i])
        draw.rectangle([box[0], box[3] - 28 + 14 * i, box[0] + 18, box[3] - 20 + 14 * i], fill=c)
        draw.text((box[0] + 24, box[3] - 31 + 14 * i), name, fill=_FG, font=_font(11))
    return img


def _image_map_places(coords: np.ndarray, thumb: int, grid: bool, gap: int):
    """Top-left pixel ``(x, y)`` of each thumbnail of an image map, and the picture's side."""
    from cnnvis.analysis.projections import snap_to_grid

    if int(thumb) < 1 or int(gap) < 0:
        raise ValueError(f"thumb must be >= 1 and gap >= 0, got {thumb} and {gap}")
    if grid:
        cells = snap_to_grid(coords)
        step = thumb + gap
        return cells[:, ::-1] * step + gap, (int(cells.max()) + 1) * step + gap
    side = int(thumb * math.sqrt(len(coords)) * 1.5) + thumb
    return np.rint(_to_pixels(coords, (0, 0, side - thumb, side - thumb))).astype(int), side


def _tiles(coords: np.ndarray, images: np.ndarray, thumb: int) -> list[np.ndarray]:
    from PIL import Image

    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or len(images) != len(coords):
        raise ValueError(f"images must be uint8 (n, h, w, c) with n = {len(coords)}")
    return [np.asarray(Image.fromarray(_rgb(im)).resize((thumb, thumb))) for im in images]


def image_map(
    coords: np.ndarray, images: np.ndarray, *, thumb: int = 24, grid: bool = True, gap: int = 2
):
    """Each sample's thumbnail at its place in a projection, ``(H, W, 3)`` uint8 on white.

    With ``grid`` the thumbnails are snapped to a square grid without overlap
    (:func:`cnnvis.analysis.projections.snap_to_grid`), ``gap`` pixels apart; otherwise they
    are drawn at their coordinates, later samples over earlier ones, on a canvas of about
    ``thumb * sqrt(n) * 1.5``.
    """
    tiles = _tiles(coords, images, thumb)
    places, side = _image_map_places(coords, thumb, grid, gap)
    out = np.full((side, side, 3), 255, dtype=np.uint8)
    for (x, y), tile in zip(places, tiles):
        out[y : y + thumb, x : x + thumb] = tile
    return out


def image_map_svg(
    coords: np.ndarray,
    images: np.ndarray,
    labels: np.ndarray,
    class_names: list[str],
    *,
    thumb: int = 24,
    grid: bool = True,
    gap: int = 2,
) -> str:
    """The :func:`image_map` as an SVG document: each thumbnail an ``<image>`` (an embedded
    PNG, drawn pixelated) of class ``sample class-<label>`` with its index and class as a
    ``<title>``, so that a vector editor can pick samples and classes apart."""
    import base64
    import io
    from html import escape

    from PIL import Image

    tiles = _tiles(coords, images, thumb)
    places, side = _image_map_places(coords, thumb, grid, gap)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{side}" height="{side}" '
        f'viewBox="0 0 {side} {side}" style="image-rendering: pixelated">',
        f'<rect width="{side}" height="{side}" fill="#ffffff"/>',
    ]
    for i, ((x, y), tile) in enumerate(zip(places, tiles)):
        buf = io.BytesIO()
        Image.fromarray(tile).save(buf, format="PNG")
        uri = base64.b64encode(buf.getvalue()).decode("ascii")
        lab = int(labels[i])
        name = escape(class_names[lab] if 0 <= lab < len(class_names) else str(lab))
        out.append(
            f'<image class="sample class-{lab}" x="{x}" y="{y}" width="{thumb}" '
            f'height="{thumb}" href="data:image/png;base64,{uri}"><title>sample {i}: {name}'
            "</title></image>"
        )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def write_image_map(
    source: Any,
    layer: str,
    path: str | os.PathLike,
    snapshot: int | None = None,
    *,
    thumb: int = 24,
    grid: bool = True,
    kind: str | None = None,
) -> Path:
    """The image map of the sample projection of ``layer`` (at ``snapshot``) written to
    ``path`` as ``kind`` ``"png"`` or ``"svg"`` (default: by the suffix, PNG unless ``.svg``):
    each pooled sample drawn as its thumbnail from the recording (``rec.pooled_images``),
    snapped to a grid without overlap unless ``grid=False``."""
    from PIL import Image

    from cnnvis.analysis.projections import recording_of, sample_projection
    from cnnvis.session import atomic_file, prepare_folder

    path = Path(path)
    kind = kind or ("svg" if path.suffix.lower() == ".svg" else "png")
    if kind not in ("png", "svg"):
        raise ValueError(f"an image map is written as png or svg, not {kind!r}")
    rec = recording_of(source)
    proj = sample_projection(source, layer, snapshot)
    prepare_folder(path.parent, path)
    if kind == "svg":
        text = image_map_svg(
            proj.coords, rec.pooled_images, proj.labels, list(rec.class_names), thumb=thumb,
            grid=grid,
        )  # fmt: skip
        with atomic_file(path) as f:
            f.write(text.encode("utf-8"))
        return path
    img = image_map(proj.coords, rec.pooled_images, thumb=thumb, grid=grid)
    with atomic_file(path) as f:
        Image.fromarray(img).save(f, format="PNG")
    return path


def _rgb(image: np.ndarray) -> np.ndarray:
    return np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image[:, :, :3]


# -- tables -------------------------------------------------------------------------------------
def _epoch(rec: Any, snapshot: int | None) -> str:
    return "" if snapshot is None else str(rec.snapshots[snapshot].get("epoch", snapshot))


def _write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    import io

    from cnnvis.session import atomic_file

    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    with atomic_file(path) as f:
        f.write(text.getvalue().encode())


def _position_rows(rec: Any, proj: Any) -> list[list[Any]]:
    epoch = _epoch(rec, proj.snapshot)
    snap = "" if proj.snapshot is None else proj.snapshot
    return [
        [
            int(rec.pooled_index[i]),
            i,
            int(proj.labels[i]),
            int(proj.predictions[i]),
            proj.layer,
            snap,
            epoch,
            float(x),
            float(y),
        ]
        for i, (x, y) in enumerate(proj.coords)
    ]


def write_projector(folder: str | os.PathLike, rec: Any, layers: list[str]) -> Path:
    """TensorBoard projector files of the recorded model's pooled activations at ``layers``:
    ``<layer>.tsv`` (a row per pooled sample), ``metadata.tsv`` (label, prediction, sample),
    ``sprite.png`` (the thumbnails in a square grid, row-major) and ``projector_config.pbtxt``."""
    from PIL import Image

    from cnnvis.session import atomic_file, prepare_folder

    folder = prepare_folder(folder, "projector files")
    names = rec.class_names
    meta = ["label\tprediction\tsample"] + [
        f"{names[rec.labels[s]]}\t{names[rec.predictions[s]]}\t{s}" for s in rec.pooled_index
    ]
    (folder / "metadata.tsv").write_text("\n".join(meta) + "\n")
    thumb = max(8, min(64, 8192 // max(1, math.ceil(math.sqrt(len(rec.pooled_index))))))
    tiles = [Image.fromarray(_rgb(im)).resize((thumb, thumb)) for im in rec.pooled_images]
    side = math.ceil(math.sqrt(len(tiles)))
    sprite = Image.new("RGB", (side * thumb, side * thumb), _BG)
    for i, tile in enumerate(tiles):
        sprite.paste(tile, ((i % side) * thumb, (i // side) * thumb))
    with atomic_file(folder / "sprite.png") as f:
        sprite.save(f, format="PNG")
    config = []
    for layer in layers:
        name = _safe(layer) + ".tsv"
        np.savetxt(folder / name, rec.pooled(layer), delimiter="\t", fmt="%.6g")
        config.append(
            f'embeddings {{\n  tensor_name: "{layer}"\n  tensor_path: "{name}"\n'
            '  metadata_path: "metadata.tsv"\n  sprite {\n    image_path: "sprite.png"\n'
            f"    single_image_dim: {thumb}\n    single_image_dim: {thumb}\n  }}\n}}\n"
        )
    (folder / "projector_config.pbtxt").write_text("".join(config))
    return folder


# -- the command --------------------------------------------------------------------------------
def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _stem(layer: str, snapshot: int | None) -> str:
    return f"{_safe(layer)}__{'model' if snapshot is None else f's{snapshot}'}"


def _default_snapshots(rec: Any) -> list[int | None]:
    """Untrained against trained: the first snapshot beside the recorded model."""
    return [0, None] if rec.snapshots else [None]


def _save(img, path: Path, index: list, **entry: Any) -> None:
    from cnnvis.session import atomic_file

    with atomic_file(path) as f:
        img.save(f, format="PNG")
    index.append({"file": path.name, **entry})


def _grid_image(panels: list[list[Any]]):
    """The panels side by side, a row per layer and a column per snapshot. A single column
    (one snapshot) wraps into a near-square block read row by row, not a strip of 20 panels."""
    import math

    from PIL import Image

    if len(panels[0]) == 1 and len(panels) > 3:
        flat = [row[0] for row in panels]
        cols = math.ceil(math.sqrt(len(flat)))
        panels = [flat[i : i + cols] for i in range(0, len(flat), cols)]
    w, h = panels[0][0].size
    grid = Image.new("RGB", (w * len(panels[0]), h * len(panels)), _BG)
    for r, row in enumerate(panels):
        for c, img in enumerate(row):
            grid.paste(img, (c * w, r * h))
    return grid


def _write_samples(rec, out, layers, snapshots, index, size, neuron=None) -> None:
    from cnnvis.analysis.projections import neuron_activation, projection_grid, stop_name

    grid = projection_grid(rec, layers, snapshots)
    panels, lit, rows = [], [], []
    for row in grid:
        panels.append([])
        lit.append([])
        for proj in row:
            title = stop_name(rec, proj.layer, proj.snapshot)
            img = render_samples(proj, rec.class_names, title, size=size)
            panels[-1].append(img)
            stem = _stem(proj.layer, proj.snapshot)
            entry = {"layer": proj.layer, "snapshot": proj.snapshot}
            hit = proj.neighbourhood_hit
            _save(
                img,
                out / f"samples__{stem}.png",
                index,
                **entry,
                kind="samples",
                neighbourhood_hit=hit,
            )
            rows += _position_rows(rec, proj)
            if neuron is not None:  # every panel coloured by the one picked neuron
                values = neuron_activation(rec, neuron[0], neuron[1], proj.snapshot)
                title += f", coloured by {neuron[0]} #{neuron[1]}"
                img = render_samples(proj, rec.class_names, title, size=size, values=values)
                lit[-1].append(img)
                name = f"samples__{stem}__{_safe(neuron[0])}_{neuron[1]}.png"
                _save(
                    img, out / name, index, **entry, kind="samples_by_neuron", neuron=list(neuron)
                )
    _save(_grid_image(panels), out / "grid.png", index, kind="grid")
    if neuron is not None:
        _save(_grid_image(lit), out / "grid__neuron.png", index, kind="grid_by_neuron")
    header = ["sample", "row", "label", "prediction", "layer", "snapshot", "epoch", "x", "y"]
    _write_csv(out / "positions.csv", header, rows)


def _write_neurons(rec, out, layers, snapshots, index, size) -> None:
    from cnnvis.analysis.projections import neuron_grid, stop_name

    rows, panels = [], []
    for grid_row in neuron_grid(rec, layers, snapshots):
        panels.append([])
        for proj in grid_row:
            layer, snap = proj.layer, proj.snapshot
            img = render_neurons(proj, rec.class_names, stop_name(rec, layer, snap), size=size)
            panels[-1].append(img)
            name = f"neurons__{_stem(layer, snap)}.png"
            _save(img, out / name, index, kind="neurons", layer=layer, snapshot=snap)
            s, epoch = ("" if snap is None else snap), _epoch(rec, snap)
            rows += [
                [layer, s, epoch, j, int(proj.best_class[j]), float(proj.score[j]), x, y]
                for j, (x, y) in enumerate(proj.coords.tolist())
            ]
    _save(_grid_image(panels), out / "neurons_grid.png", index, kind="neurons_grid")
    header = ["layer", "snapshot", "epoch", "channel", "best_class", "score", "x", "y"]
    _write_csv(out / "neurons.csv", header, rows)


def _write_trajectories(rec, out, layers, snapshots, index) -> None:
    from cnnvis.analysis.projections import stop_name
    from cnnvis.analysis.trajectories import trajectories

    runs = []
    if len(layers) >= 2:
        runs.append(("trajectories__layers.png", dict(layers=layers), "through the layers"))
    if len(rec.snapshots) >= 2:  # through training: every snapshot the session keeps
        snapshots = list(range(len(rec.snapshots)))
    if len(snapshots) >= 2:
        runs.append(
            (
                f"trajectories__{_safe(layers[-1])}__snapshots.png",
                dict(layers=layers[-1], snapshots=snapshots),
                "through training",
            )
        )
    for name, spec, what in runs:
        traj = trajectories(rec, **spec)
        names = [stop_name(rec, layer, snap) for layer, snap in traj.stops]
        title = f"{len(traj.rows)} samples {what}, bundled; magenta: top outliers"
        img = render_trajectories(traj, names, title)
        _save(
            img,
            out / name,
            index,
            kind="trajectories",
            stops=traj.stops,
            outliers=[int(rec.pooled_index[r]) for r in traj.rows[np.argsort(-traj.outlier)[:5]]],
        )


def export_projections(
    session: Any,
    out: str | os.PathLike,
    *,
    layers: list[str] | None = None,
    snapshots: list[int | None] | None = None,
    size: int = 480,
    projector: bool = True,
    neuron: tuple[str, int] | None = None,
) -> Path:
    """Write the projection panels, trajectories, image map and tables of a session into the
    folder ``out`` (see the module docstring for the files).

    ``session`` is a Recording or an Analysis (its recording); the command opens the folder.
    ``layers`` are the grid's rows (default every recorded layer); ``snapshots`` its columns,
    positions in ``rec.snapshots`` or None for the recorded model (default the first snapshot
    and the recorded model: untrained against trained, when the session has snapshots).
    ``neuron`` = ``(layer, channel)`` also writes every sample panel coloured by that neuron's
    pooled activation (``samples__<cell>__<layer>_<channel>.png``, ``grid__neuron.png``).
    Returns the folder.
    """
    from cnnvis.analysis.projections import neuron_activation, recording_of
    from cnnvis.io import prepare_folder

    rec = recording_of(session)
    layers = list(rec.layer_names if layers is None else layers)
    for layer in layers:
        rec.layer(layer)
    snapshots = _default_snapshots(rec) if snapshots is None else list(snapshots)
    if not layers or not snapshots:
        raise ValueError("export projections needs at least one layer and one snapshot")
    if int(size) < 160:
        raise ValueError(f"size must be at least 160 pixels, got {size}")
    out = prepare_folder(out, "projections")
    index: list[dict] = []
    if neuron is not None:
        neuron_activation(rec, neuron[0], neuron[1])  # a clear error before any work
    _write_samples(rec, out, layers, snapshots, index, int(size), neuron)
    _write_neurons(rec, out, layers, snapshots, index, int(size))
    _write_trajectories(rec, out, layers, snapshots, index)
    name = f"image_map__{_safe(layers[-1])}.png"
    write_image_map(rec, layers[-1], out / name)
    index.append({"file": name, "kind": "image_map", "layer": layers[-1]})
    if projector:
        write_projector(out / "projector", rec, layers)
    from cnnvis.session import write_json_atomic

    write_json_atomic(out / "projections.json", {"files": index})
    return out
