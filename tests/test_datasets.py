"""datasets/: every source fetched into one .npz layout, bad inputs refused in one line, loading."""

import math
import os
import pickle
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import (
    CELEBA_ATTRIBUTES,
    attribute_file_text,
    celeba_faces,
    jpeg_bytes,
    md5,
    sha256,
    write_celeba_archive,
    write_official_archive,
    write_png_archive,
)
from vaelab import datasets
from vaelab.config import dataset_config, evaluate_config, load_params
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


def pairs(images, labels) -> list:
    return sorted(
        (int(label), image.tobytes()) for image, label in zip(images, labels, strict=True)
    )


# --- CIFAR-10 -------------------------------------------------------------------------------


def test_official_pickled_archive_loads_and_limits_keep_the_first_images(
    tmp_path, no_env_mirror, capsys
):
    archive, truth = mirror_with(tmp_path, write_official_archive, "cifar-10-python.tar.gz")
    settings = cifar(archive)
    where = datasets.fetch(settings)
    assert where.startswith(str(archive)) and "50 training and 20 test images" in where
    assert "wrote data/cifar10.npz" in capsys.readouterr().out
    dataset = datasets.load("cifar10")
    for key in ("x_train", "y_train", "x_test", "y_test"):  # (50, 32, 32, 3) images
        assert np.array_equal(dataset[key].numpy(), truth[key]), key
    assert dataset["x_train"].dtype == torch.uint8 and dataset["y_train"].dtype == torch.int64
    assert dataset["classes"][0] == "airplane" and len(dataset["classes"]) == 10
    assert dataset["name"] == "cifar10" and dataset["source"] == str(archive)
    limits = {**settings, "train_limit": 7, "test_limit": 3}
    limited = datasets.load("cifar10", limits)
    assert len(limited["x_train"]) == len(limited["y_train"]) == 7 and len(limited["x_test"]) == 3
    assert np.array_equal(limited["x_train"].numpy(), truth["x_train"][:7])
    assert len(datasets.load("cifar10", {**limits, "train_limit": 0})["x_train"]) == 50


def test_image_folder_archive_loads_in_a_fixed_order_and_the_environment_mirror_wins(
    tmp_path, no_env_mirror, monkeypatch
):
    archive, truth = mirror_with(tmp_path, write_png_archive, "cifar10-png.tar.gz")
    datasets.fetch(cifar(archive))
    dataset = datasets.load("cifar10")
    assert dataset["x_train"].shape == (40, 32, 32, 3)
    assert dataset["x_test"].shape == (20, 32, 32, 3) and dataset["source"] == str(archive)
    # Same images and labels as written, in a fixed shuffled order: compare as sets of pairs.
    assert pairs(dataset["x_train"].numpy(), dataset["y_train"].numpy()) == pairs(
        truth["x_train"], truth["y_train"]
    )
    datasets.fetch(cifar(archive, name="again"))
    assert torch.equal(datasets.load("again")["x_train"], dataset["x_train"])
    elsewhere = tmp_path / "env" / "cifar10-png.tar.gz"
    elsewhere.parent.mkdir()
    write_png_archive(elsewhere, train_count=30)
    monkeypatch.setenv("VAELAB_DATA_DIR", str(elsewhere.parent))  # wins over the params' mirror
    datasets.fetch(cifar(archive, png_sha256=sha256(elsewhere)))
    assert len(datasets.load("cifar10")["x_train"]) == 30


def refuse(what: str):
    return lambda *args, **kwargs: pytest.fail(f"{what} an unverified archive")


