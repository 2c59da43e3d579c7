"""CelebA faces: the attribute parser, the sources, the error cases, and the conv VAE at 32 and 64 px."""

from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import (CELEBA_ATTRIBUTES, attribute_file_text, celeba_faces, jpeg_bytes, sha256,
                      write_celeba_archive)
from vaelab import faces as faces_module
from vaelab.checkpoints import load_model, save_model
from vaelab.errors import VaelabError
from vaelab.faces import fetch_faces, load_faces, parse_attributes
from vaelab.faces_training import faces_training_section
from vaelab.train import fit

NAMES = ["a.jpg", "b.jpg", "c.jpg", "d.jpg"]


def settings(mirror: Path, sha: str = "0" * 64, **overrides) -> dict:
    return {"mirror_dirs": [str(mirror)], "image_folder": None, "archive_sha256": sha, "image_size": 32,
            "crop_fraction": 1.0, "max_images": 0, "test_count": 4, **overrides}


def assert_nothing_written(out_dir: Path):
    assert not out_dir.exists() or list(out_dir.iterdir()) == [], list(out_dir.iterdir())


def test_attribute_parser_reads_the_official_format():
    attributes = np.array([[1, -1] * 20, [-1, 1] * 20, [1] * 40, [-1] * 40], dtype=np.int8)
    names, rows = parse_attributes(attribute_file_text(NAMES, attributes), "attrs.txt")
    assert names == list(CELEBA_ATTRIBUTES) and len(names) == 40
    assert list(rows) == NAMES
    assert rows["a.jpg"].dtype == np.int8 and np.array_equal(rows["b.jpg"], attributes[1])
    assert names.index("Smiling") == 31 and rows["c.jpg"][31] == 1 and rows["d.jpg"][31] == -1


def _damage(text: str, line: int, replacement: str) -> str:
    lines = text.splitlines()
    lines[line - 1] = replacement
    return "\n".join(lines) + "\n"


GOOD = attribute_file_text(NAMES, np.ones((4, 40), dtype=np.int8))


@pytest.mark.parametrize("text, message", [
    (_damage(GOOD, 4, "b.jpg " + " ".join(["1"] * 39)), r"line 4 \(b.jpg\) has 39 values for 40 attributes"),
    (_damage(GOOD, 5, "c.jpg " + " ".join(["1"] * 39 + ["0"])), r"line 5 \(c.jpg\) holds a value other than 1 or -1"),
    (_damage(GOOD, 6, "a.jpg " + " ".join(["1"] * 40)), r"line 6 repeats a.jpg"),
    ("\n".join(GOOD.splitlines()[:-1]) + "\n", r"3 rows, but line 1 announces 4"),
    (_damage(GOOD, 1, "many"), r"line 1 is 'many', expected the number of rows"),
], ids=["short row", "bad value", "duplicate", "missing row", "bad header"])
def test_attribute_parser_names_the_bad_row(text, message):
    with pytest.raises(VaelabError, match=message):
        parse_attributes(text, "attrs.txt")


def test_mirror_archive_becomes_cropped_uint8_faces_with_attributes(tmp_path, no_env_faces):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    truth = write_celeba_archive(mirror / "celeba-10k.tar.gz", count=12)
    where = fetch_faces(tmp_path / "data" / "faces.npz", settings(mirror, sha256(mirror / "celeba-10k.tar.gz")))
    assert "celeba-10k.tar.gz: 8 training and 4 test faces" in where
    faces = load_faces(tmp_path / "data" / "faces.npz")
    assert faces["x_train"].dtype == torch.uint8 and faces["x_train"].shape == (8, 32, 32, 3)
    assert faces["x_test"].shape == (4, 32, 32, 3)
    assert faces["attr_train"].dtype == torch.int8
    assert np.array_equal(faces["attr_test"].numpy(), truth["attributes"][8:])  # the last images are the test split
    assert faces["attribute_names"] == list(CELEBA_ATTRIBUTES) and faces["files_test"][0] == "000009.jpg"
    # The centre of each face is its disc's colour (JPEG is lossy: within a few levels).
    centre_colours = faces["x_test"][:, 16, 16].numpy().astype(int)
    assert np.abs(centre_colours - truth["images"][8:, 54, 44].astype(int)).max() <= 12


