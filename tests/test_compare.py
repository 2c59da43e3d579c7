"""The cross-run comparisons on tiny models and data, in a temporary project folder."""

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vaelab import compare, datasets, plots, store
from vaelab.config import load_params
from vaelab.errors import VaelabError
from vaelab.models import build_model

ROOT = Path(__file__).resolve().parents[1]
CLASSES = [f"class{i}" for i in range(10)]
TINY_VAE = {
    "arch": "conv",
    "latent_dim": 3,
    "widths": [4, 8],
    "likelihood": {"kind": "gaussian", "sigma": 0.1},
}
TINY_FC = {
    "arch": "fc",
    "latent_dim": 3,
    "hidden": [8],
    "likelihood": {"kind": "gaussian", "sigma": 0.1},
}


def tiny_params() -> dict:
    params = load_params(ROOT / "params.yaml")
    params["device"] = "cpu"
    params["evaluate"]["cifar10"]["gmm_components"] = 2  # the figures' and the scores' mixture
    params["compare"]["sample_quality"].update(
        sample_count=40,
        batch_size=16,
        second_stage_hidden=8,
        second_stage_epochs=2,
        samplers=["prior", "gmm", "two_stage"],  # the default leaves two_stage out; test it too
    )
    params["runs"]["evaluator"]["holdout"] = 20  # the last 20 of write_cifar's 48 training images
    params["compare"]["beta_study"].update(cifar_codes=24, gradient_images=2, gradient_samples=4)
    return params


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
    for (
        module
    ) in judge.modules():  # batch statistics of the whole set for eval mode, not a running mean
        if isinstance(module, torch.nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None
    with torch.no_grad():
        judge(x)
    store.save_model(store.model_dir("evaluator"), judge.eval(), {"model": config})


def write_cifar(train: int = 48, test: int = 60, seed: int = 0, y_test=None, y_train=None) -> dict:
    """A labelled 32x32 dataset in data/cifar10.npz (a class colour plus noise)."""
    rng = np.random.default_rng(seed)

    def split(count):
        labels = np.arange(count) % 10
        images = np.clip(
            labels[:, None, None, None] * 20 + rng.integers(0, 60, (count, 32, 32, 3)), 0, 255
        )
        return images.astype(np.uint8), labels.astype(np.int64)

    (x_train, own_labels), (x_test, labels) = split(train), split(test)
    y_train = own_labels if y_train is None else np.asarray(y_train)
    arrays = {
        "x_train": x_train,
        "y_train": y_train,
        "x_test": x_test,
        "y_test": labels if y_test is None else np.asarray(y_test),
    }
    datasets.write_dataset(
        store.data_path("cifar10"),
        arrays["x_train"],
        arrays["x_test"],
        "cifar10",
        y_train=arrays["y_train"],
        y_test=arrays["y_test"],
        classes=np.array(CLASSES),
    )
    return arrays


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


def shapes_eval(mse, kl, mig, dci, fvae, prior, ratio, midpoint, active=(0, 1)) -> dict:
    return {
        "recon_mse": mse,
        "kl": kl,
        "kl_per_dim": [kl / 3] * 3,
        "active_units": len(active),
        "latent_dim": 3,
        "active_dims": list(active),
        "mig": mig,
        "dci": dci,
        "factor_vae": fvae,
        "gaussian_tc": 0.5,
        "prior_nn_mse": prior,
        "prior_relative_error": prior * 10,
        "path_max_over_mean": ratio,
        "path_mean_step": 0.02,
        "midpoint_nn_mse": midpoint,
        "midpoint_relative_error": midpoint * 30,
        "path_ratios": [ratio, ratio + 0.2],
        "path_mean_steps": [0.02, 0.03],
        "test_images": 30,
        "code_images": 20,
        "mig_per_factor": {"shape": mig, "hue": mig},
        # (latent, factor): latent 0 holds shape, latent 2 hue
        "normalised_mi": [[mig + 0.1, 0.0], [0.1, 0.0], [0.0, mig + 0.1]],
        "dci_importances": [[0.5, 0.0], [0.5, 0.0], [0.0, 1.0]],
        "dci_accuracy_per_factor": {"shape": 0.9, "hue": 0.8},
        "sample_sharpness": 0.5,
        "epochs": 2,
    }


# Per beta of the project's sweep: (mse, kl, mig, dci, factor_vae, prior, ratio, midpoint).
SWEEP = {
    1.0: (0.002, 30.0, 0.10, 0.30, 0.30, 0.020, 1.6, 0.010),
    5.0: (0.004, 15.0, 0.25, 0.45, 0.50, 0.015, 1.4, 0.008),
    16.0: (0.006, 10.0, 0.30, 0.50, 0.60, 0.014, 1.35, 0.008),
    64.0: (0.009, 6.0, 0.20, 0.40, 0.40, 0.014, 1.3, 0.008),
    256.0: (0.015, 2.0, 0.10, 0.20, 0.30, 0.013, 1.3, 0.008),
    0.0: (0.0012, 0.0, 0.05, 0.20, 0.20, 0.060, 2.9, 0.031),  # the autoencoders
}


def sweep_eval(run: dict) -> dict:
    """A shapes run's evaluation: its beta's numbers, the seed moving MSE, KL and MIG a little (the
    seeds' spread), the autoencoder without KL."""
    mse, kl, mig, dci, fvae, *rest = SWEEP[run["beta"]]
    jitter = 1 + 0.01 * run["seed"]
    metrics = shapes_eval(mse * jitter, kl * jitter, mig + 0.005 * run["seed"], dci, fvae, *rest)
    if run["objective"] == "ae":
        del metrics["kl"], metrics["kl_per_dim"]
    return metrics


def sweep_runs(params: dict) -> list[str]:
    study = params["compare"]["beta_study"]
    return [*study["runs"], *study["autoencoders"]]


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project folder with tiny models of every compared run, their data and their evaluations;
    MLflow calls are recorded instead of made."""
    monkeypatch.chdir(tmp_path)
    logged = []
    monkeypatch.setattr(
        compare.tracking, "log_final", lambda run, metrics, figures=None: logged.append(run)
    )
    monkeypatch.setattr(compare.tracking, "check_tracking_server", lambda: "recorded")
    cifar = write_cifar()
    write_shapes()
    save_tiny_judge(cifar["x_train"], cifar["y_train"])
    save_tiny("fc", TINY_FC)
    params = tiny_params()
    cifar_runs = ("conv", "conv_beta5", "conv_fixed", "conv_fixed_beta5")
    for i, run in enumerate((*cifar_runs, *sweep_runs(params))):
        save_tiny(run, TINY_VAE, seed=i)
    for run, metrics in {
        "fc": cifar_eval(0.012, 90.0, 3, 1.0),
        "conv": cifar_eval(0.006, 200.0, 3, 1.0),
        "conv_beta5": cifar_eval(0.011, 60.0, 2, 5.0),
        "conv_fixed": cifar_eval(0.007, 180.0, 3, 1.0),
        "conv_fixed_beta5": cifar_eval(0.015, 30.0, 2, 5.0),
        **{run: sweep_eval(params["runs"][run]) for run in sweep_runs(params)},
    }.items():
        store.write_json(store.eval_path(run), metrics)
    for run, sigma in zip(cifar_runs, (0.08, 0.09, 0.1, 0.1), strict=True):
        row = {"epoch": 1, "test_loss": 1.0, "decoder_sigma": sigma}
        store.write_curves(store.curves_path(run), [row])
    for run in sweep_runs(params):  # 5 epochs, the test MSE falling 2% over the last one
        mse = (0.01, 0.008, 0.007, 0.0065, 0.00637)
        rows = [{"epoch": e, "test_mse": m} for e, m in enumerate(mse, 1)]
        store.write_curves(store.curves_path(run), rows)
    return {"params": params, "logged": logged}


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


def test_test_set_halves_are_disjoint_and_too_small_a_set_is_refused():
    calibration, scored = compare.split_test_set(101)
    assert (calibration.start, calibration.stop, scored.start, scored.stop) == (0, 50, 50, 101)
    with pytest.raises(VaelabError, match="at least 4"):
        compare.split_test_set(3)


def test_reference_rows_are_built_from_the_images_given():
    images = torch.randint(0, 256, (6, 32, 32, 3), dtype=torch.uint8)
    rows = compare.reference_images(images, seed=0, blur_sigma=1.5)
    assert torch.equal(rows["real_test"], datasets.to_display(images))
    assert rows["noise"].shape == rows["blurred"].shape == (6, 3, 32, 32)
    assert rows["blurred"].std() < rows["real_test"].std()  # blur removes the pixel noise


def test_sample_quality_judges_every_run_against_real_test_images(project, figures):
    result = compare.sample_quality(project["params"])
    assert json.loads(Path("reports/sample_quality.json").read_text()) == result
    assert (
        result["calibration_images"] == 20
        and result["real_images"] == 30
        and result["scored_images"] == 30
        and result["sample_count"] == 40
    )
    assert set(result["reference"]) == {
        "real_test", "blurred", "blurred_s2", "down_up_x4", "noise"
    }  # fmt: skip
    assert "accuracy" not in result["reference"]["noise"]
    assert all(
        0 <= row["class_min"] <= row["class_max"] <= 1 for row in result["reference"].values()
    )
    sampler_names = {"prior", "prior_t0.8", "gmm", "gmm_t0.8", "two_stage"}
    assert result["figure_sampler"] == "gmm"  # evaluate.cifar10.sampler
    assert result["gmm_components"] == 2  # evaluate.cifar10.gmm_components, the one setting
    for run in ("fc", "conv", "conv_beta5"):
        row = result["runs"][run]
        assert set(row["samplers"]) == sampler_names
        assert 0 <= row["reconstructions"]["class_consistency"] <= 1
        for judged in (*row["samplers"].values(), row["reconstructions"]):
            assert (
                np.isfinite(judged["fd_clf"])
                and 0 <= judged["recognisable"] <= 1
                and judged["sharpness"] > 0
            )
        gmm = store.read_npz(Path(f"models/samplers/{run}.npz"))
        assert gmm["weights"].shape == (2,) and gmm["weights"].sum() == pytest.approx(1.0)
        assert gmm["means"].shape == (2, 3)
        for path in result["figures"][run].values():
            assert (Path("reports") / path).is_file()
    assert result["reference"]["real_test"]["sharpness"] == pytest.approx(1.0, rel=0.1)
    labelled = figures["samples_labelled_conv.png"]
    assert len(image_cells(labelled)) == min(compare.LABELLED_GRID, result["sample_count"])
    assert "Gaussian mixture" in labelled.texts[0].get_text()
    assert all(
        ax.get_title() for ax in image_cells(labelled)
    )  # each cell titled with label and confidence
    samplers = figures["samplers_conv.png"]
    assert (
        len(image_cells(samplers)) == len(samplers_drawn := result["runs"]["conv"]["samplers"])
        and len(samplers_drawn) == 5
        and np.isfinite(samplers.axes[0].images[0].get_array()).all()
    )
    nearest = figures["nearest_training_conv.png"]  # a samples row and a nearest row per sampler
    assert len(image_cells(nearest)) == 10
    assert [ax.get_ylabel().split("\n")[0] for ax in image_cells(nearest)][::2] == list(
        result["runs"]["conv"]["samplers"]
    )
    assert project["logged"] == ["fc", "conv", "conv_beta5", "evaluator"]
    headline = json.loads(Path("reports/metrics/sample_quality.json").read_text())
    assert set(headline["conv"]) == sampler_names
    assert set(headline["judge_accuracy"]) == {"real_test", "blurred", "blurred_s2", "down_up_x4"}
    assert set(headline["conv"]["gmm"]) == set(compare.HEADLINE_QUALITY)
    with Image.open("reports/figures/sample_quality/samplers_fc.png") as image:
        assert np.asarray(image.convert("L")).std() > 0  # the file holds the drawn images


def test_no_test_label_fits_anything_the_temperature_comes_from_the_training_holdout(project):
    first = compare.sample_quality(project["params"])
    # Relabel every test image: the temperature, the reference rows and every run's numbers stay.
    write_cifar(y_test=(np.arange(60) + 3) % 10)
    second = compare.sample_quality(project["params"])
    assert second["temperature"] == first["temperature"]

    assert second["reference"] != first["reference"]  # the accuracies moved ...
    for key in ("reference", "runs"):
        stripped = [
            {k: v for k, v in row.items() if k not in ("accuracy", "class_consistency")}
            for row in iter_rows(second[key])
        ]
        assert stripped == [
            {k: v for k, v in row.items() if k not in ("accuracy", "class_consistency")}
            for row in iter_rows(first[key])
        ]  # ... and nothing else
    # Relabelling the judge's held-out training images moves it.
    labels = np.arange(48) % 10
    labels[28:] = (labels[28:] + 5) % 10
    write_cifar(y_train=labels)
    third = compare.sample_quality(project["params"])
    assert third["temperature"] != first["temperature"]
    assert third["judge_accuracy"] != first["judge_accuracy"]


def iter_rows(rows: dict):
    """The scored rows of sample_quality.json's reference or runs, in order."""
    for row in rows.values():
        if "fd_clf" in row:
            yield row
        else:
            yield from row["samplers"].values()
            yield row["reconstructions"]


def test_sample_quality_refuses_a_judge_without_a_holdout(project):
    params = copy.deepcopy(project["params"])
    params["runs"]["evaluator"]["holdout"] = 0
    with pytest.raises(VaelabError, match="holdout is 0"):
        compare.sample_quality(params)


def test_sample_quality_refuses_a_judge_that_is_not_a_classifier(project):
    params = copy.deepcopy(project["params"])
    params["compare"]["sample_quality"]["judge"] = "conv"
    with pytest.raises(
        VaelabError, match="names conv, whose objective is vae, where a run of objective classifier"
    ):
        compare.sample_quality(params)


def test_beta_study_summarises_every_beta_over_its_seeds(project, figures):
    params = project["params"]
    study = compare.beta_study(params)
    assert list(study["shapes"]) == ["1", "5", "16", "64", "256"]
    assert list(study["cifar10"]) == ["1", "5"]
    assert study["compared"] == {"low": "1", "high": "5"}
    seeds = study["shapes_spread"]["5"]["mig"]
    assert seeds["values"] == pytest.approx([0.25, 0.255, 0.26])
    assert seeds["mean"] == pytest.approx(0.255) and seeds["std"] == pytest.approx(0.005)
    assert study["shapes"]["5"]["mig"] == pytest.approx(0.255)
    assert study["shapes"]["5"]["seeds"] == 3 and "path_ratios" not in study["shapes"]["5"]
    assert study["autoencoder_spread"]["recon_mse"]["values"] == pytest.approx(
        [0.0012, 0.001212, 0.001224]
    )
    assert study["cifar10"]["5"]["model"] == "conv_beta5"
    assert np.isfinite(study["cifar10"]["5"]["gaussian_tc"])
    assert study["cifar10"]["5"]["decoder_sigma"] == pytest.approx(0.09)
    assert study["cifar10_fixed_scale"]["5"]["model"] == "conv_fixed_beta5"
    # The tiny data's 70 images hold 9 distinct factor combinations at most: ln 9 nats or less.
    assert 0 < study["factor_information_nats"] <= np.log(9) + 1e-9
    gradient = study["reparameterization"]
    assert gradient["beta"] == "1" and gradient["dims"] == 2 and gradient["images"] == 2
    # 5 epochs of ceil(40 / 32) = 2 steps; the last fifth of the curve is its last epoch
    assert study["steps"] == {**dict.fromkeys(study["shapes"], 10), "autoencoder": 10}
    run = study["convergence"]["shapes_b5/s1"]
    assert run["steps"] == 10 and run["epochs"] == 5 and run["batch_size"] == 32
    assert run["test_mse_last_fifth_change"] == pytest.approx(0.00637 / 0.0065 - 1)
    assert study["best_beta"] == "16"  # the highest mean MIG (0.30 + the seeds' 0.005 steps)
    hue, shape = study["factors"]["16"]["hue"], study["factors"]["16"]["shape"]
    assert hue["carrier"] == [2, 2, 2] and shape["carrier"] == [0, 0, 0]
    assert hue["dci_completeness"]["mean"] == pytest.approx(1.0)  # one latent holds it all
    assert shape["dci_completeness"]["mean"] == pytest.approx(1 - np.log(2) / np.log(3))
    assert hue["mig"]["values"] == pytest.approx([0.30, 0.305, 0.31])
    assert shape["carrier_mi"]["mean"] == pytest.approx(0.405)
    assert json.loads(Path("reports/metrics_beta.json").read_text()) == study
    headline = json.loads(Path("reports/metrics/beta_study.json").read_text())
    assert set(headline) == {"beta_1", "beta_5", "beta_16", "beta_64", "beta_256", "autoencoder"}
    assert headline["beta_5"]["mig"] == pytest.approx(0.255) and "kl" not in headline["autoencoder"]
    theory = Path("reports/theory.md").read_text()
    assert "0.60 for the autoencoder against 0.20 (beta = 1)" in theory
    assert "farther from real shapes than every VAE's: the KL is what makes the prior" in theory
    assert "3 seeds" in theory and f"`{study['figures']['autoencoder_vs_vae']}`" in theory
    for path in study["figures"].values():
        assert (Path("reports") / path).is_file()
    tradeoff = figures["beta_tradeoff.png"]
    lines = [line for ax in tradeoff.axes for line in ax.get_lines() if len(line.get_xdata()) == 5]
    assert lines and all(np.isfinite(line.get_ydata()).all() for line in lines)
    sweep = figures["beta_sweep.png"]
    assert len(sweep.axes) == 3
    for ax in sweep.axes:  # every panel: a mean line over the 5 betas and each seed's dot
        means = [line for line in ax.get_lines() if len(line.get_xdata()) == 5]
        assert means and all(np.isfinite(np.asarray(m.get_ydata(), float)).all() for m in means)
        dots = sum(len(c.get_offsets()) for c in ax.collections if len(c.get_offsets()) == 3)
        assert dots >= 15
    assert (
        len(image_cells(figures["autoencoder_vs_vae_shapes.png"])) == 6
    )  # 3 models x (samples, path)
    assert project["logged"] == ["shapes_b1/s0"]


def test_beta_study_takes_betas_from_the_run_configs_and_wants_the_same_seeds(project):
    params = copy.deepcopy(project["params"])
    for seed in range(3):  # the names say 5; the configs decide
        params["runs"][f"shapes_b5/s{seed}"]["beta"] = 0.5
    study = compare.beta_study(params)
    assert list(study["shapes"]) == ["0.5", "1", "16", "64", "256"]
    assert study["compared"]["low"] == "0.5"
    params["runs"]["shapes_b64/s0"]["beta"] = 16.0  # beta 16 then has seed 0 twice, beta 64 once
    with pytest.raises(VaelabError, match="every beta with the same distinct seeds"):
        compare.beta_study(params)


def test_beta_study_refuses_a_vae_as_its_autoencoder(project):
    params = copy.deepcopy(project["params"])
    params["compare"]["beta_study"]["autoencoders"].append("shapes_b1/s0")
    with pytest.raises(
        VaelabError, match="whose objective is vae, where a run of objective ae belongs"
    ):
        compare.beta_study(params)


def test_beta_study_says_which_evaluation_is_missing(project):
    store.eval_path("shapes_b5/s1").unlink()
    with pytest.raises(
        VaelabError,
        match=r"reports/eval/shapes_b5/s1.json is missing; run "
        r"evaluate_sweep@shapes_b5",
    ):
        compare.beta_study(project["params"])
