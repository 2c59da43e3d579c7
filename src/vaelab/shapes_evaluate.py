"""Stage evaluate_shapes@<beta>: one shapes model measured against the known factors.

Writes reports/shapes/beta<beta>.json and reports/figures/traversals_shapes_beta<beta>.png, and
adds the numbers and the figure to the model's MLflow run. `evaluate_shapes_model` is also how
the compare_betas stage measures the autoencoder, so every model is measured the same way:

* test set: reconstruction MSE of the posterior mean (per pixel, 0..1), KL per latent dim (VAEs),
  active units;
* codes (posterior means) of `code_count` training images fit MIG and the DCI forests; the forests
  are scored on the test split; a VAE's inactive dims are held constant for both (see below);
  the Gaussian total correlation uses the test split;
* latent geometry (`latent_geometry`): prior samples and interpolation paths.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .autoencoder import autoencoder_metrics
from .checkpoints import write_json
from .data import to_model_input
from .disentanglement import best_factor_per_dim, dci, factor_dims, gaussian_total_correlation, mig
from .errors import VaelabError
from .latent_geometry import interpolation_smoothness, prior_sample_distance, reference_pixels
from .losses import kl_to_standard_normal
from .metrics import active_units, elbo_metrics
from .models import VAE
from .params import _fail, _number
from .shapes import FACTOR_LABELS, load_shapes
from .shapes_train import SHAPES_MODELS, limit_threads, load_shapes_model, model_name

SHAPES_REPORTS = Path("reports/shapes")
FIGURES = Path("reports/figures")

# Integer settings (name, smallest allowed) of shapes.evaluate; traversal_span is the one float.
INTEGER_SETTINGS = (("code_count", 10), ("mi_bins", 2), ("dci_trees", 1), ("dci_max_depth", 1),
                    ("prior_samples", 1), ("paths", 1), ("path_steps", 3), ("traversal_steps", 2),
                    ("cifar_codes", 2), ("gradient_images", 1), ("gradient_samples", 2))


def evaluation_settings(params: dict) -> dict:
    settings = params.get("shapes", {}).get("evaluate")
    if not isinstance(settings, dict):
        _fail("shapes.evaluate", "section is missing")
    checked = {key: _number(settings, "shapes.evaluate", key, int, low) for key, low in INTEGER_SETTINGS}
    checked["traversal_span"] = _number(settings, "shapes.evaluate", "traversal_span", float, 0, exclusive=True)
    checked["active_threshold"] = _number(settings, "shapes.evaluate", "active_threshold", float, 0)
    return checked


@torch.no_grad()
def encode_all(model: VAE, images: torch.Tensor, device: torch.device, batch_size: int = 500):
    """uint8 NHWC -> posterior means and log-variances (N, latent) on the CPU, seeded dequantisation."""
    model.eval()
    noise = torch.Generator().manual_seed(0)
    mus, logvars = [], []
    for start in range(0, len(images), batch_size):
        mu, logvar = model.encode(to_model_input(images[start:start + batch_size], device, noise))
        mus.append(mu.cpu())
        logvars.append(logvar.cpu())
    return torch.cat(mus), torch.cat(logvars)


def evaluate_shapes_model(model: VAE, autoencoder: bool, dataset: dict, settings: dict, device: torch.device,
                          seed: int, reference: torch.Tensor | None = None) -> dict:
    """Every number of one shapes model; `reference` (flat training pixels) may be passed in when
    several models are evaluated on the same data."""
    names = dataset["factor_names"]
    x_train, x_test = dataset["x_train"], dataset["x_test"]
    generator = torch.Generator().manual_seed(seed)
    pick = torch.randperm(len(x_train), generator=generator)[:settings["code_count"]].numpy()
    train_mu, _ = encode_all(model, x_train[pick], device)
    test_mu, test_logvar = encode_all(model, x_test, device)
    out: dict = {"autoencoder": autoencoder, "latent_dim": model.latent_dim, "test_images": len(x_test),
                 "code_images": len(pick)}
    if autoencoder:
        out["recon_mse"] = autoencoder_metrics(model, x_test.to(device), device, seed=seed)["mse"]
    else:
        elbo = elbo_metrics(model, x_test.to(device), device, beta=1.0, seed=seed)
        kl_per_dim = kl_to_standard_normal(test_mu, test_logvar).mean(dim=0)
        out.update(recon_mse=elbo["mse"], kl=elbo["kl"], neg_elbo=elbo["neg_elbo"], bpd=elbo["bpd"],
                   kl_per_dim=kl_per_dim.tolist())
    out["active_units"] = active_units(test_mu, settings["active_threshold"])
    active = test_mu.var(dim=0) > settings["active_threshold"]
    out["active_dims"] = active.nonzero().flatten().tolist()

    # Scores use the dims the decoder can read. An inactive VAE dim's mean moves by less than a
    # tenth of its posterior noise (std ~1), yet binning that tiny range can find "information"
    # that never reaches the decoder, so those dims are held constant. The autoencoder's code has
    # no noise and an arbitrary scale: all of it counts.
    train_codes, test_codes = train_mu.clone(), test_mu.clone()
    if not autoencoder:
        train_codes[:, ~active] = 0.0
        test_codes[:, ~active] = 0.0
    gap = mig(train_codes.numpy(), dataset["factors_train"][pick], settings["mi_bins"])
    scores = dci(train_codes.numpy(), dataset["factors_train"][pick], test_codes.numpy(), dataset["factors_test"],
                 settings["dci_trees"], settings["dci_max_depth"], seed)
    out.update(mig=gap["mig"], mig_per_factor=dict(zip(names, gap["per_factor"])),
               dci=scores["disentanglement"], dci_completeness=scores["completeness"],
               dci_informativeness=scores["informativeness"],
               dci_accuracy_per_factor=dict(zip(names, scores["accuracy_per_factor"])),
               factor_dims=factor_dims(gap["normalised_mi"], names),
               dim_factor=[{"factor": f, "normalised_mi": v}
                           for f, v in best_factor_per_dim(gap["normalised_mi"], names)],
               normalised_mi=gap["normalised_mi"], dci_importances=scores["importances"],
               gaussian_tc=gaussian_total_correlation(test_mu, None if autoencoder else test_logvar))

    if reference is None:
        reference = reference_pixels(x_train)
    out.update(prior_sample_distance(model, reference, settings["prior_samples"], seed))
    ends = torch.randint(len(x_test), (settings["paths"], 2), generator=generator)
    out.update(interpolation_smoothness(model, test_mu[ends[:, 0]], test_mu[ends[:, 1]], settings["path_steps"],
                                        reference))
    return out


def traversal_rows(metrics: dict) -> tuple[list[int], list[str]]:
    """The dims to traverse (active, most KL first; the three highest-KL dims if none is active) and
    each row's label: the dim, its KL, and the factor it shares the most information with."""
    kl = metrics["kl_per_dim"]
    by_kl = sorted(range(len(kl)), key=lambda j: -kl[j])
    active = set(metrics["active_dims"])
    dims = [j for j in by_kl if j in active] or by_kl[:3]
    labels = []
    for j in dims:
        best = metrics["dim_factor"][j]
        state = "" if j in active else ", inactive"
        factor = f"{best['factor']} {best['normalised_mi']:.2f}" if best["normalised_mi"] > 0 else "no factor"
        labels.append(f"z{j} (KL {kl[j]:.2f}{state})\n{factor}")
    return dims, labels