def test_crop_fraction_keeps_the_centre_square():
    image = np.zeros((100, 60, 3), dtype=np.uint8)  # 60 wide, 100 high
    image[20:80, :, 0] = 255                           # the centre 60x60 square is red
    from PIL import Image
    cropped = faces_module.crop_and_resize(Image.fromarray(image), 30, 1.0)
    assert cropped.shape == (30, 30, 3) and cropped[:, :, 0].min() > 240
    half = faces_module.crop_and_resize(Image.fromarray(image), 30, 0.5)  # 30x30 around the centre
    assert half[:, :, 0].min() > 240 and half[:, :, 1].max() < 10


def test_wrong_checksum_is_refused_before_anything_is_decoded(tmp_path, no_env_faces, monkeypatch):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    write_celeba_archive(mirror / "celeba-10k.tar.gz")
    monkeypatch.setattr(faces_module.tarfile, "open", lambda *a, **k: pytest.fail("opened an unverified archive"))
    with pytest.raises(VaelabError, match=r"celeba-10k.tar.gz: sha256 is [0-9a-f]{64}, expected 0{64}"):
        fetch_faces(tmp_path / "data" / "faces.npz", settings(mirror))
    assert_nothing_written(tmp_path / "data")


@pytest.mark.parametrize("how", ["garbage", "truncated"])
def test_corrupt_jpeg_is_named_and_nothing_is_written(tmp_path, no_env_faces, how):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    write_celeba_archive(mirror / "celeba-10k.tar.gz", corrupt=f"000007.jpg:{how}")
    with pytest.raises(VaelabError, match=r"celeba-10k.tar.gz: 000007.jpg does not decode as an image"):
        fetch_faces(tmp_path / "data" / "faces.npz", settings(mirror, sha256(mirror / "celeba-10k.tar.gz")))
    assert_nothing_written(tmp_path / "data")


def test_attribute_rows_that_do_not_match_the_images_fail_clearly(tmp_path, no_env_faces):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    names = [f"{i + 1:06d}.jpg" for i in range(24)]
    _, attributes = celeba_faces(24)
    text = attribute_file_text(names[:5] + names[6:], np.delete(attributes, 5, axis=0))  # no row for 000006.jpg
    write_celeba_archive(mirror / "celeba-10k.tar.gz", attribute_text=text)
    with pytest.raises(VaelabError, match=r"000006.jpg \(and 0 more\) has no row in list_attr_celeba.txt"):
        fetch_faces(tmp_path / "data" / "faces.npz", settings(mirror, sha256(mirror / "celeba-10k.tar.gz")))
    short = _damage(attribute_file_text(names, attributes), 9, "000007.jpg 1 -1 1")
    write_celeba_archive(mirror / "celeba-10k.tar.gz", attribute_text=short)
    with pytest.raises(VaelabError, match=r"line 9 \(000007.jpg\) has 3 values for 40 attributes"):
        fetch_faces(tmp_path / "data" / "faces.npz", settings(mirror, sha256(mirror / "celeba-10k.tar.gz")))
    assert_nothing_written(tmp_path / "data")


def _official_folder(root: Path, count: int = 10) -> np.ndarray:
    images, attributes = celeba_faces(count, size=(40, 48))
    folder = root / "celeba" / "img_align_celeba"
    folder.mkdir(parents=True)
    names = [f"{i + 1:06d}.jpg" for i in range(count)]
    for name, image in zip(names, images):
        (folder / name).write_bytes(jpeg_bytes(image))
    (root / "celeba" / "list_attr_celeba.txt").write_text(attribute_file_text(names, attributes))
    return attributes


def test_official_torchvision_layout_and_the_environment_variable(tmp_path, no_env_faces, monkeypatch):
    user_copy, mirror = tmp_path / "user", tmp_path / "mirror"
    mirror.mkdir()
    attributes = _official_folder(user_copy, count=10)
    write_celeba_archive(mirror / "celeba-10k.tar.gz", count=20)
    monkeypatch.setenv("VAELAB_FACES_DIR", str(user_copy))  # wins over the mirror
    where = fetch_faces(tmp_path / "data" / "faces.npz", settings(mirror, sha256(mirror / "celeba-10k.tar.gz")))
    assert where.startswith(str(user_copy / "celeba"))
    faces = load_faces(tmp_path / "data" / "faces.npz")
    assert len(faces["x_train"]) == 6 and np.array_equal(faces["attr_train"].numpy(), attributes[:6])


