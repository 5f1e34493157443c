"""The adversarial tab's paths on the demo session (cnnvis.viewer.toolbox): a recorded sample is
placed among its own recorded neighbours in the session's projections, and the paths are drawn
as one thumbnail per layer and kept in the tab's cache."""

from __future__ import annotations

import numpy as np
import pytest

from cnnvis.interpret.paths import pooled_activations, sample_paths

pytestmark = pytest.mark.usefixtures("one_thread")


def test_a_recorded_sample_sits_in_its_recorded_neighbourhood(toolbox):
    rec, row = toolbox.rec, 17
    x = toolbox.data[int(rec.pooled_index[row])][0]
    refs = toolbox.references()
    acts = pooled_activations(toolbox.model, x[None], rec.layer_names)
    for layer in rec.layer_names:  # pooled as the recorder pooled it
        np.testing.assert_allclose(acts[layer][0], rec.pooled(layer)[row], rtol=1e-4, atol=1e-5)
    paths = sample_paths(toolbox.model, x, x, refs)
    for i, layer in enumerate(rec.layer_names):
        pooled, coords = refs[layer]
        nearest = np.argsort(np.linalg.norm(pooled - pooled[row], axis=1), kind="stable")[:5]
        assert paths.neighbours[i, 0, 0] == row
        np.testing.assert_allclose(paths.positions[i, 0], coords[nearest].mean(axis=0))
        mean_step = np.mean(np.linalg.norm(coords - coords[row], axis=1))
        assert np.linalg.norm(paths.positions[i, 0] - coords[row]) < 0.25 * mean_step


def test_the_tab_draws_one_projection_per_layer_and_caches_the_paths(toolbox):
    first = toolbox.tab("adversarial", 3)
    n = len(toolbox.rec.layer_names)
    assert first.paths.shape == (n, 2, 2) and len(first.panels) == 3 + n
    for panel, caption, layer in zip(first.panels[3:], first.captions[3:],
                                     toolbox.rec.layer_names, strict=True):  # fmt: skip
        assert caption.startswith(f"{layer}\n") and "neighbours shared" in caption
        colours = {tuple(c) for c in panel.reshape(-1, 3)}
        assert (0, 0, 0) in colours and (214, 26, 140) in colours  # both points are drawn
        assert len(colours) > 10  # and the class-coloured reference samples
    # DeepFool's flip: the two points part by the logits
    assert np.linalg.norm(first.paths[-1, 0] - first.paths[-1, 1]) > 0
    again = toolbox.tab("adversarial", 3)
    assert again.from_cache
    np.testing.assert_array_equal(again.paths, first.paths)
