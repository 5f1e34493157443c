"""Scene: the overview as plain geometry (no GL), built from an analysis.

:func:`build_scene` lays out the CNNVis picture (layer bands, neuron clusters with their facets,
bundled connections, the t-SNE projection and a legend) as a :class:`Scene` of rectangles, images,
polylines, points and labels in world coordinates, with ids that map back to the analysis. Hit
testing, level of detail and highlight state live on the scene; :mod:`cnnvis.render.canvas` and
:mod:`cnnvis.export` draw it.
"""

from __future__ import annotations

from .build import build_scene
from .colors import SIGN_PALETTES, class_colors, colormap
from .inputs import (
    BiclusterInput,
    ClusterInput,
    ConnectionInput,
    LayerInput,
    OverviewInput,
    ProjectionInput,
    overview_input,
)
from .model import Highlight, Images, Labels, LegendEntry, Panel, Points, Polylines, Rects, Scene

__all__ = [
    "SIGN_PALETTES",
    "BiclusterInput",
    "ClusterInput",
    "ConnectionInput",
    "Highlight",
    "Images",
    "Labels",
    "LayerInput",
    "LegendEntry",
    "OverviewInput",
    "Panel",
    "Points",
    "Polylines",
    "ProjectionInput",
    "Rects",
    "Scene",
    "build_scene",
    "class_colors",
    "colormap",
    "overview_input",
]
