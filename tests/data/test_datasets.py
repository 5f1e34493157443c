"""Data sets read from tiny files written in the real on-disk formats, and the adapters."""

from __future__ import annotations

import gzip
import pickle
import struct

import numpy as np
import pytest
import torch
from torch.utils.data import ConcatDataset, DataLoader, Subset, TensorDataset

from cnnvis.data import (
    DatasetFilesMissing,
    as_loader,
    class_names_of,
    expected_files,
    load_dataset,
)

CIFAR_NAMES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]


def write_cifar10(root, n_per_batch=6, seed=0):
    """CIFAR-10 "python version": pickled dicts with byte keys, rows of 3072 uint8 (R, G, B planes)."""
    rng = np.random.default_rng(seed)
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, size=(n_per_batch, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, size=n_per_batch)]
        batch = {b"batch_label": name.encode(), b"labels": labels, b"data": data}
        raw = pickle.dumps(batch, protocol=2)
        if name == "test_batch":  # name numpy's reconstructor as the official files do (1.x)
            raw = raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
            assert b"numpy.core.multiarray" in raw
        (d / name).write_bytes(raw)
        batches[name] = (data, labels)
    with open(d / "batches.meta", "wb") as fh:
        meta = {b"label_names": [n.encode() for n in CIFAR_NAMES], b"num_vis": 3072}
        pickle.dump(meta, fh, protocol=2)
    return batches


def write_idx(path, array, gz=False):
    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", s) for s in array.shape)
    raw = header + array.tobytes()
    if gz:
        with gzip.open(str(path) + ".gz", "wb") as fh:
            fh.write(raw)
    else:
        path.write_bytes(raw)


def write_mnist(root, n=7, seed=0):
    rng = np.random.default_rng(seed)
    d = root / "MNIST" / "raw"
    d.mkdir(parents=True)
    out = {}
    for prefix, gz in (("train", False), ("t10k", True)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n).astype(np.uint8)
        write_idx(d / f"{prefix}-images-idx3-ubyte", images, gz)
        write_idx(d / f"{prefix}-labels-idx1-ubyte", labels, gz)
        out[prefix] = (images, labels)
    return out


def test_cifar10_reads_the_pickle_batches(tmp_path):
    batches = write_cifar10(tmp_path)
    train = load_dataset(f"cifar10:{tmp_path}", "train")
    test = load_dataset(f"cifar10:{tmp_path}", "test")
    assert len(train) == 30 and len(test) == 6
    assert train.classes == CIFAR_NAMES and class_names_of(test) == CIFAR_NAMES
    data, labels = batches["data_batch_2"]
    x, y = train[6 + 4]  # the 5th image of the 2nd batch
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32
    assert y == labels[4]
    # the row is 1024 red, then green, then blue values in row-major order
    expected = data[4].reshape(3, 32, 32).astype(np.float32) / 255.0
    np.testing.assert_allclose(x.numpy(), expected, rtol=0, atol=1e-7)
    assert int(x[1, 3, 5].mul(255).round()) == int(data[4][1024 + 3 * 32 + 5])
    # the inner folder works as PATH too
    assert len(load_dataset(f"cifar10:{tmp_path / 'cifar-10-batches-py'}", "test")) == 6


def test_cifar10_missing_files_are_listed(tmp_path):
    write_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(DatasetFilesMissing) as info:
        load_dataset(f"cifar10:{tmp_path}", "train")
    msg = str(info.value)
    assert "data_batch_3" in msg and str(tmp_path) in msg and "1 of 6" in msg
    assert "data_batch_1" not in msg.split("under")[1]  # only the missing one is listed
    assert len(load_dataset(f"cifar10:{tmp_path}", "test")) == 6  # the test split is complete
    with pytest.raises(DatasetFilesMissing, match="does not exist"):
        load_dataset(f"cifar10:{tmp_path / 'nowhere'}")
    assert expected_files(f"cifar10:{tmp_path}", "test")[0].endswith("test_batch")


