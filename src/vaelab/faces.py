"""CelebA faces: find them, verify them, centre-crop and resize them, keep them as uint8 with attributes.

Sources, in this order (the first that has faces is used):

1. `$VAELAB_FACES_DIR`, then `$VAELAB_DATA_DIR` (one folder may hold both datasets), when set;
2. `faces.image_folder`, when set: any folder of face images, used without attributes. It is an
   explicit choice, so it comes before the default mirrors;
3. each directory of `faces.mirror_dirs`.

A directory of 1 or 3 may hold `celeba-10k.tar.gz` (the team mirror: sha256-verified before anything
is decoded) or the official files in torchvision's `CelebA` layout,
`celeba/img_align_celeba/*.jpg` + `celeba/list_attr_celeba.txt`.

Images are sorted by file name and the first `max_images` kept (0 = all); the last `test_count` of
them are the held-out test split. Each is centre-cropped to a square of `crop_fraction` times its
shorter side (the face, without most of the background) and resized to `image_size`.

Output (one uncompressed `.npz`, loaded without pickle): x_train, x_test uint8 (N, S, S, 3);
attr_train, attr_test int8 (N, A) of +1/-1 (A = 0 without attributes); attribute_names (A,);
files_train, files_test (source file names); source (where the faces came from).
"""

from __future__ import annotations

import io
import os
import tarfile
import zlib
from pathlib import Path

import numpy as np
import torch
import torchvision.transforms.functional as TF
from PIL import Image, UnidentifiedImageError

from .data import verify_checksum, write_npz_atomically
from .errors import VaelabError

ARCHIVE = "celeba-10k.tar.gz"
ARCHIVE_IMAGES = "celeba-10k/img_align_celeba/"
ARCHIVE_ATTRIBUTES = "celeba-10k/list_attr_celeba.txt"
OFFICIAL_IMAGES = Path("celeba/img_align_celeba")  # torchvision's CelebA layout, under a root folder
OFFICIAL_ATTRIBUTES = Path("celeba/list_attr_celeba.txt")
ENV_DIRS = ("VAELAB_FACES_DIR", "VAELAB_DATA_DIR")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")

# A source: {file name: JPEG bytes or a path}, the attribute file's text (None without), a label.
Source = tuple[dict[str, "bytes | Path"], "str | None", str]


def parse_attributes(text: str, where: str) -> tuple[list[str], dict[str, np.ndarray]]:
    """The official `list_attr_celeba.txt`: line 1 the row count, line 2 the attribute names, then
    `<file name> <one value of 1 or -1 per attribute>` per line. Returns the names and
    {file name: int8 row}; any damaged line is an error naming it."""
    lines = text.splitlines()
    if len(lines) < 2:
        raise VaelabError(f"{where}: {len(lines)} line(s); expected a row count, the attribute names, "
                          "then one row per image")
    try:
        expected_rows = int(lines[0].split()[0])
    except (IndexError, ValueError):
        raise VaelabError(f"{where}: line 1 is {lines[0][:40]!r}, expected the number of rows") from None
    names = lines[1].split()
    if not names:
        raise VaelabError(f"{where}: line 2 is empty, expected the attribute names")
    rows: dict[str, np.ndarray] = {}
    for number, line in enumerate(lines[2:], start=3):
        fields = line.split()
        if not fields:
            continue  # a trailing blank line
        file_name, values = fields[0], fields[1:]
        if len(values) != len(names):
            raise VaelabError(f"{where}: line {number} ({file_name}) has {len(values)} values for {len(names)} "
                              "attributes; the file is damaged, replace it with a good copy")
        if any(value not in ("1", "-1") for value in values):
            raise VaelabError(f"{where}: line {number} ({file_name}) holds a value other than 1 or -1; "
                              "the file is damaged, replace it with a good copy")
        if file_name in rows:
            raise VaelabError(f"{where}: line {number} repeats {file_name}; the file is damaged")
        rows[file_name] = np.array(values, dtype=np.int8)
    if len(rows) != expected_rows:
        raise VaelabError(f"{where}: {len(rows)} rows, but line 1 announces {expected_rows}; the file is "
                          "truncated or damaged, replace it with a good copy")
    return names, rows


def crop_and_resize(image: Image.Image, size: int, crop_fraction: float) -> np.ndarray:
    """Centre square of `crop_fraction` x the shorter side, resized (antialiased) to size x size RGB."""
    image = image.convert("RGB")
    side = max(1, round(min(image.size) * crop_fraction))
    image = TF.resize(TF.center_crop(image, [side, side]), [size, size], antialias=True)
    return np.asarray(image, dtype=np.uint8)


def decode_face(data: bytes | Path, where: str, size: int, crop_fraction: float) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as image:
            image.load()  # decodes every byte: a truncated JPEG fails here, not later
            return crop_and_resize(image, size, crop_fraction)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise VaelabError(f"{where} does not decode as an image ({e}); replace it (or the archive) "
                          "with a good copy") from None


def read_archive(path: Path, expected_sha256: str) -> Source:
    """The mirror's `celeba-10k.tar.gz`, verified first: nothing is decoded from an unverified file."""
    verify_checksum(path, "sha256", expected_sha256)
    images, attributes = {}, None
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                if member.name == ARCHIVE_ATTRIBUTES:
                    attributes = tar.extractfile(member).read().decode("utf-8", errors="replace")
                elif member.name.startswith(ARCHIVE_IMAGES) and member.name.lower().endswith(IMAGE_SUFFIXES):
                    images[member.name[len(ARCHIVE_IMAGES):]] = tar.extractfile(member).read()
    except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
        raise VaelabError(f"{path}: corrupt or truncated archive ({e}); replace it with a good copy") from None
    if not images:
        raise VaelabError(f"{path}: no images under {ARCHIVE_IMAGES}; this is not the CelebA mirror archive")
    if attributes is None:
        raise VaelabError(f"{path}: {ARCHIVE_ATTRIBUTES} is missing; the archive is incomplete, replace it")
    return images, attributes, str(path)


