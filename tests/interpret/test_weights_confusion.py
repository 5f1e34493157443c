"""Weights as images and the confusion matrix with examples, against their definitions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import confusion_matrix
from torch import nn

from cnnvis.data.digits import DigitsDataset
from cnnvis.interpret import confusion, tile, to_unit, weight_images
from cnnvis.record import record


@pytest.fixture(scope="module")
def recording(trained_demo):
    return record(trained_demo, DigitsDataset("test", seed=0), layers=["head.fc2"], progress=False)


def test_confusion_equals_scikit_learn_and_each_example_is_the_cells_most_confident(recording):
    c = confusion(recording)
    assert np.array_equal(c.matrix, confusion_matrix(recording.labels, recording.predictions))
    for t in range(10):
        for p in range(10):
            members = c.samples_in(t, p)
            assert len(members) == c.matrix[t, p]
            if len(members) == 0:
                assert c.example[t, p] == -1 and np.isnan(c.example_confidence[t, p])
                continue
            best = members[np.argmax(recording.confidences[members])]
            assert recording.confidences[c.example[t, p]] == recording.confidences[best]
            assert c.example[t, p] in members
    wrong = np.flatnonzero(recording.labels != recording.predictions)
    assert sorted(c.mistakes) == sorted(wrong)
    assert np.all(np.diff(recording.confidences[c.mistakes]) <= 0)
    assert len(confusion(recording, n_mistakes=2).mistakes) == min(2, len(wrong))


def test_confusion_rejects_labels_beyond_the_class_names(recording):
    class Broken:
        labels, predictions, confidences = np.array([0, 12]), np.array([0, 1]), np.ones(2)
        class_names = recording.class_names

    with pytest.raises(ValueError, match="0..9"):
        confusion(Broken())


def test_linear_classifier_templates_are_its_reshaped_weights():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    w = weight_images(model, "1", input_shape=(1, 8, 8))
    assert w.kind == "templates" and w.output_layer is None
    assert np.array_equal(w.images, model[1].weight.detach().numpy().reshape(10, 1, 8, 8))


def test_hidden_layer_templates_come_with_the_output_weights_per_class():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    w = weight_images(model, "1", input_shape=(1, 8, 8))
    assert w.images.shape == (32, 1, 8, 8) and w.output_layer == "3"
    assert np.array_equal(w.output_weights, model[3].weight.detach().numpy())
    with pytest.raises(ValueError, match="holds 63 values"):
        weight_images(model, "1", input_shape=(7, 9))


def test_conv_filters_as_rgb_and_per_input_channel(resnet, trained_demo):
    first = weight_images(resnet, "conv1")
    assert first.kind == "rgb" and first.images.shape == (64, 7, 7, 3)
    assert np.array_equal(first.images[5, :, :, 1], resnet.conv1.weight[5, 1].detach().numpy())
    deeper = weight_images(trained_demo, "block2.conv")
    assert deeper.kind == "per_channel" and deeper.images.shape == (32, 16, 3, 3)
    assert weight_images(trained_demo, "head.fc1").kind == "flat"
    with pytest.raises(TypeError, match="not a Conv2d or Linear"):
        weight_images(trained_demo, "block1.bn")
    grid = tile(to_unit(first.images, symmetric=False))
    assert grid.shape == (8 * 8 + 1, 8 * 8 + 1, 3) and grid.min() >= 0 and grid.max() <= 1
