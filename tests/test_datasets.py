"""datasets/: every source fetched into one .npz layout, bad inputs refused in one line, loading."""

import hashlib
import itertools
import math
import os
import pickle
import tarfile
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.datasets.utils
from PIL import Image
from torchvision.datasets import CIFAR10

from conftest import (
    CELEBA_ATTRIBUTES,
    _add_bytes,
    attribute_file_text,
    celeba_faces,
    jpeg_bytes,
    md5,
    sha256,
    tiny_images,
    write_celeba_archive,
    write_png_archive,
)
from vaelab import datasets
from vaelab.config import dataset_config, load_params
from vaelab.datasets import celeba, cifar10, shapes
from vaelab.errors import VaelabError
from vaelab.store import verify_checksum

ROOT = Path(__file__).resolve().parents[1]
PARAMS = load_params(ROOT / "params.yaml")


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    """Every test runs in its own project folder: datasets land in tmp_path/data."""
    monkeypatch.chdir(tmp_path)


def config(dataset: str, **overrides) -> dict:
    return {**dataset_config(PARAMS, dataset), **overrides}


def assert_nothing_written(out_dir: Path = Path("data")):
    assert not out_dir.exists(), sorted(out_dir.rglob("*"))


def mirror_with(tmp_path: Path, writer, file_name: str, **kwargs) -> tuple[Path, dict]:
    mirror = tmp_path / "mirror"
    mirror.mkdir(exist_ok=True)
    truth = writer(mirror / file_name, **kwargs)
    return mirror / file_name, truth


def cifar(archive: Path, **overrides) -> dict:
    """The cifar10 config pointed at `archive`'s folder, with its checksums, download off."""
    found = {"mirror_dirs": [str(archive.parent)], "allow_download": False}
    checksums = {"official_md5": md5(archive), "png_sha256": sha256(archive)}
    return config("cifar10", **{**found, **checksums, **overrides})


def faces(mirror: Path, sha: str = "0" * 64) -> dict:
    sizes = {"image_size": 32, "crop_fraction": 1.0, "max_images": 0, "test_count": 4}
    return config("faces", mirror_dirs=[str(mirror)], archive_sha256=sha, **sizes)


def faces_archive(tmp_path: Path, **kwargs) -> tuple[Path, dict, dict]:
    """A mirror with celeba-10k.tar.gz, its truth, and the faces config pointed at it."""
    archive, truth = mirror_with(tmp_path, write_celeba_archive, "celeba-10k.tar.gz", **kwargs)
    return archive, truth, faces(archive.parent, sha256(archive))


def pairs(images, labels) -> list:
    return sorted((int(y), x.tobytes()) for x, y in zip(images, labels, strict=True))


def write_official_archive(path: Path, replace: dict[str, bytes] | None = None) -> dict:
    """The official `cifar-10-python.tar.gz` layout: pickled dicts with str keys (as torchvision
    loads the Python 2 originals), CHW-flat rows; `replace` maps a member name (e.g.
    "data_batch_2") to the bytes written instead."""
    x_train, y_train = tiny_images(50, seed=1)
    x_test, y_test = tiny_images(20, seed=2)

    def batch(images: np.ndarray, labels: np.ndarray) -> dict:
        flat = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
        return {"data": flat, "labels": labels.tolist()}

    members = {"batches.meta": {"label_names": list(cifar10.CIFAR10_CLASSES)}}
    for i in range(5):
        rows = slice(10 * i, 10 * (i + 1))
        members[f"data_batch_{i + 1}"] = batch(x_train[rows], y_train[rows])
    members["test_batch"] = batch(x_test, y_test)
    with tarfile.open(path, "w:gz") as tar:
        for name, content in members.items():
            data = (replace or {}).get(name, pickle.dumps(content, protocol=2))
            _add_bytes(tar, f"cifar-10-batches-py/{name}", data)
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


ARCHIVES = {  # what writes each, the key of its pinned checksum, the checksum
    "cifar-10-python.tar.gz": (write_official_archive, "official_md5", md5),
    "cifar10-png.tar.gz": (write_png_archive, "png_sha256", sha256),
    "celeba-10k.tar.gz": (write_celeba_archive, "archive_sha256", sha256),
}


