"""Tiny CIFAR-format archives written by the tests themselves, in both accepted layouts."""

from __future__ import annotations

import hashlib
import io
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vaelab.data import CIFAR10_CLASSES


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def md5(path: Path) -> str:
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def tiny_images(count: int, seed: int, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Images with some structure (a per-class colour plus noise) and labels cycling over 10 classes."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % 10
    base = (labels[:, None, None, None] * 25 + 10).astype(np.int64)
    images = np.clip(base + rng.integers(-10, 10, (count, size, size, 3)), 0, 255).astype(np.uint8)
    return images, labels.astype(np.int64)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def write_official_archive(path: Path, per_batch: int = 10, test_count: int = 20) -> dict[str, np.ndarray]:
    """The official `cifar-10-python.tar.gz` layout: pickled dicts with bytes keys, CHW-flat rows."""
    x_train, y_train = tiny_images(5 * per_batch, seed=1)
    x_test, y_test = tiny_images(test_count, seed=2)
    with tarfile.open(path, "w:gz") as tar:
        meta = {b"label_names": [c.encode() for c in CIFAR10_CLASSES]}
        _add_bytes(tar, "cifar-10-batches-py/batches.meta", pickle.dumps(meta, protocol=2))
        batches = [(f"data_batch_{i + 1}", x_train[i * per_batch:(i + 1) * per_batch],
                    y_train[i * per_batch:(i + 1) * per_batch]) for i in range(5)] + [("test_batch", x_test, y_test)]
        for name, images, labels in batches:
            batch = {b"data": images.transpose(0, 3, 1, 2).reshape(len(images), -1), b"labels": labels.tolist()}
            _add_bytes(tar, f"cifar-10-batches-py/{name}", pickle.dumps(batch, protocol=2))
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def png_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def write_png_archive(path: Path, train_count: int = 40, test_count: int = 20, size: int = 32,
                      classes=CIFAR10_CLASSES, corrupt: str | None = None) -> dict[str, np.ndarray]:
    """`cifar10/{train,test}/<class>/<name>.png`; `corrupt` names one file to fill with garbage."""
    splits = {"train": tiny_images(train_count, seed=3, size=size), "test": tiny_images(test_count, seed=4, size=size)}
    with tarfile.open(path, "w:gz") as tar:
        for split, (images, labels) in splits.items():
            for i, (image, label) in enumerate(zip(images, labels)):
                name = f"cifar10/{split}/{classes[label % len(classes)]}/{i:05d}.png"
                _add_bytes(tar, name, b"not a png at all" if name == corrupt else png_bytes(image))
    return {"x_train": splits["train"][0], "y_train": splits["train"][1],
            "x_test": splits["test"][0], "y_test": splits["test"][1]}


@pytest.fixture
def no_env_mirror(monkeypatch):
    monkeypatch.delenv("VAELAB_DATA_DIR", raising=False)
