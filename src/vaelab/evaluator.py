"""The judge: a small CIFAR-10 classifier whose features and predictions score generated images.

Inception-based FID needs weights downloaded at run time, which an offline machine cannot do, so
the project trains its own judge (the `train_evaluator` stage). Its architecture is a narrow
ResNet-9 in the style of Myrtle.ai's DAWNBench entry: conv-BN-ReLU blocks, max-pooling, two
residual blocks, a max-pooled 8c-d feature (the "penultimate features" of the metrics) and a
linear head. It trains with SGD + Nesterov, a one-cycle learning rate, label smoothing, random
crops and flips done on whole uint8 batches, and optional bfloat16 autocast on the CPU.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm

from .checkpoints import load_training_state, save_training_state, write_json
from .errors import VaelabError


def _conv_bn(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class _Residual(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(_conv_bn(channels, channels), _conv_bn(channels, channels))

    def forward(self, x):
        return x + self.body(x)


class Classifier(nn.Module):
    """x: (B, 3, 32, 32) in [0, 1] -> logits (B, 10); `features(x)` -> (B, num_features)."""

    def __init__(self, width: int = 24, classes: int = 10):
        super().__init__()
        c = width
        self.register_buffer("mean", torch.zeros(1, 3, 1, 1))
        self.register_buffer("std", torch.ones(1, 3, 1, 1))
        self.body = nn.Sequential(
            _conv_bn(3, c),
            _conv_bn(c, 2 * c), nn.MaxPool2d(2), _Residual(2 * c),  # 16x16
            _conv_bn(2 * c, 4 * c), nn.MaxPool2d(2),  # 8x8
            _conv_bn(4 * c, 8 * c), nn.MaxPool2d(2), _Residual(8 * c),  # 4x4
            nn.AdaptiveMaxPool2d(1), nn.Flatten(),
        )
        self.head = nn.Linear(8 * c, classes, bias=False)
        self.num_features = 8 * c
        self.width = width

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body((x - self.mean) / self.std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)) / 8  # a fixed temperature keeps early logits small


def augment(images: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random translation by up to `pad` pixels (a crop of the zero-padded image) and a horizontal
    flip, for a whole (B, H, W, C) batch at once, by index arithmetic rather than a per-image loop."""
    batch, height, width, _ = images.shape
    padded = F.pad(images, (0, 0, pad, pad, pad, pad))  # NHWC: zero border on W and H
    dy = torch.randint(0, 2 * pad + 1, (batch, 1), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (batch, 1), generator=generator)
    flip = torch.rand(batch, 1, generator=generator) < 0.5
    columns = torch.arange(width).unsqueeze(0)
    columns = torch.where(flip, width - 1 - columns, columns) + dx  # (B, W)
    rows = torch.arange(height).unsqueeze(0) + dy  # (B, H)
    index = torch.arange(batch)[:, None, None]
    return padded[index, rows[:, :, None], columns[:, None, :]]