@pytest.mark.parametrize("file_name", ARCHIVES)
def test_a_wrong_checksum_is_refused_unopened_and_a_truncated_archive_named(
    tmp_path, no_env_faces, monkeypatch, file_name
):
    writer, key, digest = ARCHIVES[file_name]
    archive, _ = mirror_with(tmp_path, writer, file_name)
    settings = faces(archive.parent) if key == "archive_sha256" else cifar(archive)
    wrong = "0" * len(digest(archive))
    with monkeypatch.context() as unverified:  # nothing is read from an unverified file
        unverified.setattr(tarfile, "open", lambda *a, **k: pytest.fail("opened it unverified"))
        checksum = rf"{file_name}: {digest.__name__} is [0-9a-f]{{{len(wrong)}}}, expected {wrong}"
        with pytest.raises(VaelabError, match=checksum):
            datasets.fetch({**settings, key: wrong})
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(VaelabError, match=f"{file_name}: corrupt or truncated archive"):
        datasets.fetch({**settings, key: digest(archive)})
    assert_nothing_written()


MIRRORED = {"cifar10": "cifar10-png.tar.gz", "faces": "celeba-10k.tar.gz"}  # the team mirror's


@pytest.mark.parametrize("name", MIRRORED)
def test_the_default_mirror_matches_the_pinned_checksums(name):
    """The team mirror beside the checkout (CI has it) holds exactly the pinned archives."""
    settings = dataset_config(PARAMS, name)
    archive = ROOT / settings["mirror_dirs"][0] / MIRRORED[name]
    if not archive.is_file():
        pytest.skip("no dataset mirror beside the checkout")
    verify_checksum(archive, "sha256", settings[ARCHIVES[MIRRORED[name]][1]])


# --- CIFAR-10 -------------------------------------------------------------------------------


def accept_batches_of(archive: Path, monkeypatch) -> None:
    """torchvision reads only batch files with the official release's md5s, which a test archive
    cannot have: make its list the md5s of `archive`'s batch files instead."""
    md5s = {}
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            md5s[Path(member.name).name] = hashlib.md5(tar.extractfile(member).read()).hexdigest()
    train = [[name, md5s[name]] for name, _ in CIFAR10.train_list]
    monkeypatch.setattr(CIFAR10, "train_list", train)
    monkeypatch.setattr(CIFAR10, "test_list", [["test_batch", md5s["test_batch"]]])
    monkeypatch.setattr(CIFAR10, "meta", {**CIFAR10.meta, "md5": md5s["batches.meta"]})


def test_official_pickled_archive_loads_and_limits_keep_the_first_images(
    tmp_path, no_env_mirror, monkeypatch, capsys
):
    archive, truth = mirror_with(tmp_path, write_official_archive, "cifar-10-python.tar.gz")
    accept_batches_of(archive, monkeypatch)
    settings = cifar(archive)
    assert datasets.fetch(settings) == f"{archive}: 50 training and 20 test images"
    assert "wrote data/cifar10.npz" in capsys.readouterr().out
    dataset = datasets.load("cifar10")
    for key in ("x_train", "y_train", "x_test", "y_test"):  # (50, 32, 32, 3) images
        assert np.array_equal(dataset[key].numpy(), truth[key]), key
    assert dataset["x_train"].dtype == torch.uint8 and dataset["y_train"].dtype == torch.int64
    assert dataset["classes"] == list(cifar10.CIFAR10_CLASSES)
    assert dataset["name"] == "cifar10" and dataset["source"] == str(archive)
    limits = {**settings, "train_limit": 7, "test_limit": 3}
    limited = datasets.load("cifar10", limits)
    assert len(limited["y_train"]) == 7 and len(limited["x_test"]) == 3
    assert np.array_equal(limited["x_train"].numpy(), truth["x_train"][:7])
    assert len(datasets.load("cifar10", {**limits, "train_limit": 0})["x_train"]) == 50


