"""Tests of omasgan.data: protocols, splits, scaling and every on-disk format (tiny files in tmp_path)."""

from __future__ import annotations

import gzip
import json
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from omasgan.data import (DATASETS, PROTOCOLS, DataSplits, dataset_classes, load_splits,
                          validate_data_request)
from omasgan.errors import ConfigError, DataError

from helpers import REPO

IDX_FOLDERS = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST", "kmnist": "KMNIST"}
TRAIN_LABELS = np.repeat(np.arange(10), 4)  # 40 training images, 4 per class
TEST_LABELS = np.repeat(np.arange(10), 2)   # 20 test images, 2 per class


# ----------------------------------------------------------------------------------- file writers
def write_idx_file(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array in the IDX format (magic 0x0000 08 <ndim>, big-endian dims, data)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    payload = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)


def id_images(ids: np.ndarray, size: int = 28) -> np.ndarray:
    """uint8 images (N, size, size) whose first two pixels encode ``ids``; row 1 is 255, the rest 0."""
    images = np.zeros((len(ids), size, size), dtype=np.uint8)
    images[:, 0, 0] = ids % 256
    images[:, 0, 1] = ids // 256
    images[:, 1, :] = 255
    return images


def decode_ids(x: torch.Tensor) -> np.ndarray:
    """Recover the ids written by :func:`id_images` from [-1, 1] tensors (N, 1, H, W)."""
    pixels = np.rint((x[:, 0, 0, :2].numpy() + 1) / 2 * 255).astype(np.int64)
    return pixels[:, 0] + 256 * pixels[:, 1]


def make_idx_set(root: Path, dataset: str = "mnist", *, gz: bool = False, train_labels=TRAIN_LABELS,
                 test_labels=TEST_LABELS, size: int = 28, first_id: int = 0) -> Path:
    """Write a tiny IDX data set in torchvision's layout ``root/<Folder>/raw/``; training images have
    ids ``first_id + 0..``, test images ``first_id + 1000 + 0..``. Returns the raw folder."""
    raw = root / IDX_FOLDERS[dataset] / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    ext = ".gz" if gz else ""
    for prefix, labels, offset in (("train", train_labels, 0), ("t10k", test_labels, 1000)):
        ids = first_id + offset + np.arange(len(labels))
        write_idx_file(raw / f"{prefix}-images-idx3-ubyte{ext}", id_images(ids, size))
        write_idx_file(raw / f"{prefix}-labels-idx1-ubyte{ext}", np.asarray(labels, dtype=np.uint8))
    return raw


