"""Every dataset as one `data/<name>.npz` of the same layout (docs/data.md), and as one dict.

Each source module (`cifar10`, `celeba`, `shapes`) has `fetch(config, out_path) -> str` and writes
through `write_dataset`: uint8 (N, H, W, C) `x_train`, `x_test`, their `source`, and what the source
carries (cifar10: int64 `y_*`, `classes`; shapes: int64 (N, F) `factors_*`, `factor_names`,
`values_<factor>`; celeba: uint8 (N, A) 0/1 `attributes_*`, `attribute_names`, `files_*`).
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import tarfile
import zlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torchvision.transforms.functional import gaussian_blur

from .. import store
from ..errors import VaelabError

PER_SAMPLE = ("x", "y", "factors", "attributes", "files")  # keys <kind>_train / <kind>_test
INT64_KINDS = ("y", "factors", "attributes")


def fetch(config: dict) -> str:
    """Write `data/<name>.npz` from `config.dataset_config`; return where from, in one line."""
    # Imported here, not at the top: the source modules use this package's helpers. Static
    # imports, so that the DAG check (tests/test_dag.py) sees every module a fetch can run.
    from . import celeba, cifar10, shapes

    out_path = store.data_path(config["name"])
    source = {"cifar10": cifar10, "celeba": celeba, "shapes": shapes}[config["source"]]
    description = source.fetch(config, out_path)
    print(f"wrote {out_path} ({out_path.stat().st_size / 2**20:.1f} MiB) from {description}")
    return description


def write_dataset(
    out_path: Path, x_train: np.ndarray, x_test: np.ndarray, source: str, **extra: np.ndarray
) -> None:
    """The one writer of a dataset file (atomically); every source checks what it read first."""
    store.write_npz(out_path, x_train=x_train, x_test=x_test, source=np.array(source), **extra)


def load(name: str, config: dict | None = None) -> dict:
    """`data/<name>.npz` as the dataset dict (docs/design.md); with `config`, its `train_limit` /
    `test_limit` (when > 0) keep the first N of each split."""
    path, stage = store.data_path(name), f"fetch@{name}"
    arrays = store.read_npz(path, stage)
    for key in ("x_train", "x_test"):
        if key not in arrays or arrays[key].dtype != np.uint8 or arrays[key].ndim != 4:
            raise VaelabError(f"{path} has no uint8 (N, H, W, C) {key}; rerun {stage} (dvc repro)")
    config = config or {}
    limits = {"train": config.get("train_limit", 0), "test": config.get("test_limit", 0)}
    dataset: dict = {"name": name, "source": str(arrays.get("source", ""))}
    for key, array in arrays.items():
        kind, _, split = key.rpartition("_")
        if kind in PER_SAMPLE and split in limits:
            array = array[: limits[split] or None]
            if kind == "files":
                dataset[key] = [str(f) for f in array]
            else:
                array = array.astype(np.int64) if kind in INT64_KINDS else array
                dataset[key] = torch.from_numpy(array)
    for key in ("classes", "factor_names", "attribute_names"):
        if key in arrays:
            dataset[key] = [str(n) for n in arrays[key]]
    if "factor_names" in dataset:
        names = dataset["factor_names"]
        dataset["factor_values"] = {f: arrays[f"values_{f}"].tolist() for f in names}
    return dataset


def to_model_input(
    images: torch.Tensor, device: torch.device, noise: torch.Generator | None = None
) -> torch.Tensor:
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


def blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of float (B, C, H, W) images, the kernel 3 sigma wide on each side."""
    return gaussian_blur(images, kernel_size=2 * math.ceil(3 * sigma) + 1, sigma=sigma)


def down_up(images: torch.Tensor, factor: int) -> torch.Tensor:
    """float (B, C, H, W) images averaged down by `factor`, then bilinearly up to their size: the
    detail a low-resolution model (or a blurry decoder) loses, the layout kept."""
    small = torch.nn.functional.avg_pool2d(images, factor)
    return torch.nn.functional.interpolate(
        small, size=images.shape[-2:], mode="bilinear", align_corners=False
    )


def mirror_directories(env_names: tuple[str, ...], mirror_dirs: list[str]) -> list[Path]:
    """The folders named by the set environment variables (they win), then `mirror_dirs`."""
    env_dirs = [os.environ[name] for name in env_names if os.environ.get(name)]
    return [Path(d).expanduser() for d in [*env_dirs, *mirror_dirs]]


@contextlib.contextmanager
def open_verified_archive(path: Path, algorithm: str, expected: str):
    """The tar.gz at `path`, opened only once its checksum matches; any damage is one line."""
    store.verify_checksum(path, algorithm, expected)
    try:
        with tarfile.open(path, "r:gz") as tar:
            yield tar
    except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
        raise VaelabError(
            f"{path}: corrupt or truncated archive ({e}); replace it with a good copy"
        ) from None


def decode_image(data: bytes | Path, where: str, kind: str = "an image") -> Image.Image:
    """Every byte of one image decoded (a truncated file fails here, not later), or one line."""
    try:
        with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as image:
            image.load()
            return image.copy()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise VaelabError(
            f"{where} does not decode as {kind} ({e}); replace it (or its archive) with a good copy"
        ) from None