def _as_input(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 (B, H, W, C) -> float (B, C, H, W) in [0, 1], channels_last."""
    return images.to(device, non_blocking=True).permute(0, 3, 1, 2).float().div_(255.0)


def _autocast(device: torch.device, enabled: bool):
    """Mixed precision for training only (bfloat16 on the CPU, float16 on CUDA); scoring stays fp32."""
    return torch.autocast(device.type, dtype=torch.bfloat16 if device.type == "cpu" else torch.float16,
                          enabled=enabled and device.type in ("cpu", "cuda"))


@torch.no_grad()
def predict(model: Classifier, images: torch.Tensor, device: torch.device, batch_size: int = 500,
            flip_average: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """images: float (N, C, H, W) in [0, 1] -> (features (N, F), logits (N, 10)), fp32 on the CPU.

    With flip_average, logits are the mean over the image and its mirror (test-time augmentation).
    """
    model.eval()
    features, logits = [], []
    for start in range(0, len(images), batch_size):
        x = images[start:start + batch_size].to(device).contiguous(memory_format=torch.channels_last)
        f = model.features(x)
        out = model.head(f) / 8
        if flip_average:
            out = (out + model(torch.flip(x, dims=[3]))) / 2
        features.append(f.float().cpu())
        logits.append(out.float().cpu())
    return torch.cat(features), torch.cat(logits)


def accuracy(model: Classifier, images_uint8: torch.Tensor, labels: torch.Tensor, device: torch.device) -> float:
    _, logits = predict(model, _as_input(images_uint8, torch.device("cpu")), device)
    return (logits.argmax(1) == labels).float().mean().item()


def train_classifier(settings: dict, x_train: torch.Tensor, y_train: torch.Tensor, x_test: torch.Tensor,
                     y_test: torch.Tensor, device: torch.device, state_path: Path, seed: int,
                     on_epoch=None, extra_state: dict | None = None) -> tuple[Classifier, list[dict]]:
    """Train the judge to `settings["epochs"]`, checkpointing every epoch; resumes from `state_path`."""
    torch.manual_seed(seed)
    model = Classifier(settings["width"])
    pixels = x_train.float().div(255.0)
    model.mean.copy_(pixels.mean(dim=(0, 1, 2)).view(1, 3, 1, 1))
    model.std.copy_(pixels.std(dim=(0, 1, 2)).view(1, 3, 1, 1))
    del pixels
    model.to(device).to(memory_format=torch.channels_last)
    batch_size, epochs = settings["batch_size"], settings["epochs"]
    steps_per_epoch = math.ceil(len(x_train) / batch_size)
    total_steps = epochs * steps_per_epoch
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    optimizer = torch.optim.SGD([{"params": decay, "weight_decay": settings["weight_decay"]},
                                 {"params": no_decay, "weight_decay": 0.0}],
                                lr=settings["lr"], momentum=0.9, nesterov=True)
    warmup = max(1, int(settings["warmup_fraction"] * total_steps))
    # One cycle: linear warm-up to lr, then linear decay to zero.
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / warmup, max(0.0, (total_steps - step) / (total_steps - warmup))))
    history, first_epoch = [], 1
    state = load_training_state(state_path)
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        history, first_epoch = list(state["history"]), state["epoch"] + 1
        torch.set_rng_state(state["torch_rng"])
    for epoch in range(first_epoch, epochs + 1):
        model.train()
        generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
        order = torch.randperm(len(x_train), generator=generator)
        started, loss_sum, correct = time.perf_counter(), 0.0, 0
        with tqdm(total=len(x_train), unit="img", desc=f"evaluator epoch {epoch}/{epochs}", mininterval=5,
                  leave=False) as bar:
            for start in range(0, len(x_train), batch_size):
                index = order[start:start + batch_size]
                x = _as_input(augment(x_train[index], generator), device).contiguous(memory_format=torch.channels_last)
                y = y_train[index].to(device)
                with _autocast(device, settings["mixed_precision"]):
                    logits = model(x)
                    loss = F.cross_entropy(logits.float(), y, label_smoothing=settings["label_smoothing"])
                if not torch.isfinite(loss):
                    raise VaelabError(f"evaluator: loss became {loss.item()} at epoch {epoch}; the checkpoint of "
                                      f"epoch {epoch - 1} is kept in {state_path}; lower evaluator.lr and rerun")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
                loss_sum += loss.item() * len(index)
                correct += (logits.argmax(1) == y).sum().item()
                bar.update(len(index))
        seconds = time.perf_counter() - started
        row = {"epoch": epoch, "train_loss": loss_sum / len(x_train), "train_accuracy": correct / len(x_train),
               "test_accuracy": accuracy(model, x_test, y_test, device), "epoch_seconds": seconds,
               "images_per_second": len(x_train) / seconds}
        history.append(row)
        save_training_state(state_path, {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                         "schedule": schedule.state_dict(), "epoch": epoch, "history": history,
                                         "torch_rng": torch.get_rng_state(), **(extra_state or {})})
        print(f"evaluator epoch {epoch}/{epochs}: train loss {row['train_loss']:.3f}, test accuracy "
              f"{row['test_accuracy']:.4f}, {row['images_per_second']:.0f} img/s", flush=True)
        if on_epoch is not None:
            on_epoch(epoch, row)
    return model.eval(), history


def save_classifier(directory: Path, model: Classifier, config: dict) -> None:
    directory = Path(directory)
    # save_training_state is an atomic torch.save of a dict of tensors: here, the state_dict alone.
    save_training_state(directory / "model.pt", {k: v.detach().cpu() for k, v in model.state_dict().items()})
    write_json(directory / "config.json", {**config, "width": model.width})


def load_classifier(directory: Path, device: torch.device | str = "cpu") -> Classifier:
    import json

    directory = Path(directory)
    if not (directory / "model.pt").is_file():
        raise VaelabError(f"{directory} holds no evaluator classifier; run dvc repro train_evaluator")
    config = json.loads((directory / "config.json").read_text())
    model = Classifier(config["width"])
    model.load_state_dict(torch.load(directory / "model.pt", map_location="cpu", weights_only=True))
    return model.to(device).to(memory_format=torch.channels_last).eval()


def run_evaluator_training(params: dict) -> dict:
    """The `train_evaluator` stage: models/evaluator/ and reports/curves/evaluator.csv, its own MLflow run."""
    import shutil

    import mlflow

    from . import tracking
    from .checkpoints import TRAINING_STATE
    from .data import file_digest, load_dataset
    from .runtime import resolve_device
    from .train import CHECKPOINT_ROOT, CURVES_ROOT, MODELS_ROOT, checkpoint_dir, write_curves

    settings, seed, data = params["evaluator"], params["seed"], params["data"]
    device = resolve_device(params["device"])
    tracking.check_tracking_server()
    dataset = load_dataset(Path(data["path"]), data["train_limit"], data["test_limit"])
    data_sha256 = file_digest(Path(data["path"]), "sha256")
    ckpt_dir = checkpoint_dir(CHECKPOINT_ROOT, "evaluator", settings, seed, data_sha256,
                              (data["train_limit"], data["test_limit"]))
    state = load_training_state(ckpt_dir / TRAINING_STATE)
    run_id = state.get("mlflow_run_id") if state else None
    with tracking.model_run(params["mlflow"]["experiment"], "evaluator", run_id) as run:
        if state is None:
            mlflow.log_params(tracking.flatten("", {"model_name": "evaluator", "seed": seed, **settings}))
            mlflow.set_tags({"git_commit": tracking.git_commit(), "data_sha256": data_sha256,
                             "model_name": "evaluator"})

        def on_epoch(epoch: int, row: dict) -> None:
            mlflow.log_metrics({k: v for k, v in row.items() if k != "epoch"}, step=epoch)

        model, history = train_classifier(settings, dataset["x_train"], dataset["y_train"], dataset["x_test"],
                                          dataset["y_test"], device, ckpt_dir / TRAINING_STATE, seed, on_epoch,
                                          extra_state={"mlflow_run_id": run.info.run_id})
        out_dir = MODELS_ROOT / "evaluator"
        config = {"name": "evaluator", **settings, "seed": seed, "data_sha256": data_sha256,
                  "test_accuracy": history[-1]["test_accuracy"],
                  "train_seconds": sum(r["epoch_seconds"] for r in history)}
        save_classifier(out_dir, model, config)
        tracking.record_run(out_dir, run)
        write_curves(CURVES_ROOT / "evaluator.csv", history)
        mlflow.log_metric("final/test_accuracy", config["test_accuracy"])
        mlflow.log_artifacts(str(out_dir), artifact_path="state_dict")
    shutil.rmtree(ckpt_dir, ignore_errors=True)
    print(f"evaluator: test accuracy {config['test_accuracy']:.4f} after {len(history)} epochs, "
          f"{config['train_seconds'] / 60:.1f} min")
    return config
