"""The figures that put runs side by side (drawn by the compare and render stages); plots.py holds
the figures of one run and the drawing helpers both use."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from . import plots
from .datasets import to_display
from .models import VAE, decode_batches, reconstruct_batches
from .plots import MODEL_COLOURS, axes_grid, framed_path, show_grid


def plot_side_by_side(
    left: tuple[str, VAE, torch.Tensor],
    right: tuple[str, VAE, torch.Tensor],
    images: torch.Tensor,
    path: Path,
    kl_per_dim: dict[str, list[float]] | None = None,
) -> None:
    """Two (label, model, codes): decoded samples, reconstructions; with `kl_per_dim`, KL per dim."""
    panels = 3 if kl_per_dim else 2
    fig = Figure(figsize=(5.2 * panels, 5.6))
    axes = fig.subplots(1, panels)
    originals = to_display(images)
    for ax, (name, model, z) in zip(axes, (left, right), strict=False):
        samples = decode_batches(model, z)
        recon = reconstruct_batches(model, images)
        # 4x4 samples, a blank row, then twice a row of 4 originals over their reconstructions.
        rows = [samples, torch.ones_like(samples[:4])]
        rows += [torch.cat([originals[i : i + 4], recon[i : i + 4]]) for i in range(0, 8, 4)]
        title = f"{name}: samples from N(0, I)\nbelow: test images / reconstructions"
        show_grid(ax, torch.cat(rows), nrow=4, title=title)
    if kl_per_dim:
        ax = axes[2]
        for name, values in kl_per_dim.items():
            ordered = sorted(values, reverse=True)
            x = np.arange(len(ordered))
            ax.bar(x, ordered, alpha=0.55, color=MODEL_COLOURS.get(name), label=name, width=1.0)
        ax.set_yscale("log")
        ax.set_xlabel("latent dimension (sorted by KL)")
        ax.set_ylabel("mean KL on the test set (nats)")
        ax.set_title("KL per latent dimension", fontsize=10)
        ax.legend()
    plots.save_figure(fig, path)


def plot_labelled_samples(
    images: torch.Tensor,
    logits: torch.Tensor,
    classes: list[str],
    path: Path,
    title: str,
    columns: int = 8,
    confident: float = 0.9,
) -> None:
    """Each image titled with the judge's label and confidence (green when >= `confident`)."""
    confidence, label = logits.softmax(dim=1).max(dim=1)
    fig = Figure(figsize=(columns * 1.45, math.ceil(len(images) / columns) * 1.65))
    axes = axes_grid(fig, len(images), columns)
    for ax, image, conf, lab in zip(axes, images, confidence.tolist(), label.tolist(), strict=True):
        ax.imshow(image.permute(1, 2, 0).numpy(), interpolation="nearest")
        colour = "tab:green" if conf >= confident else "black"
        ax.set_title(f"{classes[lab]} {conf:.2f}", fontsize=8, color=colour)
        ax.axis("off")
    fig.suptitle(f"{title}, labelled by the judge (green: confidence >= {confident})", fontsize=9)
    plots.save_figure(fig, path)


def plot_autoencoder_vs_vae(
    models: dict[str, VAE],
    pair: torch.Tensor,
    path: Path,
    samples: int = 8,
    steps: int = 10,
    seed: int = 0,
) -> None:
    """Per model: decoded z ~ N(0, I), and the path between the codes of the uint8 NHWC `pair`."""
    fig = Figure(figsize=(15, 1.45 * len(models) + 0.8))
    axes = np.atleast_2d(
        fig.subplots(len(models), 2, gridspec_kw={"width_ratios": [samples, steps + 2]})
    )
    for (prior_ax, path_ax), (label, model) in zip(axes, models.items(), strict=True):
        z = torch.randn(samples, model.latent_dim, generator=torch.Generator().manual_seed(seed))
        show_grid(prior_ax, decode_batches(model, z), nrow=samples, ylabel=label)
        show_grid(path_ax, framed_path(model, pair, steps), nrow=steps + 2)
    axes[0, 0].set_title("decoded z ~ N(0, I) (same z for every model)", fontsize=10)
    axes[0, 1].set_title(
        "real image | straight line between the two codes | real image", fontsize=10
    )
    plots.save_figure(fig, path)


