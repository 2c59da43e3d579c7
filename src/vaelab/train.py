"""Training: ONE loop for every objective (vae, ae, classifier), resumable, guarded, tracked.

Every epoch ends with a checkpoint in `checkpoints/<run>-<key>/`, outside DVC's outputs (which DVC
deletes before rerunning a stage); the key hashes all that shapes the result, so only a compatible
run resumes. The batch order of epoch e depends only on (seed, e) and the global RNG state is
restored, so on the CPU a resumed run ends with the same weights as an uninterrupted one.

Divergence: a non-finite batch loss, or test metric, weight or buffer at an epoch's end, stops the
run with one line (exit != 0) before anything is written, keeping the last finite checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import time
import warnings
from pathlib import Path

import torch
from tqdm import tqdm

from . import datasets, parallel, store
from .config import dataset_config, params_key, run_config, sweep_of, sweep_runs
from .errors import VaelabError
from .losses import ae_loss, classifier_loss, vae_loss
from .metrics.likelihood import autoencoder_metrics, classifier_accuracy, elbo_metrics
from .models import build_model
from .runtime import autocast, resolve_device, seed_everything, use_mixed_precision


class DivergedError(VaelabError):
    """A non-finite loss, metric, weight or buffer."""


# The package's source: a checkpoint of other code is never resumed (nor restored). Read once, when
# the code that runs is loaded: an edit made while a sweep trains must not change the key under
# which its finished runs' checkpoints are found (and removed) at its end.
CODE_DIGEST = hashlib.sha256(
    b"".join(path.read_bytes() for path in sorted(Path(__file__).parent.rglob("*.py")))
).hexdigest()


def checkpoint_dir(run: dict, dataset: dict, data_sha256: str):
    """Only a run with the same params, data file, cut of it (limits) and code resumes."""
    identity = json.dumps(
        {"run": run, "dataset": dataset, "data": data_sha256, "code": CODE_DIGEST}, sort_keys=True
    )
    return store.CHECKPOINTS / f"{run['name']}-{hashlib.sha256(identity.encode()).hexdigest()[:12]}"


def augment(images: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random translation by up to `pad` pixels (a crop of the zero-padded image) and a horizontal
    flip, for a whole uint8 (B, H, W, C) batch at once, by index arithmetic, no per-image loop."""
    batch, height, width, _ = images.shape
    padded = torch.nn.functional.pad(images, (0, 0, pad, pad, pad, pad))  # NHWC: border on W and H
    dy = torch.randint(0, 2 * pad + 1, (batch, 1), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (batch, 1), generator=generator)
    flip = torch.rand(batch, 1, generator=generator) < 0.5
    columns = torch.arange(width).unsqueeze(0)
    columns = torch.where(flip, width - 1 - columns, columns) + dx  # (B, W)
    rows = torch.arange(height).unsqueeze(0) + dy  # (B, H)
    return padded[torch.arange(batch)[:, None, None], rows[:, :, None], columns[:, None, :]]


