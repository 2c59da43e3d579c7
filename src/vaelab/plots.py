"""Every figure of the study, one function per figure kind, each writing one PNG atomically.

Images of a model are decoder means (the expected image under the Gaussian likelihood). Figures are
plain `matplotlib.figure.Figure`s (no pyplot state, no GUI backend) written by `save_figure`.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from sklearn.metrics import ConfusionMatrixDisplay
from torchvision.utils import make_grid, save_image

from . import store
from .datasets import to_display
from .metrics.latent import apply_direction, interpolate, shell_codes
from .models import VAE, decode_batches, encode_batches, reconstruct_batches

MODEL_COLOURS = {"fc": "tab:orange", "conv": "tab:blue", "conv_beta5": "tab:green"}

# plot_curves' panels: (history key without its train_/test_ prefix, title). A panel is drawn when
# any run's history has the key, so VAE, autoencoder and classifier histories share one function.
CURVE_PANELS = (
    ("loss", "training objective (nats/image; a VAE's is recon + beta * KL)"),
    ("recon", "reconstruction NLL (nats/image)"),
    ("kl", "KL to the prior (nats/image)"),
    ("bpd", "bits/dim (beta-free bound)"),
    ("accuracy", "classification accuracy"),
)


# --- drawing helpers ------------------------------------------------------------------------------


def save_figure(fig: Figure, path: Path) -> None:
    """Lay out `fig` and write it as a PNG atomically (a crash never leaves half a figure)."""
    fig.tight_layout()
    store.atomic_write(
        path, lambda tmp: fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    )


def _save_upscaled_grid(images: torch.Tensor, path: Path, nrow: int) -> None:
    """(N, C, H, W) in [0, 1] as one torchvision grid of `nrow` columns, white padding 4, each image
    enlarged 3x (nearest neighbour) so 32x32 images stay visible."""
    big = F.interpolate(images, scale_factor=3, mode="nearest")
    store.atomic_write(
        path, lambda tmp: save_image(big, tmp, nrow=nrow, padding=4, pad_value=1.0, format="png")
    )


def _show(ax, images: torch.Tensor, nrow: int, title: str = "", ylabel: str = "") -> None:
    """(N, C, H, W) in [0, 1] as one make_grid image (padding 2, white) on `ax`, without ticks."""
    grid = make_grid(images, nrow=nrow, padding=2, pad_value=1.0)
    ax.imshow(grid.permute(1, 2, 0).numpy(), interpolation="nearest")
    ax.set(xticks=[], yticks=[])
    ax.spines[:].set_visible(False)  # not ax.axis("off"), which would hide the ylabel too
    if title:
        ax.set_title(title, fontsize=10)
    if ylabel:
        ax.set_ylabel(ylabel, rotation=0, ha="right", va="center", fontsize=9)


def _column(fig: Figure, rows: int):
    """`rows` axes stacked vertically, always as a 1-d array."""
    return np.atleast_1d(fig.subplots(rows, 1))


def _cells(fig: Figure, count: int, columns: int) -> list:
    """`count` axes filling rows of `columns`; the empty cells of a partial last row are removed."""
    axes = list(np.atleast_1d(fig.subplots(math.ceil(count / columns), columns)).flat)
    for ax in axes[count:]:
        fig.delaxes(ax)
    return axes[:count]


def _framed_path(model: VAE, pair: torch.Tensor, steps: int) -> torch.Tensor:
    """uint8 (2, H, W, C) -> (steps + 2, C, H, W): the first image, `steps` decoded frames of the
    straight line between the posterior means of both, the second image."""
    start, end = encode_batches(model, pair)[0]
    originals = to_display(pair)
    return torch.cat(
        [originals[:1], decode_batches(model, interpolate(start, end, steps)), originals[1:]]
    )


# --- grids of one model ---------------------------------------------------------------------------


def sample_grid_image(model: VAE, z: torch.Tensor) -> np.ndarray:
    """16 decoded codes as one 4x4 grid, HWC uint8, for mlflow.log_image."""
    grid = make_grid(decode_batches(model, z), nrow=4, padding=2)
    return (grid.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def save_samples(model: VAE, z: torch.Tensor, path: Path, nrow: int = 4) -> None:
    """The codes in z decoded as a grid of `nrow` columns (4x4 for 16 codes), upscaled."""
    _save_upscaled_grid(decode_batches(model, z), path, nrow)


def plot_prior_interpolation(
    model: VAE, generator: torch.Generator, path: Path, rows: int = 5, steps: int = 10
) -> None:
    """Rows of `steps` frames on straight lines between pairs of random codes z1, z2 ~ N(0, I)."""
    ends = torch.randn(rows, 2, model.latent_dim, generator=generator)
    frames = torch.cat([decode_batches(model, interpolate(a, b, steps)) for a, b in ends])
    _save_upscaled_grid(frames, path, nrow=steps)


# --- matplotlib figures of models -----------------------------------------------------------------


def _pick_pair(
    count: int, labels: torch.Tensor | None, generator: torch.Generator
) -> tuple[int, int]:
    """Two different test images; of different labels when there are labels and more than one."""
    several_labels = labels is not None and len(set(labels.tolist())) > 1
    while True:
        a, b = torch.randint(count, (2,), generator=generator).tolist()
        if several_labels and labels[a] != labels[b]:
            return a, b
        if not several_labels and (a != b or count == 1):
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
    """Paths between the posterior means of two real test images (of different classes when there
    are labels), the originals at the ends."""
    fig = Figure(figsize=(12, 1.25 * pairs + 0.6))
    axes = _column(fig, pairs)
    for ax in axes:
        a, b = _pick_pair(len(images), labels, generator)
        if labels is not None and classes:
            ylabel = f"{classes[labels[a]]}\n-> {classes[labels[b]]}"
        else:
            ylabel = f"#{a}\n-> #{b}"
        _show(ax, _framed_path(model, images[[a, b]], steps), nrow=steps + 2, ylabel=ylabel)
    axes[0].set_title(
        f"real image | {steps} decoded steps between their latent codes | real image", fontsize=10
    )
    save_figure(fig, path)


def plot_reconstructions(models: dict[str, VAE], images: torch.Tensor, path: Path) -> None:
    """The test images, then one row of reconstructions (decode(mu)) per model."""
    fig = Figure(figsize=(12, 1.3 * (len(models) + 1)))
    axes = _column(fig, len(models) + 1)
    _show(axes[0], to_display(images), nrow=len(images), ylabel="test image")
    for ax, (name, model) in zip(axes[1:], models.items(), strict=True):
        _show(ax, reconstruct_batches(model, images), nrow=len(images), ylabel=name)
    fig.suptitle("Reconstructions (decoder mean of the posterior mean)", fontsize=11)
    save_figure(fig, path)


def plot_side_by_side(
    left: tuple[str, VAE, torch.Tensor],
    right: tuple[str, VAE, torch.Tensor],
    images: torch.Tensor,
    path: Path,
    kl_per_dim: dict[str, list[float]] | None = None,
) -> None:
    """Two (label, model, codes) side by side: 16 samples decoded from the codes, and
    reconstructions of the same test images; with `kl_per_dim`, a third panel shows how the KL
    spreads over latent dimensions."""
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
        _show(ax, torch.cat(rows), nrow=4, title=title)
    if kl_per_dim:
        ax = axes[2]
        for name, values in kl_per_dim.items():
            ordered = sorted(values, reverse=True)
            colour = MODEL_COLOURS.get(name)
            ax.bar(
                np.arange(len(ordered)), ordered, alpha=0.55, color=colour, label=name, width=1.0
            )
        ax.set_yscale("log")
        ax.set_xlabel("latent dimension (sorted by KL)")
        ax.set_ylabel("mean KL on the test set (nats)")
        ax.set_title("KL per latent dimension", fontsize=10)
        ax.legend()
    save_figure(fig, path)


def plot_traversals(
    model: VAE,
    image: torch.Tensor,
    dims: list[int],
    labels: list[str],
    path: Path,
    span: float = 3.0,
    steps: int = 9,
    title: str = "",
) -> None:
    """One row per latent dim in `dims`, swept over [-span, span] with the other dims held at the
    posterior mean of `image` (uint8 HWC); each row labelled with its entry of `labels` (the factor
    the dim captures, or its KL when no factors are known)."""
    base = encode_batches(model, image.unsqueeze(0))[0][0]  # posterior mean (latent,)
    values = torch.linspace(-span, span, steps)
    fig = Figure(figsize=(8.5, 1.0 * len(dims) + 0.9))
    axes = _column(fig, len(dims))
    for ax, j, label in zip(axes, dims, labels, strict=True):
        codes = base.repeat(steps, 1)  # (steps, latent)
        codes[:, j] = values
        _show(ax, decode_batches(model, codes), nrow=steps, ylabel=label)
    axes[0].set_title(
        title or f"one latent dimension at a time from -{span:g} to +{span:g}", fontsize=9
    )
    save_figure(fig, path)


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
    cells = _cells(fig, len(images), columns)
    for ax, image, conf, lab in zip(
        cells, images, confidence.tolist(), label.tolist(), strict=True
    ):
        ax.imshow(image.permute(1, 2, 0).numpy(), interpolation="nearest")
        colour = "tab:green" if conf >= confident else "black"
        ax.set_title(f"{classes[lab]} {conf:.2f}", fontsize=8, color=colour)
        ax.axis("off")
    fig.suptitle(f"{title}, labelled by the judge (green: confidence >= {confident})", fontsize=9)
    save_figure(fig, path)


def plot_samplers(model: VAE, codes: dict[str, torch.Tensor], path: Path, columns: int = 6) -> None:
    """The same model decoding codes from different samplers, side by side."""
    fig = Figure(figsize=(4.6 * len(codes), 5))
    axes = np.atleast_1d(fig.subplots(1, len(codes)))
    for ax, (title, z) in zip(axes, codes.items(), strict=True):
        _show(ax, decode_batches(model, z), nrow=columns, title=title)
    save_figure(fig, path)


def plot_nearest_training(
    samples: dict[str, torch.Tensor], nearest: dict[str, torch.Tensor], path: Path
) -> None:
    """Each sampler's images (decoder means) above the training image nearest to each of them by
    pixel distance: a reader sees whether the model copies its training set."""
    fig = Figure(figsize=(11, 1.5 * 2 * len(samples)))
    axes = _column(fig, 2 * len(samples))
    for i, (name, images) in enumerate(samples.items()):
        _show(axes[2 * i], images, nrow=len(images), ylabel=f"{name}\n(decoder mean)")
        _show(axes[2 * i + 1], nearest[name], nrow=len(images), ylabel="nearest\ntraining image")
    save_figure(fig, path)


def plot_autoencoder_vs_vae(
    models: dict[str, VAE],
    pair: torch.Tensor,
    path: Path,
    samples: int = 8,
    steps: int = 10,
    seed: int = 0,
) -> None:
    """Per model: decoded z ~ N(0, I), and the path between the codes of the two images in `pair`
    (uint8 NHWC, shown at the ends)."""
    fig = Figure(figsize=(15, 1.45 * len(models) + 0.8))
    axes = np.atleast_2d(
        fig.subplots(len(models), 2, gridspec_kw={"width_ratios": [samples, steps + 2]})
    )
    for (prior_ax, path_ax), (label, model) in zip(axes, models.items(), strict=True):
        z = torch.randn(samples, model.latent_dim, generator=torch.Generator().manual_seed(seed))
        _show(prior_ax, decode_batches(model, z), nrow=samples, ylabel=label)
        _show(path_ax, _framed_path(model, pair, steps), nrow=steps + 2)
    axes[0, 0].set_title("decoded z ~ N(0, I) (same z for every model)", fontsize=10)
    axes[0, 1].set_title(
        "real image | straight line between the two codes | real image", fontsize=10
    )
    save_figure(fig, path)


def plot_shells(
    model: VAE, codes_by_label: dict[str, torch.Tensor], path: Path, title: str
) -> None:
    """One row of decoded codes per shell, labelled with its radius and measured number."""
    columns = len(next(iter(codes_by_label.values())))
    fig = Figure(figsize=(1.0 * columns, 1.05 * len(codes_by_label) + 0.6))
    axes = _column(fig, len(codes_by_label))
    for ax, (label, codes) in zip(axes, codes_by_label.items(), strict=True):
        _show(ax, decode_batches(model, codes), nrow=len(codes), ylabel=label)
    axes[0].set_title(title, fontsize=10)
    save_figure(fig, path)


def plot_neighbourhoods(
    model: VAE,
    images: torch.Tensor,
    centres: torch.Tensor,
    distances: list[float],
    per_distance: int,
    generator: torch.Generator,
    path: Path,
) -> None:
    """Per real face: the face, its reconstruction, then `per_distance` random codes at each
    distance (in units of sqrt(d)) from its code, groups separated by a blank."""
    scale = math.sqrt(centres.shape[1])
    columns = 2 + len(distances) * (per_distance + 1)
    fig = Figure(figsize=(1.0 * columns, 1.05 * len(images) + 0.7))
    axes = _column(fig, len(images))
    for ax, original, centre in zip(axes, to_display(images), centres, strict=True):
        blank = torch.ones_like(original).unsqueeze(0)
        row = [original.unsqueeze(0), decode_batches(model, centre.unsqueeze(0))]
        for distance in distances:
            moved = centre + shell_codes(per_distance, len(centre), distance * scale, generator)
            row += [blank, decode_batches(model, moved)]
        _show(ax, torch.cat(row), nrow=columns)
    groups = ", ".join(f"{d:g}" for d in distances)
    axes[0].set_title(
        f"real face | reconstruction | {per_distance} random codes at distance "
        f"{groups} x sqrt(d) from its code",
        fontsize=10,
    )
    save_figure(fig, path)


def plot_attribute_edits(
    model: VAE,
    images: torch.Tensor,
    codes: torch.Tensor,
    directions: dict[str, torch.Tensor],
    strengths: list[float],
    path: Path,
) -> None:
    """Per attribute, per face: the real face, a blank, then its code plus each strength times the
    direction."""
    columns = len(strengths) + 2
    fig = Figure(figsize=(1.0 * columns, (1.05 * len(images) + 0.45) * len(directions)))
    originals = to_display(images)
    blank = torch.ones_like(originals[:1])
    axes = _column(fig, len(directions))
    for ax, (name, direction) in zip(axes, directions.items(), strict=True):
        cells = []
        for original, code in zip(originals, codes, strict=True):
            edited = decode_batches(model, apply_direction(code, direction, strengths))
            cells += [original.unsqueeze(0), blank, edited]
        title = f"{name}: real | code + s x direction, s = " + ", ".join(
            f"{s:+g}" for s in strengths
        )
        _show(ax, torch.cat(cells), nrow=columns, title=title)
    save_figure(fig, path)


# --- figures of numbers ---------------------------------------------------------------------------


def plot_curves(histories: dict[str, list[dict]], path: Path) -> None:
    """Per-epoch train (solid) and test (dashed) curves of any runs' histories (run name -> rows of
    store.read_curves), one panel per CURVE_PANELS key some run has. The objective and the Gaussian
    NLL are negative once the decoder's sigma is small, so they get linear axes (a log axis would
    show nothing)."""
    present = {column for rows in histories.values() if rows for column in rows[0]}
    panels = [
        (key, title) for key, title in CURVE_PANELS if {f"train_{key}", f"test_{key}"} & present
    ]
    columns = 2 if len(panels) > 1 else 1
    fig = Figure(figsize=(5.5 * columns, 3.75 * math.ceil(len(panels) / columns)))
    for ax, (key, title) in zip(_cells(fig, len(panels), columns), panels, strict=True):
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


def plot_confusion_matrix(
    labels: torch.Tensor, predictions: torch.Tensor, classes: list[str], path: Path
) -> None:
    """Test-set confusion matrix of a classifier, each row normalised to the true class."""
    fig = Figure(figsize=(8, 7))
    ax = fig.subplots()
    ConfusionMatrixDisplay.from_predictions(
        labels.numpy(),
        predictions.numpy(),
        labels=list(range(len(classes))),
        display_labels=classes,
        normalize="true",
        values_format=".2f",
        colorbar=False,
        ax=ax,
        xticks_rotation=45,
    )
    ax.set_title("test confusion matrix (each row: share of that true class)", fontsize=10)
    save_figure(fig, path)


def plot_beta_tradeoff(
    shapes: dict[str, dict], cifar: dict[str, dict], autoencoder: dict, path: Path
) -> None:
    """Reconstruction error, MIG/DCI and KL against beta; the autoencoder as dotted lines."""
    # Evenly spaced x positions for every beta present: betas like 1, 2, 5, 10 read best that way.
    betas = sorted({float(beta) for group in (shapes, cifar) for beta in group})
    where = {beta: i for i, beta in enumerate(betas)}
    fig = Figure(figsize=(15, 4.2))
    recon, disentanglement, kl = axes = fig.subplots(1, 3)
    for group, style, colour, name in (
        (shapes, "o-", "tab:purple", "shapes"),
        (cifar, "s--", "tab:blue", "CIFAR-10"),
    ):
        xs = [where[float(beta)] for beta in group]
        recon.plot(xs, [m["recon_mse"] for m in group.values()], style, color=colour, label=name)
        kl.plot(xs, [m["kl"] for m in group.values()], style, color=colour, label=name)
        for x, m in zip(xs, group.values(), strict=True):
            active = f"{m['active_units']} active"
            kl.annotate(
                active,
                (x, m["kl"]),
                textcoords="offset points",
                xytext=(4, 6),
                fontsize=8,
                color=colour,
            )
    recon.axhline(
        autoencoder["recon_mse"], color="tab:purple", linestyle=":", label="shapes autoencoder"
    )
    recon.set_yscale("log")
    recon.set_title("reconstruction MSE per pixel (test, lower is closer)", fontsize=10)

    shapes_xs = [where[float(beta)] for beta in shapes]
    for key, colour, title in (
        ("mig", "tab:red", "MIG"),
        ("dci", "tab:green", "DCI disentanglement"),
    ):
        values = [m[key] for m in shapes.values()]
        disentanglement.plot(shapes_xs, values, "o-", color=colour, label=f"{title} (VAE)")
        disentanglement.axhline(
            autoencoder[key], color=colour, linestyle=":", label=f"{title} (autoencoder)"
        )
    disentanglement.set_ylim(0, 1)
    disentanglement.set_title("disentanglement on shapes (1 = one factor per dim)", fontsize=10)

    kl.set_yscale("log")
    kl.set_title("KL to the prior (nats/image, test) and active units", fontsize=10)
    for ax in axes:
        ax.set_xticks(list(where.values()), [f"{beta:g}" for beta in where])
        ax.set_xlabel("beta")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    save_figure(fig, path)


def plot_smoothness(entries: dict[str, dict], path: Path) -> None:
    """Per model (label -> metrics with path_ratios and path_mean_steps): the largest step over the
    mean step of each interpolation path, as a box plot and against the mean step."""
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
    save_figure(fig, path)
