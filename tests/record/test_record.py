"""record(): summaries against brute force, receptive fields, memory bound, hooks, bad input."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import Dataset, TensorDataset

import cnnvis
from cnnvis.data.digits import DigitsDataset
from cnnvis.record import RecordError, record
from cnnvis.record.recording import LayerPatches


def small_net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),  # 0
        nn.ReLU(inplace=True),  # 1
        nn.MaxPool2d(2),  # 2
        nn.Conv2d(8, 12, 3, padding=1),  # 3
        nn.ReLU(inplace=True),  # 4
        nn.Flatten(),  # 5
        nn.Linear(12 * 4 * 4, 10),  # 6
    ).eval()


@pytest.fixture(scope="module")
def digits():
    return DigitsDataset("test", seed=0)


def full_activations(model, x, names):
    """Every output of the named modules for all of x (brute force, for checking)."""
    acts = {}
    modules = dict(model.named_modules())
    handles = [
        modules[n].register_forward_hook(
            lambda _m, _i, out, n=n: acts.__setitem__(n, out.detach().clone())
        )
        for n in names
    ]
    with torch.no_grad():
        logits = model(x)
    for h in handles:
        h.remove()
    return acts, logits


def test_summaries_match_brute_force(digits):
    model = small_net()
    layers = ["0", "3", "6"]
    rec = record(model, digits, layers=layers, top_k=5, batch_size=37, progress=False,
                 max_pooled=60, patch_size=8)  # fmt: skip
    x, y = digits.images, digits.targets.numpy()
    acts, logits = full_activations(model, x, layers)
    assert rec.layer_names == layers
    assert rec.n_samples == len(digits) == 450
    np.testing.assert_array_equal(rec.labels, y)
    np.testing.assert_array_equal(rec.predictions, logits.argmax(1).numpy())
    conf = torch.softmax(logits, 1).max(1).values.numpy()
    np.testing.assert_allclose(rec.confidences, conf, rtol=1e-5)
    assert rec.accuracy == pytest.approx(float(np.mean(y == logits.argmax(1).numpy())))
    for name in layers:
        a = acts[name]
        flat = a.flatten(2) if a.dim() == 4 else a.unsqueeze(2)
        mean = flat.mean(2).numpy()  # (N, C)
        mx = flat.max(2).values.numpy()
        lr = rec.layer(name)
        expect_means = np.stack([mean[y == c].mean(0) for c in range(10)], axis=1)
        np.testing.assert_allclose(lr.class_means, expect_means, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(lr.pooled, mean[rec.pooled_index], rtol=1e-5, atol=1e-7)
        # top-k: values are the k largest spatial maxima, and belong to the named samples
        expect_top = -np.sort(-mx, axis=0)[:5].T
        np.testing.assert_allclose(lr.top_values, expect_top, rtol=1e-5, atol=1e-6)
        got = mx[lr.top_samples, np.arange(mx.shape[1])[:, None]]
        np.testing.assert_allclose(got, lr.top_values, rtol=1e-5, atol=1e-6)
        assert lr.top_patches.shape == (mx.shape[1], 5, 8, 8, 1)
        assert lr.top_patches.dtype == np.uint8
    # the pooled sample is class-stratified: 6 per class, ascending sample positions
    assert len(rec.pooled_index) == 60
    assert np.all(np.diff(rec.pooled_index) > 0)
    np.testing.assert_array_equal(np.bincount(rec.pooled_labels, minlength=10), np.full(10, 6))
    # thumbnails are the images at the display range (digits are in [0, 1] -> 0..255)
    expect_img = np.round(x[rec.pooled_index, 0].numpy() * 255).astype(np.uint8)
    lo, hi = rec.meta["display_range"]["low"][0], rec.meta["display_range"]["high"][0]
    if lo == 0.0 and hi == 1.0:
        np.testing.assert_array_equal(rec.pooled_images[..., 0], expect_img)
    # weights
    np.testing.assert_array_equal(rec.weights["3"]["weight"], model[3].weight.detach().numpy())
    assert rec.weights["6"]["bias"].dtype == np.float32


def test_receptive_fields_chain_and_patches(digits):
    model = small_net()
    rec = record(model, digits, layers=["0", "3"], top_k=3, progress=False, patch_size=8)
    rf = rec.meta["receptive_fields"]
    # conv3x3 pad 1: index i sees [i-1, i+2); after pool 2 and another conv3x3: [2i-3, 2i+5)
    assert rf["0"]["lo"] == [-1, -1] and rf["0"]["hi"] == [2, 2] and rf["0"]["jump"] == [1, 1]
    assert rf["3"]["lo"] == [-3, -3] and rf["3"]["hi"] == [5, 5] and rf["3"]["jump"] == [2, 2]
    acts, _ = full_activations(model, digits.images, ["3"])
    a = acts["3"]
    lr = rec.layer("3")
    for c in range(3):
        s = int(lr.top_samples[c, 0])
        flat = int(a[s, c].flatten().argmax())
        yy, xx = divmod(flat, a.shape[3])
        y0, x0, y1, x1 = lr.top_boxes[c, 0]
        assert (y0, x0, y1, x1) == (max(0, 2 * yy - 3), max(0, 2 * xx - 3),
                                    min(8, 2 * yy + 5), min(8, 2 * xx + 5))  # fmt: skip
        # the patch is the crop of that box: its brightest pixels are where the crop's are
        crop = digits.images[s, 0, y0:y1, x0:x1].numpy()
        patch = lr.top_patches[c, 0, ..., 0].astype(float) / 255
        assert abs(patch.mean() - crop.mean()) < 0.08


class TwoBranch(nn.Module):
    """A 3x3 branch and a 7x7 branch added together: the field is the union (7x7)."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(1, 4, 3, padding=1)
        self.b = nn.Conv2d(1, 4, 7, padding=3)
        self.fc = nn.Linear(4, 10)

    def forward(self, x):
        h = torch.relu(self.a(x) + self.b(x))
        return self.fc(h.mean(dim=(2, 3)))