def _image_files(folder: Path) -> dict[str, Path]:
    return {p.name: p for p in sorted(folder.iterdir()) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES}


def read_official_folder(root: Path) -> Source:
    """The official files in torchvision's layout; only the images and the attribute file are needed."""
    images, attributes = _image_files(root / OFFICIAL_IMAGES), root / OFFICIAL_ATTRIBUTES
    if not attributes.is_file():
        raise VaelabError(f"{root / OFFICIAL_IMAGES} has no {attributes}; add the official attribute file, "
                          "or set faces.image_folder to use the images without attributes")
    if not images:
        raise VaelabError(f"{root / OFFICIAL_IMAGES} holds no images")
    return images, attributes.read_text(errors="replace"), str(root / "celeba")


def read_image_folder(folder: Path) -> Source:
    if not folder.is_dir():
        raise VaelabError(f"faces.image_folder {folder} is not a folder; fix the path or set it to null")
    images = _image_files(folder)
    if not images:
        raise VaelabError(f"faces.image_folder {folder} holds no {'/'.join(IMAGE_SUFFIXES)} images")
    return images, None, f"{folder} (no attributes)"


def find_source(mirror_dirs: list[str], image_folder: str | None, archive_sha256: str) -> Source:
    """The first source in the documented order; a damaged one is an error, not skipped."""
    env_dirs = [Path(os.environ[name]).expanduser() for name in ENV_DIRS if os.environ.get(name)]
    mirrors = [Path(d).expanduser() for d in mirror_dirs or []]
    for directory in env_dirs + ([None] if image_folder else []) + mirrors:
        if directory is None:
            return read_image_folder(Path(image_folder).expanduser())
        if (directory / ARCHIVE).is_file():
            return read_archive(directory / ARCHIVE, archive_sha256)
        if (directory / OFFICIAL_IMAGES).is_dir():
            return read_official_folder(directory)
    looked = ", ".join(str(d) for d in env_dirs + mirrors) or "no directories"
    raise VaelabError(f"no faces found: neither {ARCHIVE} nor {OFFICIAL_IMAGES}/ in {looked}; set "
                      f"VAELAB_FACES_DIR to a folder holding one, or faces.image_folder to a folder of face images")


def build_faces(source: Source, image_size: int, crop_fraction: float, max_images: int,
                test_count: int) -> dict[str, np.ndarray]:
    """Sort, limit, check every image has an attribute row, decode, crop, resize and split."""
    images, attribute_text, where = source
    names = sorted(images)[:max_images or None]
    if len(names) <= test_count:
        raise VaelabError(f"{where}: {len(names)} images, but faces.test_count holds out {test_count}; "
                          "lower faces.test_count or use more images")
    if attribute_text is not None:
        attribute_names, rows = parse_attributes(attribute_text, f"{where}: list_attr_celeba.txt")
        missing = [name for name in names if name not in rows]
        if missing:
            raise VaelabError(f"{where}: {missing[0]} (and {len(missing) - 1} more) has no row in "
                              "list_attr_celeba.txt; the attribute file does not match the images")
        attributes = np.stack([rows[name] for name in names])
    else:
        attribute_names, attributes = [], np.zeros((len(names), 0), dtype=np.int8)
    pixels = np.stack([decode_face(images[name], f"{where}: {name}", image_size, crop_fraction) for name in names])
    split = len(names) - test_count
    return {"x_train": pixels[:split], "x_test": pixels[split:],
            "attr_train": attributes[:split], "attr_test": attributes[split:],
            "attribute_names": np.array(attribute_names, dtype=str),
            "files_train": np.array(names[:split]), "files_test": np.array(names[split:]),
            "source": np.array(where)}


def fetch_faces(out_path: Path, settings: dict) -> str:
    """Write `out_path` (atomically: all or nothing) from the first source; return where from."""
    source = find_source(settings["mirror_dirs"], settings["image_folder"], settings["archive_sha256"])
    arrays = build_faces(source, settings["image_size"], settings["crop_fraction"], settings["max_images"],
                         settings["test_count"])
    write_npz_atomically(Path(out_path), **arrays)
    return f"{source[2]}: {len(arrays['x_train']):,} training and {len(arrays['x_test']):,} test faces"


def load_faces(path: Path) -> dict:
    """The fetched `.npz`: uint8 NHWC image tensors, int8 attribute tensors, names as lists."""
    if not Path(path).is_file():
        raise VaelabError(f"{path} is missing; run the fetch stage first (dvc repro fetch_faces)")
    keys = ("x_train", "x_test", "attr_train", "attr_test", "attribute_names", "files_train", "files_test", "source")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in keys}
    except (KeyError, ValueError, OSError, zlib.error) as e:
        raise VaelabError(f"{path} is unreadable ({e}); delete it and rerun dvc repro fetch_faces") from None
    return {**{key: torch.from_numpy(arrays[key]) for key in ("x_train", "x_test", "attr_train", "attr_test")},
            "attribute_names": [str(n) for n in arrays["attribute_names"]],
            "files_test": [str(n) for n in arrays["files_test"]], "source": str(arrays["source"])}
