"""What several test files share: tiny datasets written by the tests themselves (CIFAR-10 archives
in both accepted layouts, CelebA archives in the mirror's layout), and `project`: a temporary
project folder with tiny models and evaluations of every compared run (test_compare, test_report)."""

from __future__ import annotations

import copy
import hashlib
import io
import math
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from vaelab import datasets, plots, store, tracking
from vaelab.config import check_params
from vaelab.datasets.cifar10 import CIFAR10_CLASSES
from vaelab.models import build_model
from vaelab.sweep import spread


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def md5(path: Path) -> str:
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def tiny_images(count: int, seed: int, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Images with some structure (a per-class colour plus noise); labels cycle over 10 classes."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % 10
    base = (labels[:, None, None, None] * 25 + 10).astype(np.int64)
    images = np.clip(base + rng.integers(-10, 10, (count, size, size, 3)), 0, 255).astype(np.uint8)
    return images, labels.astype(np.int64)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def write_png_archive(
    path: Path,
    train_count: int = 40,
    test_count: int = 20,
    size: int = 32,
    classes=CIFAR10_CLASSES,
    corrupt: str | None = None,
) -> dict[str, np.ndarray]:
    """`cifar10/{train,test}/<class>/<name>.png`; `corrupt` names one file to fill with garbage."""
    splits = {
        "train": tiny_images(train_count, seed=3, size=size),
        "test": tiny_images(test_count, seed=4, size=size),
    }
    with tarfile.open(path, "w:gz") as tar:
        for split, (images, labels) in splits.items():
            for i, (image, label) in enumerate(zip(images, labels, strict=True)):
                name = f"cifar10/{split}/{classes[label % len(classes)]}/{i:05d}.png"
                data = b"not a png at all" if name == corrupt else encoded(image, "PNG")
                _add_bytes(tar, name, data)
    (x_train, y_train), (x_test, y_test) = splits["train"], splits["test"]
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


@pytest.fixture
def no_env_mirror(monkeypatch):
    monkeypatch.delenv("VAELAB_DATA_DIR", raising=False)


ATTRIBUTE_NAMES = (  # the 40 of list_attr_celeba.txt, in its order
    "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose "
    "Black_Hair Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses "
    "Goatee Gray_Hair Heavy_Makeup High_Cheekbones Male Mouth_Slightly_Open Mustache "
    "Narrow_Eyes No_Beard Oval_Face Pale_Skin Pointy_Nose Receding_Hairline Rosy_Cheeks "
    "Sideburns Smiling Straight_Hair Wavy_Hair Wearing_Earrings Wearing_Hat Wearing_Lipstick "
    "Wearing_Necklace Wearing_Necktie Young"
)
CELEBA_ATTRIBUTES = tuple(ATTRIBUTE_NAMES.split())


def encoded(image: np.ndarray, image_format: str, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format=image_format, **options)
    return buffer.getvalue()


def jpeg_bytes(image: np.ndarray) -> bytes:
    return encoded(image, "JPEG", quality=95)


def attribute_file_text(file_names, attributes: np.ndarray, names=CELEBA_ATTRIBUTES) -> str:
    """The official list_attr_celeba.txt format: row count, names, then `<file>  1 -1 ...` rows."""
    rows = [
        f"{name} " + " ".join(f"{int(v):2d}" for v in row)
        for name, row in zip(file_names, attributes, strict=True)
    ]
    return "\n".join([str(len(rows)), " ".join(names) + " ", *rows]) + "\n"


def celeba_faces(
    count: int, seed: int = 0, size: tuple[int, int] = (89, 109)
) -> tuple[np.ndarray, np.ndarray]:
    """Smooth synthetic "faces" (W x H RGB, a bright disc whose colour varies) and +-1 attributes,
    each present and absent among the first two images (so every probe has two classes)."""
    rng = np.random.default_rng(seed)
    width, height = size
    yy, xx = np.mgrid[:height, :width]
    disc = ((xx - width / 2) ** 2 + (yy - height / 2) ** 2 < (min(size) / 3) ** 2)[..., None]
    colours = rng.integers(40, 220, (count, 1, 1, 3))
    images = np.where(disc, colours, 255 - colours).astype(np.uint8)
    attributes = rng.choice(np.array([-1, 1], dtype=np.int8), (count, len(CELEBA_ATTRIBUTES)))
    attributes[0], attributes[1] = 1, -1
    return images, attributes


def write_celeba_archive(
    path: Path,
    count: int = 24,
    size: tuple[int, int] = (89, 109),
    corrupt: str | None = None,
    attribute_text: str | None = None,
) -> dict:
    """The mirror's `celeba-10k.tar.gz` layout; `corrupt` names an image to damage
    ("<name>:garbage" or "<name>:truncated"); `attribute_text` replaces the attribute file."""
    images, attributes = celeba_faces(count, size=size)
    names = [f"{i + 1:06d}.jpg" for i in range(count)]
    damaged, _, how = (corrupt or "").partition(":")
    with tarfile.open(path, "w:gz") as tar:
        for name, image in zip(names, images, strict=True):
            data = jpeg_bytes(image)
            if name == damaged:
                data = b"not a jpeg" if how == "garbage" else data[: len(data) // 2]
            _add_bytes(tar, f"celeba-10k/img_align_celeba/{name}", data)
        if attribute_text is None:
            attribute_text = attribute_file_text(names, attributes)
        _add_bytes(tar, "celeba-10k/list_attr_celeba.txt", attribute_text.encode())
    return {"images": images, "attributes": attributes, "names": names}


@pytest.fixture
def no_env_faces(monkeypatch):
    for name in ("VAELAB_FACES_DIR", "VAELAB_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)


# A project with every compared run (the cross-run stages and render).
ROOT = Path(__file__).resolve().parents[1]
CLASSES = [f"class{i}" for i in range(10)]
GAUSSIAN = {"kind": "gaussian", "sigma": 0.1}
TINY_VAE = {"arch": "conv", "latent_dim": 3, "widths": [4, 8], "likelihood": GAUSSIAN}
TINY_FC = {"arch": "fc", "latent_dim": 3, "hidden": [8], "likelihood": GAUSSIAN}


def tiny_params(edit=None) -> dict:
    """params.yaml on the CPU with small comparisons; `edit(params)` changes the raw params before
    they are checked (test_evaluate adds its own runs)."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["device"] = "cpu"
    params["evaluate"]["cifar10"]["gmm_components"] = 2  # the figures' and the scores' mixture
    params["compare"]["sample_quality"].update(sample_count=40, batch_size=16)
    params["runs"]["evaluator"]["holdout"] = 20  # the last 20 of write_cifar's 48 training images
    params["compare"]["beta_study"].update(cifar_codes=24, gradient_images=2, gradient_samples=4)
    if edit:
        edit(params)
    return check_params(params)


def all_finite(value) -> bool:
    """Every number inside a nested dict/list is finite."""
    if isinstance(value, dict):
        return all(all_finite(v) for v in value.values())
    if isinstance(value, list):
        return all(all_finite(v) for v in value)
    return not isinstance(value, float) or math.isfinite(value)


@pytest.fixture
def logged(monkeypatch) -> list:
    """MLflow calls recorded instead of made: (run, metrics) per tracking.log_final."""
    calls = []
    monkeypatch.setattr(
        tracking, "log_final", lambda run, metrics, figures=None: calls.append((run, metrics))
    )
    monkeypatch.setattr(tracking, "check_tracking_server", lambda: "recorded")
    return calls


def save_tiny(run: str, config: dict, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = build_model(config).eval()
    store.save_model(store.model_dir(run), model, {"model": config})
    return model


def save_tiny_judge(images: np.ndarray, labels: np.ndarray, steps: int = 40) -> None:
    """A width-2 classifier fitted for a few steps to the class colours: confident enough that its
    features and temperature mean something."""
    torch.manual_seed(0)
    config = {"arch": "resnet", "width": 2}
    judge = build_model(config)
    x, y = datasets.to_display(torch.from_numpy(images)), torch.from_numpy(labels)
    optimizer = torch.optim.Adam(judge.parameters(), lr=0.02)
    for _ in range(steps):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(judge(x), y).backward()
        optimizer.step()
    # Batch statistics of the whole set for eval mode, not a running mean.
    for module in judge.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None
    with torch.no_grad():
        judge(x)
    store.save_model(store.model_dir("evaluator"), judge.eval(), {"model": config})


def write_cifar(train: int = 48, test: int = 60, seed: int = 0, y_test=None, y_train=None) -> dict:
    """A labelled 32x32 dataset in data/cifar10.npz (a class colour plus noise); `y_train` and
    `y_test` replace its labels."""
    rng = np.random.default_rng(seed)

    def split(count):
        labels = np.arange(count) % 10
        images = np.clip(
            labels[:, None, None, None] * 20 + rng.integers(0, 60, (count, 32, 32, 3)), 0, 255
        )
        return images.astype(np.uint8), labels.astype(np.int64)

    (x_train, own_train), (x_test, own_test) = split(train), split(test)
    y_train = own_train if y_train is None else np.asarray(y_train)
    y_test = own_test if y_test is None else np.asarray(y_test)
    path, classes = store.data_path("cifar10"), np.array(CLASSES)
    datasets.write_dataset(
        path, x_train, x_test, "cifar10", y_train=y_train, y_test=y_test, classes=classes
    )
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def write_shapes(train: int = 40, test: int = 30) -> None:
    rng = np.random.default_rng(1)
    names = ["shape", "hue"]
    datasets.write_dataset(
        store.data_path("shapes"),
        rng.integers(0, 256, (train, 32, 32, 3), dtype=np.uint8),
        rng.integers(0, 256, (test, 32, 32, 3), dtype=np.uint8),
        "shapes",
        factors_train=rng.integers(0, 3, (train, 2)),
        factors_test=rng.integers(0, 3, (test, 2)),
        factor_names=np.array(names),
        values_shape=np.arange(3),
        values_hue=np.arange(3.0),
    )


def cifar_eval(mse, kl, units, beta, latent=3) -> dict:
    return {
        "test_neg_elbo": -2000.0,
        "test_bpd": 6.0 + mse,
        "test_recon_nll": -2100.0,
        "test_recon_mse": mse,
        "test_kl": kl,
        "active_units": units,
        "latent_dim": latent,
        "sample_sharpness": 0.4,
        "kl_per_dim": [kl / latent] * latent,
        "beta": beta,
        "epochs": 2,
    }


def shapes_eval(mse, kl, mig, fvae, prior, ratio, midpoint, active=(0, 1)) -> dict:
    return {
        "test_recon_mse": mse,
        "test_kl": kl,
        "kl_per_dim": [kl / 3] * 3,
        "active_units": len(active),
        "latent_dim": 3,
        "active_dims": list(active),
        "mig": mig,
        "factor_vae": fvae,
        "gaussian_tc": 0.5,
        "prior_relative_error": prior * 10,
        "path_max_over_mean": ratio,
        "path_mean_step": 0.02,
        "midpoint_relative_error": midpoint * 30,
        "path_ratios": [ratio, ratio + 0.2],
        "path_mean_steps": [0.02, 0.03],
        "test_images": 30,
        "code_images": 20,
        "mig_per_factor": {"shape": mig, "hue": mig},
        # (latent, factor): latent 0 holds shape, latent 2 hue
        "normalised_mi": [[mig + 0.1, 0.0], [0.1, 0.0], [0.0, mig + 0.1]],
        "sample_sharpness": 0.5,
        "epochs": 2,
    }


# Per beta of the project's sweep: (mse, kl, mig, factor_vae, prior, ratio, midpoint).
SWEEP = {
    1.0: (0.002, 30.0, 0.10, 0.30, 0.020, 1.6, 0.010),
    5.0: (0.004, 15.0, 0.25, 0.50, 0.015, 1.4, 0.008),
    16.0: (0.006, 10.0, 0.30, 0.60, 0.014, 1.35, 0.008),
    64.0: (0.009, 6.0, 0.20, 0.40, 0.014, 1.3, 0.008),
    256.0: (0.015, 2.0, 0.10, 0.30, 0.013, 1.3, 0.008),
    0.0: (0.0012, 0.0, 0.05, 0.20, 0.060, 2.9, 0.031),  # the autoencoders
}


def sweep_eval(run: dict) -> dict:
    """A shapes run's evaluation: its beta's numbers, the seed moving MSE, KL and MIG a little (the
    seeds' spread), the autoencoder without KL."""
    mse, kl, mig, *rest = SWEEP[run["beta"]]
    jitter = 1 + 0.01 * run["seed"]
    metrics = shapes_eval(mse * jitter, kl * jitter, mig + 0.005 * run["seed"], *rest)
    if run["objective"] == "ae":
        del metrics["test_kl"], metrics["kl_per_dim"]
    return metrics


def sweep_runs(params: dict) -> list[str]:
    study = params["compare"]["beta_study"]
    return [*study["runs"], *study["autoencoders"]]


@pytest.fixture
def project(tmp_path, monkeypatch, logged):
    """A project folder with tiny models of every compared run, their data and their evaluations."""
    monkeypatch.chdir(tmp_path)
    cifar = write_cifar()
    write_shapes()
    save_tiny_judge(cifar["x_train"], cifar["y_train"])
    save_tiny("fc", TINY_FC)
    params = tiny_params()
    cifar_runs = ("conv", "conv_beta5")
    for i, run in enumerate((*cifar_runs, *sweep_runs(params))):
        save_tiny(run, TINY_VAE, seed=i)
    for run, metrics in {
        "fc": cifar_eval(0.012, 90.0, 3, 1.0),
        "conv": cifar_eval(0.006, 200.0, 3, 1.0),
        "conv_beta5": cifar_eval(0.011, 60.0, 2, 5.0),
        **{run: sweep_eval(params["runs"][run]) for run in sweep_runs(params)},
    }.items():
        store.write_json(store.eval_path(run), metrics)
    for run in cifar_runs:
        store.write_curves(store.curves_path(run), [{"epoch": 1, "test_loss": 1.0}])
    for run in sweep_runs(params):  # 5 epochs, the test MSE falling 2% over the last one
        mse = (0.01, 0.008, 0.007, 0.0065, 0.00637)
        rows = [{"epoch": e, "test_mse": m} for e, m in enumerate(mse, 1)]
        store.write_curves(store.curves_path(run), rows)
    return {"params": params, "logged": logged}  # (run, metrics) of each log_final


@pytest.fixture
def figures(monkeypatch):
    """Every matplotlib figure plots saves, by file name."""
    saved, original = {}, plots.save_figure

    def keep(fig, path):
        saved[Path(path).name] = fig
        original(fig, path)

    monkeypatch.setattr(plots, "save_figure", keep)
    return saved


def image_cells(fig) -> list:
    return [ax for ax in fig.axes if ax.images]


def seeded(study: dict, jitter: dict | None = None) -> dict:
    """The study as the beta study writes it: every row the mean of three seeds, which here are
    equal, except that `jitter` (key -> offset) moves each beta's seeds by -offset, 0, +offset."""
    out = copy.deepcopy(study)

    def seeds(row: dict) -> list[dict]:
        offsets = jitter or {}
        moved = {k: d for k, d in offsets.items() if k in row}
        return [{**row, **{k: row[k] + sign * d for k, d in moved.items()}} for sign in (-1, 0, 1)]

    out["shapes_spread"] = {beta: spread(seeds(row)) for beta, row in out["shapes"].items()}
    out["autoencoder_spread"] = spread(seeds(out["shapes_autoencoder"]))
    for row in out["shapes"].values():
        row["seeds"] = 3
    return out
