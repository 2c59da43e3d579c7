"""evaluate_run on tiny data and tiny saved models: the JSON holds every number the objective and
the dataset call for, finite, and the run's figures folder holds its figures."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import CLASSES, TINY_VAE, all_finite, tiny_params
from vaelab import datasets, evaluate, store
from vaelab.datasets.shapes import FACTORS, factor_grid, factor_values, render_grid
from vaelab.errors import VaelabError
from vaelab.models import build_model
from vaelab.sweep import study_row

TINY_MODEL = {**TINY_VAE, "latent_dim": 4}
TINY_JUDGE = {"arch": "resnet", "width": 2}
TRAINING = dict(
    beta=2.0, epochs=1, batch_size=8, lr=0.001, warmup_fraction=0.0, grad_clip=0.0, seed=0
)
VAE_FIGURES = {
    *("curves.png", "samples.png", "reconstructions.png", "traversals.png"),
    *("interpolation_prior.png", "interpolation_images.png"),
}
# The float scores of a VAE (on any data), on factor data.
CIFAR_KEYS = "test_neg_elbo test_bpd test_recon_nll test_recon_mse test_kl sample_sharpness"
SHAPES_KEYS = (
    "mig factor_vae gaussian_tc path_max_over_mean path_mean_step "
    "prior_relative_error midpoint_relative_error"
)
RUNS = {
    "tiny_cifar": ("cifar10", "vae"),
    "tiny_shapes": ("shapes", "vae"),
    "tiny_shapes_ae": ("shapes", "ae"),
    "tiny_faces": ("faces", "vae"),
    "tiny_judge": ("cifar10", "classifier"),
}


def add_tiny_runs(params: dict, sweeps: dict | None = None) -> None:
    """The runs of RUNS (and `sweeps`) on TINY_MODEL, and small evaluation settings."""
    params["sweeps"].update(sweeps or {})
    for name, (dataset, objective) in RUNS.items():
        if objective == "classifier":  # the evaluator's settings on a tiny ResNet
            run = {**params["runs"]["evaluator"], "dataset": dataset, "model": TINY_JUDGE}
        else:
            run = {"dataset": dataset, "objective": objective, "model": TINY_MODEL, **TRAINING}
        params["runs"][name] = run
    shapes = params["evaluate"]["shapes"]
    # Threshold 0: every dim of the untrained model counts as active, so the scores see real codes.
    shapes.update(code_count=60, active_threshold=0.0, prior_samples=4, paths=3)
    shapes.update(path_steps=4, traversal_steps=5)
    for section in params["evaluate"].values():
        section.update(batch_size=16, interpolation_steps=4, traversal_dims=3)


def write_labelled(rng) -> None:
    """CIFAR-like: a colour per class plus noise, 2 test images per class."""

    def split(count):
        labels = np.arange(count) % 10
        images = np.clip(
            labels[:, None, None, None] * 25 + rng.integers(0, 20, (count, 32, 32, 3)), 0, 255
        )
        return images.astype(np.uint8), labels.astype(np.int64)

    (x_train, y_train), (x_test, y_test) = split(40), split(20)
    labels = dict(y_train=y_train, y_test=y_test, classes=np.array(CLASSES))
    datasets.write_dataset(store.data_path("cifar10"), x_train, x_test, "tiny", **labels)


def write_shapes(rng) -> None:
    """Every combination of a small factor grid, drawn by the shapes source."""
    values = factor_values(
        {"shapes": ["square", "triangle"], "hue": 2, "scale": 2, "rotation": 2, "x": 3, "y": 3}
    )
    grid = factor_grid(values)
    images = render_grid(values, grid)
    order = rng.permutation(len(grid))
    test, train = order[:60], order[60:]
    store.write_npz(
        store.data_path("shapes"),
        x_train=images[train],
        x_test=images[test],
        factors_train=grid[train],
        factors_test=grid[test],
        factor_names=np.array(FACTORS),
        source=np.array("tiny shapes"),
        **{f"values_{f}": np.array(values[f]) for f in FACTORS},
    )


def write_faces(rng) -> None:
    """Unlabelled images, as a faces folder without attributes gives them."""
    x_train, x_test = (rng.integers(0, 256, (n, 32, 32, 3)).astype(np.uint8) for n in (40, 24))
    datasets.write_dataset(store.data_path("faces"), x_train, x_test, "tiny faces")


def save_tiny_model(name: str, objective: str, seed: int = 0) -> None:
    torch.manual_seed(seed)
    judge = objective == "classifier"
    model_config = TINY_JUDGE if judge else {**TINY_MODEL, "image_size": 32, "channels": 3}
    config = {"name": name, "objective": objective, "model": model_config, "epochs_trained": 2}
    config.update(train_seconds=1.5, **({} if judge else {"beta": 2.0}))
    store.save_model(store.model_dir(name), build_model(model_config), config)
    keys = ("test_accuracy",) if judge else ("test_loss", "test_kl")
    rows = [{"epoch": e, **{k: -10.0 * e for k in ("train_loss", *keys)}} for e in (1, 2)]
    store.write_curves(store.curves_path(name), rows)


@pytest.fixture
def runs_project(tmp_path, monkeypatch, logged):
    """A working directory with tiny data and models of every run of RUNS."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    write_labelled(rng)
    write_shapes(rng)
    write_faces(rng)
    for name, (_, objective) in RUNS.items():
        save_tiny_model(name, objective)
    return {"params": tiny_params(add_tiny_runs), "logged": logged}


