"""CIFAR-10 from a mirror's official or PNG archive, else torchvision's download into
`data/download/` (docs/data.md). A verified batch is still unpickled by `BatchUnpickler`, which
builds nothing but numpy arrays."""

from __future__ import annotations

import codecs
import pickle
import tarfile
from pathlib import Path

import numpy as np

from ..errors import VaelabError
from . import decode_image, mirror_directories, open_verified_archive, progress, write_dataset

CIFAR10_CLASSES = (
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
)
OFFICIAL_ARCHIVE = "cifar-10-python.tar.gz"
PNG_ARCHIVE = "cifar10-png.tar.gz"
BATCH_DIR = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
ENV_DIRS = ("VAELAB_DATA_DIR",)


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """What a protocol-2 pickle written by Python 3 calls to rebuild bytes: only that, on text."""
    if not isinstance(text, str) or codecs.lookup(encoding).name != "iso8859-1":
        raise pickle.UnpicklingError("_codecs.encode is allowed only to make latin-1 bytes of text")
    return text.encode("latin1")


# The only callables a CIFAR-10 batch holds: numpy's array reconstruction (named numpy.core in
# the official Python 2 files, numpy._core when numpy 2 writes them) and, in a copy re-pickled by
# Python 3 with protocol 2, bytes rebuilt from text. Taken from numpy itself, not imported by
# name: numpy 2 warns on `numpy.core`.
_RECONSTRUCT = np.ndarray.__reduce__(np.zeros(0))[0]
ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_encode,
}


class BatchUnpickler(pickle.Unpickler):
    """Builds numpy arrays and plain containers; refuses every other global."""

    def find_class(self, module: str, name: str):
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refused to load {module}.{name}, which no CIFAR-10 batch holds"
            ) from None


def _bad_batch(path: Path, name: str, problem: str) -> VaelabError:
    return VaelabError(
        f"{path}: {BATCH_DIR}/{name} is not a {problem}; replace the archive with "
        "the official release"
    )


def _unpickle(tar: tarfile.TarFile, path: Path, name: str):
    member = tar.extractfile(f"{BATCH_DIR}/{name}")
    if member is None:
        raise KeyError(name)
    try:
        return BatchUnpickler(member, encoding="bytes").load()
    except (pickle.UnpicklingError, AttributeError, IndexError, TypeError, ValueError) as e:
        raise _bad_batch(path, name, f"plain CIFAR-10 batch ({e})") from None