def test_image_folder_archive_loads_in_a_fixed_order_and_the_environment_mirror_wins(
    tmp_path, no_env_mirror, monkeypatch
):
    archive, truth = mirror_with(tmp_path, write_png_archive, "cifar10-png.tar.gz")
    datasets.fetch(cifar(archive))
    dataset = datasets.load("cifar10")
    assert dataset["x_test"].shape == (20, 32, 32, 3) and dataset["source"] == str(archive)
    # Same images and labels as written, in a fixed shuffled order: compare as sets of pairs.
    written = pairs(truth["x_train"], truth["y_train"])
    assert pairs(dataset["x_train"].numpy(), dataset["y_train"].numpy()) == written
    datasets.fetch(cifar(archive, name="again"))
    assert torch.equal(datasets.load("again")["x_train"], dataset["x_train"])
    elsewhere = tmp_path / "cifar10-png.tar.gz"
    write_png_archive(elsewhere, train_count=30)
    monkeypatch.setenv("VAELAB_DATA_DIR", str(tmp_path))  # wins over the params' mirror
    datasets.fetch(cifar(archive, png_sha256=sha256(elsewhere)))
    assert len(datasets.load("cifar10")["x_train"]) == 30


class Hostile:
    """What a hostile batch holds: plain pickle would call `os.system(code)` while loading it."""

    def __init__(self, code: str):
        self.code = code

    def __reduce__(self):
        return os.system, (self.code,)


HOSTILE = pickle.dumps({"data": Hostile("touch pwned"), "labels": [0]}, protocol=2)


def test_the_hostile_batch_runs_its_code_under_plain_pickle():
    pickle.loads(HOSTILE)
    assert Path("pwned").exists()


def test_a_batch_that_is_not_the_official_one_is_never_unpickled(
    tmp_path, no_env_mirror, monkeypatch
):
    archive, _ = mirror_with(tmp_path, write_official_archive, "cifar-10-python.tar.gz")
    accept_batches_of(archive, monkeypatch)  # every batch but the one replaced below passes
    write_official_archive(archive, replace={"data_batch_2": HOSTILE})
    with pytest.raises(VaelabError) as error:
        datasets.fetch(cifar(archive))  # the archive's md5 is right: torchvision refuses the batch
    assert not Path("pwned").exists()
    assert str(error.value) == (
        f"{archive}: a cifar-10-batches-py batch is missing or not the official one; replace "
        "the archive with the official release"
    )
    assert_nothing_written()


NINE = cifar10.CIFAR10_CLASSES[:9]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"corrupt": "cifar10/train/airplane/00000.png"}, r"00000.png does not decode as PNG"),
        ({"size": 16}, r"expected RGB 32x32"),
        ({"classes": NINE}, r"9 class folders, expected the 10"),
        ({"classes": (*NINE, "unicorn")}, r"unicorn is not a CIFAR-10 class"),
    ],
    ids=["corrupt png", "wrong size", "nine classes", "foreign class"],
)
def test_bad_image_folder_archives_fail_clearly_and_write_nothing(
    tmp_path, no_env_mirror, kwargs, message
):
    archive, _ = mirror_with(tmp_path, write_png_archive, "cifar10-png.tar.gz", **kwargs)
    with pytest.raises(VaelabError, match=message):
        datasets.fetch(cifar(archive))
    assert_nothing_written()


def test_no_mirror_and_no_network_names_both_ways_and_a_download_is_read_like_a_mirror(
    tmp_path, no_env_mirror, monkeypatch
):
    served = tmp_path / "server.tar.gz"  # offline until it exists

    def download_url(url, root, filename, md5):
        Path(root).mkdir(parents=True)  # as torchvision does before it connects
        if not served.exists():
            raise urllib.error.URLError("Name or service not known")
        (Path(root) / filename).write_bytes(served.read_bytes())

    monkeypatch.setattr(torchvision.datasets.utils, "download_url", download_url)
    empty = str(tmp_path / "empty")
    with pytest.raises(VaelabError, match=r"could not download CIFAR-10.*VAELAB_DATA_DIR"):
        datasets.fetch(config("cifar10", mirror_dirs=[empty], allow_download=True))
    assert_nothing_written()  # neither data/download nor data/ is left behind, empty
    off = r"download is off; set VAELAB_DATA_DIR.*datasets.cifar10.allow_download: true"
    with pytest.raises(VaelabError, match=off):
        datasets.fetch(config("cifar10", mirror_dirs=[empty], allow_download=False))
    assert_nothing_written()
    truth = write_official_archive(served)
    accept_batches_of(served, monkeypatch)
    where = datasets.fetch(config("cifar10", mirror_dirs=[empty], official_md5=md5(served)))
    assert where.startswith("torchvision download into data/download")
    assert np.array_equal(datasets.load("cifar10")["y_test"].numpy(), truth["y_test"])


