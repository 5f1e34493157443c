"""The density image's splat (issue 20), without a display: each cell is the mean colour of the
points covering it and as opaque as they are stacked; bad shapes are refused."""

from __future__ import annotations

import numpy as np
import pytest

from cnnvis.viewer.density import points_in_rect, splat


def test_splat_mixes_the_colours_of_the_points_in_a_cell():
    xy = np.array([[0.5, 0.5], [0.5, 0.5], [3.5, 2.5], [9.0, 9.0]])
    rgba = np.array([[1, 0, 0, 1], [0, 0, 1, 1], [0, 1, 0, 0.5], [1, 1, 1, 1]], np.float32)
    img = splat(xy, rgba, (0.0, 0.0, 4.0, 3.0), (3, 4))
    assert img.shape == (3, 4, 4)
    assert tuple(img[0, 0]) == (128, 0, 128, round(255 * (1 - np.exp(-2))))  # row 0: the bottom
    assert tuple(img[2, 3]) == (0, 255, 0, round(255 * (1 - np.exp(-0.5))))
    assert int(img[..., 3].sum()) == int(img[0, 0, 3]) + int(
        img[2, 3, 3]
    )  # the point outside is left out
    spread = splat(xy[:1], rgba[:1], (0.0, 0.0, 4.0, 3.0), (3, 4), reach=3)
    assert np.count_nonzero(spread[..., 3]) == 4  # a 3x3 square around cell (0, 0), clipped


def test_points_in_rect_and_bad_shapes():
    xy = np.array([[0.0, 0.0], [2.0, 1.0], [5.0, 5.0]])
    assert points_in_rect(xy, (0.0, 0.0, 2.0, 2.0)).tolist() == [True, True, False]
    with pytest.raises(ValueError, match="at least one pixel"):
        splat(xy, np.ones((3, 4), np.float32), (0.0, 0.0, 1.0, 1.0), (0, 4))