def test_receptive_field_of_branching_net():
    torch.manual_seed(0)
    model = TwoBranch().eval()
    x = torch.rand(20, 1, 16, 16)
    y = torch.arange(20) % 10
    rec = record(model, (x, y), layers=["a", "b", "fc"], progress=False, top_k=2)
    rf = rec.meta["receptive_fields"]
    assert rf["a"]["hi"] == [2, 2] and rf["b"]["hi"] == [4, 4]
    assert rf["b"]["lo"] == [-3, -3]
    assert rec.layer("fc").top_boxes[0, 0].tolist() == [0, 0, 16, 16]


def test_resnet18_hooks_removed_and_mode_kept():
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=10).eval()
    x = torch.randn(6, 3, 32, 32)
    y = torch.tensor([0, 1, 2, 3, 4, 5])
    rec = record(model, (x, y), progress=False, top_k=2, patch_size=8)
    expected = cnnvis.graph.default_layers(rec.graph)
    assert rec.layer_names == expected
    # the stem's ReLU is called once (recorded), the blocks' ReLUs are reused (their convs are)
    assert "relu" in rec.layers and "fc" in rec.layers and "layer3.1.conv2" in rec.layers
    assert rec.layer("layer3.1.conv2").n_channels == 256
    for m in model.modules():
        assert not m._forward_hooks and not m._forward_pre_hooks
    assert not model.training
    for name, lr in rec.layers.items():
        b = lr.top_boxes
        assert b.min() >= 0 and b[..., 2].max() <= 32 and b[..., 3].max() <= 32, name
        assert np.all(b[..., 2] > b[..., 0]) and np.all(b[..., 3] > b[..., 1]), name
    # the field grows with depth: stem (7x7 stride 2) < layer3
    size = lambda n: int(np.median(rec.layer(n).top_boxes[..., 2] - rec.layer(n).top_boxes[..., 0]))  # noqa: E731
    assert size("relu") <= 7 < size("layer2.0.conv1") <= size("layer3.1.conv2") == 32
    # the same recording again is bit-identical (determinism)
    rec2 = record(model, (x, y), progress=False, top_k=2, patch_size=8)
    for name in rec.layers:
        np.testing.assert_array_equal(rec.layer(name).top_patches, rec2.layer(name).top_patches)
        np.testing.assert_array_equal(rec.layer(name).pooled, rec2.layer(name).pooled)