def test_cifar10_refuses_a_batch_that_would_run_code(tmp_path):
    write_cifar10(tmp_path)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with open(tmp_path / "cifar-10-batches-py" / "test_batch", "wb") as fh:
        pickle.dump({b"data": Evil(), b"labels": [0]}, fh)
    with pytest.raises(ValueError, match=r"refusing to load builtins\.print"):
        load_dataset(f"cifar10:{tmp_path}", "test")


def test_mnist_reads_idx_and_gzipped_idx(tmp_path):
    arrays = write_mnist(tmp_path)
    train = load_dataset(f"mnist:{tmp_path}", "train")
    test = load_dataset(f"mnist:{tmp_path}", "test")  # the .gz files
    assert len(train) == 7 and len(test) == 7 and train.classes == [str(i) for i in range(10)]
    x, y = test[3]
    images, labels = arrays["t10k"]
    assert x.shape == (1, 28, 28) and y == int(labels[3])
    np.testing.assert_allclose(x[0].numpy() * 255.0, images[3].astype(np.float32), atol=1e-4)
    # a truncated file is reported, not mis-read
    raw = tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte"
    raw.write_bytes(raw.read_bytes()[:-10])
    with pytest.raises(ValueError, match="header says"):
        load_dataset(f"mnist:{tmp_path}", "train")


def test_mnist_missing_files_name_the_expected_paths(tmp_path):
    (tmp_path / "MNIST" / "raw").mkdir(parents=True)
    with pytest.raises(DatasetFilesMissing) as info:
        load_dataset(f"mnist:{tmp_path}", "test")
    assert "t10k-images-idx3-ubyte" in str(info.value)
    assert "t10k-labels-idx1-ubyte" in str(info.value)
    assert isinstance(info.value, FileNotFoundError) and len(info.value.expected) == 2


def test_svhn_reads_the_mat_files_and_maps_label_10_to_0(tmp_path):
    import scipy.io

    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, size=(32, 32, 3, 5), dtype=np.uint8)
    y = np.array([[10], [1], [2], [10], [9]], dtype=np.uint8)
    scipy.io.savemat(tmp_path / "test_32x32.mat", {"X": x, "y": y})
    data = load_dataset(f"svhn:{tmp_path}", "test")
    assert len(data) == 5 and data.classes[0] == "0"
    assert [data[i][1] for i in range(5)] == [0, 1, 2, 0, 9]
    img, _ = data[2]
    np.testing.assert_allclose(img.numpy() * 255.0, x[:, :, :, 2].transpose(2, 0, 1), atol=1e-4)
    with pytest.raises(DatasetFilesMissing, match="train_32x32.mat"):
        load_dataset(f"svhn:{tmp_path}", "train")