def test_missing_or_unreadable_dataset_file():
    with pytest.raises(VaelabError, match=r"data/cifar10.npz is missing; run fetch@cifar10 first"):
        datasets.load("cifar10")
    Path("data").mkdir()
    Path("data/cifar10.npz").write_bytes(b"garbage")
    with pytest.raises(VaelabError, match="unreadable"):
        datasets.load("cifar10")
    np.savez("data/cifar10.npz", images=np.zeros((2, 3)))
    with pytest.raises(VaelabError, match=r"no uint8 \(N, H, W, C\) x_train.*rerun fetch@cifar10"):
        datasets.load("cifar10")


def test_model_input_is_dequantised_channels_last_and_display_is_exact():
    images = torch.tensor([[[[0, 128, 255]]]], dtype=torch.uint8)  # (1, 1, 1, 3)
    cpu = torch.device("cpu")
    x = datasets.to_model_input(images, cpu, torch.Generator().manual_seed(0))
    k = torch.tensor([0.0, 128.0, 255.0]).view(1, 3, 1, 1)
    assert x.shape == (1, 3, 1, 1) and torch.all(x >= k / 256) and torch.all(x < (k + 1) / 256)
    # A seeded generator repeats exactly.
    assert torch.equal(x, datasets.to_model_input(images, cpu, torch.Generator().manual_seed(0)))
    batch = datasets.to_model_input(torch.zeros(2, 4, 4, 3, dtype=torch.uint8), cpu)
    assert batch.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(datasets.to_display(images), k / 255)


# --- CelebA ---------------------------------------------------------------------------------


def test_mirror_archive_becomes_cropped_uint8_faces_with_0_1_attributes(tmp_path, no_env_faces):
    archive, truth, settings = faces_archive(tmp_path, count=12)
    assert datasets.fetch(settings) == f"{archive}: 8 training and 4 test faces"
    dataset = datasets.load("faces")
    assert dataset["x_train"].dtype == torch.uint8 and dataset["x_train"].shape == (8, 32, 32, 3)
    assert dataset["x_test"].shape == (4, 32, 32, 3) and dataset["source"] == str(archive)
    # +1/-1 in the official file -> 1/0; the last images are the test split.
    attributes = torch.cat([dataset["attributes_train"], dataset["attributes_test"]])
    assert attributes.dtype == torch.int64
    assert np.array_equal(attributes.numpy(), truth["attributes"] > 0)
    assert dataset["attribute_names"] == list(CELEBA_ATTRIBUTES)
    assert dataset["files_test"] == truth["names"][8:]
    # The centre of each face is its disc's colour (JPEG is lossy: within a few levels).
    centre_colours = dataset["x_test"][:, 16, 16].numpy().astype(int)
    assert np.abs(centre_colours - truth["images"][8:, 54, 44].astype(int)).max() <= 12


def test_crop_fraction_keeps_the_centre_square():
    image = np.zeros((100, 60, 3), dtype=np.uint8)  # 60 wide, 100 high
    image[20:80, :, 0] = 255  # the centre 60x60 square is red
    cropped = celeba.crop_and_resize(Image.fromarray(image), 30, 1.0)
    assert cropped.shape == (30, 30, 3) and cropped[:, :, 0].min() > 240
    half = celeba.crop_and_resize(Image.fromarray(image), 30, 0.5)  # 30x30 around the centre
    assert half[:, :, 0].min() > 240 and half[:, :, 1].max() < 10


FACES = [f"{i + 1:06d}.jpg" for i in range(24)]  # write_celeba_archive's
_, FACE_ATTRIBUTES = celeba_faces(24)
NO_ROW_6 = attribute_file_text(FACES[:5] + FACES[6:], np.delete(FACE_ATTRIBUTES, 5, axis=0))
CORRUPT_JPEG = r"celeba-10k.tar.gz: 000007.jpg does not decode as an image"