class RandomDigits(Dataset):
    """n random 1x8x8 images with labels cycling over 10 classes (made on the fly)."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        return torch.rand(1, 8, 8, generator=g), i % 10 if i % 7 else 3


def test_memory_bound_independent_of_data_size():
    model = small_net()
    sizes = {}
    for n in (200, 3000):
        rec = record(model, RandomDigits(n), layers=["3"], max_pooled=35, top_k=4,
                     batch_size=128, progress=False)  # fmt: skip
        assert rec.n_samples == n
        assert rec.layer("3").pooled.shape == (35, 12)
        assert len(rec.pooled_index) == 35 == len(rec.pooled_images)
        counts = np.bincount(rec.pooled_labels, minlength=10)
        np.testing.assert_array_equal(counts, [4, 4, 4, 4, 4, 3, 3, 3, 3, 3])
        sizes[n] = sum(a.nbytes for a in vars(rec.layer("3")).values() if hasattr(a, "nbytes"))
        again = record(model, RandomDigits(n), layers=["3"], max_pooled=35, top_k=4,
                       batch_size=64, progress=False)  # fmt: skip
        np.testing.assert_array_equal(rec.pooled_index, again.pooled_index)
    assert sizes[200] == sizes[3000]
    assert rec.pooled_index.max() > 200  # the reservoir reaches the whole data


def test_inplace_relu_does_not_alter_recorded_conv():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(inplace=True), nn.Flatten(),
                          nn.Linear(6 * 64, 10)).eval()  # fmt: skip
    data = DigitsDataset("test")
    rec = record(model, data, layers=["0"], progress=False, max_samples=100)
    assert rec.n_samples == 100
    assert rec.layer("0").class_means.min() < 0  # pre-ReLU values survive the in-place ReLU


def test_output_changed_in_place_on_some_batches_is_read_before_the_change():
    """A module that halves its input in place on bright batches only (not on the first): the
    recorded layer before it is summarised as it was before the change, on every batch, with
    one forward pass a batch."""

    class HalveWhenBright(nn.Module):
        def __init__(self, threshold: float) -> None:
            super().__init__()
            self.threshold, self.calls = threshold, 0

        def forward(self, x):
            self.calls += 1
            if x.mean() > self.threshold:
                x.mul_(0.5)
            return x

    torch.manual_seed(0)
    gate = HalveWhenBright(threshold=float("inf"))
    model = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1, bias=False), nn.ReLU(), gate,
                          nn.Flatten(), nn.Linear(6 * 64, 10)).eval()  # fmt: skip
    images = DigitsDataset("test").images[:256].clone()
    images[:64] *= 0.01  # the first batch is dark: the gate never fires on it
    with torch.no_grad():
        bright = model[1](model[0](images[64:])).mean().item()
    gate.threshold = 0.5 * bright
    labels = torch.arange(256) % 10
    gate.calls = 0
    rec = record(model, TensorDataset(images, labels), layers=["1", "4"], top_k=3, batch_size=64,
                 progress=False, max_pooled=30)  # fmt: skip
    assert gate.calls == 1 + 4  # the graph's own run, then one forward a batch
    acts = {}
    for start in range(0, 256, 64):  # as the recording's batches: the gate fires per batch
        got, _ = full_activations(model, images[start : start + 64], ["1"])
        acts.setdefault("1", []).append(got["1"].flatten(2).mean(2))
    means = torch.cat(acts["1"]).numpy()
    y = labels.numpy()
    expect = np.stack([means[y == c].mean(0) for c in range(10)], axis=1)
    np.testing.assert_allclose(rec.layer("1").class_means, expect, rtol=1e-4, atol=1e-6)


def test_training_mode_warns_and_is_restored(digits):
    model = small_net().train()
    running = model[0].weight.detach().clone()
    with pytest.warns(UserWarning, match="training mode"):
        rec = record(model, digits, layers=["3"], progress=False, max_samples=64)
    assert model.training and all(m.training for m in model.modules())
    assert torch.equal(running, model[0].weight)
    assert rec.n_samples == 64


def test_logits_callable_for_tuple_outputs(digits):
    class Twin(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = small_net()

        def forward(self, x):
            z = self.net(x)
            return z, {"aux": z}

    with pytest.raises(RecordError, match="logits="):
        record(Twin().eval(), digits, layers=["net.3"], progress=False)
    rec = record(Twin().eval(), digits, layers=["net.3"], progress=False, logits=lambda o: o[0])
    assert rec.n_samples == 450


# -- bad input ---------------------------------------------------------------------------------


def assert_no_hooks(model):
    for m in model.modules():
        assert not m._forward_hooks


def test_forward_fails_on_data_shape():
    model = small_net()
    x = torch.rand(10, 3, 8, 8)
    with pytest.raises(RecordError, match=r"forward pass fails on inputs of shape \(1, 3, 8, 8\)"):
        record(model, (x, torch.zeros(10, dtype=torch.long)), progress=False)
    assert_no_hooks(model)


def test_empty_data_set():
    empty = TensorDataset(torch.zeros(0, 1, 8, 8), torch.zeros(0, dtype=torch.long))
    with pytest.raises(RecordError, match="empty"):
        record(small_net(), empty, progress=False)


def test_labels_out_of_range(digits):
    model = small_net()
    x = digits.images[:70]
    y = digits.targets[:70].clone()
    y[66] = 10
    with pytest.raises(RecordError, match=r"label 10 of sample 66 is out of range.*0\.\.9"):
        record(model, (x, y), progress=False, batch_size=32)
    assert_no_hooks(model)


def test_nan_activations_name_the_layer(digits):
    model = small_net()
    with torch.no_grad():
        model[3].weight[2, 0, 1, 1] = float("nan")
    with pytest.raises(RecordError, match="layer '3' produced NaN or inf"):
        record(model, digits, layers=["0", "3"], progress=False)
    assert_no_hooks(model)


def test_unknown_layer_lists_known(digits):
    with pytest.raises(RecordError, match=r"unknown layer name\(s\) \['conv9'\].*0, 1, 2, 3"):
        record(small_net(), digits, layers=["conv9"], progress=False)


def test_bad_options_and_devices(digits):
    with pytest.raises(RecordError, match="top_k"):
        record(small_net(), digits, top_k=0, progress=False)
    with pytest.raises(RecordError, match="never moves the model"):
        record(small_net(), digits, device="meta", progress=False)
    with pytest.raises(RecordError, match="class names"):
        record(small_net(), digits, class_names=["a", "b"], progress=False)
    with pytest.raises(RecordError, match="integers"):
        record(small_net(), (digits.images[:4], torch.zeros(4)), progress=False)


def test_shared_module_is_refused():
    class Reuse(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 1, 3, padding=1)
            self.fc = nn.Linear(64, 10)

        def forward(self, x):
            return self.fc(self.conv(self.conv(x)).flatten(1))

    x = torch.rand(4, 1, 8, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(RecordError, match="ran 2 times"):
            record(Reuse().eval(), (x, torch.arange(4)), layers=["conv"], progress=False)


def test_analytic_fields_match_gradient_probe():
    torchvision = pytest.importorskip("torchvision")
    from cnnvis.record.receptive import analytic_receptive_fields, measure_receptive_fields

    # (GoogLeNet and DenseNet-121 agree too, checked by hand; too slow for the suite)
    for name in ("resnet18",):
        torch.manual_seed(0)
        model = torchvision.models.get_model(name, num_classes=10).eval()
        x = torch.zeros(1, 3, 32, 32)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            graph = cnnvis.model_graph(model, x)
        layers = cnnvis.graph.default_layers(graph)
        spatial = {}
        modules = dict(model.named_modules())
        hooks = [
            modules[n].register_forward_hook(
                lambda _m, _i, o, n=n, sp=spatial: (
                    sp.__setitem__(n, tuple(o.shape[2:])) if o.dim() == 4 else None
                )
            )
            for n in layers
        ]
        with torch.no_grad():
            model(x)
        for h in hooks:
            h.remove()
        analytic = analytic_receptive_fields(model, graph, layers, 32, 32, spatial)
        measured = measure_receptive_fields(model, layers, x[0], spatial)
        for n in layers:
            assert analytic[n] is not None, (name, n)
            idx = np.arange(int(np.prod(spatial.get(n, (1, 1)))))
            np.testing.assert_array_equal(analytic[n].boxes(idx), measured[n].boxes(idx), n)


class FunctionalPool(nn.Module):
    """A functional max-pool the graph arithmetic cannot see: the gradient probe takes over."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(1, 8, 3, padding=1)
        self.b = nn.Conv2d(8, 8, 3, padding=1)
        self.fc = nn.Linear(8 * 16, 10)

    def forward(self, x):
        h = torch.nn.functional.max_pool2d(torch.relu(self.a(x)), 2)
        return self.fc(torch.relu(self.b(h)).flatten(1))


