"""Every figure of the study, drawn from trained models and measured numbers.

Image grids are torchvision's make_grid/save_image; matplotlib adds labels where a grid needs
them. Images are decoder means (the expected image under the Gaussian likelihood).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: files only
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torchvision.utils import make_grid, save_image  # noqa: E402

from .data import to_display, to_model_input  # noqa: E402
from .models import VAE  # noqa: E402

MODEL_COLOURS = {"fc": "tab:orange", "conv": "tab:blue", "conv_beta5": "tab:green"}


def _device(model: VAE) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def decode(model: VAE, z: torch.Tensor) -> torch.Tensor:
    """z: (B, latent) -> images (B, C, H, W) on the CPU."""
    model.eval()
    return model.decode(z.to(_device(model))).float().cpu().clamp(0, 1)


@torch.no_grad()
def encode_means(model: VAE, images: torch.Tensor) -> torch.Tensor:
    """uint8 NHWC images -> posterior means (B, latent), dequantised with fixed-seed noise."""
    model.eval()
    x = to_model_input(images, _device(model), torch.Generator().manual_seed(0))
    return model.encode(x)[0]


def reconstruct(model: VAE, images: torch.Tensor) -> torch.Tensor:
    return decode(model, encode_means(model, images))


def interpolate(z_start: torch.Tensor, z_end: torch.Tensor, steps: int) -> torch.Tensor:
    """(latent,), (latent,) -> (steps, latent), straight line from z_start to z_end inclusive."""
    weights = torch.linspace(0, 1, steps, device=z_start.device).unsqueeze(1)
    return (1 - weights) * z_start + weights * z_end


def sample_grid_image(model: VAE, z: torch.Tensor) -> np.ndarray:
    """16 decoded codes as one 4x4 grid, HWC uint8, for mlflow.log_image."""
    grid = make_grid(decode(model, z), nrow=4, padding=2)
    return (grid.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def _upscale(images: torch.Tensor, factor: int = 3) -> torch.Tensor:
    return F.interpolate(images, scale_factor=factor, mode="nearest")


def save_samples(model: VAE, z: torch.Tensor, path: Path) -> None:
    """A 4x4 grid of the 16 codes in z, upscaled so the 32x32 images are visible."""
    save_image(_upscale(decode(model, z)), path, nrow=4, padding=4, pad_value=1.0)


def _show(ax, images: torch.Tensor, nrow: int, title: str = "", ylabel: str = "") -> None:
    grid = make_grid(images, nrow=nrow, padding=2, pad_value=1.0)
    ax.imshow(grid.permute(1, 2, 0).numpy(), interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    for side in ax.spines.values():
        side.set_visible(False)
    if title:
        ax.set_title(title, fontsize=10)
    if ylabel:
        ax.set_ylabel(ylabel, rotation=0, ha="right", va="center", fontsize=9)


def _save(fig, path: Path) -> None:
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def plot_curves(histories: dict[str, list[dict]], path: Path) -> None:
    """Per-epoch train (solid) and test (dashed) objective, reconstruction NLL, KL, and bits/dim."""
    panels = [("loss", "objective: recon + beta * KL (nats/image)"), ("recon", "reconstruction NLL (nats/image)"),
              ("kl", "KL to the prior (nats/image)"), ("bpd", "test bits/dim (beta-free bound)")]
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5))
    for ax, (key, title) in zip(axes.flat, panels):
        for name, rows in histories.items():
            epochs = [r["epoch"] for r in rows]
            colour = MODEL_COLOURS.get(name)
            if f"train_{key}" in rows[0]:
                ax.plot(epochs, [r[f"train_{key}"] for r in rows], color=colour, label=f"{name} train")
            ax.plot(epochs, [r[f"test_{key}"] for r in rows], color=colour, linestyle="--", label=f"{name} test")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("epoch")
        if key in ("loss", "kl"):  # positive, with a large first-epoch transient
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    _save(fig, path)


def plot_prior_interpolation(model: VAE, generator: torch.Generator, path: Path, rows: int = 5,
                             steps: int = 10) -> None:
    """Rows of `steps` frames on straight lines between pairs of random codes z1, z2 ~ N(0, I)."""
    ends = torch.randn(rows, 2, model.latent_dim, generator=generator)
    frames = torch.cat([decode(model, interpolate(a, b, steps)) for a, b in ends])
    save_image(_upscale(frames), path, nrow=steps, padding=4, pad_value=1.0)


def plot_image_interpolation(model: VAE, images: torch.Tensor, labels: torch.Tensor, classes: list[str],
                             generator: torch.Generator, path: Path, pairs: int = 4, steps: int = 10) -> None:
    """Between the posterior means of two real test images of different classes; originals at the ends."""
    fig, axes = plt.subplots(pairs, 1, figsize=(12, 1.25 * pairs + 0.6))
    axes = np.atleast_1d(axes)
    for ax in axes:
        while True:
            a, b = torch.randint(len(images), (2,), generator=generator).tolist()
            if labels[a] != labels[b] or len(set(labels.tolist())) == 1:
                break
        codes = encode_means(model, images[[a, b]])
        frames = decode(model, interpolate(codes[0], codes[1], steps))
        originals = to_display(images[[a, b]])
        _show(ax, torch.cat([originals[:1], frames, originals[1:]]), nrow=steps + 2,
              ylabel=f"{classes[labels[a]]}\n-> {classes[labels[b]]}")
    axes[0].set_title(f"real image | {steps} decoded steps between their latent codes | real image", fontsize=10)
    fig.tight_layout()
    _save(fig, path)


def plot_reconstructions(models: dict[str, VAE], images: torch.Tensor, path: Path) -> None:
    fig, axes = plt.subplots(len(models) + 1, 1, figsize=(12, 1.3 * (len(models) + 1)))
    _show(axes[0], to_display(images), nrow=len(images), ylabel="test image")
    for ax, (name, model) in zip(axes[1:], models.items()):
        _show(ax, reconstruct(model, images), nrow=len(images), ylabel=name)
    fig.suptitle("Reconstructions (decoder mean of the posterior mean)", fontsize=11)
    fig.tight_layout()
    _save(fig, path)


def plot_side_by_side(left: tuple[str, VAE, torch.Tensor], right: tuple[str, VAE, torch.Tensor],
                      images: torch.Tensor, path: Path, kl_per_dim: dict[str, list[float]] | None = None) -> None:
    """Two (label, model, codes) side by side: 16 samples decoded from the codes, and reconstructions
    of the same test images; with `kl_per_dim`, a third panel shows how the KL spreads over latent
    dimensions."""
    panels = 3 if kl_per_dim else 2
    fig, axes = plt.subplots(1, panels, figsize=(5.2 * panels, 5.6), gridspec_kw={"width_ratios": [1] * panels})
    originals = to_display(images)
    for ax, (name, model, z) in zip(axes, (left, right)):
        samples = decode(model, z)
        recon = reconstruct(model, images)
        # 4x4 samples, a blank row, then 2 rows: originals over their reconstructions (4 per row).
        blank = torch.ones_like(samples[:4])
        rows = [samples, blank] + [torch.cat([originals[i:i + 4], recon[i:i + 4]]) for i in range(0, 4 * 2, 4)][:2]
        _show(ax, torch.cat(rows), nrow=4, title=f"{name}: samples from N(0, I)\n"
                                                 "below: test images / reconstructions")
    if kl_per_dim:
        ax = axes[2]
        for name, values in kl_per_dim.items():
            ordered = sorted(values, reverse=True)
            ax.bar(np.arange(len(ordered)), ordered, alpha=0.55, color=MODEL_COLOURS.get(name), label=name, width=1.0)
        ax.set_yscale("log")
        ax.set_xlabel("latent dimension (sorted by KL)")
        ax.set_ylabel("mean KL on the test set (nats)")
        ax.set_title("KL per latent dimension", fontsize=10)
        ax.legend()
    fig.tight_layout()
    _save(fig, path)


def plot_traversals(model: VAE, image: torch.Tensor, kl_per_dim: list[float], path: Path, dims: int = 10,
                    span: float = 3.0, steps: int = 9, name: str = "") -> None:
    """Each of the `dims` latent dimensions with most KL swept over [-span, span], the rest held at
    the code of one real image."""
    order = sorted(range(len(kl_per_dim)), key=lambda j: -kl_per_dim[j])[:dims]
    base = encode_means(model, image.unsqueeze(0))[0]
    values = torch.linspace(-span, span, steps)
    fig, axes = plt.subplots(len(order), 1, figsize=(8, 0.95 * len(order) + 0.8))
    for ax, j in zip(np.atleast_1d(axes), order):
        codes = base.repeat(steps, 1)
        codes[:, j] = values.to(codes.device)
        _show(ax, decode(model, codes), nrow=steps, ylabel=f"z{j} (KL {kl_per_dim[j]:.2f})")
    np.atleast_1d(axes)[0].set_title(f"{name}: one latent dimension at a time from -{span:g} to +{span:g}", fontsize=10)
    fig.tight_layout()
    _save(fig, path)


def plot_labelled_samples(images: torch.Tensor, logits: torch.Tensor, classes: list[str], path: Path,
                          columns: int = 6, confident: float = 0.9) -> None:
    """Each image titled with the judge's label and confidence (green when >= `confident`)."""
    confidence, label = logits.softmax(dim=1).max(dim=1)
    rows = (len(images) + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.45, rows * 1.65))
    for ax, image, conf, lab in zip(np.atleast_1d(axes).flat, images, confidence.tolist(), label.tolist()):
        ax.imshow(image.permute(1, 2, 0).numpy(), interpolation="nearest")
        ax.set_title(f"{classes[lab]} {conf:.2f}", fontsize=8, color="tab:green" if conf >= confident else "black")
        ax.axis("off")
    fig.suptitle(f"Samples from N(0, I), labelled by the evaluator classifier (green: confidence >= {confident})",
                 fontsize=9)
    fig.tight_layout()
    _save(fig, path)


def plot_samplers(model: VAE, codes: dict[str, torch.Tensor], path: Path, columns: int = 6) -> None:
    """The same model decoding codes from different samplers, side by side."""
    fig, axes = plt.subplots(1, len(codes), figsize=(4.6 * len(codes), 5))
    for ax, (title, z) in zip(np.atleast_1d(axes), codes.items()):
        _show(ax, decode(model, z), nrow=columns, title=title)
    fig.tight_layout()
    _save(fig, path)
