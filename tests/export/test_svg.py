"""SVG straight from the scene: it parses, and holds one element per scene object."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from cnnvis.export.svg import export_svg, scene_to_svg, write_svg
from cnnvis.scene import build_scene
from cnnvis.scene.synthetic import synthetic_overview

NS = {"s": "http://www.w3.org/2000/svg"}


@pytest.fixture(scope="module")
def data():
    return synthetic_overview(
        [("g1", "a", 16), ("g2", "b", 40), ("g3", "c", 64)],
        clusters_per_layer=[3, 5, 6],
        n_points=500,
        seed=2,
    )


def _panel(root, name):
    return root.find(f"s:svg[@id='panel-{name}']", NS)


def _group(panel, cls):
    return panel.find(f"s:g[@class='{cls}']", NS)


@pytest.mark.parametrize("facet", ["features", "matrix"])
def test_svg_has_an_element_per_object(data, facet, tmp_path):
    scene = build_scene(data, facet=facet)
    path = write_svg(scene, tmp_path / "o.svg", (1280, 800))
    root = ET.parse(path).getroot()
    assert root.get("width") == "1280" and root.get("height") == "800"
    ov = scene.panels["overview"]
    p = _panel(root, "overview")
    rects = list(_group(p, "boxes").iter(f"{{{NS['s']}}}rect"))
    assert len(rects) == len(ov.rects)
    # each cluster rectangle at its scene position
    for k in range(len(ov.rects)):
        x, y, w, h = ov.rects.xywh[k]
        assert float(rects[k].get("x")) == pytest.approx(x, abs=0.01)
        assert float(rects[k].get("width")) == pytest.approx(w, abs=0.01)
    zoom = scene.fit_zoom(ov, scene.panel_layout(1280, 800)["overview"]) / 1.02
    n_img = int((ov.images.min_zoom <= zoom).sum())
    images = list(_group(p, "boxes").iter(f"{{{NS['s']}}}image"))
    assert len(images) == n_img > 0
    assert all(i.get("href").startswith("data:image/png;base64,") for i in images)
    if facet == "matrix":
        assert all("pixelated" in i.get("style", "") for i in images)
    paths = _group(p, "edges").findall("s:path", NS)
    assert len(paths) == len(ov.lines)
    d0 = paths[0].get("d")
    assert d0.count("L") == ov.lines.offsets[1] - ov.lines.offsets[0] - 1
    first = [float(v) for v in d0[1:].split(" L")[0].split()]
    assert first == pytest.approx(ov.lines.line(0)[0], abs=0.01)
    assert len(_group(p, "nodes").findall("s:rect", NS)) == len(ov.top_rects)
    n_lab = int(scene.visible_labels("overview", zoom).sum())
    assert len(_group(p, "labels").findall("s:text", NS)) == n_lab
    pr = _panel(root, "projection")
    circles = _group(pr, "points").findall("s:circle", NS)
    pts = scene.panels["projection"].points
    assert len(circles) == len(pts)
    assert float(circles[3].get("cx")) == pytest.approx(pts.xy[3, 0], abs=0.01)
    assert len(_group(pr, "marked").findall("s:circle", NS)) == int(pts.marked.sum())
    lg = _panel(root, "legend")
    texts = [t.text for t in _group(lg, "labels").findall("s:text", NS)]
    assert all(name in texts for name in data.class_names)


def test_svg_shows_highlights_and_escapes_text(data):
    data2 = synthetic_overview([("g<1>", "a&b", 8)], clusters_per_layer=[2], n_points=50)
    scene = build_scene(data2)
    text = scene_to_svg(scene, (800, 600))
    root = ET.fromstring(text)
    assert any(t.text == "g<1>" for t in root.iter("{http://www.w3.org/2000/svg}text"))
    assert _group(_panel(root, "overview"), "highlight") is None
    scene.highlight.clusters = {("a&b", 0)}
    scene.highlight.samples = np.array([0, 1, 2])
    root = ET.fromstring(scene_to_svg(scene, (800, 600)))
    assert len(_group(_panel(root, "overview"), "highlight").findall("s:rect", NS)) == 1
    assert len(_group(_panel(root, "projection"), "highlight").findall("s:circle", NS)) == 3


def test_export_svg_entry(data, tmp_path):
    out = export_svg(data, tmp_path / "x" / "o.svg", size="1024x640")
    root = ET.parse(out).getroot()
    assert root.get("width") == "1024"
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(out).st_mode & 0o777 == 0o666 & ~umask  # not a temporary file's 0600
    with pytest.raises(ValueError, match="size"):
        export_svg(data, tmp_path / "y.svg", size="big")


def test_export_command_opens_groups_by_expand_and_depth(demo_session, tmp_path, capsys):
    """``export svg --expand all|GROUP,...`` and ``--depth N`` choose the open layer groups; a
    name that is no group is one line and status 2."""
    from cnnvis.cli import main

    def clusters(*flags):
        out = tmp_path / "o.svg"
        args = ["export", "svg", str(demo_session), "--out", str(out), "--size", "800x500"]
        assert main([*args, *flags]) == 0, capsys.readouterr().err
        root = ET.parse(out).getroot()
        groups = {g.get("data-name") for g in root.iter(f"{{{NS['s']}}}g")}
        return len(list(_panel(root, "overview").iter(f"{{{NS['s']}}}rect"))), groups

    n_all, _ = clusters("--expand", "all")
    n_closed, _ = clusters("--depth", "0")
    n_head, _ = clusters("--expand", "head")
    assert n_closed < n_head < n_all
    capsys.readouterr()
    code = main(["export", "png", str(demo_session), "--out", str(tmp_path / "x.png"),
                 "--expand", "head,nosuch"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "no layer group 'nosuch'" in err and err.count("\n") == 1
    assert not (tmp_path / "x.png").exists()


def _f(el, *names):
    return [float(el.get(n)) for n in names]


@pytest.mark.parametrize("expanded", [(), "all"])
def test_overview_svg_is_semantic(expanded, tmp_path):
    """The overview's SVG names what it draws: groups, layers, clusters (box and facets inside
    it), connections by sign and labels with their font size, in the panel's viewBox units."""
    data = synthetic_overview(
        [("g1", "a", 16), ("g1", "b", 24), ("g2", "c", 40), ("g2", "d", 12)],
        clusters_per_layer=[2, 3, 4, 2],
        n_points=100,
        seed=4,
    )
    scene = build_scene(data, expanded=expanded)
    root = ET.parse(write_svg(scene, tmp_path / "o.svg", (1280, 800))).getroot()
    p = _panel(root, "overview")
    assert all(p.get(a) for a in ("x", "y", "width", "height", "viewBox"))
    g = f"{{{NS['s']}}}g"
    by_class: dict[str, list] = {}
    for el in p.iter(g):
        by_class.setdefault(el.get("class"), []).append(el)
    layers = {e.get("data-name"): int(e.get("data-neurons")) for e in by_class.get("layer", [])}
    want = {lay.name: lay.n_channels for lay in data.layers} if expanded == "all" else {}
    assert layers == want
    groups = [el.get("data-name") for el in by_class["group"]]
    assert sorted(groups) == ["g1", "g2"]
    clusters = by_class["cluster"]
    assert len(clusters) == len(scene.cluster_rects)
    for el in clusters:
        key = (el.get("data-layer"), int(el.get("data-index")))
        (rect,) = el.findall("s:rect", NS)
        x, y, w, h = _f(rect, "x", "y", "width", "height")
        assert (x, y, w, h) == pytest.approx(scene.cluster_rects[key], abs=0.01)
        assert int(el.get("data-size")) == len(data.layer(key[0]).clusters[key[1]].neurons)
        images = el.findall("s:image", NS)
        assert images  # every box shows its facet at fit
        for im in images:
            ix, iy, iw, ih = _f(im, "x", "y", "width", "height")
            assert x - 0.01 <= ix and ix + iw <= x + w + 0.01
            assert y - 0.01 <= iy and iy + ih <= y + h + 0.01
    paths = list(p.iter(f"{{{NS['s']}}}path"))
    assert paths and all(q.get("class") == "connection" for q in paths)
    signs = [q.get("data-sign") for q in paths]
    ov = scene.panels["overview"]
    assert signs == ["positive" if s >= 0 else "negative" for s in ov.lines.sign]
    texts = list(p.iter(f"{{{NS['s']}}}text"))
    assert texts and all(t.get("class") == "label" and float(t.get("font-size")) > 0 for t in texts)