def damaged(line: int, replacement: str | None) -> dict:
    """write_celeba_archive's attribute file with `line` replaced (None: left out)."""
    lines = attribute_file_text(FACES, FACE_ATTRIBUTES).splitlines()
    lines[line - 1 : line] = [] if replacement is None else [replacement]
    return {"attribute_text": "\n".join(lines) + "\n"}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"count": 4}, r"4 images, but datasets.faces.test_count holds out 4"),
        ({"attribute_text": NO_ROW_6}, r"000006.jpg \(and 0 more\) has no row in list_attr"),
        (damaged(9, "000007.jpg 1 -1 1"), r"txt: expected a row count on line 1, .* on each line"),
        (damaged(5, "000003.jpg 0" + " 1" * 39), r"row of 000003.jpg holds a value other than 1"),
        (damaged(6, "000001.jpg" + " 1" * 40), r"txt: 000001.jpg has more than one row"),
        (damaged(26, None), r"23 rows, but line 1 announces 24"),
        (damaged(1, "many"), r"txt: expected a row count on line 1, the attribute names"),
        ({"corrupt": "000007.jpg:garbage"}, CORRUPT_JPEG),
        ({"corrupt": "000007.jpg:truncated"}, CORRUPT_JPEG),
    ],
    ids=["few", "no row", "short", "value", "twice", "missing", "header", "garbage", "truncated"],
)
def test_a_bad_faces_archive_fails_clearly_and_writes_nothing(
    tmp_path, no_env_faces, kwargs, message
):
    _, _, settings = faces_archive(tmp_path, **kwargs)
    with pytest.raises(VaelabError, match=message):
        datasets.fetch(settings)
    assert_nothing_written()


def test_official_torchvision_layout_and_the_environment_variable(
    tmp_path, no_env_faces, monkeypatch
):
    with pytest.raises(VaelabError, match=r"no faces found: .* set VAELAB_FACES_DIR"):
        datasets.fetch(faces(tmp_path / "empty"))
    user_copy = tmp_path / "user"
    root, (images, attributes) = user_copy / "celeba", celeba_faces(10, size=(40, 48))
    (root / "img_align_celeba").mkdir(parents=True)
    for name, image in zip(FACES[:10], images, strict=True):
        (root / "img_align_celeba" / name).write_bytes(jpeg_bytes(image))
    (root / "list_attr_celeba.txt").write_text(attribute_file_text(FACES[:10], attributes))
    _, _, settings = faces_archive(tmp_path, count=20)
    monkeypatch.setenv("VAELAB_FACES_DIR", str(user_copy))  # wins over the mirror
    assert datasets.fetch(settings) == f"{root}: 6 training and 4 test faces"
    assert np.array_equal(datasets.load("faces")["attributes_train"].numpy(), attributes[:6] > 0)


# --- shapes ---------------------------------------------------------------------------------

TINY = {"shapes": list(shapes.SHAPE_KINDS), "hue": 3, "scale": 2, "rotation": 2, "x": 3, "y": 2}
BASE = {"kind": "triangle", "hue": 0.0, "scale": 6.0, "rotation": 30.0, "x": 16.0, "y": 16.0}


def tiny_shapes(name: str = "shapes", test_count: int = 20, seed: int = 0, **levels) -> dict:
    return config("shapes", name=name, **{**TINY, **levels}, test_count=test_count, seed=seed)


def test_every_factor_combination_is_drawn_once_and_the_seed_only_moves_the_split():
    where = datasets.fetch(tiny_shapes(seed=3))
    data = datasets.load("shapes")
    assert where == data["source"] + ": 196 training and 20 test images"
    assert data["name"] == "shapes" and data["source"].startswith("drawn: every combination")
    assert data["factor_names"] == list(shapes.FACTORS)
    assert data["x_test"].shape == (20, 32, 32, 3) and data["x_train"].dtype == torch.uint8
    assert data["factors_train"].dtype == torch.int64
    everything = torch.cat([data["factors_train"], data["factors_test"]]).tolist()
    levels = [range(len(values)) for values in data["factor_values"].values()]
    assert sorted(map(tuple, everything)) == list(itertools.product(*levels))  # 3*3*2*2*3*2
    assert data["factor_values"]["shape"] == TINY["shapes"]
    assert data["factor_values"]["rotation"] == [0.0, 75.0]
    # Each image is the drawing of its factors.
    row = data["factors_test"][0].tolist()
    drawn = shapes.render_shape(
        *(data["factor_values"][f][i] for f, i in zip(shapes.FACTORS, row, strict=True))
    )
    assert np.array_equal(data["x_test"][0].numpy(), drawn)
    datasets.fetch(tiny_shapes("again", seed=3))
    datasets.fetch(tiny_shapes("other", seed=4))
    again, other = datasets.load("again"), datasets.load("other")
    assert torch.equal(again["x_train"], data["x_train"])
    assert torch.equal(again["factors_test"], data["factors_test"])
    assert not torch.equal(other["factors_test"], data["factors_test"])

    def image_of_factors(d: dict) -> dict:
        factors = torch.cat([d["factors_train"], d["factors_test"]]).tolist()
        images = torch.cat([d["x_train"], d["x_test"]]).numpy()
        return {tuple(f): x.tobytes() for f, x in zip(factors, images, strict=True)}

    # The same factors always give the same image, whichever split it landed in.
    assert image_of_factors(other) == image_of_factors(data)