def run_shapes_evaluation(label: str, params: dict) -> dict:
    import mlflow

    from . import tracking  # imports mlflow: only when the stage runs
    from .runtime import resolve_device
    from .shapes_figures import plot_labelled_traversals

    settings = evaluation_settings(params)
    device, seed = resolve_device(params["device"]), params["seed"]
    limit_threads(params)
    tracking.check_tracking_server()
    dataset = load_shapes(Path(params["shapes"]["data"]["path"]))
    dataset["factor_names"] = [FACTOR_LABELS.get(n, n) for n in dataset["factor_names"]]
    model, config = load_shapes_model(label, device)
    if config.get("autoencoder"):
        raise VaelabError(f"models/shapes/{model_name(label)} is the autoencoder; evaluate_shapes takes a beta")
    metrics = evaluate_shapes_model(model, False, dataset, settings, device, seed)
    metrics.update(beta=config["beta"], epochs=config["epochs_trained"], train_seconds=config["train_seconds"])
    name = model_name(label)
    write_json(SHAPES_REPORTS / f"{name}.json", metrics)

    dims, labels = traversal_rows(metrics)
    base = dataset["x_test"][int(torch.randint(len(dataset["x_test"]), (1,),
                                               generator=torch.Generator().manual_seed(seed)))]
    figure = FIGURES / f"traversals_shapes_{name}.png"
    FIGURES.mkdir(parents=True, exist_ok=True)
    plot_labelled_traversals(model, base, dims, labels, figure, span=settings["traversal_span"],
                             steps=settings["traversal_steps"],
                             title=f"shapes, beta = {label}: each row one latent dim from "
                                   f"-{settings['traversal_span']:g} to +{settings['traversal_span']:g}; "
                                   "label: the factor it shares most information with (normalised MI)")
    print(f"shapes_{name}: recon MSE {metrics['recon_mse']:.5f}, KL {metrics['kl']:.1f} nats, "
          f"{metrics['active_units']} active units, MIG {metrics['mig']:.3f}, DCI {metrics['dci']:.3f}")
    with tracking.reopen_run(SHAPES_MODELS / name, params["shapes"]["mlflow_experiment"], f"shapes_{name}"):
        mlflow.log_metrics({f"final/{k}": float(v) for k, v in metrics.items()
                            if isinstance(v, (int, float)) and not isinstance(v, bool)})
        mlflow.log_artifact(str(figure), artifact_path="figures")
    return metrics


def read_model_reports(labels: list[str]) -> dict[str, dict]:
    """reports/shapes/beta<label>.json of every beta, keyed by label."""
    out = {}
    for label in labels:
        path = SHAPES_REPORTS / f"{model_name(label)}.json"
        if not path.is_file():
            raise VaelabError(f"{path} is missing; run dvc repro evaluate_shapes@{label}")
        out[label] = json.loads(path.read_text())
    return out


def shapes_summary_row(metrics: dict) -> dict:
    """The numbers of one shapes model that go into reports/metrics_beta.json (the per-model
    report keeps the matrices and per-path values)."""
    keys = ("recon_mse", "kl", "kl_per_dim", "active_units", "latent_dim", "mig", "mig_per_factor", "dci",
            "dci_completeness", "dci_informativeness", "factor_dims", "gaussian_tc", "prior_nn_mse",
            "path_max_over_mean", "path_mean_step", "midpoint_nn_mse", "neg_elbo", "bpd", "beta", "epochs",
            "train_seconds")
    return {key: metrics[key] for key in keys if key in metrics}