def test_imagefolder_with_split_folders(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(2)
    for split, n in (("train", 3), ("test", 2)):
        for cls in ("cat", "dog"):
            d = tmp_path / split / cls
            d.mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(
                    d / f"{i}.png"
                )
    train = load_dataset(f"imagefolder:{tmp_path}", "train")
    test = load_dataset(f"imagefolder:{tmp_path}", "test")
    assert len(train) == 6 and len(test) == 4
    assert class_names_of(train) == ["cat", "dog"]
    x, y = test[3]
    assert x.shape == (3, 12, 12) and y == 1 and 0.0 <= float(x.min()) <= float(x.max()) <= 1.0
    # a PNG read back gives its exact pixels
    png = np.asarray(Image.open(tmp_path / "test" / "dog" / "1.png"))
    np.testing.assert_allclose(x.numpy().transpose(1, 2, 0) * 255.0, png, atol=1e-4)


def test_imagefolder_errors(tmp_path):
    with pytest.raises(DatasetFilesMissing, match="does not exist"):
        load_dataset(f"imagefolder:{tmp_path / 'none'}")
    (tmp_path / "train" / "a").mkdir(parents=True)
    with pytest.raises(DatasetFilesMissing, match="test"):
        load_dataset(f"imagefolder:{tmp_path}", "test")


def test_specs_and_digits():
    digits = load_dataset("digits", "test")
    assert len(digits) == 450 and digits.classes[9] == "9"
    with pytest.raises(ValueError, match="unknown data set 'imagenet'"):
        load_dataset("imagenet:/x")
    with pytest.raises(ValueError, match="needs a folder"):
        load_dataset("cifar10")
    with pytest.raises(ValueError, match="split"):
        load_dataset("digits", "val")


def test_adapters_accept_datasets_and_loaders():
    x = torch.arange(10, dtype=torch.float32).reshape(10, 1)
    ds = TensorDataset(x, torch.arange(10) % 3)
    loader = as_loader(ds, batch_size=4)
    assert [len(b[0]) for b in loader] == [4, 4, 2]
    assert as_loader(loader) is loader
    a = [b[0].flatten().tolist() for b in as_loader(ds, 4, shuffle=True, seed=5)]
    b = [b[0].flatten().tolist() for b in as_loader(ds, 4, shuffle=True, seed=5)]
    assert a == b and sorted(sum(a, [])) == list(range(10)) and sum(a, []) != list(range(10))
    with pytest.raises(ValueError, match="empty"):
        as_loader(TensorDataset(torch.zeros(0, 1), torch.zeros(0)))
    with pytest.raises(ValueError, match="batch_size"):
        as_loader(ds, batch_size=0)
    with pytest.raises(TypeError):
        as_loader(42)
    # class names through wrappers, or None / numbered when there are none
    digits = load_dataset("digits", "test")
    assert (
        class_names_of(DataLoader(Subset(ConcatDataset([digits, digits]), [0, 1])))
        == digits.classes
    )
    assert class_names_of(ds) is None and class_names_of(ds, num_classes=3) == ["0", "1", "2"]


def test_imagefolder_of_mixed_sizes_is_brought_to_the_first_size(tmp_path):
    """Crops of different sizes from scikit-learn's sample photos: each comes out at the size of
    the first image (file order), resized as torchvision does; the first is untouched; and a
    recording runs over the folder (it used to end in 'stack expects each tensor ...')."""
    from PIL import Image
    from sklearn.datasets import load_sample_images
    from torchvision.transforms import functional

    from cnnvis.record import record

    photos = load_sample_images().images
    sizes = {"a": [(24, 32), (40, 40)], "b": [(17, 29), (24, 32), (64, 48)]}
    for k, (cls, shapes) in enumerate(sizes.items()):
        (tmp_path / cls).mkdir()
        for i, (h, w) in enumerate(shapes):
            crop = photos[k][100 + 7 * i : 100 + 7 * i + h, 200 : 200 + w]
            Image.fromarray(crop).save(tmp_path / cls / f"{i}.png")
    data = load_dataset(f"imagefolder:{tmp_path}", "train")
    assert len(data) == 5 and {tuple(data[i][0].shape) for i in range(5)} == {(3, 24, 32)}
    first = np.asarray(Image.open(tmp_path / "a" / "0.png"))
    np.testing.assert_allclose(data[0][0].numpy().transpose(1, 2, 0) * 255.0, first, atol=1e-4)
    odd = functional.to_tensor(Image.open(tmp_path / "b" / "2.png"))
    want = functional.resize(odd, [24, 32], antialias=True)
    assert torch.equal(data[4][0], want)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                                torch.nn.LazyLinear(2))  # fmt: skip
    model(data[0][0][None])
    rec = record(model.eval(), data, progress=False, batch_size=4, top_k=2, patch_size=8)
    assert rec.n_samples == 5 and rec.input_shape == (3, 24, 32)


def test_a_batch_of_mixed_sizes_is_a_clear_error():
    from cnnvis.data import as_loader

    data = [(torch.zeros(1, 8, 8), 0), (torch.zeros(1, 8, 8), 1), (torch.zeros(1, 9, 8), 0)]
    assert next(iter(as_loader(data, 2)))[0].shape == (2, 1, 8, 8)
    with pytest.raises(ValueError, match=r"differ in size \(\(1, 8, 8\), \(1, 9, 8\)\)"):
        list(as_loader(data, 3))