def test_gradient_fallback_for_functional_ops():
    torch.manual_seed(0)
    x = torch.rand(12, 1, 8, 8)
    rec = record(FunctionalPool().eval(), (x, torch.arange(12) % 10), progress=False, top_k=2)
    rf = rec.meta["receptive_fields"]
    assert rf["a"]["method"] == "analytic" and rf["b"]["method"] == "gradient"
    assert rf["b"]["lo"] == [-3, -3] and rf["b"]["hi"] == [5, 5] and rf["b"]["jump"] == [2, 2]


def test_patches_kept_as_images_or_cut_in_flushes_are_the_same(digits):
    """A short pass keeps the images (patches cut when read); a small image budget cuts them
    during the pass in many flushes, and a patch smaller than the images cuts them at the end:
    the same bytes every way, and the same thumbnails of the pooled samples, whether they come
    from the images kept or were converted batch by batch."""
    model = small_net()
    kw = {"layers": ["0", "3", "6"], "top_k": 4, "batch_size": 16, "progress": False,
          "patch_size": 8}  # fmt: skip
    once = record(model, digits, **kw)
    # ~20 digit images per flush: the first batch is kept whole, the second no longer fits
    often = record(model, digits, patch_budget=64 * 20, **kw)
    tiny = record(model, digits, patch_budget=64 * 4, **kw)  # not even the first batch fits
    small = record(model, digits, **{**kw, "patch_size": 2})  # 4 bytes a patch: cut at the end
    assert once.meta["patch_flushes"] == 0 and often.meta["patch_flushes"] > 5
    assert small.meta["patch_flushes"] == 1
    for other in (often, tiny, small):
        np.testing.assert_array_equal(once.pooled_index, other.pooled_index)
        np.testing.assert_array_equal(once.pooled_images, other.pooled_images)
    expect = np.round(digits.images[once.pooled_index[:50], 0].numpy() * 255).astype(np.uint8)
    np.testing.assert_array_equal(once.pooled_images[:50, ..., 0], expect)
    for name in kw["layers"]:
        np.testing.assert_array_equal(tiny.layer(name).top_patches, often.layer(name).top_patches)
    for name in kw["layers"]:
        lazy = once.layer(name).top_patches
        assert isinstance(lazy, LayerPatches) and lazy.shape == often.layer(name).top_patches.shape
        assert isinstance(often.layer(name).top_patches, np.ndarray)
        assert isinstance(small.layer(name).top_patches, np.ndarray)
        assert "on read" in repr(lazy)
        np.testing.assert_array_equal(lazy[-1, 1], often.layer(name).top_patches[-1, 1])
        assert "cut=yes" in repr(lazy)  # cut once, in bulk, and kept
        np.testing.assert_array_equal(np.asarray(lazy), often.layer(name).top_patches)
        np.testing.assert_array_equal(once.layer(name).top_samples, often.layer(name).top_samples)
        with pytest.raises(IndexError):
            lazy[lazy.shape[0]]
    # and each patch is the crop of its box: check one entry by hand (8x8 -> 8x8 is a resize of
    # the box; a whole-image box of the linear layer is the image itself)
    lr = once.layer("6")
    s = int(lr.top_samples[0, 0])
    expect = np.round(digits.images[s, 0].numpy() * 255).astype(np.uint8)
    np.testing.assert_array_equal(lr.top_patches[0, 0, ..., 0], expect)