def test_folder_of_images_without_attributes(tmp_path, no_env_faces):
    folder = tmp_path / "my faces"
    folder.mkdir()
    images, _ = celeba_faces(9, size=(50, 50))
    for i, image in enumerate(images):
        (folder / f"face{i}.png").write_bytes(jpeg_bytes(image))  # a wrong suffix still decodes by content
    (folder / "notes.txt").write_text("not an image")
    fetch_faces(tmp_path / "data" / "faces.npz", settings(tmp_path / "no mirror", image_folder=str(folder),
                                                          test_count=3, max_images=8))
    faces = load_faces(tmp_path / "data" / "faces.npz")
    assert faces["x_train"].shape == (5, 32, 32, 3) and faces["x_test"].shape == (3, 32, 32, 3)
    assert faces["attr_train"].shape == (5, 0) and faces["attribute_names"] == []


def test_no_source_and_too_few_images_fail_in_one_line(tmp_path, no_env_faces):
    with pytest.raises(VaelabError, match=r"no faces found: .* set VAELAB_FACES_DIR"):
        fetch_faces(tmp_path / "data" / "faces.npz", settings(tmp_path / "empty"))
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    write_celeba_archive(mirror / "celeba-10k.tar.gz", count=4)
    with pytest.raises(VaelabError, match=r"4 images, but faces.test_count holds out 4"):
        fetch_faces(tmp_path / "data" / "faces.npz", settings(mirror, sha256(mirror / "celeba-10k.tar.gz")))
    assert_nothing_written(tmp_path / "data")


@pytest.mark.parametrize("size, widths", [(32, [4, 8, 8, 16]), (64, [4, 8, 8, 16, 16])])
def test_the_conv_vae_follows_the_image_size_trains_and_reloads(tmp_path, size, widths):
    params = {"faces": {"image_size": size, "crop_fraction": 0.83, "max_images": 0, "test_count": 4},
              "conv_faces": {"model": {"arch": "conv", "latent_dim": 8, "widths": widths}, "beta": 1.0,
                             "epochs": 1, "batch_size": 8, "lr": 0.001}}
    section = faces_training_section(params)
    assert section["model"]["image_size"] == size
    g = torch.Generator().manual_seed(0)
    x_train = torch.randint(0, 256, (16, size, size, 3), generator=g, dtype=torch.uint8)
    torch.manual_seed(0)
    from vaelab.models import build_model
    model = build_model(section["model"])
    history = fit(model, section, x_train, x_train[:4], torch.device("cpu"), tmp_path / "ckpt.pt", seed=0)
    assert len(history) == 1 and np.isfinite(history[0]["test_neg_elbo"])
    assert model.decode(torch.zeros(2, 8)).shape == (2, 3, size, size)
    save_model(tmp_path / "model", model, {"model": section["model"]})
    reloaded, _ = load_model(tmp_path / "model")
    z = torch.randn(3, 8)
    assert torch.allclose(reloaded.decode(z), model.eval().decode(z))


def test_widths_that_do_not_fit_the_image_size_are_a_params_error():
    params = {"faces": {"image_size": 48, "crop_fraction": 0.83, "max_images": 0, "test_count": 4},
              "conv_faces": {"model": {"arch": "conv", "latent_dim": 8, "widths": [4, 8, 8, 16, 16]}, "beta": 1.0,
                             "epochs": 1, "batch_size": 8, "lr": 0.001}}
    with pytest.raises(VaelabError, match=r"conv_faces.model.widths does not fit faces.image_size"):
        faces_training_section(params)


def test_default_mirror_matches_the_pinned_celeba_checksum():
    """The team mirror beside the checkout (CI has it) holds exactly the pinned archive."""
    from vaelab.data import verify_checksum
    from vaelab.params import faces_section, load_params

    root = Path(__file__).resolve().parents[1]
    faces = faces_section(load_params(root / "params.yaml"))
    archive = root / faces["mirror_dirs"][0] / "celeba-10k.tar.gz"
    if not archive.is_file():
        pytest.skip(f"no dataset mirror at {archive.parent}")
    verify_checksum(archive, "sha256", faces["archive_sha256"])
