"""Tiny datasets written by the tests themselves: CIFAR-10 archives in both accepted layouts and
CelebA archives in the mirror's layout."""

from __future__ import annotations

import hashlib
import io
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vaelab.datasets.cifar10 import CIFAR10_CLASSES


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def md5(path: Path) -> str:
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def tiny_images(count: int, seed: int, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Images with some structure (a per-class colour plus noise); labels cycle over 10 classes."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % 10
    base = (labels[:, None, None, None] * 25 + 10).astype(np.int64)
    images = np.clip(base + rng.integers(-10, 10, (count, size, size, 3)), 0, 255).astype(np.uint8)
    return images, labels.astype(np.int64)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def write_official_archive(
    path: Path, per_batch: int = 10, test_count: int = 20, replace: dict[str, bytes] | None = None
) -> dict[str, np.ndarray]:
    """The official `cifar-10-python.tar.gz` layout: pickled dicts with bytes keys, CHW-flat rows.
    `replace` maps a member name (e.g. "data_batch_2") to the bytes written instead."""
    x_train, y_train = tiny_images(5 * per_batch, seed=1)
    x_test, y_test = tiny_images(test_count, seed=2)
    with tarfile.open(path, "w:gz") as tar:
        meta = {b"label_names": [c.encode() for c in CIFAR10_CLASSES]}
        _add_bytes(tar, "cifar-10-batches-py/batches.meta", pickle.dumps(meta, protocol=2))
        batches = [
            (
                f"data_batch_{i + 1}",
                x_train[i * per_batch : (i + 1) * per_batch],
                y_train[i * per_batch : (i + 1) * per_batch],
            )
            for i in range(5)
        ]
        for name, images, labels in [*batches, ("test_batch", x_test, y_test)]:
            batch = {
                b"data": images.transpose(0, 3, 1, 2).reshape(len(images), -1),
                b"labels": labels.tolist(),
            }
            data = (replace or {}).get(name, pickle.dumps(batch, protocol=2))
            _add_bytes(tar, f"cifar-10-batches-py/{name}", data)
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def png_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def write_png_archive(
    path: Path,
    train_count: int = 40,
    test_count: int = 20,
    size: int = 32,
    classes=CIFAR10_CLASSES,
    corrupt: str | None = None,
) -> dict[str, np.ndarray]:
    """`cifar10/{train,test}/<class>/<name>.png`; `corrupt` names one file to fill with garbage."""
    splits = {
        "train": tiny_images(train_count, seed=3, size=size),
        "test": tiny_images(test_count, seed=4, size=size),
    }
    with tarfile.open(path, "w:gz") as tar:
        for split, (images, labels) in splits.items():
            for i, (image, label) in enumerate(zip(images, labels, strict=True)):
                name = f"cifar10/{split}/{classes[label % len(classes)]}/{i:05d}.png"
                _add_bytes(tar, name, b"not a png at all" if name == corrupt else png_bytes(image))
    return {
        "x_train": splits["train"][0],
        "y_train": splits["train"][1],
        "x_test": splits["test"][0],
        "y_test": splits["test"][1],
    }


@pytest.fixture
def no_env_mirror(monkeypatch):
    monkeypatch.delenv("VAELAB_DATA_DIR", raising=False)


CELEBA_ATTRIBUTES = (
    "5_o_Clock_Shadow",
    "Arched_Eyebrows",
    "Attractive",
    "Bags_Under_Eyes",
    "Bald",
    "Bangs",
    "Big_Lips",
    "Big_Nose",
    "Black_Hair",
    "Blond_Hair",
    "Blurry",
    "Brown_Hair",
    "Bushy_Eyebrows",
    "Chubby",
    "Double_Chin",
    "Eyeglasses",
    "Goatee",
    "Gray_Hair",
    "Heavy_Makeup",
    "High_Cheekbones",
    "Male",
    "Mouth_Slightly_Open",
    "Mustache",
    "Narrow_Eyes",
    "No_Beard",
    "Oval_Face",
    "Pale_Skin",
    "Pointy_Nose",
    "Receding_Hairline",
    "Rosy_Cheeks",
    "Sideburns",
    "Smiling",
    "Straight_Hair",
    "Wavy_Hair",
    "Wearing_Earrings",
    "Wearing_Hat",
    "Wearing_Lipstick",
    "Wearing_Necklace",
    "Wearing_Necktie",
    "Young",
)


def jpeg_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def attribute_file_text(file_names, attributes: np.ndarray, names=CELEBA_ATTRIBUTES) -> str:
    """The official list_attr_celeba.txt format: row count, names, then `<file>  1 -1 ...` rows."""
    rows = [
        f"{name} " + " ".join(f"{int(v):2d}" for v in row)
        for name, row in zip(file_names, attributes, strict=True)
    ]
    return "\n".join([str(len(rows)), " ".join(names) + " ", *rows]) + "\n"


def celeba_faces(
    count: int, seed: int = 0, size: tuple[int, int] = (89, 109)
) -> tuple[np.ndarray, np.ndarray]:
    """Smooth synthetic "faces" (W x H RGB, a bright disc whose colour varies) and +-1 attributes,
    every attribute present and absent among the first two images (so every probe has two
    classes)."""
    rng = np.random.default_rng(seed)
    width, height = size
    yy, xx = np.mgrid[:height, :width]
    disc = ((xx - width / 2) ** 2 + (yy - height / 2) ** 2 < (min(size) / 3) ** 2)[..., None]
    colours = rng.integers(40, 220, (count, 1, 1, 3))
    images = np.where(disc, colours, 255 - colours).astype(np.uint8)
    attributes = rng.choice(np.array([-1, 1], dtype=np.int8), (count, len(CELEBA_ATTRIBUTES)))
    attributes[0], attributes[1] = 1, -1
    return images, attributes


def write_celeba_archive(
    path: Path,
    count: int = 24,
    size: tuple[int, int] = (89, 109),
    corrupt: str | None = None,
    attribute_text: str | None = None,
) -> dict:
    """The mirror's `celeba-10k.tar.gz` layout; `corrupt` names an image to damage
    ("<name>:garbage" or "<name>:truncated"); `attribute_text` replaces the attribute file."""
    images, attributes = celeba_faces(count, size=size)
    names = [f"{i + 1:06d}.jpg" for i in range(count)]
    damaged, _, how = (corrupt or "").partition(":")
    with tarfile.open(path, "w:gz") as tar:
        for name, image in zip(names, images, strict=True):
            data = jpeg_bytes(image)
            if name == damaged:
                data = b"not a jpeg" if how == "garbage" else data[: len(data) // 2]
            _add_bytes(tar, f"celeba-10k/img_align_celeba/{name}", data)
        if attribute_text is None:
            attribute_text = attribute_file_text(names, attributes)
        _add_bytes(tar, "celeba-10k/list_attr_celeba.txt", attribute_text.encode())
    return {"images": images, "attributes": attributes, "names": names}


@pytest.fixture
def no_env_faces(monkeypatch):
    for name in ("VAELAB_FACES_DIR", "VAELAB_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