def run(project: dict, name: str) -> tuple[dict, set[str]]:
    evaluate.evaluate_stage(project["params"], name)
    written = json.loads(store.eval_path(name).read_text())
    # the same numbers go to the run's MLflow run
    assert json.loads(json.dumps(dict(project["logged"])[name])) == written
    assert all_finite(written)
    # The DVC metrics file: a handful of headline numbers, none named like a param of the run.
    headline = json.loads(store.headline_path(name).read_text())
    assert 1 <= len(headline) <= 10
    assert all(written[key] == value for key, value in headline.items())
    assert not set(headline) & {*project["params"]["runs"][name], "epochs", "beta", "latent_dim"}
    return written, {p.name for p in store.figures_dir(name).iterdir()}


def test_a_vae_on_labelled_data(runs_project):
    metrics, figures = run(runs_project, "tiny_cifar")
    assert figures == VAE_FIGURES
    for key in CIFAR_KEYS.split():
        assert isinstance(metrics[key], float), key
    assert metrics["test_kl"] >= 0 and 0 < metrics["test_recon_mse"] < 1
    assert metrics["latent_dim"] == 4 and len(metrics["kl_per_dim"]) == 4
    # The KL per dim sums to the KL (up to the z draw).
    assert math.isclose(sum(metrics["kl_per_dim"]), metrics["test_kl"], rel_tol=0.05)
    assert 0 <= metrics["active_units"] <= 4 and metrics["beta"] == 2.0 and metrics["epochs"] == 2
    assert "mig" not in metrics  # no factors


def test_a_sweep_is_measured_run_by_run_and_its_metrics_are_the_mean_and_spread(runs_project):
    tiny = {**runs_project["params"]["runs"]["tiny_shapes"], "seeds": [0, 1]}
    del tiny["seed"]
    params = tiny_params(lambda p: add_tiny_runs(p, {"tiny_sweep": tiny}))
    for seed in (0, 1):
        save_tiny_model(f"tiny_sweep/s{seed}", "vae", seed=seed)
    evaluate.evaluate_stage(params, "tiny_sweep")
    evals = [json.loads(store.eval_path(f"tiny_sweep/s{seed}").read_text()) for seed in (0, 1)]
    assert all(store.figures_dir(f"tiny_sweep/s{seed}").is_dir() for seed in (0, 1))
    sweep = json.loads(store.headline_path("tiny_sweep").read_text())
    assert set(sweep) == {"mean", "std"} and {"mig", "kl"} <= set(sweep["mean"])
    for key, mean in sweep["mean"].items():  # the study's names: test_kl is kl (sweep.study_row)
        values = [study_row(e)[key] for e in evals]
        assert mean == pytest.approx(sum(values) / 2)
        assert sweep["std"][key] == pytest.approx(abs(values[0] - values[1]) / 2**0.5)
    assert evals[0]["test_kl"] != evals[1]["test_kl"]  # two models, two sets of numbers


def test_a_vae_on_factor_data_has_the_disentanglement_numbers_each_under_one_name(runs_project):
    metrics, figures = run(runs_project, "tiny_shapes")
    assert figures == VAE_FIGURES
    for key in SHAPES_KEYS.split():
        assert isinstance(metrics[key], float), key
    assert 0 <= metrics["mig"] <= 1 and 0 <= metrics["factor_vae"] <= 1
    assert metrics["active_units"] == 4
    factors = {"shape", "hue", "scale", "rotation", "x position", "y position"}
    assert set(metrics["mig_per_factor"]) == factors
    assert len(metrics["path_ratios"]) == 3 and len(metrics["dim_factor"]) == 4
    assert metrics["code_images"] == 60 and metrics["autoencoder"] is False
    assert not {"recon_mse", "kl", "neg_elbo", "bpd"} & set(metrics)  # only as test_<name>


