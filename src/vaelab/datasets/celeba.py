"""CelebA faces from the mirror's `celeba-10k.tar.gz` or torchvision's `celeba/` layout
(docs/data.md); `crop_fraction` of the shorter side keeps the face without most of the background.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np
import torchvision.transforms.functional as TF
from PIL import Image
from tqdm import tqdm

from ..errors import VaelabError
from . import decode_image, mirror_directories, open_verified_archive, write_dataset

ARCHIVE = "celeba-10k.tar.gz"
ARCHIVE_IMAGES = "celeba-10k/img_align_celeba/"
ARCHIVE_ATTRIBUTES = "celeba-10k/list_attr_celeba.txt"
# torchvision's CelebA layout, under a root folder.
OFFICIAL_IMAGES = Path("celeba/img_align_celeba")
OFFICIAL_ATTRIBUTES = Path("celeba/list_attr_celeba.txt")
ENV_DIRS = ("VAELAB_FACES_DIR", "VAELAB_DATA_DIR")  # one folder may hold both datasets
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
DAMAGED = "the file is damaged, replace it with a good copy"

# A source: {file name: JPEG bytes or a path}, the attribute file's text, a label.
Source = tuple[dict[str, "bytes | Path"], str, str]


def parse_attributes(text: str, where: str) -> tuple[list[str], dict[str, np.ndarray]]:
    """The official `list_attr_celeba.txt` (the row count, the attribute names, then `<file name>
    <1 or -1 per attribute>` per line) as the names and {file name: int8 row}, or one line."""
    lines = text.splitlines()
    rows = [line.split() for line in lines[2:] if line.strip()]  # skips a trailing blank line
    try:
        expected_rows = int(lines[0].split()[0])
        names = lines[1].split()
        files = [row[0] for row in rows]
        # A ragged table (a row with too few or too many values) is a ValueError here.
        values = np.array([row[1:] for row in rows]).reshape(len(rows), len(names))
    except (IndexError, ValueError):
        raise VaelabError(
            f"{where}: expected a row count on line 1, the attribute names on line 2, then a file "
            f"name and one value per attribute on each line; {DAMAGED}"
        ) from None
    valid = np.isin(values, ("1", "-1")).all(axis=1)
    if not valid.all():
        bad = files[np.argmin(valid)]
        raise VaelabError(f"{where}: the row of {bad} holds a value other than 1 or -1; {DAMAGED}")
    unique, counts = np.unique(files, return_counts=True)
    if counts.max(initial=1) > 1:
        raise VaelabError(f"{where}: {unique[counts.argmax()]} has more than one row; {DAMAGED}")
    if len(files) != expected_rows:
        raise VaelabError(
            f"{where}: {len(files)} rows, but line 1 announces {expected_rows}; the "
            "file is truncated or damaged, replace it with a good copy"
        )
    return names, dict(zip(files, values.astype(np.int8), strict=True))


def crop_and_resize(image: Image.Image, size: int, crop_fraction: float) -> np.ndarray:
    """The centre square of `crop_fraction` x the shorter side, antialiased to size x size RGB."""
    image = image.convert("RGB")
    side = max(1, round(min(image.size) * crop_fraction))
    image = TF.resize(TF.center_crop(image, [side, side]), [size, size], antialias=True)
    return np.asarray(image, dtype=np.uint8)


def read_archive(path: Path, expected_sha256: str) -> Source:
    """The mirror's archive, verified first: nothing is decoded from an unverified file."""
    images, attributes = {}, None
    with open_verified_archive(path, "sha256", expected_sha256) as tar:
        for member in filter(tarfile.TarInfo.isfile, tar):
            name = member.name
            if name == ARCHIVE_ATTRIBUTES:
                attributes = tar.extractfile(member).read().decode("utf-8", errors="replace")
            elif name.startswith(ARCHIVE_IMAGES) and name.lower().endswith(IMAGE_SUFFIXES):
                images[name[len(ARCHIVE_IMAGES) :]] = tar.extractfile(member).read()
    if not images:
        raise VaelabError(
            f"{path}: no images under {ARCHIVE_IMAGES}; this is not the CelebA "
            "mirror archive, replace it"
        )
    if attributes is None:
        raise VaelabError(
            f"{path}: {ARCHIVE_ATTRIBUTES} is missing; the archive is incomplete, replace it"
        )
    return images, attributes, str(path)


def read_official_folder(root: Path) -> Source:
    """The official files in torchvision's layout: the images and the attribute file."""
    files = sorted((root / OFFICIAL_IMAGES).iterdir())
    images = {p.name: p for p in files if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES}
    attributes = root / OFFICIAL_ATTRIBUTES
    if not attributes.is_file():
        raise VaelabError(
            f"{root / OFFICIAL_IMAGES} has no {attributes}; add the official attribute file"
        )
    if not images:
        raise VaelabError(
            f"{root / OFFICIAL_IMAGES} holds no images; add them or remove the folder"
        )
    return images, attributes.read_text(errors="replace"), str(root / "celeba")


def find_source(config: dict) -> Source:
    """The first source in the documented order; a damaged one is an error, not skipped."""
    dirs = mirror_directories(ENV_DIRS, config["mirror_dirs"])
    for directory in dirs:
        if (directory / ARCHIVE).is_file():
            return read_archive(directory / ARCHIVE, config["archive_sha256"])
        if (directory / OFFICIAL_IMAGES).is_dir():
            return read_official_folder(directory)
    looked = ", ".join(str(d) for d in dirs) or "no directories"
    raise VaelabError(
        f"no faces found: neither {ARCHIVE} nor {OFFICIAL_IMAGES}/ in {looked}; set "
        "VAELAB_FACES_DIR to a folder holding one"
    )


def fetch(config: dict, out_path: Path) -> str:
    """Write `out_path` from the first source; return where from."""
    images, attribute_text, where = find_source(config)
    test_count = config["test_count"]
    names = sorted(images)[: config["max_images"] or None]
    if len(names) <= test_count:
        raise VaelabError(
            f"{where}: {len(names)} images, but datasets.{config['name']}.test_count "
            f"holds out {test_count}; lower it or use more images"
        )
    attribute_names, rows = parse_attributes(attribute_text, f"{where}: list_attr_celeba.txt")
    missing = [name for name in names if name not in rows]
    if missing:
        raise VaelabError(
            f"{where}: {missing[0]} (and {len(missing) - 1} more) has no row in "
            "list_attr_celeba.txt; the attribute file does not match the images, replace it"
        )
    attributes = (np.stack([rows[name] for name in names]) > 0).astype(np.uint8)  # +1/-1 -> 1/0
    size, fraction = config["image_size"], config["crop_fraction"]
    bar = tqdm(names, "decoding faces", unit="file", leave=False)
    decoded = (decode_image(images[n], f"{where}: {n}") for n in bar)
    pixels = np.stack([crop_and_resize(image, size, fraction) for image in decoded])
    split = len(names) - test_count
    write_dataset(
        out_path,
        pixels[:split],
        pixels[split:],
        where,
        attributes_train=attributes[:split],
        attributes_test=attributes[split:],
        attribute_names=np.array(attribute_names, dtype=str),
        files_train=np.array(names[:split]),
        files_test=np.array(names[split:]),
    )
    return f"{where}: {split:,} training and {test_count:,} test faces"
