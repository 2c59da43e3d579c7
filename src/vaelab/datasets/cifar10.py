"""CIFAR-10 from a mirror's official or PNG archive, else torchvision's download into
`data/download/` (docs/data.md).

The official archive holds pickles, and unpickling runs whatever a pickle names. It is read by
torchvision's `CIFAR10` only after two md5 checks: of the whole archive (`official_md5`, before
anything is extracted), then, inside torchvision (`CIFAR10._check_integrity`, and `_load_meta` for
batches.meta), of every extracted batch file against the official release's md5 list. So only the
official bytes are ever unpickled, whatever `official_md5` says.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..errors import VaelabError
from . import decode_image, mirror_directories, open_verified_archive, write_dataset

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
ENV_DIRS = ("VAELAB_DATA_DIR",)


def read_official_archive(path: Path, expected_md5: str) -> dict[str, np.ndarray]:
    """The official pickled batches, extracted once the archive's md5 matches and read by
    torchvision, which md5-checks each batch before it unpickles it (the module docstring)."""
    from torchvision.datasets import CIFAR10

    splits = {}
    with tempfile.TemporaryDirectory() as root:
        with open_verified_archive(path, "md5", expected_md5) as tar:
            tar.extractall(root, filter="data")
        for split in ("train", "test"):
            try:
                batches = CIFAR10(root, train=split == "train", download=False)
            except RuntimeError:  # "Dataset not found or corrupted": a batch missing or altered
                raise VaelabError(
                    f"{path}: a {BATCH_DIR} batch is missing or not the official one; replace "
                    "the archive with the official release"
                ) from None
            splits[f"x_{split}"] = batches.data
            splits[f"y_{split}"] = np.array(batches.targets, dtype=np.int64)
    return splits


def read_png_archive(path: Path, expected_sha256: str) -> dict[str, np.ndarray]:
    """`cifar10/{train,test}/<class>/<name>.png`, in a fixed shuffle of (class, file name)."""
    found: dict[str, list[tuple[int, str, np.ndarray]]] = {"train": [], "test": []}
    with open_verified_archive(path, "sha256", expected_sha256) as tar:
        for member in tqdm(tar, f"decoding {path.name}", unit="file", leave=False):
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