def test_an_autoencoder_on_factor_data(runs_project):
    metrics, figures = run(runs_project, "tiny_shapes_ae")
    assert figures == {"curves.png", "reconstructions.png"} and metrics["autoencoder"] is True
    for key in ("test_recon_nll", "mig", "factor_vae"):
        assert isinstance(metrics[key], float), key
    assert not {"test_kl", "kl", "kl_per_dim", "recon_mse"} & set(metrics)


def test_a_vae_on_unlabelled_faces(runs_project):
    metrics, figures = run(runs_project, "tiny_faces")
    assert figures == VAE_FIGURES
    for key in CIFAR_KEYS.split():
        assert isinstance(metrics[key], float), key
    assert "mig" not in metrics and "per_class_accuracy" not in metrics


def test_a_classifier_has_accuracy_overall_and_per_class(runs_project):
    metrics, figures = run(runs_project, "tiny_judge")
    assert figures == {"curves.png"}
    per_class = list(metrics["per_class_accuracy"].values())
    assert 0 <= metrics["test_accuracy"] <= 1 and len(per_class) == 10
    # Two test images per class: the overall accuracy is the mean of the per-class ones.
    assert metrics["test_accuracy"] == pytest.approx(np.mean(per_class))


def test_a_model_trained_for_another_objective_is_refused(runs_project):
    save_tiny_model("tiny_cifar", "ae")
    with pytest.raises(VaelabError, match="trained as ae.*retrain"):
        evaluate.evaluate_run(runs_project["params"], "tiny_cifar")


def test_traversal_rows_are_the_active_dims_by_kl_with_their_factor():
    kl = [0.1, 3.0, 0.0, 1.5]
    pairs = (("hue", 0.1), ("x position", 0.8), ("shape", 0.0), ("scale", 0.5))
    dim_factor = [{"factor": factor, "normalised_mi": mi} for factor, mi in pairs]
    dims, labels = evaluate.traversal_rows(kl, [1, 3], 10, dim_factor)
    assert dims == [1, 3]
    assert labels[0] == "z1 (KL 3.00)\nx position 0.80" and labels[1].endswith("scale 0.50")
    dim_factor[3]["normalised_mi"] = 0.0  # an inactive dim holds no factor
    dims, labels = evaluate.traversal_rows(kl, [], 10, dim_factor)
    assert dims == [1, 3, 0] and "inactive" in labels[0] and labels[1].endswith("no factor")
    dims, labels = evaluate.traversal_rows(kl, [0, 1, 3], 2)  # no factors: KL only, at most `count`
    assert dims == [1, 3] and labels == ["z1 (KL 3.00)", "z3 (KL 1.50)"]


def test_inactive_vae_dims_count_for_nothing_but_every_autoencoder_dim_counts(
    runs_project, monkeypatch
):
    """Designed codes: dim 0 = the x position (an active dim), dim 1 = the hue at 1/100 scale
    (inactive, so a VAE's scores must ignore it)."""
    dataset = datasets.load("shapes")
    images = torch.cat([dataset["x_train"], dataset["x_test"]])
    factors = torch.cat([dataset["factors_train"], dataset["factors_test"]])
    lookup = {image.numpy().tobytes(): row for image, row in zip(images, factors, strict=True)}

    def designed_codes(model, batch, device=None, batch_size=500, seed=0):
        rows = torch.stack([lookup[image.numpy().tobytes()] for image in batch]).float()
        mu = torch.zeros(len(batch), 4)
        mu[:, 0], mu[:, 1] = rows[:, 4], 0.01 * rows[:, 1]
        return mu, torch.zeros_like(mu)

    monkeypatch.setattr(evaluate, "encode_batches", designed_codes)
    settings = {**runs_project["params"]["evaluate"]["shapes"], "active_threshold": 0.01}
    model, _ = store.load_model(store.model_dir("tiny_shapes"))
    ev = evaluate.Evaluation(
        "tiny_shapes", model, dataset, settings, torch.device("cpu"), Path("figures")
    )
    test_mu, test_logvar = designed_codes(model, dataset["x_test"])
    vae = evaluate.factor_metrics(ev, False, test_mu, test_logvar)
    assert vae["active_dims"] == [0] and vae["active_units"] == 1
    assert vae["dim_factor"][0]["factor"] == "x position"
    assert vae["dim_factor"][1]["normalised_mi"] == 0.0
    assert vae["mig_per_factor"]["x position"] > 0.9 and vae["mig_per_factor"]["hue"] < 0.05
    autoencoder = evaluate.factor_metrics(ev, True, test_mu, None)
    assert autoencoder["dim_factor"][1]["factor"] == "hue"
    assert autoencoder["mig_per_factor"]["hue"] > 0.9
