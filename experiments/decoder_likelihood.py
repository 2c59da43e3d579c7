"""Ablation: learned decoder variance (the default) vs a fixed-variance Gaussian decoder.

    python experiments/decoder_likelihood.py [--epochs 10] [--variants learned fixed_1 fixed_0.1]

Trains the `conv` model of params.yaml once per variant for the same (short) number of epochs and
scores each like the evaluate stage: test bits/dim, reconstruction MSE, KL, active units, and the
evaluator classifier's fd_clf and recognisable share for 10,000 prior samples. Needs the fetched
data and a trained evaluator (`dvc repro train_evaluator`). Writes reports/ablation_likelihood.json
and logs one MLflow run per variant to the experiment `cifar10-likelihood-ablation`. Not a DVC
stage: it would push the default `dvc repro` past its time budget.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
from pathlib import Path

import mlflow
import torch

from vaelab import tracking
from vaelab.checkpoints import TRAINING_STATE, write_json
from vaelab.data import load_dataset, to_display
from vaelab.evaluate import decode_all
from vaelab.evaluator import load_classifier, predict
from vaelab.metrics import active_units, elbo_metrics, posterior_stats
from vaelab.models import build_model
from vaelab.params import load_params, model_section
from vaelab.runtime import resolve_device, seed_everything
from vaelab.sample_quality import fit_temperature, quality_row, sample_codes
from vaelab.train import fit

VARIANTS = {  # name -> (initial sigma, learned?)
    "learned": (0.1, True),
    "fixed_1": (1.0, False),      # the classic "MSE" VAE: sigma = 1
    "fixed_0.1": (0.1, False),    # a hand-tuned fixed sigma near the learned value
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    args = parser.parse_args()
    params = load_params("params.yaml")
    device, seed = resolve_device(params["device"]), params["seed"]
    tracking.check_tracking_server()
    data = load_dataset(Path(params["data"]["path"]))
    judge = load_classifier(Path("models/evaluator"), device)
    real_features, real_logits = predict(judge, to_display(data["x_test"]), device)
    temperature = fit_temperature(real_logits, data["y_test"])  # as the evaluate stage calibrates it
    x_train, x_test = data["x_train"].to(device), data["x_test"].to(device)
    results = {}
    for variant in args.variants:
        sigma, learned = VARIANTS[variant]
        section = {**model_section(params, "conv"), "epochs": args.epochs}
        section["model"] = {**section["model"], "initial_sigma": sigma}
        seed_everything(seed)
        model = build_model(section["model"])
        model.log_sigma.requires_grad_(learned)  # Adam skips a parameter that never gets a gradient
        mlflow.set_experiment("cifar10-likelihood-ablation")
        with mlflow.start_run(run_name=variant), tempfile.TemporaryDirectory() as scratch:
            mlflow.log_params({"variant": variant, "initial_sigma": sigma, "learn_sigma": learned, **{
                k: str(v) for k, v in section.items()}})
            history = fit(model, section, x_train, x_test, device, Path(scratch) / TRAINING_STATE, seed,
                          on_epoch=lambda e, row, m: mlflow.log_metrics(
                              {k: v for k, v in row.items() if k != "epoch"}, step=e), label=variant)
            elbo = elbo_metrics(model, x_test, device, seed=seed)
            means, _ = posterior_stats(model, x_test, device)
            samples = decode_all(model, sample_codes("prior", len(x_test), model.latent_dim, seed), device)
            features, logits = predict(judge, samples, device)
            judged = quality_row(real_features, features, logits, data["classes"], temperature)
            results[variant] = {"initial_sigma": sigma, "learn_sigma": learned, "epochs": args.epochs,
                                "final_sigma": math.exp(model.log_sigma.mean().item()),
                                "test_bpd": elbo["bpd"], "test_recon_mse": elbo["mse"], "test_kl": elbo["kl"],
                                "active_units": active_units(means), "fd_clf": judged["fd_clf"],
                                "is_clf": judged["is_clf"], "recognisable": judged["recognisable"],
                                "train_seconds": sum(r["epoch_seconds"] for r in history)}
            mlflow.log_metrics({f"final/{k}": float(v) for k, v in results[variant].items()})
        print(json.dumps({variant: results[variant]}, indent=1), flush=True)
    write_json(Path("reports/ablation_likelihood.json"), results)
    print("| variant | sigma | bits/dim | recon MSE | KL (nats) | active units | fd_clf | recognisable |")
    print("|---|---|---|---|---|---|---|---|")
    for variant, r in results.items():
        print(f"| {variant} | {r['final_sigma']:.3f}{'' if r['learn_sigma'] else ' (fixed)'} | {r['test_bpd']:.3f} | "
              f"{r['test_recon_mse']:.5f} | {r['test_kl']:.1f} | {r['active_units']} | {r['fd_clf']:.2f} | "
              f"{r['recognisable']:.3f} |")


if __name__ == "__main__":
    main()