def plot_smoothness(entries: dict[str, dict], path: Path) -> None:
    """Per model: each path's largest step over its mean step, as a box plot and against the mean."""
    fig = Figure(figsize=(12, 4.3))
    spread, scatter = axes = fig.subplots(1, 2)
    spread.boxplot([entry["path_ratios"] for entry in entries.values()])
    spread.set_xticks(range(1, len(entries) + 1), list(entries))
    spread.axhline(1.0, color="grey", linestyle=":")
    spread.set_ylabel("largest step / mean step along a path")
    spread.set_title("interpolation smoothness (1 = the image changes evenly)", fontsize=10)
    top = 0.0
    for label, entry in entries.items():
        mean = np.asarray(entry["path_mean_steps"])
        largest = mean * np.asarray(entry["path_ratios"])
        scatter.scatter(mean, largest, s=12, alpha=0.7, label=label)
        top = max(top, largest.max())
    scatter.plot([0, top], [0, top], color="grey", linestyle=":", label="largest = mean (even)")
    scatter.set_xlabel("mean step between consecutive frames (RMS pixel change)")
    scatter.set_ylabel("largest step")
    scatter.set_title("each point one path between the codes of two test images", fontsize=10)
    scatter.legend(fontsize=8)
    for ax in axes:
        ax.grid(alpha=0.3)
    plots.save_figure(fig, path)


def plot_sweep(by_beta: dict[str, dict], autoencoder: dict, factor_nats: float, path: Path) -> None:
    """Per beta (`by_beta`: label -> `spread`) each seed as a dot, the mean and range as a line."""
    labels = sorted(by_beta, key=float)
    xs = np.arange(len(labels))
    fig = Figure(figsize=(16, 4.4))
    kl, recon, scores = axes = fig.subplots(1, 3)

    def draw(ax, key: str, colour: str, name: str, shift: float = 0.0) -> None:
        stats = [by_beta[label][key] for label in labels]
        means = [stat["mean"] for stat in stats]
        # max(0, ...): with equal seeds the mean can round past its own min or max
        low = [max(0.0, stat["mean"] - stat["min"]) for stat in stats]
        high = [max(0.0, stat["max"] - stat["mean"]) for stat in stats]
        label = f"{name} (mean, seed range)"
        ax.errorbar(
            xs + shift, means, yerr=[low, high], fmt="o-", color=colour, capsize=3, label=label
        )
        for x, stat in zip(xs, stats, strict=True):
            values = stat["values"]
            ax.scatter([x + shift] * len(values), values, s=10, color=colour, alpha=0.5)

    def band(ax, key: str, colour: str, name: str) -> None:
        stats = autoencoder[key]
        ax.axhspan(stats["min"], stats["max"], color=colour, alpha=0.15)
        ax.axhline(stats["mean"], color=colour, linestyle=":", label=f"{name} (autoencoder)")

    draw(kl, "kl", "tab:purple", "KL")
    information = f"information in the factors: {factor_nats:.1f} nats"
    kl.axhline(factor_nats, color="black", linestyle="--", label=information)
    kl.set_yscale("log")
    kl.set_title("KL to the prior (nats per test image)", fontsize=10)
    draw(recon, "recon_mse", "tab:blue", "VAE")
    band(recon, "recon_mse", "tab:blue", "MSE")
    recon.set_yscale("log")
    recon.set_title("reconstruction MSE per pixel (test, lower is closer)", fontsize=10)
    for key, colour, name, shift in (
        ("mig", "tab:red", "MIG", -0.12),
        ("factor_vae", "tab:orange", "FactorVAE score", 0.12),
    ):
        draw(scores, key, colour, name, shift)
        band(scores, key, colour, name)
    scores.set_ylim(0, 1)
    scores.set_title("disentanglement (1 = one factor per dim)", fontsize=10)
    for ax in axes:
        ax.set_xticks(xs, labels)
        ax.set_xlabel("beta (fixed decoder scale)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    plots.save_figure(fig, path)
