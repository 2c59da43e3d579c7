"""The figures of one run and the drawing helpers study_plots.py shares. Images of a model are
decoder means; figures are plain `Figure`s (no pyplot state, no GUI backend) for `save_figure`."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torchvision.utils import make_grid, save_image

from . import store
from .datasets import to_display
from .metrics.latent import interpolate
from .models import VAE, decode_batches, encode_batches, reconstruct_batches

MODEL_COLOURS = {"fc": "tab:orange", "conv": "tab:blue", "conv_beta5": "tab:green"}

# plot_curves' panels: (history key without train_/test_, title), each drawn when a history has it.
CURVE_PANELS = (
    ("loss", "training objective (nats/image; a VAE's is recon + beta * KL)"),
    ("recon", "reconstruction NLL (nats/image)"),
    ("kl", "KL to the prior (nats/image)"),
    ("bpd", "bits/dim (beta-free bound)"),
    ("accuracy", "classification accuracy"),
)


def save_figure(fig: Figure, path: Path) -> None:
    """Lay out `fig` and write it as a PNG atomically (a crash never leaves half a figure)."""
    fig.tight_layout()
    store.atomic_write(
        path, lambda tmp: fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    )


def save_upscaled_grid(images: torch.Tensor, path: Path, nrow: int) -> None:
    """(N, C, H, W) in [0, 1] as a torchvision grid, enlarged 3x so 32x32 images stay visible."""
    big = F.interpolate(images, scale_factor=3, mode="nearest")
    store.atomic_write(
        path, lambda tmp: save_image(big, tmp, nrow=nrow, padding=4, pad_value=1.0, format="png")
    )


def show_grid(ax, images: torch.Tensor, nrow: int, title: str = "", ylabel: str = "") -> None:
    """(N, C, H, W) in [0, 1] as one make_grid image (padding 2, white) on `ax`, without ticks."""
    grid = make_grid(images, nrow=nrow, padding=2, pad_value=1.0)
    ax.imshow(grid.permute(1, 2, 0).numpy(), interpolation="nearest")
    ax.set(xticks=[], yticks=[])
    ax.spines[:].set_visible(False)  # not ax.axis("off"), which would hide the ylabel too
    if title:
        ax.set_title(title, fontsize=10)
    if ylabel:
        ax.set_ylabel(ylabel, rotation=0, ha="right", va="center", fontsize=9)


def axes_grid(fig: Figure, count: int, columns: int) -> list:
    """`count` axes filling rows of `columns`; the empty cells of a partial last row are removed."""
    axes = list(np.atleast_1d(fig.subplots(math.ceil(count / columns), columns)).flat)
    for ax in axes[count:]:
        fig.delaxes(ax)
    return axes[:count]


def framed_path(model: VAE, pair: torch.Tensor, steps: int) -> torch.Tensor:
    """uint8 (2, H, W, C) -> (steps + 2, C, H, W): the images around the path between their codes."""
    start, end = encode_batches(model, pair)[0]
    originals = to_display(pair)
    frames = decode_batches(model, interpolate(start, end, steps))
    return torch.cat([originals[:1], frames, originals[1:]])


def sample_grid_image(model: VAE, z: torch.Tensor) -> np.ndarray:
    """16 decoded codes as one 4x4 grid, HWC uint8, for mlflow.log_image."""
    grid = make_grid(decode_batches(model, z), nrow=4, padding=2)
    return (grid.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def save_samples(model: VAE, z: torch.Tensor, path: Path) -> None:
    """The codes in z decoded as a grid of 4 columns (4x4 for 16 codes), upscaled."""
    save_upscaled_grid(decode_batches(model, z), path, nrow=4)


def plot_prior_interpolation(
    model: VAE, generator: torch.Generator, path: Path, rows: int = 5, steps: int = 10
) -> None:
    """Rows of `steps` frames on straight lines between pairs of random codes z1, z2 ~ N(0, I)."""
    ends = torch.randn(rows, 2, model.latent_dim, generator=generator)
    frames = torch.cat([decode_batches(model, interpolate(a, b, steps)) for a, b in ends])
    save_upscaled_grid(frames, path, nrow=steps)


def pick_pair(
    count: int, labels: torch.Tensor | None, generator: torch.Generator
) -> tuple[int, int]:
    """Two different test images; of different labels when there are labels and more than one."""
    if labels is None or len(set(labels.tolist())) < 2:
        labels = torch.arange(count)  # each image its own label: any two different images
    while True:
        a, b = torch.randint(count, (2,), generator=generator).tolist()
        if labels[a] != labels[b] or count == 1:  # one image: the pair is that image twice
            return a, b


def plot_image_interpolation(
    model: VAE,
    images: torch.Tensor,
    labels: torch.Tensor | None,
    classes: list[str] | None,
    generator: torch.Generator,
    path: Path,
    pairs: int = 4,
    steps: int = 10,
) -> None:
    """Paths between the codes of two test images (of different classes when labelled)."""
    fig = Figure(figsize=(12, 1.25 * pairs + 0.6))
    axes = np.atleast_1d(fig.subplots(pairs, 1))
    named = labels is not None and bool(classes)
    for ax in axes:
        a, b = pick_pair(len(images), labels, generator)
        ylabel = f"{classes[labels[a]]}\n-> {classes[labels[b]]}" if named else f"#{a}\n-> #{b}"
        show_grid(ax, framed_path(model, images[[a, b]], steps), nrow=steps + 2, ylabel=ylabel)
    axes[0].set_title(
        f"real image | {steps} decoded steps between their latent codes | real image", fontsize=10
    )
    save_figure(fig, path)


def plot_reconstructions(models: dict[str, VAE], images: torch.Tensor, path: Path) -> None:
    """The test images, then one row of reconstructions (decode(mu)) per model."""
    fig = Figure(figsize=(12, 1.3 * (len(models) + 1)))
    axes = fig.subplots(len(models) + 1, 1)
    show_grid(axes[0], to_display(images), nrow=len(images), ylabel="test image")
    for ax, (name, model) in zip(axes[1:], models.items(), strict=True):
        show_grid(ax, reconstruct_batches(model, images), nrow=len(images), ylabel=name)
    fig.suptitle("Reconstructions (decoder mean of the posterior mean)", fontsize=11)
    save_figure(fig, path)


def plot_traversals(
    model: VAE,
    image: torch.Tensor,
    dims: list[int],
    labels: list[str],
    path: Path,
    span: float,
    steps: int,
    title: str,
) -> None:
    """A row per dim in `dims` swept over [-span, span], the others at `image`'s posterior mean."""
    base = encode_batches(model, image.unsqueeze(0))[0][0]  # posterior mean (latent,)
    values = torch.linspace(-span, span, steps)
    fig = Figure(figsize=(8.5, 1.0 * len(dims) + 0.9))
    axes = np.atleast_1d(fig.subplots(len(dims), 1))
    for ax, j, label in zip(axes, dims, labels, strict=True):
        codes = base.repeat(steps, 1)  # (steps, latent)
        codes[:, j] = values
        show_grid(ax, decode_batches(model, codes), nrow=steps, ylabel=label)
    axes[0].set_title(title, fontsize=9)
    save_figure(fig, path)