MOVES = {"hue": 0.5, "scale": 4.0, "rotation": 45.0, "x": 12.0, "y": 20.0}  # from BASE


@pytest.mark.parametrize("factor, other", [("kind", "square"), ("kind", "ellipse"), *MOVES.items()])
def test_changing_one_factor_changes_the_image(factor, other):
    before = shapes.render_shape(**BASE)
    after = shapes.render_shape(**{**BASE, factor: other})
    assert before.shape == (32, 32, 3) and before.dtype == np.uint8
    assert np.abs(before.astype(int) - after.astype(int)).sum() > 100


@pytest.mark.parametrize("kind", ["square", "ellipse", "triangle"])
def test_every_rotation_level_is_visible_on_every_shape(kind):
    values = shapes.factor_values({**TINY, "rotation": 6})["rotation"]
    images = [shapes.render_shape(kind, 0.3, 7.0, r, 16.0, 16.0).astype(int) for r in values]
    for i, j in itertools.combinations(range(len(values)), 2):
        assert np.abs(images[i] - images[j]).sum() > 100, (kind, values[i], values[j])


def test_the_shape_sits_at_its_position_in_its_colour():
    image = shapes.render_shape("square", 1 / 3, 5.0, 0.0, 9.0, 22.0)  # hue 1/3 is pure green
    ys, xs = np.nonzero(image.sum(axis=2) > 0)
    assert abs(xs.mean() + 0.5 - 9.0) < 0.6 and abs(ys.mean() + 0.5 - 22.0) < 0.6
    assert image[22, 9].tolist() == [0, 255, 0]
    assert image[0, 0].sum() == 0  # plain black background


def _extent(image: np.ndarray) -> tuple[int, int]:
    ys, xs = np.nonzero(image.sum(axis=2))
    return xs.max() - xs.min(), ys.max() - ys.min()


def test_the_largest_shape_at_the_edge_is_not_cut():
    values = shapes.factor_values({**TINY, "scale": 4, "x": 6, "y": 6})
    size = max(values["scale"])
    corners = ((min(values["x"]), max(values["y"])), (max(values["x"]), min(values["y"])))
    for kind in ("square", "ellipse", "triangle"):
        for rotation in (0.0, 45.0):
            width, height = _extent(shapes.render_shape(kind, 0.0, size, rotation, 16.0, 16.0))
            for x, y in corners:
                at_edge = _extent(shapes.render_shape(kind, 0.0, size, rotation, x, y))
                assert abs(at_edge[0] - width) <= 1 and abs(at_edge[1] - height) <= 1, (kind, x, y)


@pytest.mark.parametrize(
    "levels, test_count, message",
    [
        ({"shapes": ["square", "circle"]}, 5, r"datasets.shapes.shapes must be distinct names"),
        ({"shapes": ["square", "square"]}, 5, r"datasets.shapes.shapes must be distinct names"),
        ({}, 216, r"datasets.shapes.test_count must be an integer between 1 and 215"),
    ],
)
def test_bad_generator_params_fail_in_one_line(levels, test_count, message):
    with pytest.raises(VaelabError, match=message) as error:
        datasets.fetch(tiny_shapes(test_count=test_count, **levels))
    assert "\n" not in str(error.value)
    assert_nothing_written()


def test_the_project_shapes_params_leave_enough_training_codes():
    settings = dataset_config(PARAMS, "shapes")
    grid = shapes.factor_grid(shapes.factor_values(settings))
    levels = [len(settings["shapes"])] + [settings[f] for f in shapes.FACTORS[1:]]
    assert len(grid) == math.prod(levels)
    assert len(grid) - settings["test_count"] >= PARAMS["evaluate"]["shapes"]["code_count"]
