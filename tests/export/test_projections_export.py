"""``export projections``: panels, trajectories, the image map, the CSV of positions and the
TensorBoard projector files of a session (issue 17)."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image

from cnnvis.analysis.projections import snap_to_grid
from cnnvis.cli import main
from cnnvis.export.facets import colormap
from cnnvis.export.projections import _class_rgb, image_map, render_samples, write_image_map


def _has_colour(img: np.ndarray, rgb, alpha: int = 210, tol: float = 12.0) -> int:
    """Pixels of ``rgb`` drawn with ``alpha`` over white (discs that overlap nothing)."""
    blended = (np.asarray(rgb, float) * alpha + 255.0 * (255 - alpha)) / 255.0
    return int(np.sum(np.linalg.norm(img[..., :3].astype(float) - blended, axis=-1) < tol))


def test_export_projections_of_the_demo(demo_session, tmp_path, capsys):
    import cnnvis

    out = tmp_path / "proj"
    layers = "block3.relu,head.relu"
    assert main(["export", "projections", str(demo_session), "--out", str(out),
                 "--layers", layers, "--neuron", "head.relu:12"]) == 0  # fmt: skip
    assert f"wrote {out}" in capsys.readouterr().out
    rec = cnnvis.load(demo_session)
    n = len(rec.pooled_index)
    with open(out / "positions.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * 2 * n  # 2 layers x (untrained snapshot, recorded model)
    assert {(r["layer"], r["snapshot"]) for r in rows} == {
        (layer, s) for layer in layers.split(",") for s in ("0", "")
    }
    first = [r for r in rows if r["layer"] == "head.relu" and r["snapshot"] == ""]
    assert [int(r["sample"]) for r in first] == rec.pooled_index.tolist()
    assert [int(r["label"]) for r in first] == rec.pooled_labels.tolist()
    assert [int(r["prediction"]) for r in first] == rec.predictions[rec.pooled_index].tolist()
    # every class shows in its colour in the trained panel
    panel = np.asarray(Image.open(out / "samples__head.relu__model.png").convert("RGB"))
    for rgb in _class_rgb(rec.n_classes):
        assert _has_colour(panel, rgb) > 20
    lit = np.asarray(Image.open(out / "samples__head.relu__model__head.relu_12.png").convert("RGB"))
    assert _has_colour(lit, colormap(np.array([1.0]))[0]) > 0  # its strongest sample, in yellow
    assert Image.open(out / "grid__neuron.png").size == Image.open(out / "grid.png").size
    grid = Image.open(out / "grid.png")
    assert grid.size == (2 * panel.shape[1], 2 * panel.shape[0])
    assert Image.open(out / "neurons_grid.png").size[0] == 2 * panel.shape[1]
    with open(out / "neurons.csv") as f:
        assert sum(1 for _ in f) == 1 + 2 * (64 + 64)
    for name in ("trajectories__layers.png", "trajectories__head.relu__snapshots.png",
                 "image_map__head.relu.png", "neurons__head.relu__s0.png"):  # fmt: skip
        img = np.asarray(Image.open(out / name).convert("RGB"))
        assert (img != 255).any(axis=2).mean() > 0.02, name  # not an empty picture
    proj = out / "projector"
    assert (proj / "metadata.tsv").read_text().count("\n") == n + 1
    tensor = np.loadtxt(proj / "head.relu.tsv", delimiter="\t")
    assert np.allclose(tensor, rec.pooled("head.relu"), atol=1e-4)
    config = (proj / "projector_config.pbtxt").read_text()
    assert config.count("embeddings {") == 2 and 'tensor_path: "head.relu.tsv"' in config
    side = int(np.ceil(np.sqrt(n)))
    assert Image.open(proj / "sprite.png").size[0] % side == 0


def test_bad_arguments_are_one_line_and_status_2(demo_session, tmp_path, capsys):
    for extra, message in (
        (["--snapshots", "first"], "--snapshots takes integers or 'model'"),
        (["--layers", "nope"], "not recorded"),
        (["--snapshots", "99"], "does not exist"),
        (["--neuron", "head.relu"], "--neuron takes LAYER:CHANNEL"),
        (["--neuron", "head.relu:999"], "channels 0..63"),
    ):
        code = main(["export", "projections", str(demo_session), "--out", str(tmp_path / "o")]
                    + extra)  # fmt: skip
        err = capsys.readouterr().err
        assert code == 2 and message in err and err.count("\n") == 1


def test_snap_to_grid_keeps_a_grid_and_never_shares_a_cell():
    r, c = np.divmod(np.arange(9), 3)
    points = np.stack([c, 2 - r], axis=1).astype(float)  # already a 3x3 grid, row 0 on top
    assert np.array_equal(snap_to_grid(points), np.stack([r, c], axis=1))
    rng = np.random.default_rng(0)
    cells = snap_to_grid(rng.normal(size=(50, 2)))
    assert len({tuple(x) for x in cells}) == 50 and cells.max() < 8
    with pytest.raises(ValueError, match="cannot hold"):
        snap_to_grid(points, (2, 2))


def test_image_map_draws_every_thumbnail_once():
    n, thumb = 10, 4
    images = np.repeat(np.arange(1, n + 1, dtype=np.uint8)[:, None, None, None] * 20, 8, axis=1)
    images = np.repeat(images, 8, axis=2)  # (n, 8, 8, 1), each one grey level
    coords = np.random.default_rng(1).normal(size=(n, 2))
    out = image_map(coords, images, thumb=thumb, gap=1)
    for i in range(n):
        assert np.sum(np.all(out == 20 * (i + 1), axis=2)) == thumb * thumb
    free = image_map(coords, images, thumb=thumb, grid=False)
    assert free.shape[0] == free.shape[1] and (free != 255).any()
    with pytest.raises(ValueError, match="uint8"):
        image_map(coords, images.astype(float))


def test_write_image_map_of_a_snapshot(demo_session, tmp_path):
    import cnnvis

    rec = cnnvis.load(demo_session)
    path = write_image_map(rec, "head.relu", tmp_path / "deep" / "map.png", snapshot=0, thumb=8)
    img = np.asarray(Image.open(path).convert("RGB"))
    side = int(np.ceil(np.sqrt(len(rec.pooled_index))))
    assert img.shape == (side * 10 + 2, side * 10 + 2, 3)  # 8-pixel thumbnails, 2 apart


def test_samples_coloured_by_a_neuron_use_its_values_not_the_classes():
    from cnnvis.analysis.projections import SampleProjection

    rng = np.random.default_rng(2)
    labels = np.arange(60) % 3
    proj = SampleProjection("l", None, rng.normal(size=(60, 2)), labels, labels, 1.0)
    values = (labels == 1).astype(float)  # fires for class 1 only
    img = np.asarray(render_samples(proj, ["a", "b", "c"], "t", values=values).convert("RGB"))
    low, high = colormap(np.array([0.0, 1.0]))
    assert _has_colour(img, high) > 20 and _has_colour(img, low) > 20
    assert all(_has_colour(img, rgb) == 0 for rgb in _class_rgb(3))
    with pytest.raises(ValueError, match="60 finite numbers"):
        render_samples(proj, ["a", "b", "c"], "t", values=values[:5])


def test_export_png_and_svg_write_the_image_map(demo_session, tmp_path, capsys):
    """``export png|svg SESSION --view imagemap --layer L``: the thumbnails snapped to a grid,
    the same places in both; every sample once in the SVG, classed by its label."""
    import re
    import xml.etree.ElementTree as ET

    import cnnvis

    rec = cnnvis.load(demo_session)
    png, svg = tmp_path / "map.png", tmp_path / "map.svg"
    for kind, path in (("png", png), ("svg", svg)):
        args = ["export", kind, str(demo_session), "--view", "imagemap", "--layer", "head.relu"]
        assert main([*args, "--out", str(path)]) == 0
        assert f"wrote {path}" in capsys.readouterr().out
    img = np.asarray(Image.open(png).convert("RGB"))
    side = int(np.ceil(np.sqrt(len(rec.pooled_index))))
    assert img.shape == (side * 26 + 2, side * 26 + 2, 3)  # 24-pixel thumbnails, 2 apart
    root = ET.parse(svg).getroot()
    images = [e for e in root.iter() if e.tag.endswith("image")]
    assert len(images) == len(rec.pooled_index)
    labels = [int(re.search(r"class-(\d+)", e.get("class")).group(1)) for e in images]
    assert labels == list(rec.pooled_labels)
    for e in images[:20]:  # each SVG thumbnail sits on a drawn tile of the PNG
        x, y = int(e.get("x")), int(e.get("y"))
        assert (img[y : y + 24, x : x + 24] != 255).any()
        assert (img[y - 1, x : x + 24] == 255).all()  # the gap above it is blank
    # the recorded model's projection of an unknown layer: one line, status 2
    assert main(["export", "svg", str(demo_session), "--view", "imagemap", "--layer", "nope",
                 "--out", str(tmp_path / "x.svg")]) == 2  # fmt: skip
    assert not (tmp_path / "x.svg").exists()


def test_one_snapshot_of_many_layers_wraps_into_a_block_not_a_strip():
    from cnnvis.export.projections import _grid_image

    panels = [[Image.new("RGB", (40, 30), (i, 0, 0))] for i in range(21)]
    grid = _grid_image(panels)
    assert grid.size == (5 * 40, 5 * 30)  # 21 panels in 5 columns, read row by row
    assert grid.getpixel((40 * 4 + 1, 1))[0] == 4 and grid.getpixel((1, 30 + 1))[0] == 5
    pairs = [[Image.new("RGB", (40, 30))] * 2 for _ in range(6)]  # layers x snapshots: kept
    assert _grid_image(pairs).size == (2 * 40, 6 * 30)
