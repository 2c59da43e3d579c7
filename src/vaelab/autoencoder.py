"""The plain autoencoder baseline: the VAE's own encoder and decoder with a fixed code, no KL.

The network is `models.build_model` unchanged; only the use differs. The code is the encoder's
mean output, z = mu (the log-variance half is ignored and never trained), nothing is sampled,
and the loss is the VAE's reconstruction term alone: the Gaussian negative log-likelihood with
the learned per-channel sigma (`losses.gaussian_nll`). Training is otherwise identical to
`train.fit`: Adam, the same batch order for a given (seed, epoch), dequantised inputs, and a
checkpoint after every epoch from which an interrupted run resumes to the same weights.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch

from .checkpoints import save_training_state
from .data import to_model_input
from .errors import VaelabError
from .losses import gaussian_nll
from .models import VAE


def reconstruct_deterministically(model: VAE, x: torch.Tensor) -> torch.Tensor:
    """x (B, C, H, W) in [0, 1] -> decoder mean of the fixed code z = mu."""
    return model.decode(model.encode(x)[0])


@torch.no_grad()
def autoencoder_metrics(model: VAE, images: torch.Tensor, device: torch.device, batch_size: int = 500,
                        seed: int = 0) -> dict[str, float]:
    """Test reconstruction NLL (nats/image) and per-pixel MSE, with seeded dequantisation noise."""
    was_training = model.training
    model.eval()
    noise = torch.Generator().manual_seed(seed)
    recon = mse = 0.0
    for start in range(0, len(images), batch_size):
        x = to_model_input(images[start:start + batch_size], device, noise)
        mean = reconstruct_deterministically(model, x)
        recon += gaussian_nll(x, mean, model.log_sigma).sum().item()
        mse += (mean - x).pow(2).mean(dim=(1, 2, 3)).sum().item()
    model.train(was_training)
    return {"recon": recon / len(images), "mse": mse / len(images)}


def fit_autoencoder(model: VAE, section: dict, x_train: torch.Tensor, x_test: torch.Tensor, device: torch.device,
                    state_path: Path, seed: int, *, state: dict | None = None, on_epoch=None,
                    extra_state: dict | None = None, stop_after_epoch: int | None = None,
                    label: str = "autoencoder") -> list[dict]:
    """Train `model` as a plain autoencoder to `section["epochs"]` (section["beta"] is ignored)."""
    model.to(device)
    if device.type != "mps":
        model.to(memory_format=torch.channels_last)  # as train.fit: the fastest CPU convolutions
    optimizer = torch.optim.Adam(model.parameters(), lr=section["lr"])
    history, first_epoch = [], 1
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        history, first_epoch = list(state["history"]), state["epoch"] + 1
        torch.set_rng_state(state["torch_rng"])
    n, batch_size = len(x_train), section["batch_size"]
    for epoch in range(first_epoch, section["epochs"] + 1):
        model.train()
        # The same batch order as train.fit gives a VAE of the same seed.
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch)).to(x_train.device)
        total, started = 0.0, time.perf_counter()
        for batch, start in enumerate(range(0, n, batch_size)):
            x = to_model_input(x_train[order[start:start + batch_size]], device)
            loss = gaussian_nll(x, reconstruct_deterministically(model, x), model.log_sigma).mean()
            if not torch.isfinite(loss):
                raise VaelabError(f"{label}: loss became {loss.item()} at epoch {epoch}, batch {batch}; "
                                  f"lower the learning rate and rerun")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(x)
        seconds = time.perf_counter() - started
        test = autoencoder_metrics(model, x_test, device, seed=seed)
        row = {"epoch": epoch, "train_recon": total / n, "test_recon": test["recon"], "test_mse": test["mse"],
               "decoder_sigma": math.exp(model.log_sigma.detach().mean().item()),
               "epoch_seconds": seconds, "images_per_second": n / seconds}
        history.append(row)
        save_training_state(state_path, {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                         "epoch": epoch, "history": history, "torch_rng": torch.get_rng_state(),
                                         **(extra_state or {})})
        print(f"{label} epoch {epoch}/{section['epochs']}: train recon {row['train_recon']:.1f}, test recon "
              f"{row['test_recon']:.1f} nats, MSE {row['test_mse']:.5f}, {row['images_per_second']:.0f} img/s",
              flush=True)
        if on_epoch is not None:
            on_epoch(epoch, row, model)
        if stop_after_epoch == epoch:
            break
    return history
