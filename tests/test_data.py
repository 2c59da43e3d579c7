import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import md5, sha256, write_official_archive, write_png_archive
from vaelab import data as data_module
from vaelab.data import fetch_cifar10, load_dataset, to_model_input
from vaelab.errors import VaelabError


def fetch(out_dir: Path, mirror: Path, md5_sum="0" * 32, sha="0" * 64, allow_download=False):
    return fetch_cifar10(out_dir / "cifar10.npz", [str(mirror)], md5_sum, sha, out_dir / "download", allow_download)


def assert_nothing_written(out_dir: Path):
    assert not out_dir.exists() or list(out_dir.iterdir()) == [], list(out_dir.iterdir())


def test_official_pickled_archive_loads(tmp_path, no_env_mirror):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    truth = write_official_archive(mirror / "cifar-10-python.tar.gz")
    source = fetch(tmp_path / "data", mirror, md5_sum=md5(mirror / "cifar-10-python.tar.gz"))
    assert source.endswith("cifar-10-python.tar.gz")
    dataset = load_dataset(tmp_path / "data" / "cifar10.npz")
    for key in ("x_train", "y_train", "x_test", "y_test"):
        assert np.array_equal(dataset[key].numpy(), truth[key]), key
    assert dataset["x_train"].dtype == torch.uint8 and dataset["x_train"].shape == (50, 32, 32, 3)
    assert dataset["classes"][0] == "airplane" and len(dataset["classes"]) == 10


def test_image_folder_archive_loads_in_a_fixed_order(tmp_path, no_env_mirror):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    truth = write_png_archive(mirror / "cifar10-png.tar.gz")
    fetch(tmp_path / "data", mirror, sha=sha256(mirror / "cifar10-png.tar.gz"))
    dataset = load_dataset(tmp_path / "data" / "cifar10.npz")
    assert dataset["x_train"].shape == (40, 32, 32, 3) and dataset["x_test"].shape == (20, 32, 32, 3)
    # Same images and labels as written (order shuffled by a fixed permutation): compare as sets of pairs.
    pairs = lambda x, y: sorted((int(label), img.tobytes()) for img, label in zip(x, y))  # noqa: E731
    assert pairs(dataset["x_train"].numpy(), dataset["y_train"].numpy()) == pairs(truth["x_train"], truth["y_train"])
    fetch(tmp_path / "again", mirror, sha=sha256(mirror / "cifar10-png.tar.gz"))
    assert torch.equal(load_dataset(tmp_path / "again" / "cifar10.npz")["x_train"], dataset["x_train"])


def test_environment_variable_mirror_wins(tmp_path, monkeypatch):
    first, second = tmp_path / "env", tmp_path / "param"
    first.mkdir()
    second.mkdir()
    write_png_archive(first / "cifar10-png.tar.gz", train_count=30)
    write_png_archive(second / "cifar10-png.tar.gz", train_count=50)
    monkeypatch.setenv("VAELAB_DATA_DIR", str(first))
    fetch(tmp_path / "data", second, sha=sha256(first / "cifar10-png.tar.gz"))
    assert len(load_dataset(tmp_path / "data" / "cifar10.npz")["x_train"]) == 30


def test_wrong_checksum_is_refused_before_unpickling(tmp_path, no_env_mirror, monkeypatch):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    write_official_archive(mirror / "cifar-10-python.tar.gz")
    monkeypatch.setattr(data_module.pickle, "load", lambda *a, **k: pytest.fail("unpickled an unverified file"))
    with pytest.raises(VaelabError, match=r"cifar-10-python.tar.gz: md5 is .* expected 0{32}"):
        fetch(tmp_path / "data", mirror)
    assert_nothing_written(tmp_path / "data")


@pytest.mark.parametrize("problem, kwargs, message", [
    ("corrupt png", {"corrupt": "cifar10/train/airplane/00000.png"}, r"00000.png does not decode as PNG"),
    ("wrong size", {"size": 16}, r"expected RGB 32x32"),
    ("nine classes", {"classes": ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship")},
     r"9 class folders, expected the 10"),
    ("foreign class", {"classes": ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                                   "unicorn")}, r"unicorn is not a CIFAR-10 class"),
])
def test_bad_image_folder_archives_fail_clearly_and_write_nothing(tmp_path, no_env_mirror, problem, kwargs, message):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    write_png_archive(mirror / "cifar10-png.tar.gz", **kwargs)
    with pytest.raises(VaelabError, match=message):
        fetch(tmp_path / "data", mirror, sha=sha256(mirror / "cifar10-png.tar.gz"))
    assert_nothing_written(tmp_path / "data")


@pytest.mark.parametrize("archive", ["cifar10-png.tar.gz", "cifar-10-python.tar.gz"])
def test_truncated_archive_fails_clearly_and_writes_nothing(tmp_path, no_env_mirror, archive):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    path = mirror / archive
    (write_png_archive if archive.startswith("cifar10-png") else write_official_archive)(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(VaelabError, match="corrupt or truncated"):
        fetch(tmp_path / "data", mirror, md5_sum=md5(path), sha=sha256(path))
    assert_nothing_written(tmp_path / "data")


def test_no_mirror_and_no_network_names_both_ways_to_get_the_data(tmp_path, no_env_mirror, monkeypatch):
    def offline(download_dir):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(data_module, "download_with_torchvision", offline)
    with pytest.raises(VaelabError, match=r"could not download CIFAR-10.*VAELAB_DATA_DIR"):
        fetch(tmp_path / "data", tmp_path / "empty", allow_download=True)
    with pytest.raises(VaelabError, match=r"download is off; set VAELAB_DATA_DIR"):
        fetch(tmp_path / "data", tmp_path / "empty", allow_download=False)
    assert_nothing_written(tmp_path / "data")


def test_missing_or_unreadable_dataset_file(tmp_path):
    with pytest.raises(VaelabError, match="run the fetch stage first"):
        load_dataset(tmp_path / "cifar10.npz")
    (tmp_path / "cifar10.npz").write_bytes(b"garbage")
    with pytest.raises(VaelabError, match="unreadable"):
        load_dataset(tmp_path / "cifar10.npz")


def test_model_input_is_dequantised_channels_last():
    images = torch.tensor([[[[0, 128, 255]]]], dtype=torch.uint8)  # (1, 1, 1, 3)
    x = to_model_input(images, torch.device("cpu"), torch.Generator().manual_seed(0))
    assert x.shape == (1, 3, 1, 1)
    k = torch.tensor([0.0, 128.0, 255.0]).view(1, 3, 1, 1)
    assert torch.all(x >= k / 256) and torch.all(x < (k + 1) / 256)
    assert to_model_input(torch.zeros(2, 4, 4, 3, dtype=torch.uint8), torch.device("cpu")).is_contiguous(
        memory_format=torch.channels_last)


def test_default_mirror_matches_the_pinned_checksum():
    """The team mirror beside the checkout (CI has it) holds exactly the pinned archive."""
    from vaelab.data import verify_checksum
    from vaelab.params import load_params

    root = Path(__file__).resolve().parents[1]
    params = load_params(root / "params.yaml")
    archive = root / params["data"]["mirror_dirs"][0] / "cifar10-png.tar.gz"
    if not archive.is_file():
        pytest.skip(f"no dataset mirror at {archive.parent}")
    verify_checksum(archive, "sha256", params["data"]["png_sha256"])
