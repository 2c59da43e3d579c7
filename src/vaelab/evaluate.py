"""The `evaluate` stage: every number of reports/metrics.json (registered as DVC metrics).

Per model: test-set ELBO terms, bits/dim, reconstruction error, active units, sample sharpness,
and the judge's scores (`sample_quality`) of 10,000 generated images from each sampler (the prior
N(0, I) and an ex-post Gaussian mixture fitted to the training codes) and of the reconstructions
of the 10,000 test images. Reference rows scored the same way show what the numbers mean: real
training images (the floor), Gaussian noise, and blurred real images. Each model's numbers also go
into its MLflow run; the mixtures are saved for the render stage.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import torch
from torchvision.transforms.functional import gaussian_blur

from . import tracking
from .checkpoints import load_model, write_json
from .data import load_dataset, to_display, to_model_input
from .evaluator import load_classifier, predict
from .metrics import active_units, elbo_metrics, posterior_stats, sharpness
from .models import VAE
from .params import MODEL_NAMES
from .runtime import resolve_device
from .sample_quality import fit_latent_gmm, fit_temperature, quality_row, sample_codes

SAMPLERS = ("prior", "gmm")
SAMPLERS_DIR = Path("models/samplers")


@torch.no_grad()
def decode_all(model: VAE, codes: torch.Tensor, device: torch.device, batch_size: int = 500) -> torch.Tensor:
    """(N, latent) codes -> (N, C, H, W) decoder means on the CPU."""
    model.eval()
    return torch.cat([model.decode(codes[i:i + batch_size].to(device)).float().cpu().clamp_(0, 1)
                      for i in range(0, len(codes), batch_size)])


@torch.no_grad()
def reconstruct_all(model: VAE, images: torch.Tensor, device: torch.device, batch_size: int = 500) -> torch.Tensor:
    model.eval()
    noise = torch.Generator().manual_seed(0)
    return torch.cat([model.decode(model.encode(to_model_input(images[i:i + batch_size], device, noise))[0])
                      .float().cpu().clamp_(0, 1) for i in range(0, len(images), batch_size)])


def reference_images(dataset: dict, count: int, seed: int, blur_sigma: float) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    real = to_display(dataset["x_train"][:count])
    return {"real_train": real,
            "noise": (0.5 + 0.25 * torch.randn(real.shape, generator=generator)).clamp_(0, 1),
            "blurred": gaussian_blur(real, kernel_size=7, sigma=blur_sigma)}


def inception_fid(weights: str | None, real: torch.Tensor, fake: torch.Tensor) -> float | None:
    """True Inception FID, only when the user has the weights on disk (nothing is downloaded)."""
    if not weights:
        return None
    if not Path(weights).is_file():
        print(f"note: evaluate.inception_weights {weights} does not exist; Inception FID skipped")
        return None
    try:
        from torchmetrics.image.fid import FrechetInceptionDistance

        metric = FrechetInceptionDistance(feature=2048, normalize=True, feature_extractor_weights_path=weights)
    except (ModuleNotFoundError, RuntimeError, OSError) as e:
        print(f"note: Inception FID skipped ({e}); pip install torch-fidelity to enable it")
        return None
    for start in range(0, len(real), 250):
        metric.update(real[start:start + 250], real=True)
        metric.update(fake[start:start + 250], real=False)
    return float(metric.compute())


def run_evaluation(params: dict) -> dict:
    device = resolve_device(params["device"])
    settings, seed = params["evaluate"], params["seed"]
    tracking.check_tracking_server()
    data = params["data"]
    dataset = load_dataset(Path(data["path"]), data["train_limit"], data["test_limit"])
    classes, count = dataset["classes"], min(settings["sample_count"], len(dataset["x_test"]))
    x_test = dataset["x_test"].to(device)
    real_test = to_display(dataset["x_test"][:count])
    real_sharpness = sharpness(real_test)

    judge = load_classifier(Path("models/evaluator"), device)
    real_features, real_logits = predict(judge, real_test, device)
    evaluator_accuracy = float((real_logits.argmax(1) == dataset["y_test"][:count]).float().mean())
    # Calibrated on the labelled test images the scores are measured against; one scalar.
    temperature = fit_temperature(real_logits, dataset["y_test"][:count])
    print(f"evaluator accuracy on the test set: {evaluator_accuracy:.4f}, temperature {temperature:.3f}")

    def judged(images: torch.Tensor) -> dict:
        features, logits = predict(judge, images, device)
        return quality_row(real_features, features, logits, classes, temperature)

    metrics: dict = {"evaluator_accuracy": evaluator_accuracy, "evaluator_temperature": temperature,
                     "evaluated_images": count, "reference": {}}
    for name, images in reference_images(dataset, count, seed, settings["blur_sigma"]).items():
        metrics["reference"][name] = judged(images)
        print(f"reference {name}: fd_clf {metrics['reference'][name]['fd_clf']:.2f}")

    latent_kl = {}
    SAMPLERS_DIR.mkdir(parents=True, exist_ok=True)
    for name in MODEL_NAMES:
        model_dir = Path("models") / name
        model, config = load_model(model_dir, device)
        elbo = elbo_metrics(model, x_test, device, beta=1.0, batch_size=settings["batch_size"], seed=seed)
        means, kl_dims = posterior_stats(model, x_test, device, settings["batch_size"])
        train_means, _ = posterior_stats(model, dataset["x_train"].to(device), device, settings["batch_size"])
        gmm = fit_latent_gmm(train_means, settings["gmm_components"], seed)
        np.savez(SAMPLERS_DIR / f"{name}.npz", **gmm)
        samplers, prior_samples = {}, None
        for sampler in SAMPLERS:
            codes = sample_codes(sampler, count, model.latent_dim, seed, gmm)
            samples = decode_all(model, codes, device)
            prior_samples = samples if sampler == "prior" else prior_samples
            samplers[sampler] = judged(samples)
        recon = judged(reconstruct_all(model, x_test[:count], device))
        metrics[name] = {
            "test_neg_elbo": elbo["neg_elbo"], "test_bpd": elbo["bpd"], "test_recon_nll": elbo["recon"],
            "test_recon_mse": elbo["mse"], "test_kl": elbo["kl"],
            "active_units": active_units(means, settings["active_threshold"]), "latent_dim": model.latent_dim,
            "sample_sharpness": sharpness(prior_samples) / real_sharpness,
            "fd_clf_recon": recon["fd_clf"], "recognisable_recon": recon["recognisable"],
            "samplers": samplers,
            "beta": config["beta"], "epochs": config["epochs_trained"], "train_seconds": config["train_seconds"],
        }
        fid = inception_fid(settings.get("inception_weights"), real_test[:count], prior_samples)
        if fid is not None:
            metrics[name]["inception_fid"] = fid
        latent_kl[name] = kl_dims.tolist()
        print(f"{name}: -ELBO {elbo['neg_elbo']:.1f} nats ({elbo['bpd']:.3f} bits/dim), "
              + ", ".join(f"{s} fd_clf {r['fd_clf']:.2f} recognisable {r['recognisable']:.3f}"
                          for s, r in samplers.items()) + f", recon fd_clf {recon['fd_clf']:.2f}")
        flat = {f"final/{k}": float(v) for k, v in metrics[name].items() if isinstance(v, (int, float))}
        for sampler, row in samplers.items():
            flat.update({f"final/{sampler}/{k}": float(v) for k, v in row.items() if isinstance(v, (int, float))})
        with tracking.reopen_run(model_dir, params["mlflow"]["experiment"], name):
            mlflow.log_metrics(flat)
    if not settings.get("inception_weights"):
        print("note: true Inception FID skipped: set evaluate.inception_weights to a local weights file "
              "(and pip install torch-fidelity) to compute it")
    # conv_faces is measured by its own stage (evaluate_faces, a dependency of this one in dvc.yaml);
    # its numbers join this file so `dvc metrics show` has every model in one place.
    faces_metrics = Path("reports/faces/metrics.json")
    if faces_metrics.is_file():
        metrics["conv_faces"] = json.loads(faces_metrics.read_text())
    write_json(Path("reports/metrics.json"), metrics)
    write_json(Path("reports/latent_kl.json"), latent_kl)
    return metrics
