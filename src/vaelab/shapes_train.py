"""Stages train_shapes@<beta> and train_shapes_ae: the beta sweep and the autoencoder on shapes.

Every model is the same network (`shapes.train` in params.yaml), trained on data/shapes.npz from
the same seed and batch order; only beta differs, and the autoencoder drops the sampling and the
KL term. The VAEs train with `train.fit`, the loop of the CIFAR-10 models, and resume the same way
from a checkpoint after every epoch. Each model is one MLflow run in experiment `shapes-beta`
(shapes.mlflow_experiment) and ends in models/shapes/<name>/ (state_dict + config + run id) and
reports/curves/shapes_<name>.csv.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from .checkpoints import TRAINING_STATE, load_model, load_training_state, save_model
from .data import file_digest
from .errors import VaelabError
from .models import build_model
from .params import _fail, _number
from .runtime import resolve_device, seed_everything
from .shapes import load_shapes
from .train import CHECKPOINT_ROOT, CURVES_ROOT, checkpoint_dir, fit, write_curves

SHAPES_MODELS = Path("models/shapes")
AUTOENCODER = "ae"


def beta_label(beta) -> str:
    """How a beta from params.yaml names its stage, model folder and metrics key: as DVC's
    `${item}` renders it (1 -> "1", 2.5 -> "2.5")."""
    return str(beta)


def model_name(label: str) -> str:
    return AUTOENCODER if label == AUTOENCODER else f"beta{label}"


def shapes_betas(params: dict) -> list:
    """The checked beta list of the sweep (shapes.betas)."""
    betas = params.get("shapes", {}).get("betas")
    if not isinstance(betas, list) or not betas:
        _fail("shapes.betas", "must be a non-empty list of numbers")
    for beta in betas:
        if isinstance(beta, bool) or not isinstance(beta, (int, float)) or beta < 0:
            _fail("shapes.betas", f"must hold numbers >= 0, got {beta!r}")
    if len({float(b) for b in betas}) != len(betas):
        _fail("shapes.betas", f"holds the same beta twice ({betas}); each beta is one model")
    return betas


def limit_threads(params: dict) -> None:
    """Run torch on shapes.threads CPU threads (0 = torch's default, every core). These small models
    gain little from a second thread, while on a CPU busy with other work two threads measured
    about 4x slower than one (OpenMP threads waiting on each other)."""
    threads = _number(params["shapes"], "shapes", "threads", int, 0)
    if threads:
        torch.set_num_threads(threads)


def training_section(params: dict) -> dict:
    """shapes.train checked and converted, in the form `train.fit` takes (beta set by the caller)."""
    shapes = params.get("shapes")
    if not isinstance(shapes, dict) or not isinstance(shapes.get("train"), dict):
        _fail("shapes.train", "section is missing (model, epochs, batch_size, lr)")
    train = shapes["train"]
    model = train.get("model")
    if not isinstance(model, dict) or model.get("arch") != "conv":
        _fail("shapes.train.model", "must be a conv model (arch: conv, latent_dim, widths)")
    widths = model.get("widths")
    if not isinstance(widths, list) or not widths or not all(isinstance(w, int) and w > 0 for w in widths):
        _fail("shapes.train.model.widths", f"must be a non-empty list of positive integers, got {widths!r}")
    checked = dict(model, latent_dim=_number(model, "shapes.train.model", "latent_dim", int, 2),
                   initial_sigma=_number(model, "shapes.train.model", "initial_sigma", float, 0, exclusive=True)
                   if "initial_sigma" in model else 0.1)
    return {"model": checked,
            "epochs": _number(train, "shapes.train", "epochs", int, 1),
            "batch_size": _number(train, "shapes.train", "batch_size", int, 2),
            "lr": _number(train, "shapes.train", "lr", float, 0, exclusive=True)}


def train_shapes_model(label: str, params: dict, resume: str = "auto") -> dict:
    """Train the beta = `label` VAE, or with label "ae" the autoencoder; returns its config."""
    import mlflow

    from . import tracking
    from .autoencoder import fit_autoencoder

    autoencoder = label == AUTOENCODER
    if not autoencoder:
        try:
            beta = float(label)
        except ValueError:
            raise VaelabError(f"beta {label!r} is not a number; pass a value of shapes.betas or 'ae'") from None
        if beta < 0:
            raise VaelabError(f"beta {label} is negative; the KL weight must be >= 0")
    section = {**training_section(params), "beta": 0.0 if autoencoder else beta}
    name = model_name(label)
    data_path = Path(params["shapes"]["data"]["path"])
    device, seed = resolve_device(params["device"]), params["seed"]
    limit_threads(params)
    tracking.check_tracking_server()
    dataset = load_shapes(data_path)
    data_sha256 = file_digest(data_path, "sha256")
    ckpt_dir = checkpoint_dir(CHECKPOINT_ROOT, f"shapes_{name}", section, seed, data_sha256, (0, 0))
    state = load_training_state(ckpt_dir / TRAINING_STATE)
    if resume == "always" and state is None:
        raise VaelabError(f"--resume: no checkpoint for this configuration of shapes_{name} in {ckpt_dir}; "
                          "run without --resume to train from scratch")
    if resume == "never" and state is not None:
        shutil.rmtree(ckpt_dir)
        state = None

    seed_everything(seed)
    model = build_model(section["model"])
    x_train, x_test = dataset["x_train"].to(device), dataset["x_test"].to(device)
    kind = "autoencoder (z = mu, no KL)" if autoencoder else f"VAE, beta = {label}"
    print(f"shapes_{name}: {kind}, {sum(p.numel() for p in model.parameters()):,} parameters, "
          f"{len(x_train):,} training images, device {device}" + (f", resuming after epoch {state['epoch']}"
                                                                 if state else ""))
    curves_path = CURVES_ROOT / f"shapes_{name}.csv"
    history_so_far = list(state["history"]) if state else []
    with tracking.model_run(params["shapes"]["mlflow_experiment"], f"shapes_{name}",
                            state.get("mlflow_run_id") if state else None) as run:
        if state is None:
            mlflow.log_params(tracking.flatten("", {"model_name": f"shapes_{name}", "seed": seed,
                                                    "autoencoder": autoencoder, **section}))
            mlflow.set_tags({"git_commit": tracking.git_commit(), "data_sha256": data_sha256,
                             "model_name": f"shapes_{name}"})

        def on_epoch(epoch: int, row: dict, trained) -> None:
            mlflow.log_metrics({k: v for k, v in row.items() if k != "epoch"}, step=epoch)
            history_so_far.append(row)
            write_curves(curves_path, history_so_far)

        train = fit_autoencoder if autoencoder else fit
        history = train(model, section, x_train, x_test, device, ckpt_dir / TRAINING_STATE, seed, state=state,
                        on_epoch=on_epoch, extra_state={"mlflow_run_id": run.info.run_id}, label=f"shapes_{name}")
        model_dir = SHAPES_MODELS / name
        config = {"name": f"shapes_{name}", **section, "autoencoder": autoencoder, "seed": seed,
                  "data_sha256": data_sha256, "epochs_trained": len(history),
                  "train_seconds": sum(r["epoch_seconds"] for r in history)}
        save_model(model_dir, model, config)
        tracking.record_run(model_dir, run)
        write_curves(curves_path, history)
        mlflow.log_artifacts(str(model_dir), artifact_path="state_dict")
    shutil.rmtree(ckpt_dir, ignore_errors=True)  # the finished model now lives in models/shapes/<name>
    return config


def load_shapes_model(label: str, device: torch.device):
    """The trained model of beta `label` (or "ae") and its config."""
    return load_model(SHAPES_MODELS / model_name(label), device)