def degrade(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Label-keeping degradations of a float (B, C, H, W) batch in [0, 1], so the judge learns to
    recognise a blurry object (a VAE's sample), not only a sharp one. Of the (shuffled) batch: a
    quarter blurred, an eighth sampled down and up, an eighth noised; half stays sharp. One draw
    per part and batch keeps it vectorised."""
    quarter, eighth = len(x) // 4, len(x) // 8
    sigma, factor, noise = torch.rand(3, generator=generator).tolist()
    out = x.clone()
    out[:quarter] = datasets.blur(x[:quarter], 0.25 + 1.75 * sigma)
    parts = slice(quarter, quarter + eighth), slice(quarter + eighth, quarter + 2 * eighth)
    out[parts[0]] = datasets.down_up(x[parts[0]], 2 if factor < 0.5 else 4)
    grain = torch.randn(out[parts[1]].shape, generator=generator).to(x.device)
    out[parts[1]] = (x[parts[1]] + 0.08 * noise * grain).clamp(0, 1)
    return out


def make_optimizer(model: torch.nn.Module, run: dict, steps_per_epoch: int):
    """Adam (the VAEs) or SGD with Nesterov momentum (the classifier); with warmup_fraction > 0 a
    one-cycle schedule: the warm-up keeps Adam's first steps (poor second-moment estimates) small,
    the linear decay to zero ends at a step where the test loss no longer jumps between epochs."""
    if run.get("optimizer", "adam") == "sgd":
        decay = [p for p in model.parameters() if p.ndim > 1]
        no_decay = [p for p in model.parameters() if p.ndim <= 1]  # biases, norms: no weight decay
        groups = [
            {"params": decay, "weight_decay": run["weight_decay"]},
            {"params": no_decay, "weight_decay": 0.0},
        ]
        optimizer = torch.optim.SGD(groups, lr=run["lr"], momentum=0.9, nesterov=True)
    else:
        optimizer = torch.optim.Adam(
            model.parameters(), lr=run["lr"], weight_decay=run.get("weight_decay", 0.0)
        )
    total = run["epochs"] * steps_per_epoch
    warmup = int(run["warmup_fraction"] * total)

    def one_cycle(step: int) -> float:
        if warmup == 0:
            return 1.0
        return min((step + 1) / warmup, max(0.0, (total - step) / max(1, total - warmup)))

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, one_cycle)


def kl_weights(run: dict, steps_per_epoch: int):
    """beta at each optimiser step. With kl_warmup_fraction > 0 it rises linearly from 0 over
    that share of the steps, then stays: a strong beta from the first step prices every nat before
    the decoder can use one, and the code sits at the prior for epochs (the beta-study pilot:
    beta = 64 stuck at MSE 0.013 for 5 epochs, docs/benchmarks.md)."""
    beta = run["beta"]
    warmup = int(run.get("kl_warmup_fraction", 0.0) * run["epochs"] * steps_per_epoch)
    return lambda step: beta * min(1.0, (step + 1) / warmup) if warmup else beta


def batch_loss(
    model, run: dict, images: torch.Tensor, labels, device, generator, beta: float | None = None
) -> dict:
    """The objective of one uint8 (B, H, W, C) batch; `beta` (the KL warm-up's) replaces run's."""
    objective = run["objective"]
    if objective == "classifier":
        if run["augment"]:
            images = augment(images, generator)
        x = datasets.to_display(images.to(device))
        if run.get("degrade", False):
            x = degrade(x, generator)
        x = x.contiguous(memory_format=torch.channels_last)
        return classifier_loss(model(x), labels.to(device), run["label_smoothing"])
    x = datasets.to_model_input(images, device)
    if objective == "ae":
        mu, _ = model.encode(x)
        return ae_loss(model.reconstruction_nll(x, model.decode_params(mu)))
    decoded, mu, logvar = model(x)
    return vae_loss(
        model.reconstruction_nll(x, decoded), mu, logvar, run["beta"] if beta is None else beta
    )


def test_metrics(model, run: dict, data: dict, device) -> dict:
    if run["objective"] == "classifier":
        return {"accuracy": classifier_accuracy(model, data["x_test"], data["y_test"], device)}
    if run["objective"] == "ae":
        return autoencoder_metrics(model, data["x_test"], device, seed=run["seed"])
    return elbo_metrics(model, data["x_test"], device, beta=run["beta"], seed=run["seed"])


def fit(
    model: torch.nn.Module,
    run: dict,
    data: dict,
    device: torch.device,
    state_path,
    *,
    state: dict | None = None,
    on_epoch=None,
    stop_after_epoch: int | None = None,
    extra_state: dict | None = None,
) -> list[dict]:
    """Train `model` on data["x_train"] (uint8 NHWC, + y_train for a classifier) from `state` if
    given; returns the history. `on_epoch(epoch, row, model)` runs after each checkpoint."""
    label, seed = run["name"], run["seed"]
    model.to(device)
    if device.type != "mps":
        model.to(memory_format=torch.channels_last)  # the fastest CPU convolutions
    x_train, y_train = data["x_train"], data.get("y_train")
    n, batch_size = len(x_train), run["batch_size"]
    steps_per_epoch = math.ceil(n / batch_size)
    optimizer, schedule = make_optimizer(model, run, steps_per_epoch)
    kl_weight = kl_weights(run, steps_per_epoch) if run["objective"] == "vae" else None
    mixed = use_mixed_precision(run.get("mixed_precision", False), device)
    scaler = torch.amp.GradScaler("cuda", enabled=mixed and device.type == "cuda")  # fp16 needs it
    history, first_epoch = [], 1
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        if scaler.is_enabled() and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        history, first_epoch = list(state["history"]), state["epoch"] + 1
        torch.set_rng_state(state["torch_rng"])
        if device.type == "cuda" and "cuda_rng" in state:
            torch.cuda.set_rng_state(state["cuda_rng"], device)

    for epoch in range(first_epoch, run["epochs"] + 1):
        kept = "no checkpoint was written"
        if epoch > 1:
            kept = f"the checkpoint of epoch {epoch - 1} is kept in {state_path}"
        fix = f"{kept}; lower {params_key(label)}.lr and rerun"
        model.train()
        generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
        order = torch.randperm(n, generator=generator)
        sums: dict[str, float] = {}
        counts: dict[str, int] = {}  # images per key: a step skipped by the GradScaler has no norm
        started = time.perf_counter()
        desc = f"{label} epoch {epoch}/{run['epochs']}"
        with tqdm(total=n, unit="img", desc=desc, mininterval=5, leave=False) as bar:
            for step, start in enumerate(range(0, n, batch_size), (epoch - 1) * steps_per_epoch):
                index = order[start : start + batch_size]
                labels = None if y_train is None else y_train[index]
                beta = kl_weight(step) if kl_weight else None
                with autocast(device, mixed):
                    parts = batch_loss(model, run, x_train[index], labels, device, generator, beta)
                if not torch.isfinite(parts["loss"]):
                    loss = parts["loss"].item()
                    raise DivergedError(f"{label}: loss became {loss} at epoch {epoch}; {fix}")
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(parts["loss"]).backward()
                if run["grad_clip"] > 0:  # a rare huge gradient must not undo what was learned
                    scaler.unscale_(optimizer)
                    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), run["grad_clip"])
                    if torch.isfinite(norm):
                        parts["grad_norm"] = norm.detach()
                    elif not scaler.is_enabled():  # with fp16 the scaler skips the step instead
                        raise DivergedError(
                            f"{label}: the gradient norm became {norm.item()} at epoch {epoch}; {fix}"
                        )
                scaler.step(optimizer)
                scaler.update()
                schedule.step()
                for key, value in parts.items():
                    sums[key] = sums.get(key, 0.0) + value.item() * len(index)
                    counts[key] = counts.get(key, 0) + len(index)
                bar.update(len(index))
        seconds = time.perf_counter() - started
        if run["grad_clip"] > 0 and "grad_norm" not in sums:
            raise DivergedError(
                f"{label}: the GradScaler skipped every step of epoch {epoch} (the gradients "
                f"overflowed fp16 down to a scale of {scaler.get_scale():.3g}); {fix}"
            )
        row = {
            "epoch": epoch,
            **{f"train_{k}": v / counts[k] for k, v in sums.items()},
            **{f"test_{k}": v for k, v in test_metrics(model, run, data, device).items()},
        }
        if hasattr(model, "decoder_sigma"):  # a VAE
            row["decoder_sigma"] = model.decoder_sigma()
        row.update(epoch_seconds=seconds, images_per_second=n / seconds)
        bad = [k for k, v in row.items() if isinstance(v, float) and not math.isfinite(v)]
        bad += [
            name
            for name, t in [*model.named_parameters(), *model.named_buffers()]
            if t.is_floating_point() and not torch.isfinite(t).all()
        ]
        if bad:
            raise DivergedError(
                f"{label} diverged at epoch {epoch} (non-finite {', '.join(bad[:4])}); {fix}"
            )
        history.append(row)
        saved = {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "schedule": schedule.state_dict(),
            "scaler": scaler.state_dict(),
            "epoch": epoch,
            "history": history,
            "torch_rng": torch.get_rng_state(),
            **(extra_state or {}),
        }
        if device.type == "cuda":
            saved["cuda_rng"] = torch.cuda.get_rng_state(device)
        store.save_training_state(state_path, saved)
        tests = ", ".join(f"{k} {v:.4g}" for k, v in row.items() if k.startswith("test_"))
        print(f"{desc}: {tests}, {row['images_per_second']:.0f} img/s", flush=True)
        if on_epoch is not None:
            on_epoch(epoch, row, model)
        if stop_after_epoch == epoch:
            break
    return history


def train_stage(params: dict, name: str) -> None:
    """`train@<run>`, or `train_sweep@<sweep>`: every seed's run side by side. A sweep's checkpoints
    stay until all its runs are done: DVC deletes the whole sweep's outputs before a rerun, so a
    finished run is then restored from its last checkpoint, not retrained."""
    runs = sweep_runs(params, name)
    if runs is None and sweep_of(name) is None:
        train_run(params, name)
        return
    runs = runs or [name]  # one seed of a sweep alone: still one thread, as in its sweep
    from . import plots, tracking  # noqa: F401  imported once here, inherited by each forked run

    checkpoints = parallel.run_each(train_run, params, runs, True)
    for folder in checkpoints.values():
        shutil.rmtree(folder, ignore_errors=True)


def train_run(params: dict, name: str, keep_checkpoint: bool = False) -> Path:
    """The `train@<name>` stage: models/<name>/ and reports/curves/<name>.csv, logged to MLflow,
    continuing a compatible checkpoint. Returns the checkpoint folder (removed unless
    keep_checkpoint)."""
    import mlflow

    from . import tracking
    from .plots import sample_grid_image

    run = run_config(params, name)
    device = resolve_device(params["device"])
    tracking.check_tracking_server()  # before the data load: an unreachable server fails in seconds
    dataset = dataset_config(params, run["dataset"])
    data = datasets.load(run["dataset"], dataset)
    data_file = store.data_path(run["dataset"])
    data_sha256 = store.file_digest(data_file)
    ckpt_dir = checkpoint_dir(run, dataset, data_sha256)
    state_path = ckpt_dir / store.TRAINING_STATE
    state = store.load_training_state(state_path)

    if run.get("holdout"):  # the judge's calibration images (compare.sample_quality) stay unseen
        if run["holdout"] >= len(data["x_train"]):
            raise VaelabError(
                f"{params_key(name)}.holdout ({run['holdout']}) leaves no training image of "
                f"{len(data['x_train'])}; lower it in params.yaml"
            )
        data = {**data, "x_train": data["x_train"][: -run["holdout"]]}
        data["y_train"] = data["y_train"][: -run["holdout"]]
    seed_everything(run["seed"])
    x_train = data["x_train"]
    model_config = {**run["model"], "image_size": x_train.shape[1], "channels": x_train.shape[3]}
    model = build_model(model_config)
    if run["objective"] == "classifier":  # input normalisation from the training pixels
        pixels = x_train.float().div(255.0)
        model.mean.copy_(pixels.mean(dim=(0, 1, 2)).view(1, 3, 1, 1))
        model.std.copy_(pixels.std(dim=(0, 1, 2)).view(1, 3, 1, 1))
        del pixels
    data = {**data, "x_train": x_train.to(device), "x_test": data["x_test"].to(device)}
    parameters = sum(p.numel() for p in model.parameters())
    print(
        f"{name}: {run['objective']} on {run['dataset']}, {parameters:,} parameters, "
        f"{len(x_train):,} training images of {tuple(x_train.shape[1:])}, device {device}, "
        f"mixed precision {use_mixed_precision(run['mixed_precision'], device)}"
        + (f", resuming after epoch {state['epoch']}" if state else "")
    )
    fixed_z = None
    if run["objective"] == "vae":  # the codes of every epoch's sample grid
        seeded = torch.Generator().manual_seed(run["seed"])
        fixed_z = torch.randn(16, run["model"]["latent_dim"], generator=seeded)
    history_so_far = list(state["history"]) if state else []

    def log_epoch_metrics(row: dict) -> None:
        mlflow.log_metrics({k: v for k, v in row.items() if k != "epoch"}, step=row["epoch"])

    run_id = state.get("mlflow_run_id") if state else None
    run_id = tracking.resumable_run(run_id)
    with tracking.training_run(run, run_id) as ml_run:
        if run_id is None:  # a new MLflow run, of a resumed training too if its run is gone
            mlflow.set_tags({"data_sha256": data_sha256, "device": str(device)})
            cpu_data = {"x_train": x_train, "y_train": data.get("y_train")}
            tracking.log_dataset(run["dataset"], cpu_data, data_file, data_sha256)
            for row in history_so_far:  # the epochs trained before the interruption
                log_epoch_metrics(row)

        def on_epoch(epoch: int, row: dict, trained) -> None:
            log_epoch_metrics(row)
            history_so_far.append(row)
            store.write_curves(store.curves_path(name), history_so_far)
            every = params["tracking"]["sample_every"]
            if fixed_z is not None and (epoch % every == 0 or epoch == run["epochs"]):
                mlflow.log_image(sample_grid_image(trained, fixed_z), key="samples", step=epoch)

        extra = {"mlflow_run_id": ml_run.info.run_id}
        history = fit(
            model, run, data, device, state_path, state=state, on_epoch=on_epoch, extra_state=extra
        )
        config = {
            "name": name,
            **run,
            "model": model_config,
            "data_sha256": data_sha256,
            "dataset_config": dataset,  # the limits cut the data after loading: keep them
            "epochs_trained": len(history),
            "train_seconds": sum(r["epoch_seconds"] for r in history),
        }
        store.save_model(store.model_dir(name), model, config)
        tracking.record_run(name, ml_run)
        store.write_curves(store.curves_path(name), history)
        mlflow.log_artifacts(str(store.model_dir(name)), artifact_path="state_dict")
        if run["objective"] == "vae":
            # The servable generator, z -> decoder mean images (VAE.decode); pt2 (torch.export)
            # loads without unpickling code.
            example = torch.randn(2, run["model"]["latent_dim"]).numpy()
            with warnings.catch_warnings():
                # torch.export's archive writer warns that a weight it writes from a view "may
                # cause issues when your weights are not on CPU": they are (model.cpu() here).
                warnings.filterwarnings("ignore", message="No complete tensor found in the group")
                mlflow.pytorch.log_model(
                    torch.nn.Sequential(model.cpu().eval().decoder, torch.nn.Sigmoid()),
                    name="decoder",
                    serialization_format="pt2",
                    input_example=example,
                    pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"],
                )
    if not keep_checkpoint:
        shutil.rmtree(ckpt_dir, ignore_errors=True)  # the finished model now lives in models/<name>
    return ckpt_dir
