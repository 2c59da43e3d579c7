"""The `evaluate` stage: test metrics of every model into reports/metrics.json (DVC metrics),
KL per latent dimension into reports/latent_kl.json, and both into each model's MLflow run."""

from __future__ import annotations

from pathlib import Path

import mlflow
import torch

from . import tracking
from .checkpoints import load_model, write_json
from .data import load_dataset, to_display
from .metrics import active_units, elbo_metrics, posterior_stats, sharpness
from .params import MODEL_NAMES
from .runtime import resolve_device


def run_evaluation(params: dict) -> dict:
    device = resolve_device(params["device"])
    settings = params["evaluate"]
    tracking.check_tracking_server()
    data = params["data"]
    dataset = load_dataset(Path(data["path"]), data["train_limit"], data["test_limit"])
    x_test = dataset["x_test"].to(device)
    real_sharpness = sharpness(to_display(dataset["x_test"][: settings["sample_count"]]))
    metrics, latent_kl = {}, {}
    for name in MODEL_NAMES:
        model_dir = Path("models") / name
        model, config = load_model(model_dir, device)
        elbo = elbo_metrics(model, x_test, device, beta=1.0, batch_size=settings["batch_size"], seed=params["seed"])
        means, kl_dims = posterior_stats(model, x_test, device, settings["batch_size"])
        with torch.no_grad():
            z = torch.randn(settings["sample_count"], model.latent_dim,
                            generator=torch.Generator().manual_seed(params["seed"])).to(device)
            samples = model.decode(z).float().cpu()
        metrics[name] = {
            "test_neg_elbo": elbo["neg_elbo"], "test_bpd": elbo["bpd"], "test_recon_nll": elbo["recon"],
            "test_recon_mse": elbo["mse"], "test_kl": elbo["kl"],
            "active_units": active_units(means, settings["active_threshold"]), "latent_dim": model.latent_dim,
            "sample_sharpness": sharpness(samples) / real_sharpness,
            "beta": config["beta"], "epochs": config["epochs_trained"], "train_seconds": config["train_seconds"],
        }
        latent_kl[name] = kl_dims.tolist()
        print(f"{name}: " + ", ".join(f"{k} {v:.4g}" for k, v in metrics[name].items()))
        with tracking.reopen_run(model_dir, params["mlflow"]["experiment"], name):
            mlflow.log_metrics({f"final/{k}": float(v) for k, v in metrics[name].items()})
    write_json(Path("reports/metrics.json"), metrics)
    write_json(Path("reports/latent_kl.json"), latent_kl)
    return metrics
