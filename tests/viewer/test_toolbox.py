"""The inspector's tabs without Qt (cnnvis.viewer.toolbox): each tab computes on the demo
session and is cached in the session folder; a second request reads the cache; a damaged cache
entry is computed again, never trusted."""

from __future__ import annotations

import numpy as np
import pytest

from cnnvis.viewer.toolbox import TABS, ResultCache, TabResult

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("tab", list(TABS))
def test_each_tab_computes_then_reads_the_cache(toolbox, tab):
    first = toolbox.tab(tab, 3)
    assert not first.from_cache and len(first.panels) == len(first.captions) >= 2
    assert all(p.dtype == np.uint8 and p.ndim == 3 and p.shape[2] == 3 for p in first.panels)
    assert all(p.std() > 0 for p in first.panels)  # pictures, not blank squares
    assert "Sample 3: label 2" in first.lines[0]
    again = toolbox.tab(tab, 3)
    assert again.from_cache
    for a, b in zip(first.panels, again.panels, strict=True):
        np.testing.assert_array_equal(a, b)
    assert (again.captions, again.lines, again.bars) == (first.captions, first.lines, first.bars)
    assert len(list(toolbox.cache().folder.glob("sample3-*.npz"))) == 1


def test_gradient_tab_reports_the_randomisation_test(toolbox):
    result = toolbox.tab("gradients", 3)
    captions = dict(zip(["input", "saliency", "deconvnet", "guided", "cam", "ig"], result.captions,
                        strict=True))  # fmt: skip
    assert "ρ = " in captions["saliency"]
    assert captions["guided"].endswith("fails")  # guided backprop ignores the top layers
    assert "head.fc1, head.fc2" in result.lines[1]


def test_adversarial_tab_shows_the_flip_and_the_layers(toolbox):
    result = toolbox.tab("adversarial", 3)
    assert result.captions[0] == "before: 2 (100%)"
    assert not result.captions[2].startswith("after: 2 ")  # DeepFool flips it
    assert [b[0] for b in result.bars] == ["block1.conv", "block2.conv", "block3.conv",
                                           "head.fc1", "head.fc2"]  # fmt: skip
    assert all(v > 0 for _, v in result.bars)


@pytest.mark.parametrize("damage", ["flip", "truncate", "garbage", "checksum"])
def test_a_damaged_cache_entry_is_recomputed(toolbox, damage):
    first = toolbox.tab("occlusion", 5)
    (path,) = toolbox.cache().folder.glob("sample5-occlusion-*.npz")
    data = bytearray(path.read_bytes())
    if damage == "flip":  # one bit inside the first panel's pixels
        data[len(data) // 3] ^= 0x10
    elif damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "garbage":
        data = bytearray(b"not an npz at all")
    if damage == "checksum":  # a valid file whose pixels no longer match its checksum
        arrays = first.to_arrays()
        arrays["panel1"] = arrays["panel1"].copy()
        arrays["panel1"][0, 0] ^= 1
        np.savez(path, **arrays)
    else:
        path.write_bytes(bytes(data))
    assert toolbox.cache().get(path.stem) is None
    again = toolbox.tab("occlusion", 5)
    assert not again.from_cache  # computed, not read
    for a, b in zip(first.panels, again.panels, strict=True):
        np.testing.assert_array_equal(a, b)
    assert toolbox.tab("occlusion", 5).from_cache  # and stored again, whole


def test_unit_maximisation_is_cached_per_channel_set(toolbox):
    a = toolbox.maximization("block3.relu", [4, 1])
    assert not a.from_cache and a.panels[0].std() > 0
    assert toolbox.maximization("block3.relu", [1, 4]).from_cache  # the same cluster
    assert not toolbox.maximization("block3.relu", [1]).from_cache


def test_bad_requests_say_what_is_wrong(toolbox, tmp_path):
    with pytest.raises(ValueError, match="unknown tab"):
        toolbox.tab("deepdream", 0)
    with pytest.raises(ValueError, match="sample must be in 0..449"):
        toolbox.tab("occlusion", 450)
    with pytest.raises(ValueError, match="cache key"):
        ResultCache(tmp_path).path("../escape")
    with pytest.raises(ValueError, match="checksum"):
        arrays = TabResult([np.zeros((2, 2, 3), np.uint8)], ["x"]).to_arrays()
        arrays["meta"] = arrays["meta"][:-1]
        TabResult.from_arrays(arrays)
