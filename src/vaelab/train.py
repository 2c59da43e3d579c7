"""Training: one loop for every model, resumable from a checkpoint written after each epoch.

Interruption: the checkpoint (model, optimizer, epoch, RNG state, history) is saved at the end of
every epoch under `checkpoints/<name>-<key>/`, where the key hashes everything that shapes the
result (model, optimiser settings, seed, data checksum), so only a compatible run is resumed. DVC
deletes a stage's outputs before rerunning it, which is why checkpoints live outside them. The
batch order of epoch e depends only on (seed, e), and the global RNG state is restored, so on CPU a
resumed run ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import shutil
import time
from pathlib import Path

import torch
from tqdm import tqdm

from .checkpoints import TRAINING_STATE, load_training_state, save_model, save_training_state
from .data import file_digest, load_dataset, to_model_input
from .errors import VaelabError
from .metrics import elbo_metrics
from .losses import vae_loss
from .models import VAE, build_model
from .params import model_section
from .runtime import resolve_device, seed_everything

CHECKPOINT_ROOT = Path("checkpoints")
MODELS_ROOT = Path("models")
CURVES_ROOT = Path("reports/curves")


def checkpoint_dir(root: Path, name: str, section: dict, seed: int, data_sha256: str,
                   limits: tuple[int, int]) -> Path:
    identity = json.dumps({"section": section, "seed": seed, "data": data_sha256, "limits": limits},
                          sort_keys=True)
    return Path(root) / f"{name}-{hashlib.sha256(identity.encode()).hexdigest()[:12]}"


def fit(model: VAE, section: dict, x_train: torch.Tensor, x_test: torch.Tensor, device: torch.device,
        state_path: Path, seed: int, *, state: dict | None = None, on_epoch=None,
        stop_after_epoch: int | None = None, extra_state: dict | None = None, label: str = "vae") -> list[dict]:
    """Train `model` to `section["epochs"]`, from `state` if given; returns the per-epoch history.

    x_train, x_test: uint8 (N, H, W, C), ideally already on `device`.
    """
    model.to(device)
    if device.type != "mps":
        model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=section["lr"])
    history, first_epoch = [], 1
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        history, first_epoch = list(state["history"]), state["epoch"] + 1
        torch.set_rng_state(state["torch_rng"])
        if device.type == "cuda" and "cuda_rng" in state:
            torch.cuda.set_rng_state(state["cuda_rng"], device)
    n, batch_size, beta = len(x_train), section["batch_size"], section["beta"]

    for epoch in range(first_epoch, section["epochs"] + 1):
        model.train()
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch)).to(x_train.device)
        sums = {"loss": 0.0, "recon": 0.0, "kl": 0.0, "neg_elbo": 0.0}
        started = time.perf_counter()
        with tqdm(total=n, unit="img", desc=f"{label} epoch {epoch}/{section['epochs']}", mininterval=5,
                  leave=False) as bar:
            for batch, start in enumerate(range(0, n, batch_size)):
                x = to_model_input(x_train[order[start:start + batch_size]], device)
                mean, mu, logvar = model(x)
                parts = vae_loss(x, mean, model.log_sigma, mu, logvar, beta)
                if not torch.isfinite(parts["loss"]):
                    kept = f"the checkpoint of epoch {epoch - 1} is kept in {state_path}" if epoch > 1 \
                        else "no checkpoint was written"
                    raise VaelabError(f"{label}: loss became {parts['loss'].item()} at epoch {epoch}, batch {batch}; "
                                      f"{kept}; lower the learning rate ({label}.lr) and rerun")
                optimizer.zero_grad(set_to_none=True)
                parts["loss"].backward()
                optimizer.step()
                for key in sums:
                    sums[key] += parts[key].item() * len(x)
                bar.update(len(x))
                bar.set_postfix(loss=f"{parts['loss'].item():.1f}", refresh=False)
        seconds = time.perf_counter() - started
        test = elbo_metrics(model, x_test, device, beta=beta, seed=seed)
        row = {"epoch": epoch, **{f"train_{k}": v / n for k, v in sums.items()},
               **{f"test_{k}": v for k, v in test.items()},
               "decoder_sigma": math.exp(model.log_sigma.detach().mean().item()),
               "epoch_seconds": seconds, "images_per_second": n / seconds}
        history.append(row)
        saved = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch,
                 "history": history, "torch_rng": torch.get_rng_state(), **(extra_state or {})}
        if device.type == "cuda":
            saved["cuda_rng"] = torch.cuda.get_rng_state(device)
        save_training_state(state_path, saved)
        print(f"{label} epoch {epoch}/{section['epochs']}: train loss {row['train_loss']:.1f}, "
              f"test -ELBO {row['test_neg_elbo']:.1f} nats ({row['test_bpd']:.3f} bits/dim), "
              f"KL {row['test_kl']:.1f}, {row['images_per_second']:.0f} img/s", flush=True)
        if on_epoch is not None:
            on_epoch(epoch, row, model)
        if stop_after_epoch == epoch:
            break
    return history


def write_curves(path: Path, history: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)


def run_training(name: str, params: dict, resume: str = "auto") -> dict:
    """The `train_<name>` stage of a CIFAR-10 model: see `train_and_log`."""
    from . import tracking

    section = model_section(params, name)
    tracking.check_tracking_server()  # before the data load: an unreachable server fails in seconds
    data = params["data"]
    dataset = load_dataset(Path(data["path"]), data["train_limit"], data["test_limit"])
    return train_and_log(name, section, dataset, Path(data["path"]), params, params["mlflow"]["experiment"],
                         {"train_limit": data["train_limit"], "test_limit": data["test_limit"]}, resume)


def train_and_log(name: str, section: dict, dataset: dict, data_path: Path, params: dict, experiment: str,
                  data_params: dict, resume: str = "auto", extras: dict | None = None) -> dict:
    """Train one VAE on `dataset` (x_train, x_test uint8 NHWC), write models/<name>/ and
    reports/curves/<name>.csv, and log params, per-epoch metrics, sample grids and the model to the
    MLflow run `name` in `experiment`. `data_params` (how the data were cut) join the checkpoint
    identity and the logged params; `extras` join the tags and the saved config.
    resume: "auto" continues a compatible checkpoint if one exists, "always" requires one, "never"
    discards it."""
    import mlflow

    from . import tracking
    from .figures import sample_grid_image

    device = resolve_device(params["device"])
    seed = params["seed"]
    data_sha256 = file_digest(data_path, "sha256")
    ckpt_dir = checkpoint_dir(CHECKPOINT_ROOT, name, section, seed, data_sha256, tuple(data_params.values()))
    state = load_training_state(ckpt_dir / TRAINING_STATE)
    if resume == "always" and state is None:
        raise VaelabError(f"--resume: no checkpoint for this configuration of {name} in {ckpt_dir}; "
                          "run without --resume to train from scratch")
    if resume == "never" and state is not None:
        shutil.rmtree(ckpt_dir)
        state = None

    seed_everything(seed)
    model = build_model(section["model"])
    x_train, x_test = dataset["x_train"].to(device), dataset["x_test"].to(device)
    print(f"{name}: {sum(p.numel() for p in model.parameters()):,} parameters, {len(x_train):,} training "
          f"images of {tuple(x_train.shape[1:])}, device {device}"
          + (f", resuming after epoch {state['epoch']}" if state else ""))
    sample_every = int(params["mlflow"].get("sample_every", 5))
    fixed_z = torch.randn(16, section["model"]["latent_dim"], generator=torch.Generator().manual_seed(seed))
    curves_path = CURVES_ROOT / f"{name}.csv"
    history_so_far = list(state["history"]) if state else []

    with tracking.model_run(experiment, name, state.get("mlflow_run_id") if state else None) as run:
        if state is None:
            mlflow.log_params(tracking.flatten("", {"model_name": name, "seed": seed, "device": str(device),
                                                    "data": data_params, **section}))
            mlflow.set_tags({"git_commit": tracking.git_commit(), "data_sha256": data_sha256, "model_name": name,
                             **(extras or {})})

        def on_epoch(epoch: int, row: dict, trained: VAE) -> None:
            mlflow.log_metrics({k: v for k, v in row.items() if k != "epoch"}, step=epoch)
            history_so_far.append(row)
            write_curves(curves_path, history_so_far)
            if epoch % sample_every == 0 or epoch == section["epochs"]:
                mlflow.log_image(sample_grid_image(trained, fixed_z), artifact_file=f"samples/epoch_{epoch:03d}.png")

        history = fit(model, section, x_train, x_test, device, ckpt_dir / TRAINING_STATE, seed, state=state,
                      on_epoch=on_epoch, extra_state={"mlflow_run_id": run.info.run_id}, label=name)
        model_dir = MODELS_ROOT / name
        config = {"name": name, **section, "seed": seed, "data_sha256": data_sha256, **(extras or {}),
                  "epochs_trained": len(history), "train_seconds": sum(r["epoch_seconds"] for r in history)}
        save_model(model_dir, model, config)
        tracking.record_run(model_dir, run)
        write_curves(curves_path, history)
        mlflow.log_artifacts(str(model_dir), artifact_path="state_dict")
        # The servable model is the generator, z (B, latent) -> images (B, C, H, W); the whole VAE is
        # the state_dict above. pt2 (torch.export) loads without unpickling code.
        example = torch.randn(2, section["model"]["latent_dim"]).numpy()
        mlflow.pytorch.log_model(model.cpu().eval().decoder, name="decoder", serialization_format="pt2",
                                 input_example=example,
                                 pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"])
    shutil.rmtree(ckpt_dir, ignore_errors=True)  # the finished model now lives in models/<name>
    return config
