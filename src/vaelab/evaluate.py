"""Test-set measurements of a trained VAE: ELBO terms, bits/dim, reconstruction error, latent use."""

from __future__ import annotations

import torch

from .data import to_model_input
from .losses import bits_per_dim, kl_to_standard_normal, vae_loss
from .models import VAE, reparameterize


@torch.no_grad()
def elbo_metrics(model: VAE, images: torch.Tensor, device: torch.device, beta: float = 1.0,
                 batch_size: int = 500, seed: int = 0) -> dict[str, float]:
    """Averages over `images` (uint8 NHWC) of the objective, its parts, MSE and bits/dim.

    One z sample per image (the standard single-sample ELBO). The dequantisation noise and z draw
    come from a forked, seeded RNG: the numbers repeat exactly and the caller's RNG is untouched.
    """
    was_training = model.training
    model.eval()
    totals = {"loss": 0.0, "recon": 0.0, "kl": 0.0, "neg_elbo": 0.0, "mse": 0.0}
    noise = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        for start in range(0, len(images), batch_size):
            x = to_model_input(images[start:start + batch_size], device, noise)
            mu, logvar = model.encode(x)
            mean = model.decode(reparameterize(mu, logvar))
            parts = vae_loss(x, mean, model.log_sigma, mu, logvar, beta)
            for key in ("loss", "recon", "kl", "neg_elbo"):
                totals[key] += parts[key].item() * len(x)
            # Reconstruction error of the posterior mean, per pixel on the 0..1 scale.
            totals["mse"] += (model.decode(mu) - x).pow(2).mean(dim=(1, 2, 3)).sum().item()
    model.train(was_training)
    metrics = {key: value / len(images) for key, value in totals.items()}
    metrics["bpd"] = bits_per_dim(metrics["neg_elbo"], images[0].numel())
    return metrics


@torch.no_grad()
def posterior_stats(model: VAE, images: torch.Tensor, device: torch.device, batch_size: int = 500):
    """Posterior means (N, latent) and mean KL per latent dimension (latent,) over `images`."""
    model.eval()
    means, kl_sum = [], None
    noise = torch.Generator().manual_seed(0)
    for start in range(0, len(images), batch_size):
        mu, logvar = model.encode(to_model_input(images[start:start + batch_size], device, noise))
        means.append(mu.cpu())
        kl = kl_to_standard_normal(mu, logvar).sum(dim=0).cpu()
        kl_sum = kl if kl_sum is None else kl_sum + kl
    return torch.cat(means), kl_sum / len(images)


def active_units(posterior_means: torch.Tensor, threshold: float = 0.01) -> int:
    """Latent dims whose posterior mean varies across data (Burda et al. 2016): Var_x E[z|x] > threshold."""
    return int((posterior_means.var(dim=0) > threshold).sum())


def sharpness(images: torch.Tensor) -> float:
    """Mean absolute Laplacian of float (B, C, H, W) images in [0, 1]: the high-frequency energy
    that blur removes. Reported relative to real test images, so 1.0 means as sharp as real."""
    kernel = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])
    kernel = kernel.expand(images.shape[1], 1, 3, 3).to(images)
    edges = torch.nn.functional.conv2d(images, kernel, groups=images.shape[1])
    return edges.abs().mean().item()


def run_evaluation(params: dict) -> dict:
    """The `evaluate` stage: test metrics of every model into reports/metrics.json (DVC metrics),
    KL per latent dimension into reports/latent_kl.json, and both into each model's MLflow run."""
    from pathlib import Path

    import mlflow

    from . import tracking
    from .checkpoints import load_model, write_json
    from .data import load_dataset, to_display
    from .params import MODEL_NAMES
    from .runtime import resolve_device

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
