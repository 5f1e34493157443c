"""Neuron clusters, facets, connections and projections of a recording (C3-C7, P1, P3).

``analyze(rec) -> Analysis``: a plain data object (numpy and networkx; no vispy, Qt or torch)
that the scene and the viewer read, and whose edit methods the viewer calls.

* clusters: :meth:`Analysis.clusters`, :attr:`Analysis.labels` (C3)
* facets: :meth:`Analysis.activation_matrix` (C5), :meth:`Analysis.learned_features` (C4)
* connections: :meth:`Analysis.neuron_strengths`, :meth:`Analysis.connections` (C6)
* projections: :meth:`Analysis.projection` (P1); linking helpers (P3); neuron and sample
  projections, small multiples and trajectories the Rauber way: :func:`neuron_projection`,
  :func:`sample_projection`, :func:`neighbourhood_hit`, :func:`projection_grid`,
  :func:`neuron_grid`, :func:`neuron_activation`,
  :func:`trajectories` (P2, P4)
* edits with undo/redo, saved with the session: :meth:`Analysis.save`, :func:`load_analysis` (C7)
"""

from cnnvis.analysis.clusters import apply_edit, cluster_layer, response_profiles
from cnnvis.analysis.connections import (
    ClusterConnections,
    NeuronStrengths,
    SignedBicluster,
    neuron_strengths,
)
from cnnvis.analysis.core import Analysis, LayerBand, analyze, load_analysis
from cnnvis.analysis.facets import ActivationMatrix, LearnedFeatures, Projection
from cnnvis.analysis.projections import (
    NeuronProjection,
    SampleProjection,
    neighbourhood_hit,
    neuron_activation,
    neuron_grid,
    neuron_projection,
    projection_grid,
    sample_projection,
)
from cnnvis.analysis.trajectories import Trajectories, trajectories, trajectory_outliers

__all__ = [
    "analyze",
    "Analysis",
    "load_analysis",
    "LayerBand",
    "ActivationMatrix",
    "LearnedFeatures",
    "Projection",
    "NeuronStrengths",
    "ClusterConnections",
    "SignedBicluster",
    "neuron_strengths",
    "cluster_layer",
    "apply_edit",
    "response_profiles",
    "NeuronProjection",
    "SampleProjection",
    "Trajectories",
    "neighbourhood_hit",
    "neuron_activation",
    "neuron_grid",
    "neuron_projection",
    "projection_grid",
    "sample_projection",
    "trajectories",
    "trajectory_outliers",
]
