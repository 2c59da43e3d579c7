"""Stage compare_betas: the beta study in one file of numbers, its figures, and theory.md.

Reads every shapes model's report (reports/shapes/beta<beta>.json), measures the shapes
autoencoder the same way, takes the CIFAR-10 pair from reports/metrics.json (plus each model's
Gaussian total correlation, computed here from its codes), measures the reparameterization
gradient on the lowest-beta shapes VAE, and writes:

* reports/metrics_beta.json: {"shapes": {beta: {...}}, "cifar10": {beta: {...}},
  "shapes_autoencoder": {...}, "reparameterization": {...}};
* reports/figures/beta_tradeoff.png, interpolation_smoothness.png, autoencoder_vs_vae_shapes.png;
* reports/theory.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .checkpoints import _atomic, load_model, write_json
from .data import load_dataset
from .disentanglement import gaussian_total_correlation
from .errors import VaelabError
from .gradient_estimators import estimator_variances
from .latent_geometry import reference_pixels
from .runtime import resolve_device
from .shapes import FACTOR_LABELS, load_shapes
from .shapes_evaluate import (encode_all, evaluate_shapes_model, evaluation_settings, read_model_reports,
                              shapes_summary_row)
from .shapes_figures import plot_autoencoder_vs_vae, plot_beta_tradeoff, plot_smoothness
from .shapes_train import AUTOENCODER, SHAPES_MODELS, beta_label, limit_threads, load_shapes_model, shapes_betas
from .theory import theory_markdown

REPORTS = Path("reports")
FIGURES = REPORTS / "figures"
METRICS_BETA = REPORTS / "metrics_beta.json"
THEORY = REPORTS / "theory.md"
CIFAR_MODELS = ("conv", "conv_beta5")  # the beta = 1 / beta = 5 pair of the CIFAR-10 study


def compared_labels(labels: list[str]) -> tuple[str, str]:
    """The two betas the autoencoder is compared with: the lowest, and 5 (the assignment's) when in
    the sweep, else the highest."""
    by_value = sorted(labels, key=float)
    high = next((label for label in by_value if float(label) == 5.0), by_value[-1])
    return by_value[0], high


def cifar_entries(metrics: dict, latent_kl: dict, total_correlations: dict[str, float]) -> dict[str, dict]:
    """The CIFAR-10 models of reports/metrics.json keyed by their beta, in the shape of the shapes rows."""
    out = {}
    for name in CIFAR_MODELS:
        m = metrics[name]
        key = f"{m['beta']:g}"
        if key in out:
            raise VaelabError(f"conv and conv_beta5 both have beta = {key}; the beta study compares two betas, "
                              "so give conv_beta5.beta another value in params.yaml")
        out[key] = {"model": name, "recon_mse": m["test_recon_mse"], "kl": m["test_kl"],
                    "kl_per_dim": latent_kl[name], "active_units": m["active_units"], "latent_dim": m["latent_dim"],
                    "gaussian_tc": total_correlations[name], "bpd": m["test_bpd"],
                    "sample_sharpness": m["sample_sharpness"], "beta": m["beta"], "epochs": m["epochs"]}
    return dict(sorted(out.items(), key=lambda item: float(item[0])))


def cifar_total_correlations(params: dict, device: torch.device, count: int) -> dict[str, float]:
    """Gaussian total correlation of each CIFAR-10 model's codes of the first `count` test images."""
    data = params["data"]
    images = load_dataset(Path(data["path"]), data["train_limit"], data["test_limit"])["x_test"][:count]
    out = {}
    for name in CIFAR_MODELS:
        model, _ = load_model(Path("models") / name, device)
        out[name] = gaussian_total_correlation(*encode_all(model, images, device))
    return out


def run_beta_study(params: dict) -> dict:
    import mlflow

    from . import tracking  # imports mlflow: only when the stage runs

    settings = evaluation_settings(params)
    device, seed = resolve_device(params["device"]), params["seed"]
    limit_threads(params)
    tracking.check_tracking_server()
    labels = sorted((beta_label(b) for b in shapes_betas(params)), key=float)
    reports = read_model_reports(labels)
    dataset = load_shapes(Path(params["shapes"]["data"]["path"]))
    dataset["factor_names"] = [FACTOR_LABELS.get(n, n) for n in dataset["factor_names"]]
    reference = reference_pixels(dataset["x_train"])

    autoencoder, ae_config = load_shapes_model(AUTOENCODER, device)
    if not ae_config.get("autoencoder"):
        raise VaelabError(f"{SHAPES_MODELS / AUTOENCODER} is not the autoencoder; rerun dvc repro train_shapes_ae")
    ae = evaluate_shapes_model(autoencoder, True, dataset, settings, device, seed, reference)
    ae.update(epochs=ae_config["epochs_trained"], train_seconds=ae_config["train_seconds"])
    print(f"shapes autoencoder: recon MSE {ae['recon_mse']:.5f}, MIG {ae['mig']:.3f}, DCI {ae['dci']:.3f}")

    metrics = json.loads((REPORTS / "metrics.json").read_text())
    latent_kl = json.loads((REPORTS / "latent_kl.json").read_text())
    cifar = cifar_entries(metrics, latent_kl, cifar_total_correlations(params, device, settings["cifar_codes"]))

    low, high = compared_labels(labels)
    low_model, _ = load_shapes_model(low, device)
    active = reports[low]["active_dims"]
    gradient = None
    if active:
        gradient = estimator_variances(low_model, dataset["x_test"][:settings["gradient_images"]], active,
                                       settings["gradient_samples"], seed)
        gradient["beta"] = low
    study = {"shapes": {label: shapes_summary_row(reports[label]) for label in labels},
             "cifar10": cifar,
             "shapes_autoencoder": shapes_summary_row(ae),
             "reparameterization": gradient,
             "factor_names": dataset["factor_names"],
             "compared": {"low": low, "high": high},
             "evaluation": {"test_images": ae["test_images"], "code_images": ae["code_images"],
                            "paths": settings["paths"], "path_steps": settings["path_steps"],
                            "prior_samples": settings["prior_samples"], "cifar_codes": settings["cifar_codes"]}}

    FIGURES.mkdir(parents=True, exist_ok=True)
    plot_beta_tradeoff(study["shapes"], cifar, ae, FIGURES / "beta_tradeoff.png")
    plot_smoothness({"autoencoder": ae, **{f"beta = {label}": reports[label] for label in labels}},
                    FIGURES / "interpolation_smoothness.png")
    pair = dataset["x_test"][torch.randperm(len(dataset["x_test"]), generator=torch.Generator().manual_seed(seed))[:2]]
    high_model = low_model if high == low else load_shapes_model(high, device)[0]
    compared = {"autoencoder": autoencoder, f"beta = {low}": low_model, f"beta = {high}": high_model}
    plot_autoencoder_vs_vae(compared, pair, FIGURES / "autoencoder_vs_vae_shapes.png",
                            steps=settings["path_steps"], seed=seed)

    text = theory_markdown(study)
    _atomic(THEORY, lambda tmp: Path(tmp).write_text(text))
    write_json(METRICS_BETA, study)
    with tracking.reopen_run(SHAPES_MODELS / AUTOENCODER, params["shapes"]["mlflow_experiment"], "shapes_ae"):
        mlflow.log_metrics({f"final/{k}": float(v) for k, v in study["shapes_autoencoder"].items()
                            if isinstance(v, (int, float)) and not isinstance(v, bool)})
        for figure in ("beta_tradeoff.png", "interpolation_smoothness.png", "autoencoder_vs_vae_shapes.png"):
            mlflow.log_artifact(str(FIGURES / figure), artifact_path="figures")
        mlflow.log_artifact(str(THEORY))
    return study