class RunsACommand:
    """What a hostile batch holds: plain pickle would run `touch <marker>` while loading it."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch '{self.marker}'",)


class EvaluatesCode(RunsACommand):
    def __reduce__(self):
        return eval, (f"open({str(self.marker)!r}, 'w').close()",)


@pytest.mark.parametrize("payload", [RunsACommand, EvaluatesCode], ids=["os.system", "eval"])
def test_a_batch_that_would_run_code_is_refused_without_running_it(
    tmp_path, no_env_mirror, monkeypatch, payload
):
    marker = tmp_path / "pwned"
    batch = pickle.dumps({b"data": payload(marker), b"labels": [0]}, protocol=2)
    pickle.loads(batch)  # the payload is real: plain pickle runs it
    assert marker.exists()
    marker.unlink()
    archive, _ = mirror_with(
        tmp_path, write_official_archive, "cifar-10-python.tar.gz", replace={"data_batch_2": batch}
    )
    wrong = r"cifar-10-python.tar.gz: md5 is [0-9a-f]{32}, expected 0{32}"
    with monkeypatch.context() as unverified:  # a wrong checksum: refused before unpickling
        unverified.setattr(cifar10.BatchUnpickler, "load", refuse("unpickled"))
        unverified.setattr(cifar10.tarfile, "open", refuse("opened"))
        with pytest.raises(VaelabError, match=wrong):
            datasets.fetch(cifar(archive, official_md5="0" * 32))
    assert_nothing_written()
    refused = (
        r"cifar-10-python.tar.gz: cifar-10-batches-py/data_batch_2 is not a plain "
        r"CIFAR-10 batch \(refused to load \w+\.(system|eval),"
    )
    with pytest.raises(VaelabError, match=refused) as error:
        datasets.fetch(cifar(archive))  # the checksum is right: the unpickler itself refuses
    assert not marker.exists()
    assert "\n" not in str(error.value) and "replace the archive" in str(error.value)
    assert_nothing_written()


def _batch(**fields) -> bytes:
    return pickle.dumps({key.encode(): value for key, value in fields.items()}, protocol=2)


PIXELS = np.zeros((10, 3072), np.uint8)


@pytest.mark.parametrize(
    "batch, problem",
    [
        (pickle.dumps([1, 2, 3], protocol=2), r"expected a dict with b'data' and b'labels'"),
        (_batch(data=PIXELS), r"expected a dict with b'data' and b'labels'"),
        (_batch(data=PIXELS[:, :100], labels=[0] * 10), r"b'data' is ndarray \(10, 100\)"),
        (_batch(data=PIXELS.astype(np.float32), labels=[0] * 10), r"expected uint8 \(N, 3072\)"),
        (_batch(data=[[0] * 3072] * 10, labels=[0] * 10), r"b'data' is list"),
        (_batch(data=PIXELS, labels=[0] * 9), r"10 images for 9 labels"),
        (_batch(data=PIXELS, labels=["cat"] * 10), r"b'labels' is not a list of integers"),
        (b"\x80\x02}q\x00X\x01", r"is not a plain CIFAR-10 batch"),
    ],
    ids=["not a dict", "no labels", "narrow", "float", "list", "9 labels", "text labels", "cut"],
)
def test_a_malformed_batch_is_named_with_the_fix(tmp_path, no_env_mirror, batch, problem):
    archive, _ = mirror_with(
        tmp_path, write_official_archive, "cifar-10-python.tar.gz", replace={"data_batch_2": batch}
    )
    with pytest.raises(VaelabError, match=problem) as error:
        datasets.fetch(cifar(archive))
    message = str(error.value)
    assert "cifar-10-python.tar.gz: cifar-10-batches-py/data_batch_2" in message
    assert "replace the archive with the official release" in message and "\n" not in message
    assert_nothing_written()


NINE = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship")


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


@pytest.mark.parametrize("archive", ["cifar10-png.tar.gz", "cifar-10-python.tar.gz"])
def test_truncated_archive_fails_clearly_and_writes_nothing(tmp_path, no_env_mirror, archive):
    writer = write_png_archive if archive.startswith("cifar10-png") else write_official_archive
    path, _ = mirror_with(tmp_path, writer, archive)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(VaelabError, match=f"{archive}: corrupt or truncated archive"):
        datasets.fetch(cifar(path))
    assert_nothing_written()


def test_no_mirror_and_no_network_names_both_ways_and_a_download_is_read_like_a_mirror(
    tmp_path, no_env_mirror, monkeypatch
):
    def offline(download_dir, expected_md5):
        download_dir.mkdir(parents=True)  # as torchvision does before it connects
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(cifar10, "download_archive", offline)
    empty = str(tmp_path / "empty")
    with pytest.raises(VaelabError, match=r"could not download CIFAR-10.*VAELAB_DATA_DIR"):
        datasets.fetch(config("cifar10", mirror_dirs=[empty], allow_download=True))
    assert_nothing_written()  # neither data/download nor data/ is left behind, empty
    off = r"download is off; set VAELAB_DATA_DIR.*datasets.cifar10.allow_download: true"
    with pytest.raises(VaelabError, match=off):
        datasets.fetch(config("cifar10", mirror_dirs=[empty], allow_download=False))
    assert_nothing_written()

    elsewhere = tmp_path / "server.tar.gz"
    truth = write_official_archive(elsewhere)

    def download(download_dir, expected_md5):
        download_dir.mkdir(parents=True)
        (download_dir / "cifar-10-python.tar.gz").write_bytes(elsewhere.read_bytes())
        return download_dir / "cifar-10-python.tar.gz"

    monkeypatch.setattr(cifar10, "download_archive", download)
    where = datasets.fetch(config("cifar10", mirror_dirs=[empty], official_md5=md5(elsewhere)))
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
    assert x.shape == (1, 3, 1, 1)
    k = torch.tensor([0.0, 128.0, 255.0]).view(1, 3, 1, 1)
    assert torch.all(x >= k / 256) and torch.all(x < (k + 1) / 256)
    # A seeded generator repeats exactly.
    assert torch.equal(x, datasets.to_model_input(images, cpu, torch.Generator().manual_seed(0)))
    batch = datasets.to_model_input(torch.zeros(2, 4, 4, 3, dtype=torch.uint8), cpu)
    assert batch.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(datasets.to_display(images), k / 255)


def test_default_mirror_matches_the_pinned_checksums():
    """The team mirror beside the checkout (CI has it) holds exactly the pinned archives."""
    found = 0
    for name, file_name, key in (
        ("cifar10", "cifar10-png.tar.gz", "png_sha256"),
        ("faces", "celeba-10k.tar.gz", "archive_sha256"),
    ):
        settings = dataset_config(PARAMS, name)
        archive = ROOT / settings["mirror_dirs"][0] / file_name
        if archive.is_file():
            verify_checksum(archive, "sha256", settings[key])
            found += 1
    if not found:
        pytest.skip("no dataset mirror beside the checkout")


# --- CelebA ---------------------------------------------------------------------------------

NAMES = ["a.jpg", "b.jpg", "c.jpg", "d.jpg"]


def faces(mirror: Path, sha: str = "0" * 64, **overrides) -> dict:
    found = {"mirror_dirs": [str(mirror)], "archive_sha256": sha}
    sizes = {"image_size": 32, "crop_fraction": 1.0, "max_images": 0, "test_count": 4}
    return config("faces", **{**found, **sizes, **overrides})


def faces_archive(tmp_path: Path, **kwargs) -> tuple[Path, dict, dict]:
    """A mirror with celeba-10k.tar.gz, its truth, and the faces config pointed at it."""
    archive, truth = mirror_with(tmp_path, write_celeba_archive, "celeba-10k.tar.gz", **kwargs)
    return archive, truth, faces(archive.parent, sha256(archive))


def test_attribute_parser_reads_the_official_format():
    attributes = np.array([[1, -1] * 20, [-1, 1] * 20, [1] * 40, [-1] * 40], dtype=np.int8)
    names, rows = celeba.parse_attributes(attribute_file_text(NAMES, attributes), "attrs.txt")
    assert names == list(CELEBA_ATTRIBUTES)
    assert list(rows) == NAMES
    assert rows["a.jpg"].dtype == np.int8 and np.array_equal(rows["b.jpg"], attributes[1])
    assert names.index("Smiling") == 31 and rows["c.jpg"][31] == 1 and rows["d.jpg"][31] == -1


def _damage(text: str, line: int, replacement: str) -> str:
    lines = text.splitlines()
    lines[line - 1] = replacement
    return "\n".join(lines) + "\n"


GOOD = attribute_file_text(NAMES, np.ones((4, 40), dtype=np.int8))


@pytest.mark.parametrize(
    "text, message",
    [
        (
            _damage(GOOD, 4, "b.jpg " + " ".join(["1"] * 39)),
            r"line 4 \(b.jpg\) has 39 values for 40 attributes",
        ),
        (
            _damage(GOOD, 5, "c.jpg " + " ".join(["1"] * 39 + ["0"])),
            r"line 5 \(c.jpg\) holds a value other than 1 or -1",
        ),
        (_damage(GOOD, 6, "a.jpg " + " ".join(["1"] * 40)), r"line 6 repeats a.jpg"),
        ("\n".join(GOOD.splitlines()[:-1]) + "\n", r"3 rows, but line 1 announces 4"),
        (_damage(GOOD, 1, "many"), r"line 1 is 'many', expected the number of rows"),
    ],
    ids=["short row", "bad value", "duplicate", "missing row", "bad header"],
)
def test_attribute_parser_names_the_bad_row(text, message):
    with pytest.raises(VaelabError, match=message):
        celeba.parse_attributes(text, "attrs.txt")


def test_mirror_archive_becomes_cropped_uint8_faces_with_0_1_attributes(tmp_path, no_env_faces):
    archive, truth, settings = faces_archive(tmp_path, count=12)
    where = datasets.fetch(settings)
    assert "celeba-10k.tar.gz: 8 training and 4 test faces" in where
    dataset = datasets.load("faces")
    assert dataset["x_train"].dtype == torch.uint8 and dataset["x_train"].shape == (8, 32, 32, 3)
    assert dataset["x_test"].shape == (4, 32, 32, 3)
    assert dataset["attributes_train"].dtype == torch.int64
    assert dataset["attributes_train"].shape == (8, 40)
    # +1/-1 in the official file -> 1/0; the last images are the test split.
    expected = (truth["attributes"][8:] > 0).astype(np.int64)
    assert np.array_equal(dataset["attributes_test"].numpy(), expected)
    assert set(np.unique(dataset["attributes_train"].numpy())) == {0, 1}
    assert dataset["attribute_names"] == list(CELEBA_ATTRIBUTES)
    assert dataset["files_test"][0] == "000009.jpg" and dataset["source"] == str(archive)
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


@pytest.mark.parametrize("how", ["garbage", "truncated"])
def test_a_corrupt_jpeg_is_named_and_a_wrong_checksum_refused_before_decoding(
    tmp_path, no_env_faces, monkeypatch, how
):
    _, _, settings = faces_archive(tmp_path, corrupt=f"000007.jpg:{how}")
    wrong = r"celeba-10k.tar.gz: sha256 is [0-9a-f]{64}, expected 0{64}"
    with monkeypatch.context() as unverified:
        unverified.setattr(celeba.tarfile, "open", refuse("opened"))
        with pytest.raises(VaelabError, match=wrong):
            datasets.fetch({**settings, "archive_sha256": "0" * 64})
    assert_nothing_written()
    corrupt = r"celeba-10k.tar.gz: 000007.jpg does not decode as an image"
    with pytest.raises(VaelabError, match=corrupt):
        datasets.fetch(settings)
    assert_nothing_written()


def test_no_source_too_few_images_or_unmatched_attribute_rows_fail_clearly(tmp_path, no_env_faces):
    with pytest.raises(VaelabError, match=r"no faces found: .* set VAELAB_FACES_DIR"):
        datasets.fetch(faces(tmp_path / "empty"))
    _, _, settings = faces_archive(tmp_path, count=4)
    with pytest.raises(VaelabError, match=r"4 images, but datasets.faces.test_count holds out 4"):
        datasets.fetch(settings)
    names = [f"{i + 1:06d}.jpg" for i in range(24)]
    _, attributes = celeba_faces(24)
    # No row for 000006.jpg:
    text = attribute_file_text(names[:5] + names[6:], np.delete(attributes, 5, axis=0))
    _, _, settings = faces_archive(tmp_path, attribute_text=text)
    no_row = r"000006.jpg \(and 0 more\) has no row in list_attr_celeba.txt"
    with pytest.raises(VaelabError, match=no_row):
        datasets.fetch(settings)
    short = _damage(attribute_file_text(names, attributes), 9, "000007.jpg 1 -1 1")
    _, _, settings = faces_archive(tmp_path, attribute_text=short)
    with pytest.raises(VaelabError, match=r"line 9 \(000007.jpg\) has 3 values for 40 attributes"):
        datasets.fetch(settings)
    assert_nothing_written()


def test_official_torchvision_layout_and_the_environment_variable(
    tmp_path, no_env_faces, monkeypatch
):
    user_copy = tmp_path / "user"
    root, (images, attributes) = user_copy / "celeba", celeba_faces(10, size=(40, 48))
    (root / "img_align_celeba").mkdir(parents=True)
    names = [f"{i + 1:06d}.jpg" for i in range(10)]
    for name, image in zip(names, images, strict=True):
        (root / "img_align_celeba" / name).write_bytes(jpeg_bytes(image))
    (root / "list_attr_celeba.txt").write_text(attribute_file_text(names, attributes))
    _, _, settings = faces_archive(tmp_path, count=20)
    monkeypatch.setenv("VAELAB_FACES_DIR", str(user_copy))  # wins over the mirror
    where = datasets.fetch(settings)
    assert where.startswith(str(root))
    dataset = datasets.load("faces")
    assert len(dataset["x_train"]) == 6
    expected = (attributes[:6] > 0).astype(np.int64)
    assert np.array_equal(dataset["attributes_train"].numpy(), expected)


# --- shapes ---------------------------------------------------------------------------------

TINY = {
    "shapes": ["square", "ellipse", "triangle"],
    "hue": 3,
    "scale": 2,
    "rotation": 2,
    "x": 3,
    "y": 2,
}
BASE = {"kind": "triangle", "hue": 0.0, "scale": 6.0, "rotation": 30.0, "x": 16.0, "y": 16.0}


def tiny_shapes(name: str = "shapes", test_count: int = 20, seed: int = 0, **levels) -> dict:
    return config("shapes", name=name, **{**TINY, **levels}, test_count=test_count, seed=seed)


def test_the_dataset_holds_every_factor_combination_once():
    where = datasets.fetch(tiny_shapes())
    expected = 3 * 3 * 2 * 2 * 3 * 2
    assert f"{expected - 20} training and 20 test images" in where
    data = datasets.load("shapes")
    assert data["name"] == "shapes" and data["source"].startswith("drawn: every combination")
    assert data["factor_names"] == list(shapes.FACTORS)
    assert data["x_train"].shape == (expected - 20, 32, 32, 3)
    assert data["x_test"].shape == (20, 32, 32, 3)
    assert data["x_train"].dtype == torch.uint8 and data["factors_train"].dtype == torch.int64
    everything = torch.cat([data["factors_train"], data["factors_test"]]).numpy()
    assert len({tuple(row) for row in everything}) == expected  # every combination, none twice
    for k, name in enumerate(shapes.FACTORS):
        assert set(everything[:, k]) == set(range(len(data["factor_values"][name])))
    assert data["factor_values"]["shape"] == TINY["shapes"]
    assert data["factor_values"]["rotation"] == [0.0, 75.0]
    # Each image is the drawing of its factors.
    row = data["factors_test"][0].tolist()
    drawn = shapes.render_shape(
        *(data["factor_values"][f][i] for f, i in zip(shapes.FACTORS, row, strict=True))
    )
    assert np.array_equal(data["x_test"][0].numpy(), drawn)


def test_generation_is_deterministic_and_the_seed_only_moves_the_split():
    datasets.fetch(tiny_shapes("a", seed=3))
    datasets.fetch(tiny_shapes("b", seed=3))
    datasets.fetch(tiny_shapes("c", seed=4))
    a, b, c = (datasets.load(n) for n in "abc")
    assert torch.equal(a["x_train"], b["x_train"])
    assert torch.equal(a["factors_test"], b["factors_test"])
    assert not torch.equal(a["factors_test"], c["factors_test"])
    # The same factors always give the same image, whichever split it landed in.
    images_a = {
        tuple(f.tolist()): x.numpy().tobytes()
        for f, x in zip(a["factors_train"], a["x_train"], strict=True)
    }
    shared = 0
    for f, x in zip(c["factors_train"], c["x_train"], strict=True):
        if tuple(f.tolist()) in images_a:
            assert images_a[tuple(f.tolist())] == x.numpy().tobytes()
            shared += 1
    assert shared > 100


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
    for i in range(len(images)):
        for j in range(i + 1, len(images)):
            assert np.abs(images[i] - images[j]).sum() > 100, (kind, values[i], values[j])


def test_the_shape_sits_at_its_position_in_its_colour():
    image = shapes.render_shape("square", 1 / 3, 5.0, 0.0, 9.0, 22.0)  # hue 1/3 is pure green
    ys, xs = np.nonzero(image.sum(axis=2) > 0)
    assert abs(xs.mean() + 0.5 - 9.0) < 0.6 and abs(ys.mean() + 0.5 - 22.0) < 0.6
    inside = image[22, 9]
    assert inside[1] == 255 and inside[0] == 0 and inside[2] == 0
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
        ({"hue": 0}, 5, r"datasets.shapes.hue must be a positive integer"),
        ({"x": 2.5}, 5, r"datasets.shapes.x must be a positive integer"),
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
    assert len(grid) - settings["test_count"] >= evaluate_config(PARAMS, "shapes")["code_count"]