def _batch_arrays(batch, path: Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    """The images (N, 32, 32, 3) and labels (N,) of one unpickled batch, checked first."""

    def malformed(problem: str) -> VaelabError:
        return _bad_batch(path, name, f"CIFAR-10 batch ({problem})")

    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise malformed("expected a dict with b'data' and b'labels'")
    data, labels = batch[b"data"], batch[b"labels"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.shape[1:] != (3072,):
        shape = getattr(data, "shape", "")
        raise malformed(f"b'data' is {type(data).__name__} {shape}, expected uint8 (N, 3072)")
    if not isinstance(labels, list) or not all(type(label) is int for label in labels):
        raise malformed("b'labels' is not a list of integers")
    if len(labels) != len(data) or not labels:
        raise malformed(f"{len(data)} images for {len(labels)} labels")
    if not 0 <= min(labels) <= max(labels) < len(CIFAR10_CLASSES):
        raise malformed("labels outside 0..9")
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # stored as flat CHW rows
    return images, np.asarray(labels, dtype=np.int64)


def read_official_archive(path: Path, expected_md5: str) -> dict[str, np.ndarray]:
    """The official pickled batches, md5-checked first, then unpickled only into numpy arrays."""
    splits = {}
    try:
        with open_verified_archive(path, "md5", expected_md5) as tar:
            meta = _unpickle(tar, path, "batches.meta")
            for split, names in (("train", TRAIN_BATCHES), ("test", ("test_batch",))):
                batches = progress(names, f"CIFAR-10 {split} batches", unit="batch")
                parts = [_batch_arrays(_unpickle(tar, path, n), path, n) for n in batches]
                splits[f"x_{split}"] = np.concatenate([images for images, _ in parts])
                splits[f"y_{split}"] = np.concatenate([labels for _, labels in parts])
    except KeyError as e:
        raise VaelabError(
            f"{path}: member {e} is missing; the archive is incomplete, replace it"
        ) from None
    label_names = meta.get(b"label_names") if isinstance(meta, dict) else None
    names = tuple(n.decode() if isinstance(n, bytes) else n for n in label_names or ())
    if names != CIFAR10_CLASSES:
        raise VaelabError(
            f"{path}: class names {names} are not CIFAR-10's {CIFAR10_CLASSES}; "
            "replace the archive with the official release"
        )
    return splits


def read_png_archive(path: Path, expected_sha256: str) -> dict[str, np.ndarray]:
    """`cifar10/{train,test}/<class>/<name>.png`, in a fixed shuffle of (class, file name)."""
    found: dict[str, list[tuple[int, str, np.ndarray]]] = {"train": [], "test": []}
    with open_verified_archive(path, "sha256", expected_sha256) as tar:
        for member in progress(tar, f"decoding {path.name}"):
            parts = Path(member.name).parts
            wanted = len(parts) == 4 and parts[1] in found and parts[3].lower().endswith(".png")
            if not member.isfile() or not wanted:
                continue
            _, split, class_name, file_name = parts
            if class_name not in CIFAR10_CLASSES:
                raise VaelabError(
                    f"{path}: class folder {split}/{class_name} is not a CIFAR-10 "
                    f"class; expected the 10 folders {', '.join(CIFAR10_CLASSES)}"
                )
            image = decode_image(tar.extractfile(member).read(), f"{path}: {member.name}", "PNG")
            if image.mode != "RGB" or image.size != (32, 32):
                raise VaelabError(
                    f"{path}: {member.name} is {image.mode} {image.width}x{image.height}, "
                    "expected RGB 32x32; this is not a CIFAR-10 image"
                )
            found[split].append((CIFAR10_CLASSES.index(class_name), file_name, np.asarray(image)))
    folders = {label for items in found.values() for label, _, _ in items}
    if len(folders) != len(CIFAR10_CLASSES):
        raise VaelabError(
            f"{path}: {len(folders)} class folders, expected the 10 CIFAR-10 "
            "classes; the archive is incomplete, replace it"
        )
    splits = {}
    for split, items in found.items():
        if not items:
            raise VaelabError(
                f"{path}: no PNG images under cifar10/{split}/; the archive is "
                "incomplete, replace it"
            )
        # Files sort by class; a fixed shuffle makes any prefix (train_limit) a uniform sample.
        items.sort(key=lambda item: item[:2])
        items = [items[i] for i in np.random.default_rng(0).permutation(len(items))]
        splits[f"x_{split}"] = np.stack([pixels for _, _, pixels in items])
        splits[f"y_{split}"] = np.array([label for label, _, _ in items], dtype=np.int64)
    return splits


def download(download_dir: Path, expected_md5: str, looked: str) -> Path:
    """The official archive, downloaded by torchvision (again if a copy's md5 is wrong); no empty
    folder is left behind."""
    from torchvision.datasets import CIFAR10
    from torchvision.datasets.utils import download_url

    created = [d for d in (download_dir, *download_dir.parents) if not d.exists()]
    try:
        download_url(CIFAR10.url, str(download_dir), CIFAR10.filename, expected_md5)
    except (OSError, RuntimeError) as e:  # URLError is an OSError; a bad md5 is a RuntimeError
        raise VaelabError(
            f"could not download CIFAR-10 ({e}) and found no archive in {looked}; "
            f"set VAELAB_DATA_DIR to a folder holding {OFFICIAL_ARCHIVE} or "
            f"{PNG_ARCHIVE}, or run where https://www.cs.toronto.edu is reachable"
        ) from None
    finally:
        for folder in created:  # deepest first
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
    return download_dir / CIFAR10.filename


def fetch(config: dict, out_path: Path) -> str:
    """Write `out_path` from the first source that has the data; return a description of it."""
    dirs = mirror_directories(ENV_DIRS, config["mirror_dirs"])
    # The first folder holding an archive; in one folder, the official one first.
    found = (d / name for d in dirs for name in (OFFICIAL_ARCHIVE, PNG_ARCHIVE))
    archive = source = next((path for path in found if path.is_file()), None)
    if archive is None:
        looked = ", ".join(str(d) for d in dirs)
        if not config["allow_download"]:
            raise VaelabError(
                f"no CIFAR-10 archive ({OFFICIAL_ARCHIVE} or {PNG_ARCHIVE}) in {looked}, and "
                "download is off; set VAELAB_DATA_DIR to a folder holding one, or set "
                f"datasets.{config['name']}.allow_download: true"
            )
        download_dir = out_path.parent / "download"
        archive = download(download_dir, config["official_md5"], looked)
        source = f"torchvision download into {download_dir}"
    if archive.name == PNG_ARCHIVE:
        splits = read_png_archive(archive, config["png_sha256"])
    else:
        splits = read_official_archive(archive, config["official_md5"])
    write_dataset(out_path, source=str(source), **splits, classes=np.array(CIFAR10_CLASSES))
    train, test = len(splits["x_train"]), len(splits["x_test"])
    return f"{source}: {train:,} training and {test:,} test images"
