"""CIFAR-10: find it (a local mirror, else torchvision's download), verify it, keep it as uint8.

The fetched dataset is one uncompressed `.npz` (x_train (50000, 32, 32, 3) uint8, y_train int64,
x_test, y_test, classes), loaded without pickle and held in memory as uint8 tensors; batches are
cut from it by indexing, never by a per-sample Python loop.

Accepted mirror files, looked up in each mirror directory in turn:
* `cifar-10-python.tar.gz`: the official archive (md5-verified before anything is unpickled);
* `cifar10-png.tar.gz`: the image-folder layout `cifar10/{train,test}/<class>/<name>.png`
  (sha256-verified before anything is decoded).
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import tarfile
import tempfile
import zlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from .errors import VaelabError

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
OFFICIAL_ARCHIVE = "cifar-10-python.tar.gz"
PNG_ARCHIVE = "cifar10-png.tar.gz"
IMAGE_SHAPE = (32, 32, 3)
DATA_DIR_ENV = "VAELAB_DATA_DIR"


def file_digest(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_checksum(path: Path, algorithm: str, expected: str) -> None:
    actual = file_digest(path, algorithm)
    if actual != expected.lower():
        raise VaelabError(f"{path}: {algorithm} is {actual}, expected {expected}; the file is "
                          f"corrupt, truncated or not the expected release: replace it with a good copy")


def mirror_directories(param_dirs: list[str]) -> list[Path]:
    """`VAELAB_DATA_DIR` first (it wins), then the params list, relative to the project root."""
    dirs = [os.environ[DATA_DIR_ENV]] if os.environ.get(DATA_DIR_ENV) else []
    return [Path(d).expanduser() for d in dirs + list(param_dirs or [])]


def _check_split(images: np.ndarray, labels: np.ndarray, where: str) -> None:
    if images.ndim != 4 or images.shape[1:] != IMAGE_SHAPE:
        raise VaelabError(f"{where}: images have shape {images.shape[1:]}, expected {IMAGE_SHAPE}; "
                          "this is not CIFAR-10")
    if len(images) == 0 or len(images) != len(labels):
        raise VaelabError(f"{where}: {len(images)} images for {len(labels)} labels; the archive is incomplete")
    if labels.min() < 0 or labels.max() >= len(CIFAR10_CLASSES):
        raise VaelabError(f"{where}: labels outside 0..9; this is not CIFAR-10")


def read_official_archive(path: Path, expected_md5: str) -> dict[str, np.ndarray]:
    """The official pickled batches. The md5 is checked first: pickle runs only on a verified file."""
    verify_checksum(path, "md5", expected_md5)
    try:
        with tarfile.open(path, "r:gz") as tar:
            def unpickle(name):
                member = tar.extractfile(f"cifar-10-batches-py/{name}")
                if member is None:
                    raise KeyError(name)
                return pickle.load(member, encoding="bytes")

            meta = unpickle("batches.meta")
            splits = {}
            for split, names in (("train", [f"data_batch_{i}" for i in range(1, 6)]), ("test", ["test_batch"])):
                batches = [unpickle(n) for n in names]
                flat = np.concatenate([np.asarray(b[b"data"], dtype=np.uint8) for b in batches])
                splits[f"x_{split}"] = flat.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy()
                splits[f"y_{split}"] = np.concatenate([np.asarray(b[b"labels"], dtype=np.int64) for b in batches])
    except KeyError as e:
        raise VaelabError(f"{path}: member {e} is missing; the archive is incomplete, replace it") from None
    except (tarfile.TarError, EOFError, zlib.error, OSError, pickle.UnpicklingError, ValueError) as e:
        raise VaelabError(f"{path}: corrupt or truncated archive ({e}); replace it with a good copy") from None
    names = tuple(n.decode() for n in meta[b"label_names"])
    if names != CIFAR10_CLASSES:
        raise VaelabError(f"{path}: class names {names} are not CIFAR-10's {CIFAR10_CLASSES}")
    for split in ("train", "test"):
        _check_split(splits[f"x_{split}"], splits[f"y_{split}"], f"{path} ({split})")
    return splits


def read_png_archive(path: Path, expected_sha256: str) -> dict[str, np.ndarray]:
    """`cifar10/{train,test}/<class>/<name>.png`, in a fixed shuffled order of (class, file name)."""
    verify_checksum(path, "sha256", expected_sha256)
    found: dict[str, list[tuple[int, str, np.ndarray]]] = {"train": [], "test": []}
    folders: set[str] = set()
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:
                parts = Path(member.name).parts
                if not member.isfile() or len(parts) != 4 or not parts[3].lower().endswith(".png"):
                    continue
                _, split, class_name, file_name = parts
                if split not in found:
                    continue
                folders.add(class_name)
                if class_name not in CIFAR10_CLASSES:
                    raise VaelabError(f"{path}: class folder {split}/{class_name} is not a CIFAR-10 "
                                      f"class; expected the 10 folders {', '.join(CIFAR10_CLASSES)}")
                data = tar.extractfile(member).read()
                try:
                    with Image.open(io.BytesIO(data)) as image:
                        image.load()
                        if image.mode != "RGB" or image.size != IMAGE_SHAPE[:2]:
                            raise VaelabError(f"{path}: {member.name} is {image.mode} {image.size[0]}x{image.size[1]}, "
                                              "expected RGB 32x32; this is not a CIFAR-10 image")
                        pixels = np.asarray(image, dtype=np.uint8)
                except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
                    raise VaelabError(f"{path}: {member.name} does not decode as PNG ({e}); "
                                      "replace the archive with a good copy") from None
                found[split].append((CIFAR10_CLASSES.index(class_name), file_name, pixels))
    except (tarfile.TarError, EOFError, zlib.error) as e:
        raise VaelabError(f"{path}: corrupt or truncated archive ({e}); replace it with a good copy") from None
    if len(folders) != len(CIFAR10_CLASSES):
        raise VaelabError(f"{path}: {len(folders)} class folders, expected the 10 CIFAR-10 classes")
    splits = {}
    for split, items in found.items():
        # Files sort by class; a fixed shuffle makes any prefix (data.train_limit) a uniform sample.
        items.sort(key=lambda item: (item[0], item[1]))
        items = [items[i] for i in np.random.default_rng(0).permutation(len(items))]
        if not items:
            raise VaelabError(f"{path}: no PNG images under cifar10/{split}/; the archive is incomplete")
        splits[f"x_{split}"] = np.stack([pixels for _, _, pixels in items])
        splits[f"y_{split}"] = np.array([label for label, _, _ in items], dtype=np.int64)
        _check_split(splits[f"x_{split}"], splits[f"y_{split}"], f"{path} ({split})")
    return splits


def download_with_torchvision(download_dir: Path) -> dict[str, np.ndarray]:
    """torchvision fetches the official archive and checks its md5 (and each batch's) itself."""
    from torchvision.datasets import CIFAR10

    train = CIFAR10(str(download_dir), train=True, download=True)
    test = CIFAR10(str(download_dir), train=False, download=True)
    return {"x_train": np.asarray(train.data, dtype=np.uint8), "y_train": np.asarray(train.targets, dtype=np.int64),
            "x_test": np.asarray(test.data, dtype=np.uint8), "y_test": np.asarray(test.targets, dtype=np.int64)}


def fetch_cifar10(out_path: Path, mirror_dirs: list[str], official_md5: str, png_sha256: str,
                  download_dir: Path, allow_download: bool) -> str:
    """Write `out_path` from the first source that has the data; return a description of it."""
    dirs = mirror_directories(mirror_dirs)
    splits, source = None, None
    for directory in dirs:
        if (directory / OFFICIAL_ARCHIVE).is_file():
            source = directory / OFFICIAL_ARCHIVE
            splits = read_official_archive(source, official_md5)
        elif (directory / PNG_ARCHIVE).is_file():
            source = directory / PNG_ARCHIVE
            splits = read_png_archive(source, png_sha256)
        if splits is not None:
            break
    if splits is None:
        looked = ", ".join(str(d) for d in dirs) or "no directories"
        if not allow_download:
            raise VaelabError(f"no CIFAR-10 archive ({OFFICIAL_ARCHIVE} or {PNG_ARCHIVE}) in {looked}, and "
                              f"download is off; set {DATA_DIR_ENV} to a folder holding one, or set "
                              "data.allow_download: true")
        try:
            splits = download_with_torchvision(download_dir)
        except (OSError, RuntimeError) as e:  # URLError is an OSError; a bad md5 is a RuntimeError
            raise VaelabError(f"could not download CIFAR-10 ({e}) and found no archive in {looked}; set "
                              f"{DATA_DIR_ENV} to a folder holding {OFFICIAL_ARCHIVE} or {PNG_ARCHIVE}, "
                              "or run where https://www.cs.toronto.edu is reachable") from None
        source = f"torchvision download into {download_dir}"
    write_npz_atomically(out_path, classes=np.array(CIFAR10_CLASSES), **splits)
    return str(source)


def write_npz_atomically(out_path: Path, **arrays: np.ndarray) -> None:
    """Write to a temporary file beside the target and rename: a crash leaves no half file."""
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out_path.parent, prefix=f".{out_path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the dataset is not
        os.replace(tmp, out_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_dataset(path: Path, train_limit: int = 0, test_limit: int = 0) -> dict:
    """The fetched `.npz` as uint8 NHWC tensors (the first `*_limit` images when a limit is > 0)."""
    if not Path(path).is_file():
        raise VaelabError(f"{path} is missing; run the fetch stage first (dvc repro fetch_data)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in ("x_train", "y_train", "x_test", "y_test", "classes")}
    except (KeyError, ValueError, OSError, zlib.error) as e:
        raise VaelabError(f"{path} is unreadable ({e}); delete it and rerun the fetch stage") from None
    dataset = {"classes": [str(c) for c in arrays["classes"]]}
    for split, limit in (("train", train_limit), ("test", test_limit)):
        count = limit if limit and limit > 0 else len(arrays[f"x_{split}"])
        dataset[f"x_{split}"] = torch.from_numpy(arrays[f"x_{split}"][:count])  # (N, H, W, C) uint8
        dataset[f"y_{split}"] = torch.from_numpy(arrays[f"y_{split}"][:count])
    return dataset


def to_model_input(images: torch.Tensor, device: torch.device, noise: torch.Generator | None = None) -> torch.Tensor:
    """uint8 (B, H, W, C) -> float (B, C, H, W) in [0, 1], dequantised as (k + u) / 256.

    The permute keeps NHWC memory order, i.e. a channels_last tensor, which the CPU convolutions
    run fastest on. `noise` draws u from its own generator (evaluation passes a seeded one so test
    metrics repeat exactly); None draws it from the global RNG.
    """
    x = images.to(device, non_blocking=True).permute(0, 3, 1, 2).float()
    u = torch.rand(x.shape, generator=noise, device="cpu" if noise is not None else device)
    return (x + u.to(device).contiguous(memory_format=torch.channels_last)).div_(256.0)


def to_display(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B, H, W, C) -> float (B, C, H, W) in [0, 1], for figures."""
    return images.permute(0, 3, 1, 2).float().div(255.0)
