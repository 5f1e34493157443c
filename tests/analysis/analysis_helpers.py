"""Hand-built Recordings for the analysis tests (a Recording is a plain data object)."""

from __future__ import annotations

import networkx as nx
import numpy as np

from cnnvis.record.recording import LayerRecord, Recording


def layer_record(name, op, class_means, *, pooled=None, k=5, patch=6, channels_rgb=3, seed=0):
    rng = np.random.default_rng(seed)
    cm = np.asarray(class_means, dtype=np.float32)
    n, c = cm.shape
    if pooled is None:
        pooled = rng.normal(size=(40, n)).astype(np.float32)
    top_values = np.sort(rng.random((n, k)).astype(np.float32), axis=1)[:, ::-1].copy()
    top_samples = rng.integers(0, 40, size=(n, k)).astype(np.int64)
    boxes = np.tile(np.array([0, 0, patch, patch], dtype=np.int32), (n, k, 1))
    patches = rng.integers(0, 256, size=(n, k, patch, patch, channels_rgb), dtype=np.uint8)
    return LayerRecord(
        name, op, cm, np.asarray(pooled, np.float32), top_values, top_samples, boxes, patches
    )


def recording(layers, graph=None, weights=None, n_classes=None, seed=0):
    """layers: list of LayerRecord."""
    n_classes = n_classes or layers[0].class_means.shape[1]
    rng = np.random.default_rng(seed)
    n = 40
    labels = np.arange(n) % n_classes
    return Recording(
        model_name="Hand",
        class_names=[f"c{i}" for i in range(n_classes)],
        input_shape=(3, 8, 8),
        labels=labels.astype(np.int64),
        predictions=labels.astype(np.int64),
        confidences=np.ones(n, np.float32),
        pooled_index=np.arange(n, dtype=np.int64),
        pooled_images=rng.integers(0, 256, (n, 8, 8, 3), dtype=np.uint8),
        layers={lr.name: lr for lr in layers},
        weights=weights or {},
        graph=graph if graph is not None else nx.DiGraph(),
    )


def graph(spec):
    """spec: list of (node, op, channels, [preds]); module = node unless op is functional."""
    g = nx.DiGraph()
    for node, op, ch, preds in spec:
        functional = op in ("add", "cat", "flatten", "input", "output", "sub", "mul")
        g.add_node(node, module=None if functional else node, op=op, channels=ch)
        for i, p in enumerate(preds):
            g.add_edge(p, node, index=i)
    return g


def blobs_class_means(groups, n_classes=6, seed=0, noise=0.05):
    """Class-mean rows drawn around len(groups) prototypes; groups = sizes."""
    rng = np.random.default_rng(seed)
    protos = rng.random((len(groups), n_classes)) * 3
    rows = []
    for p, size in zip(protos, groups):
        for _ in range(size):
            rows.append(p * rng.uniform(0.5, 2.0) + rng.normal(0, noise, n_classes))
    return np.asarray(rows, dtype=np.float32)