def make_cifar(root: Path, n_per_batch: int = 20) -> None:
    """Write tiny CIFAR-10 python batches (data_batch_1..5, test_batch); red channel 255, others 0."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = np.zeros((n_per_batch, 3072), dtype=np.uint8)
        data[:, :1024] = 255
        labels = [i % 10 for i in range(n_per_batch)]
        with open(folder / name, "wb") as f:
            pickle.dump({b"batch_label": name.encode(), b"labels": labels, b"data": data,
                         b"filenames": [b"x.png"] * n_per_batch}, f, protocol=2)


def make_svhn(root: Path) -> tuple[np.ndarray, np.ndarray]:
    """Write tiny SVHN .mat files (X (32, 32, 3, N), y (N, 1) in 1..10); channel 0 is 255."""
    import scipy.io

    root.mkdir(parents=True, exist_ok=True)
    train_y = np.tile(np.arange(1, 11), 3)  # 10 means digit 0
    test_y = np.tile(np.arange(1, 11), 2)
    for name, y in (("train_32x32.mat", train_y), ("test_32x32.mat", test_y)):
        x = np.zeros((32, 32, 3, len(y)), dtype=np.uint8)
        x[:, :, 0, :] = 255
        scipy.io.savemat(root / name, {"X": x, "y": y.reshape(-1, 1).astype(np.uint8)})
    return train_y, test_y


def tabular_frame(n_per_class: int = 20):
    """A DataFrame with features a, b, c (c constant) and integer labels 0, 1, 2."""
    import pandas as pd

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), n_per_class)
    return pd.DataFrame({"a": rng.normal(size=len(y)) + y, "b": rng.normal(size=len(y)) * 3,
                         "c": np.full(len(y), 7.0), "label": y})


def expected_counts(n_normal: int, n_anomaly: int, val_fraction=0.1, val_anomaly_fraction=0.05):
    """(train, val normals, val anomalies) the split rules give for these pool sizes."""
    n_val = min(max(1, round(val_fraction * n_normal)), n_normal - 1)
    n_va = max(1, round(val_anomaly_fraction * n_anomaly)) if n_anomaly else 0
    return n_normal - n_val, n_val, n_va


def assert_one_line(exc_info, *fragments):
    """The error message is a single line that contains every fragment."""
    message = str(exc_info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


# --------------------------------------------------------------------------------------- names
def test_public_names():
    assert DATASETS == ("synthetic", "digits", "mnist", "fashion_mnist", "kmnist", "cifar10", "svhn", "tabular")
    assert PROTOCOLS == ("loo", "occ", "ood")
    assert dataset_classes("synthetic") == (0, 1, 2, 3, 4)
    assert dataset_classes("digits") == tuple(range(10))


def test_data_package_never_imports_ray_optuna_pyarrow():
    package = REPO / "omasgan" / "data"
    for source in package.glob("*.py"):
        text = source.read_text()
        for name in ("ray", "optuna", "pyarrow"):
            assert f"import {name}" not in text and f"from {name}" not in text, (source, name)


# ----------------------------------------------------------------------------------- synthetic
def test_synthetic_loo_classes_and_counts():
    s = load_splits("synthetic", "loo", 4, synthetic_n_per_class=50)
    assert isinstance(s, DataSplits)
    assert (s.normal_classes, s.anomaly_classes, s.classes) == ((0, 1, 2, 3), (4,), (0, 1, 2, 3, 4))
    assert s.sample_shape == (2,) and not s.is_image
    n_train, n_val, n_va = expected_counts(200, 50)
    assert len(s.train_x) == n_train
    assert len(s.val_x) == n_val + n_va and int(s.val_y.sum()) == n_va
    assert len(s.test_x) == 125 and int(s.test_y.sum()) == 25
    for t in (s.train_x, s.val_x, s.val_y, s.test_x, s.test_y):
        assert t.dtype == torch.float32
    # class 4 is the ring of radius 4.5 around the blobs at (+-2, +-2): the geometry shows the labels
    assert s.train_x.norm(dim=1).max() < 3.8
    assert torch.allclose(s.test_x[s.test_y == 1].norm(dim=1), torch.tensor(4.5), atol=0.5)
    assert s.test_x[s.test_y == 0].norm(dim=1).max() < 3.8
    # raw coordinates (no standardisation): blob centres at +-2
    assert torch.allclose(s.train_x.abs().mean(0), torch.tensor([2.0, 2.0]), atol=0.1)


def test_synthetic_occ_classes_and_counts():
    s = load_splits("synthetic", "occ", 1, synthetic_n_per_class=50)
    assert s.normal_classes == (1,) and s.anomaly_classes == (0, 2, 3, 4)
    n_train, n_val, n_va = expected_counts(50, 200)
    assert len(s.train_x) == n_train and len(s.val_x) == n_val + n_va and int(s.val_y.sum()) == n_va
    assert len(s.test_x) == 125 and int(s.test_y.sum()) == 100
    assert torch.allclose(s.train_x.mean(0), torch.tensor([-2.0, 2.0]), atol=0.1)  # class 1 is (-2, 2)


def test_splits_depend_only_on_split_seed():
    torch.manual_seed(1)
    a = load_splits("synthetic", "loo", 0, synthetic_n_per_class=40, split_seed=3)
    torch.manual_seed(2)
    np.random.seed(2)
    b = load_splits("synthetic", "loo", 0, synthetic_n_per_class=40, split_seed=3)
    c = load_splits("synthetic", "loo", 0, synthetic_n_per_class=40, split_seed=4)
    for name in ("train_x", "val_x", "val_y", "test_x", "test_y"):
        assert torch.equal(getattr(a, name), getattr(b, name))
    assert a.train_x.shape == c.train_x.shape
    assert not torch.equal(a.train_x, c.train_x) and not torch.equal(a.val_x, c.val_x)
    assert torch.equal(a.test_x, c.test_x)  # the test split is the fixed official one


def test_max_train_subsamples_after_validation():
    full = load_splits("synthetic", "loo", 0, synthetic_n_per_class=40, split_seed=5)
    small = load_splits("synthetic", "loo", 0, synthetic_n_per_class=40, split_seed=5, max_train=17)
    again = load_splits("synthetic", "loo", 0, synthetic_n_per_class=40, split_seed=5, max_train=17)
    assert len(small.train_x) == 17 and torch.equal(small.train_x, again.train_x)
    assert torch.equal(small.val_x, full.val_x) and torch.equal(small.val_y, full.val_y)
    full_rows = {tuple(r) for r in full.train_x.tolist()}
    assert all(tuple(r) in full_rows for r in small.train_x.tolist())
    big = load_splits("synthetic", "loo", 0, synthetic_n_per_class=40, split_seed=5, max_train=10_000)
    assert torch.equal(big.train_x, full.train_x)


# -------------------------------------------------------------------------------------- digits
def _digits_official():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    return train_test_split(d.images, d.target, test_size=0.3, stratify=d.target, random_state=0)


@pytest.mark.parametrize("protocol", ["loo", "occ"])
def test_digits_protocols(protocol):
    train_img, test_img, train_y, test_y = _digits_official()
    s = load_splits("digits", protocol, 3)
    anomaly = (test_y == 3) if protocol == "loo" else (test_y != 3)
    train_anom = (train_y == 3) if protocol == "loo" else (train_y != 3)
    n_train, n_val, n_va = expected_counts(int((~train_anom).sum()), int(train_anom.sum()))
    assert s.sample_shape == (1, 8, 8) and s.is_image
    assert s.normal_classes == ((0, 1, 2, 4, 5, 6, 7, 8, 9) if protocol == "loo" else (3,))
    assert len(s.train_x) == n_train and len(s.val_x) == n_val + n_va and int(s.val_y.sum()) == n_va
    # test = the official test split, in order, scaled by x / 8 - 1
    expected_test = torch.tensor(test_img / 8.0 - 1.0, dtype=torch.float32).unsqueeze(1)
    assert torch.allclose(s.test_x, expected_test)
    assert torch.equal(s.test_y, torch.tensor(anomaly, dtype=torch.float32))
    # validation anomalies are rows of the training split's anomaly classes
    train_rows = {np.asarray(r, dtype=np.float32).tobytes() for r in (train_img[train_anom] / 8.0 - 1.0)}
    for row in s.val_x[s.val_y == 1]:
        assert row[0].numpy().astype(np.float32).tobytes() in train_rows
    assert s.train_x.min() == -1.0 and s.train_x.max() == 1.0
    assert len(s.description.splitlines()) == 1 and f"{protocol} holdout=3" in s.description


# ---------------------------------------------------------------------------------- IDX formats
@pytest.mark.parametrize("dataset", ["mnist", "fashion_mnist", "kmnist"])
@pytest.mark.parametrize("gz", [False, True])
def test_idx_sets_load_in_torchvision_layout(tmp_path, dataset, gz):
    make_idx_set(tmp_path, dataset, gz=gz)
    validate_data_request(dataset, "loo", 2, data_root=str(tmp_path))
    s = load_splits(dataset, "loo", 2, data_root=str(tmp_path), split_seed=1)
    assert s.sample_shape == (1, 28, 28) and s.is_image and s.train_x.shape[1:] == (1, 28, 28)
    assert s.train_x.min() == -1.0 and s.train_x.max() == 1.0 and s.train_x.dtype == torch.float32
    # train holds training normals only, val anomalies come from the training split, test is t10k
    train_ids, val_ids, test_ids = decode_ids(s.train_x), decode_ids(s.val_x), decode_ids(s.test_x)
    assert set(train_ids) <= set(np.flatnonzero(TRAIN_LABELS != 2))
    val_anom = val_ids[s.val_y.numpy() == 1]
    assert len(val_anom) == 1 and TRAIN_LABELS[val_anom[0]] == 2
    assert set(val_ids[s.val_y.numpy() == 0]).isdisjoint(train_ids)
    assert list(test_ids) == list(1000 + np.arange(20))
    assert torch.equal(s.test_y, torch.tensor(TEST_LABELS == 2, dtype=torch.float32))
    assert len(s.train_x) + int((s.val_y == 0).sum()) == 36


def test_idx_gz_is_used_only_when_raw_is_absent(tmp_path):
    make_idx_set(tmp_path, gz=True)
    make_idx_set(tmp_path, gz=False, first_id=100)
    s = load_splits("mnist", "loo", 0, data_root=str(tmp_path))
    assert decode_ids(s.test_x)[0] == 1100  # the raw files win


def test_truncated_idx_raises(tmp_path):
    raw = make_idx_set(tmp_path)
    path = raw / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(DataError) as exc:
        validate_data_request("mnist", "loo", 0, data_root=str(tmp_path))
    assert_one_line(exc, "truncated", str(path), "40 images of 28x28", "31376 bytes", "1000 bytes")
    with pytest.raises(DataError, match="truncated"):
        load_splits("mnist", "loo", 0, data_root=str(tmp_path))


def test_truncated_idx_gz_raises(tmp_path):
    raw = make_idx_set(tmp_path, gz=True)
    path = raw / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-30])
    with pytest.raises(DataError, match="truncated"):
        load_splits("mnist", "loo", 0, data_root=str(tmp_path))


def test_bad_idx_magic_and_count_mismatch(tmp_path):
    raw = make_idx_set(tmp_path)
    (raw / "train-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01" + struct.pack(">I", 3) + b"\x01\x02\x03")
    with pytest.raises(DataError) as exc:
        validate_data_request("mnist", "loo", 0, data_root=str(tmp_path))
    assert_one_line(exc, "40 images", "3 labels")
    (raw / "train-labels-idx1-ubyte").write_bytes(b"PK\x03\x04rubbish")
    with pytest.raises(DataError, match="not an IDX file"):
        validate_data_request("mnist", "loo", 0, data_root=str(tmp_path))


def test_missing_idx_file_mentions_download(tmp_path):
    raw = make_idx_set(tmp_path, "kmnist")
    (raw / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError) as exc:
        load_splits("kmnist", "loo", 0, data_root=str(tmp_path))
    assert_one_line(exc, "t10k-labels-idx1-ubyte", "is missing", "download=True", str(raw))
    with pytest.raises(DataError, match="download"):
        validate_data_request("fashion_mnist", "loo", 0, data_root=str(tmp_path / "nowhere"))


def test_empty_normal_training_set_raises(tmp_path):
    train_labels = np.repeat([0, 1, 2, 3, 4, 5, 6, 8, 9], 4)  # no 7 in the training split
    make_idx_set(tmp_path, train_labels=train_labels)
    with pytest.raises(DataError) as exc:
        load_splits("mnist", "occ", 7, data_root=str(tmp_path))
    assert_one_line(exc, "no normal samples", "occ holdout=7")


def _fake_torchvision(monkeypatch, make):
    """Install a stand-in ``torchvision.datasets`` whose KMNIST calls ``make(root, train)``."""
    import sys
    import types

    calls = []

    class KMNIST:
        def __init__(self, root, train=True, download=False):
            calls.append((root, train, download))
            make(Path(root), train)

    datasets = types.SimpleNamespace(KMNIST=KMNIST)
    monkeypatch.setitem(sys.modules, "torchvision", types.SimpleNamespace(datasets=datasets))
    monkeypatch.setitem(sys.modules, "torchvision.datasets", datasets)
    return calls


def test_download_fetches_missing_files_only_on_request(tmp_path, monkeypatch):
    calls = _fake_torchvision(monkeypatch, lambda root, train: make_idx_set(root, "kmnist"))
    root = tmp_path / "fresh"
    with pytest.raises(DataError, match="download"):
        load_splits("kmnist", "loo", 0, data_root=str(root))
    assert calls == []
    validate_data_request("kmnist", "loo", 0, data_root=str(root), download=True)  # missing is fine then
    s = load_splits("kmnist", "loo", 0, data_root=str(root), download=True)
    assert calls == [(str(root), True, True), (str(root), False, True)] and len(s.test_x) == 20
    load_splits("kmnist", "loo", 0, data_root=str(root), download=True)
    assert len(calls) == 2  # files present: no second download


def test_failed_download_is_a_data_error(tmp_path, monkeypatch):
    def offline(root, train):
        raise OSError("<urlopen error [Errno -3] Temporary failure in name resolution>")

    _fake_torchvision(monkeypatch, offline)
    with pytest.raises(DataError) as exc:
        load_splits("kmnist", "loo", 0, data_root=str(tmp_path), download=True)
    assert_one_line(exc, "downloading kmnist", "name resolution")


# ------------------------------------------------------------------------------ CIFAR and SVHN
def test_cifar10_pickles_load(tmp_path):
    make_cifar(tmp_path)
    s = load_splits("cifar10", "loo", 1, data_root=str(tmp_path))
    assert s.sample_shape == (3, 32, 32) and s.train_x.shape[1:] == (3, 32, 32)
    assert len(s.train_x) + len(s.val_x) - int(s.val_y.sum()) == 90  # 100 training images, 10 of class 1
    assert len(s.test_x) == 20 and int(s.test_y.sum()) == 2
    assert torch.all(s.test_x[:, 0] == 1.0) and torch.all(s.test_x[:, 1:] == -1.0)  # channel-major rows


def test_cifar10_corrupt_pickle_raises(tmp_path):
    make_cifar(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "test_batch"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DataError, match="truncated"):
        load_splits("cifar10", "loo", 1, data_root=str(tmp_path))
    with pytest.raises(DataError, match="download"):
        validate_data_request("cifar10", "loo", 1, data_root=str(tmp_path / "elsewhere"))


def test_svhn_mat_loads_and_maps_10_to_0(tmp_path):
    _, test_y = make_svhn(tmp_path)
    s = load_splits("svhn", "occ", 0, data_root=str(tmp_path))
    assert s.sample_shape == (3, 32, 32) and s.test_x.shape == (20, 3, 32, 32)
    assert torch.equal(s.test_y, torch.tensor(test_y != 10, dtype=torch.float32))  # digit 0 is normal
    assert len(s.train_x) + int((s.val_y == 0).sum()) == 3  # the three training images labelled 10
    assert torch.all(s.test_x[:, 0] == 1.0) and torch.all(s.test_x[:, 1:] == -1.0)
    with pytest.raises(DataError, match="download"):
        validate_data_request("svhn", "loo", 0, data_root=str(tmp_path / "elsewhere"))


# ------------------------------------------------------------------------------------------- ood
def test_ood_between_two_idx_sets(tmp_path):
    make_idx_set(tmp_path, "mnist")
    make_idx_set(tmp_path, "fashion_mnist", first_id=5000)
    s = load_splits("mnist", "ood", None, ood_dataset="fashion_mnist", data_root=str(tmp_path))
    assert s.normal_classes == tuple(range(10)) and s.anomaly_classes == tuple(range(10))
    n_train, n_val, n_va = expected_counts(40, 40)
    assert len(s.train_x) == n_train and int((s.val_y == 0).sum()) == n_val and int(s.val_y.sum()) == n_va
    assert set(decode_ids(s.train_x)) <= set(range(40))
    assert all(5000 <= i < 5040 for i in decode_ids(s.val_x)[s.val_y.numpy() == 1])  # B's training split
    assert list(decode_ids(s.test_x)) == list(range(1000, 1020)) + list(range(6000, 6020))
    assert torch.equal(s.test_y, torch.cat([torch.zeros(20), torch.ones(20)]))
    assert "ood vs fashion_mnist" in s.description


def test_ood_errors(tmp_path):
    make_idx_set(tmp_path, "mnist")
    make_cifar(tmp_path)
    with pytest.raises(DataError) as exc:
        validate_data_request("mnist", "ood", None, ood_dataset="cifar10", data_root=str(tmp_path))
    assert_one_line(exc, "same sample shape", "(1, 28, 28)", "(3, 32, 32)")
    with pytest.raises(DataError, match="same sample shape"):
        load_splits("mnist", "ood", None, ood_dataset="digits", data_root=str(tmp_path))
    with pytest.raises(ConfigError, match="ood_dataset"):
        load_splits("mnist", "ood", None, data_root=str(tmp_path))
    with pytest.raises(ConfigError, match="must differ"):
        load_splits("mnist", "ood", None, ood_dataset="mnist", data_root=str(tmp_path))
    with pytest.raises(ConfigError) as exc:
        load_splits("mnist", "ood", None, ood_dataset="kmnsit", data_root=str(tmp_path))
    assert_one_line(exc, "'kmnsit'", "kmnist")


# --------------------------------------------------------------------------------------- tabular
def _write_tabular(tmp_path: Path, fmt: str, frame) -> tuple[str, object]:
    """Write ``frame`` as ``fmt``; return (path, label_column to pass)."""
    path = tmp_path / f"table.{fmt}"
    if fmt == "parquet":
        frame.to_parquet(path)
        return str(path), "label"
    if fmt == "csv":
        frame.to_csv(path, index=False)
        return str(path), "label"
    if fmt == "npy":
        np.save(path, frame[["a", "label", "b", "c"]].to_numpy())
        return str(path), 1
    np.savez(path, X=frame[["a", "b", "c"]].to_numpy(), y=frame["label"].to_numpy())
    return str(path), "label"


def test_tabular_round_trips_in_every_format(tmp_path):
    frame = tabular_frame()
    results = {}
    for fmt in ("parquet", "csv", "npy", "npz"):
        path, label_column = _write_tabular(tmp_path, fmt, frame)
        assert dataset_classes("tabular", tabular_path=path, label_column=label_column) == (0, 1, 2)
        results[fmt] = load_splits("tabular", "loo", 2, tabular_path=path, label_column=label_column)
    s = results["parquet"]
    assert s.sample_shape == (3,) and not s.is_image and s.anomaly_classes == (2,)
    n_train, n_val, n_va = expected_counts(28, 14)  # 70 % of 20 per class in the training split
    assert len(s.train_x) == n_train and int((s.val_y == 0).sum()) == n_val and int(s.val_y.sum()) == n_va
    assert len(s.test_x) == 18 and int(s.test_y.sum()) == 6
    # standardised with the normal training split's statistics; the constant column stays finite
    assert torch.allclose(s.train_x.mean(0), torch.zeros(3), atol=1e-5)
    assert torch.allclose(s.train_x[:, :2].std(0, unbiased=False), torch.ones(2), atol=1e-5)
    assert torch.all(s.train_x[:, 2] == 0) and torch.isfinite(s.test_x).all()
    for fmt in ("csv", "npy", "npz"):
        for name in ("train_x", "val_x", "val_y", "test_x", "test_y"):
            assert torch.allclose(getattr(results[fmt], name), getattr(s, name), atol=1e-6), (fmt, name)


def test_tabular_npy_default_label_is_last_column(tmp_path):
    frame = tabular_frame()
    np.save(tmp_path / "t.npy", frame.to_numpy())
    s = load_splits("tabular", "occ", 1, tabular_path=str(tmp_path / "t.npy"))
    assert s.sample_shape == (3,) and s.classes == (0, 1, 2)
    with pytest.raises(ConfigError, match="integer column index"):
        load_splits("tabular", "occ", 1, tabular_path=str(tmp_path / "t.npy"), label_column="y")


def test_tabular_nan_and_inf_raise(tmp_path):
    frame = tabular_frame()
    frame.loc[3, "b"] = np.nan
    frame.loc[5, "b"] = np.inf
    frame.loc[9, "c"] = -np.inf
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(DataError) as exc:
        load_splits("tabular", "loo", 0, tabular_path=str(path))
    assert_one_line(exc, str(path), "3 NaN/inf", "'b'")
    x = frame[["a", "b", "c"]].to_numpy()
    np.savez(tmp_path / "bad.npz", X=x, y=frame["label"].to_numpy())
    with pytest.raises(DataError, match="3 NaN/inf feature values"):
        validate_data_request("tabular", "loo", 0, tabular_path=str(tmp_path / "bad.npz"))


def test_tabular_label_errors(tmp_path):
    frame = tabular_frame()
    path = tmp_path / "t.parquet"
    frame.to_parquet(path)
    with pytest.raises(DataError) as exc:
        load_splits("tabular", "loo", 0, tabular_path=str(path), label_column="target")
    assert_one_line(exc, "'target'", "available columns: a, b, c, label")
    frame["label"] = frame["label"] + 0.5
    frame.to_csv(tmp_path / "frac.csv", index=False)
    with pytest.raises(DataError, match="must be integers"):
        load_splits("tabular", "loo", 0, tabular_path=str(tmp_path / "frac.csv"))
    with pytest.raises(ConfigError, match="tabular_path"):
        load_splits("tabular", "loo", 0)
    with pytest.raises(DataError, match="missing"):
        load_splits("tabular", "loo", 0, tabular_path=str(tmp_path / "absent.csv"))
    with pytest.raises(ConfigError) as exc:
        load_splits("tabular", "loo", 5, tabular_path=str(path))
    assert_one_line(exc, "holdout class 5", "(classes 0-2)")


# --------------------------------------------------------------------------------- input errors
def test_unknown_names_and_bad_holdout_are_one_line_errors():
    with pytest.raises(ConfigError) as exc:
        load_splits("mnsit")
    assert_one_line(exc, "unknown dataset 'mnsit'", "choose one of: synthetic, digits, mnist")
    with pytest.raises(ConfigError) as exc:
        validate_data_request("digits", "leave-one-out", 0)
    assert_one_line(exc, "unknown protocol 'leave-one-out'", "loo, occ, ood")
    with pytest.raises(ConfigError) as exc:
        validate_data_request("digits", "loo", 12)
    assert_one_line(exc, "holdout class 12 is not in dataset 'digits' (classes 0-9)")
    with pytest.raises(ConfigError, match="holdout"):
        load_splits("synthetic", "occ", None)
    with pytest.raises(ConfigError, match="split_seed"):
        load_splits("synthetic", "loo", 0, split_seed=-1)
    with pytest.raises(ConfigError, match="val_fraction"):
        load_splits("synthetic", "loo", 0, val_fraction=1.5)
    with pytest.raises(ConfigError, match="max_train"):
        load_splits("synthetic", "loo", 0, max_train=0)


# ------------------------------------------------------------------------------ device, summary
def test_to_device_and_summary_is_json():
    s = load_splits("synthetic", "loo", 2, synthetic_n_per_class=20)
    moved = s.to(torch.device("meta"))
    assert all(getattr(moved, n).device.type == "meta" for n in ("train_x", "val_x", "val_y", "test_x", "test_y"))
    assert s.train_x.device.type == "cpu" and moved.description == s.description
    assert load_splits("synthetic", "loo", 2, synthetic_n_per_class=20, device="meta").val_y.is_meta
    summary = json.loads(json.dumps(s.summary()))
    assert summary["train"] == len(s.train_x) and summary["test_anomalies"] == 10
    assert summary["val"] == summary["val_normal"] + summary["val_anomalies"]
    assert summary["sample_shape"] == [2] and summary["anomaly_classes"] == [2]


# ------------------------------------------------------------------------------- data.image_size
def test_image_size_enlarges_every_split_and_the_saved_transform(tmp_path):
    from omasgan.data.idx import read_idx
    from omasgan.transform import InputTransform, resize_images

    raw = make_idx_set(tmp_path)
    native = load_splits("mnist", "loo", 3, data_root=str(tmp_path))
    big = load_splits("mnist", "loo", 3, data_root=str(tmp_path), image_size=32)
    again = load_splits("mnist", "loo", 3, data_root=str(tmp_path), image_size=32)
    assert native.sample_shape == (1, 28, 28) and big.sample_shape == (1, 32, 32)
    for name in ("train_x", "val_x", "test_x"):
        x, x28 = getattr(big, name), getattr(native, name)
        assert x.shape == (x28.shape[0], 1, 32, 32) and x.dtype == torch.float32
        assert float(x.min()) >= -1.0 and float(x.max()) <= 1.0
        assert torch.equal(x, getattr(again, name))  # deterministic
        assert torch.equal(x, resize_images(x28, 32))  # the same rows, enlarged after scaling
    assert torch.equal(big.val_y, native.val_y) and torch.equal(big.test_y, native.test_y)
    # row 1 of every image is 255 (= 1), the rows below 0 (= -1): bilinear keeps 1 and -1 away from
    # that edge and blends across it
    assert torch.all(big.test_x[:, 0, 1, :] > 0.5) and torch.all(big.test_x[:, 0, 8:, :] == -1.0)
    assert "images enlarged to 32x32" in big.description
    # the saved transform maps raw 28x28 pixels to exactly what the model was trained and scored on
    transform = InputTransform.from_dict(json.loads(json.dumps(big.input_transform.to_dict())))
    assert transform.image_size == 32 and transform.model_shape == (1, 32, 32)
    raw_test = read_idx(raw / "t10k-images-idx3-ubyte", ndim=3)
    assert torch.allclose(transform.apply(raw_test), big.test_x, atol=1e-6)
    assert torch.allclose(transform.apply(raw_test.reshape(len(raw_test), -1)), big.test_x, atol=1e-6)
    # without image_size the transform writes what it always wrote (model.json unchanged)
    assert native.input_transform.to_dict() == {"sample_shape": [1, 28, 28], "shift": 127.5, "scale": 127.5}
    assert InputTransform.from_dict({"sample_shape": [1, 28, 28], "shift": 127.5, "scale": 127.5}).image_size is None


def test_image_size_of_the_native_size_changes_nothing_and_digits_enlarge():
    same = load_splits("digits", "loo", 0, image_size=8)
    plain = load_splits("digits", "loo", 0)
    assert torch.equal(same.train_x, plain.train_x) and same.sample_shape == (1, 8, 8)
    big = load_splits("digits", "loo", 0, image_size=32)
    assert big.train_x.shape[1:] == (1, 32, 32) and big.sample_shape == (1, 32, 32)


def test_image_size_bad_values_are_one_line_errors(tmp_path):
    from omasgan.config import OMASGANConfig
    from omasgan.run import validate_run

    make_idx_set(tmp_path)
    root = str(tmp_path)
    with pytest.raises(ConfigError) as exc:
        validate_data_request("mnist", "loo", 0, data_root=root, image_size=16)
    assert_one_line(exc, "data.image_size=16 is smaller than 'mnist''s 28x28 images", "must be >= 28")
    with pytest.raises(ConfigError) as exc:
        validate_data_request("synthetic", "loo", 0, image_size=32)
    assert_one_line(exc, "data.image_size=32 applies to image data sets only")
    for bad in (0, 300, True, 32.5):
        with pytest.raises(ConfigError) as exc:
            load_splits("mnist", "loo", 0, data_root=root, image_size=bad)
        assert_one_line(exc, f"data.image_size={bad!r} is out of range", "1..256 or null")
    assert validate_data_request("mnist", "loo", 0, data_root=root, image_size=32) == (1, 32, 32)
    assert validate_data_request("mnist", "loo", 0, data_root=root) == (1, 28, 28)

    def config(**data_and_network):
        raw = {"data": {"dataset": "mnist", "data_root": root}, "network": {}}
        for key, value in data_and_network.items():
            section, name = key.split("__")
            raw[section][name] = value
        return OMASGANConfig.from_dict(raw)

    for values, fragment in (({"data__image_size": 0}, "data.image_size=0 is out of range"),
                             ({"data__image_size": 257}, "data.image_size=257 is out of range"),
                             ({"data__image_size": "32px"}, "data.image_size='32px' has the wrong type")):
        with pytest.raises(ConfigError) as exc:
            config(**values)
        assert_one_line(exc, fragment)
    with pytest.raises(ConfigError) as exc:
        OMASGANConfig.from_dict({"data": {"dataset": "tabular", "image_size": 32}})
    assert_one_line(exc, "data.image_size=32 applies to image data sets only", "'tabular' is not one")
    # the network must take the enlarged images: checked before any data is read or worker started
    with pytest.raises(ConfigError) as exc:
        validate_run(config(network__kind="resnet"))
    assert_one_line(exc, "network 'resnet' takes images of shape (C, 32, 32)", "got (1, 28, 28)")
    with pytest.raises(ConfigError) as exc:
        validate_run(config(network__kind="dcgan", data__image_size=40))
    assert_one_line(exc, "network 'dcgan' takes images of shape", "got (1, 40, 40)")
    with pytest.raises(ConfigError) as exc:
        validate_run(config(network__kind="resnet", data__image_size=16))
    assert_one_line(exc, "data.image_size=16 is smaller than")
    validate_run(config(network__kind="resnet", data__image_size=32))
    validate_run(config(network__kind="mlp", data__image_size=40))


def test_image_size_is_in_the_stage_cache_key_and_a_typed_result_column():
    import pyarrow as pa

    from omasgan.config import default_config
    from omasgan.distributed.store.result_schema import result_schema
    from omasgan.trainables.cache import DATA_KEYS, stage_cache_key

    assert "image_size" in DATA_KEYS
    base = default_config("mnist").with_overrides({"network.kind": "resnet"})
    keys = {size: stage_cache_key(base.with_overrides({"data.image_size": size}), "task1") for size in (None, 32, 40)}
    assert len(set(keys.values())) == 3
    assert result_schema().field("cfg_data_image_size").type == pa.int64()