def test_float64_model_takes_the_torch_path_with_the_same_results(digits):
    """Outputs that are not float32 on the CPU (as CUDA outputs) are reduced by torch, images
    quantised by torch: the recording matches the float32 one."""
    model = small_net()
    kw = {"layers": ["0", "3", "6"], "top_k": 3, "progress": False, "patch_size": 8}
    x = digits.images
    y = digits.targets
    single = record(model, (x, y), **kw)
    double = record(copy.deepcopy(model).double(), (x.double(), y), **kw)
    for name in kw["layers"]:
        a, b = single.layer(name), double.layer(name)
        np.testing.assert_allclose(a.class_means, b.class_means, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(a.pooled, b.pooled, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(a.top_values, b.top_values, rtol=1e-5, atol=1e-6)
        same = a.top_samples == b.top_samples  # near-ties may swap between precisions
        assert same.mean() > 0.95
        np.testing.assert_array_equal(a.top_boxes[same], b.top_boxes[same])
        np.testing.assert_array_equal(
            np.asarray(a.top_patches)[same], np.asarray(b.top_patches)[same]
        )
    np.testing.assert_array_equal(single.pooled_images, double.pooled_images)
    np.testing.assert_array_equal(single.predictions, double.predictions)


def test_images_of_mixed_sizes_are_named():
    """A data set whose images differ in size says so, with the sizes (not torch's stack error)."""
    pairs = [(torch.zeros(1, 8, 8), 0), (torch.zeros(1, 9, 8), 1)]
    with pytest.raises(ValueError, match=r"differ in size.*\(1, 8, 8\).*\(1, 9, 8\)"):
        record(small_net(), pairs, progress=False, batch_size=2)