def plot_curves(histories: dict[str, list[dict]], path: Path) -> None:
    """Train (solid) and test (dashed) curves per epoch of runs' store.read_curves. The objective
    and NLL are negative once the decoder's sigma is small: linear axes (a log axis shows nothing)."""
    present = {column for rows in histories.values() if rows for column in rows[0]}
    panels = [
        (key, title) for key, title in CURVE_PANELS if {f"train_{key}", f"test_{key}"} & present
    ]
    columns = 2 if len(panels) > 1 else 1
    fig = Figure(figsize=(5.5 * columns, 3.75 * math.ceil(len(panels) / columns)))
    for ax, (key, title) in zip(axes_grid(fig, len(panels), columns), panels, strict=True):
        values = []
        for i, (name, rows) in enumerate(histories.items()):
            epochs = [row["epoch"] for row in rows]
            colour = MODEL_COLOURS.get(name, f"C{i}")
            marker = "." if len(rows) == 1 else None  # a one-epoch run would show no line
            for split, style in (("train", "-"), ("test", "--")):
                column = f"{split}_{key}"
                if rows and column in rows[0]:
                    ys = [row[column] for row in rows]
                    label = f"{name} {split}"
                    ax.plot(epochs, ys, color=colour, linestyle=style, marker=marker, label=label)
                    values += ys
        if key == "kl" and min(values) > 0:  # positive, with a large first-epoch transient
            ax.set_yscale("log")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    save_figure(fig, path)
