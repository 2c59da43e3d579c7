"""The figures of the beta study: labelled traversals, the beta trade-off, interpolation
smoothness, and the autoencoder next to the VAEs. Drawn with the helpers of `figures`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .data import to_display
from .figures import _save, _show, decode, encode_means, interpolate, plt
from .models import VAE


def plot_labelled_traversals(model: VAE, image: torch.Tensor, dims: list[int], labels: list[str], path: Path,
                             span: float = 3.0, steps: int = 9, title: str = "") -> None:
    """One row per latent dim in `dims`, swept over [-span, span] with the other dims held at the
    posterior mean of `image` (uint8 HWC); each row labelled with its entry of `labels`."""
    base = encode_means(model, image.unsqueeze(0))[0]
    values = torch.linspace(-span, span, steps)
    fig, axes = plt.subplots(len(dims), 1, figsize=(8.5, 1.0 * len(dims) + 0.9))
    axes = np.atleast_1d(axes)
    for ax, j, label in zip(axes, dims, labels):
        codes = base.repeat(steps, 1)
        codes[:, j] = values.to(codes.device)
        _show(ax, decode(model, codes), nrow=steps, ylabel=label)
    axes[0].set_title(title, fontsize=9)
    fig.tight_layout()
    _save(fig, path)


def _beta_positions(*groups: dict) -> dict[float, int]:
    """Evenly spaced x positions for every beta present (betas like 1, 2, 5, 10 read best that way)."""
    betas = sorted({float(b) for group in groups for b in group})
    return {b: i for i, b in enumerate(betas)}


def plot_beta_tradeoff(shapes: dict[str, dict], cifar: dict[str, dict], autoencoder: dict, path: Path) -> None:
    """Reconstruction error, MIG/DCI and KL against beta; the autoencoder as dotted lines."""
    where = _beta_positions(shapes, cifar)
    xs = lambda group: [where[float(b)] for b in group]  # noqa: E731
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))

    ax = axes[0]
    ax.plot(xs(shapes), [m["recon_mse"] for m in shapes.values()], "o-", color="tab:purple", label="shapes")
    ax.plot(xs(cifar), [m["recon_mse"] for m in cifar.values()], "s--", color="tab:blue", label="CIFAR-10")
    ax.axhline(autoencoder["recon_mse"], color="tab:purple", linestyle=":", label="shapes autoencoder")
    ax.set_yscale("log")
    ax.set_title("reconstruction MSE per pixel (test, lower is sharper)", fontsize=10)

    ax = axes[1]
    for key, colour, title in (("mig", "tab:red", "MIG"), ("dci", "tab:green", "DCI disentanglement")):
        ax.plot(xs(shapes), [m[key] for m in shapes.values()], "o-", color=colour, label=f"{title} (VAE)")
        ax.axhline(autoencoder[key], color=colour, linestyle=":", label=f"{title} (autoencoder)")
    ax.set_ylim(0, 1)
    ax.set_title("disentanglement on shapes (1 = one factor per dim)", fontsize=10)

    ax = axes[2]
    for group, marker, colour, name in ((shapes, "o-", "tab:purple", "shapes"), (cifar, "s--", "tab:blue", "CIFAR-10")):
        ax.plot(xs(group), [m["kl"] for m in group.values()], marker, color=colour, label=name)
        for x, m in zip(xs(group), group.values()):
            ax.annotate(f"{m['active_units']} active", (x, m["kl"]), textcoords="offset points", xytext=(4, 6),
                        fontsize=8, color=colour)
    ax.set_yscale("log")
    ax.set_title("KL to the prior (nats/image, test) and active units", fontsize=10)

    for ax in axes:
        ax.set_xticks(list(where.values()), [f"{b:g}" for b in where])
        ax.set_xlabel("beta")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, path)


def plot_smoothness(entries: dict[str, dict], path: Path) -> None:
    """Per model (label -> metrics with path_ratios and path_mean_steps): the largest step over the
    mean step of each interpolation path, as a box plot and against the mean step."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.3))
    labels = list(entries)
    axes[0].boxplot([entries[k]["path_ratios"] for k in labels])
    axes[0].set_xticks(range(1, len(labels) + 1), labels)
    axes[0].axhline(1.0, color="grey", linestyle=":")
    axes[0].set_ylabel("largest step / mean step along a path")
    axes[0].set_title("interpolation smoothness (1 = the image changes evenly)", fontsize=10)
    for label in labels:
        mean = np.asarray(entries[label]["path_mean_steps"])
        axes[1].scatter(mean, mean * np.asarray(entries[label]["path_ratios"]), s=12, alpha=0.7, label=label)
    top = max(max(np.asarray(e["path_mean_steps"]) * np.asarray(e["path_ratios"])) for e in entries.values())
    axes[1].plot([0, top], [0, top], color="grey", linestyle=":", label="largest = mean (even)")
    axes[1].set_xlabel("mean step between consecutive frames (RMS pixel change)")
    axes[1].set_ylabel("largest step")
    axes[1].set_title("each point one path between the codes of two test images", fontsize=10)
    axes[1].legend(fontsize=8)
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    _save(fig, path)


def plot_autoencoder_vs_vae(models: dict[str, VAE], pair: torch.Tensor, path: Path, samples: int = 8,
                            steps: int = 10, seed: int = 0) -> None:
    """Per model: decoded z ~ N(0, I), and the path between the codes of the two images in `pair`
    (uint8 NHWC, shown at the ends)."""
    fig, axes = plt.subplots(len(models), 2, figsize=(15, 1.45 * len(models) + 0.8),
                             gridspec_kw={"width_ratios": [samples, steps + 2]})
    axes = np.atleast_2d(axes)
    originals = to_display(pair)
    for row, (label, model) in zip(axes, models.items()):
        z = torch.randn(samples, model.latent_dim, generator=torch.Generator().manual_seed(seed))
        _show(row[0], decode(model, z), nrow=samples, ylabel=label)
        codes = encode_means(model, pair)
        frames = decode(model, interpolate(codes[0], codes[1], steps))
        _show(row[1], torch.cat([originals[:1], frames, originals[1:]]), nrow=steps + 2)
    axes[0, 0].set_title("decoded z ~ N(0, I) (same z for every model)", fontsize=10)
    axes[0, 1].set_title("real image | straight line between the two codes | real image", fontsize=10)
    fig.tight_layout()
    _save(fig, path)
