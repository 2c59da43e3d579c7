"""Every figure of the study, one function per figure kind, each writing one PNG atomically.

Image grids are torchvision's make_grid/save_image; matplotlib adds labels and panels where a grid
needs them. Images of a model are decoder means (the expected image under the Gaussian likelihood),
computed with the batched helpers of `models`. Figures are built on `matplotlib.figure.Figure`
directly (no pyplot state, no GUI backend) and written by `save_figure`, the one place a figure
reaches the disk.
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
    """Write `fig` as a PNG through a temporary file (a crash never leaves half a figure)."""
    store.atomic_write(
        Path(path), lambda tmp: fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    )


def _save_grid(images: torch.Tensor, path: Path, nrow: int) -> None:
    """(N, C, H, W) in [0, 1] as one torchvision grid of `nrow` columns, white padding 4."""
    store.atomic_write(
        Path(path),
        lambda tmp: save_image(images, tmp, nrow=nrow, padding=4, pad_value=1.0, format="png"),
    )


def _upscale(images: torch.Tensor, factor: int = 3) -> torch.Tensor:
    """Nearest-neighbour enlargement, so 32x32 images stay visible in a saved grid."""
    return F.interpolate(images, scale_factor=factor, mode="nearest")


def _show(ax, images: torch.Tensor, nrow: int, title: str = "", ylabel: str = "") -> None:
    """(N, C, H, W) in [0, 1] as one make_grid image (padding 2, white) on `ax`, without ticks."""
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


def _column(fig: Figure, rows: int):
    """`rows` axes stacked vertically, always as a 1-d array."""
    return np.atleast_1d(fig.subplots(rows, 1))


def _encode_means(model: VAE, images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, H, W, C) -> posterior means (N, latent), seeded dequantisation."""
    return encode_batches(model, images)[0]


def _path_frames(model: VAE, start: torch.Tensor, end: torch.Tensor, steps: int) -> torch.Tensor:
    """Decoded frames (steps, C, H, W) of the straight line between two codes."""
    return decode_batches(model, interpolate(start, end, steps))


# --- grids of one model ---------------------------------------------------------------------------


def sample_grid_image(model: VAE, z: torch.Tensor) -> np.ndarray:
    """16 decoded codes as one 4x4 grid, HWC uint8, for mlflow.log_image."""
    grid = make_grid(decode_batches(model, z), nrow=4, padding=2)
    return (grid.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def save_samples(model: VAE, z: torch.Tensor, path: Path, nrow: int = 4) -> None:
    """The codes in z decoded as a grid of `nrow` columns (4x4 for 16 codes), upscaled."""
    _save_grid(_upscale(decode_batches(model, z)), path, nrow)


def plot_prior_interpolation(
    model: VAE, generator: torch.Generator, path: Path, rows: int = 5, steps: int = 10
) -> None:
    """Rows of `steps` frames on straight lines between pairs of random codes z1, z2 ~ N(0, I)."""
    ends = torch.randn(rows, 2, model.latent_dim, generator=generator)
    frames = torch.cat([_path_frames(model, a, b, steps) for a, b in ends])
    _save_grid(_upscale(frames), path, nrow=steps)


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
    """Between the posterior means of two real test images (of different classes when `labels` are
    given, else any two different images); the originals at the ends."""
    fig = Figure(figsize=(12, 1.25 * pairs + 0.6))
    axes = _column(fig, pairs)
    for ax in axes:
        a, b = _pick_pair(len(images), labels, generator)
        codes = _encode_means(model, images[[a, b]])
        originals = to_display(images[[a, b]])
        ylabel = (
            f"{classes[labels[a]]}\n-> {classes[labels[b]]}"
            if labels is not None and classes
            else f"#{a}\n-> #{b}"
        )
        _show(
            ax,
            torch.cat(
                [originals[:1], _path_frames(model, codes[0], codes[1], steps), originals[1:]]
            ),
            nrow=steps + 2,
            ylabel=ylabel,
        )
    axes[0].set_title(
        f"real image | {steps} decoded steps between their latent codes | real image", fontsize=10
    )
    fig.tight_layout()
    save_figure(fig, path)


def plot_reconstructions(models: dict[str, VAE], images: torch.Tensor, path: Path) -> None:
    """The test images, then one row of reconstructions (decode(mu)) per model."""
    fig = Figure(figsize=(12, 1.3 * (len(models) + 1)))
    axes = _column(fig, len(models) + 1)
    _show(axes[0], to_display(images), nrow=len(images), ylabel="test image")
    for ax, (name, model) in zip(axes[1:], models.items(), strict=True):
        _show(ax, reconstruct_batches(model, images), nrow=len(images), ylabel=name)
    fig.suptitle("Reconstructions (decoder mean of the posterior mean)", fontsize=11)
    fig.tight_layout()
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
        blank = torch.ones_like(samples[:4])
        rows = [samples, blank] + [
            torch.cat([originals[i : i + 4], recon[i : i + 4]]) for i in range(0, 8, 4)
        ]
        _show(
            ax,
            torch.cat(rows),
            nrow=4,
            title=f"{name}: samples from N(0, I)\nbelow: test images / reconstructions",
        )
    if kl_per_dim:
        ax = axes[2]
        for name, values in kl_per_dim.items():
            ordered = sorted(values, reverse=True)
            ax.bar(
                np.arange(len(ordered)),
                ordered,
                alpha=0.55,
                color=MODEL_COLOURS.get(name),
                label=name,
                width=1.0,
            )
        ax.set_yscale("log")
        ax.set_xlabel("latent dimension (sorted by KL)")
        ax.set_ylabel("mean KL on the test set (nats)")
        ax.set_title("KL per latent dimension", fontsize=10)
        ax.legend()
    fig.tight_layout()
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
    base = _encode_means(model, image.unsqueeze(0))[0]
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
    fig.tight_layout()
    save_figure(fig, path)


def plot_labelled_samples(
    images: torch.Tensor,
    logits: torch.Tensor,
    classes: list[str],
    path: Path,
    columns: int = 6,
    confident: float = 0.9,
) -> None:
    """Each image titled with the judge's label and confidence (green when >= `confident`)."""
    confidence, label = logits.softmax(dim=1).max(dim=1)
    rows = (len(images) + columns - 1) // columns
    fig = Figure(figsize=(columns * 1.45, rows * 1.65))
    axes = list(np.atleast_1d(fig.subplots(rows, columns)).flat)
    for ax, image, conf, lab in zip(
        axes, images, confidence.tolist(), label.tolist(), strict=False
    ):
        ax.imshow(image.permute(1, 2, 0).numpy(), interpolation="nearest")
        ax.set_title(
            f"{classes[lab]} {conf:.2f}",
            fontsize=8,
            color="tab:green" if conf >= confident else "black",
        )
        ax.axis("off")
    for ax in axes[len(images) :]:  # the empty cells of a last, partial row
        fig.delaxes(ax)
    fig.suptitle(
        f"Samples from N(0, I), labelled by the evaluator classifier "
        f"(green: confidence >= {confident})",
        fontsize=9,
    )
    fig.tight_layout()
    save_figure(fig, path)


def plot_samplers(model: VAE, codes: dict[str, torch.Tensor], path: Path, columns: int = 6) -> None:
    """The same model decoding codes from different samplers, side by side."""
    fig = Figure(figsize=(4.6 * len(codes), 5))
    for ax, (title, z) in zip(
        np.atleast_1d(fig.subplots(1, len(codes))), codes.items(), strict=True
    ):
        _show(ax, decode_batches(model, z), nrow=columns, title=title)
    fig.tight_layout()
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
    originals = to_display(pair)
    for row, (label, model) in zip(axes, models.items(), strict=True):
        z = torch.randn(samples, model.latent_dim, generator=torch.Generator().manual_seed(seed))
        _show(row[0], decode_batches(model, z), nrow=samples, ylabel=label)
        codes = _encode_means(model, pair)
        _show(
            row[1],
            torch.cat(
                [originals[:1], _path_frames(model, codes[0], codes[1], steps), originals[1:]]
            ),
            nrow=steps + 2,
        )
    axes[0, 0].set_title("decoded z ~ N(0, I) (same z for every model)", fontsize=10)
    axes[0, 1].set_title(
        "real image | straight line between the two codes | real image", fontsize=10
    )
    fig.tight_layout()
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
    fig.tight_layout()
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
    fig = Figure(
        figsize=(1.0 * (2 + len(distances) * (per_distance + 1)), 1.05 * len(images) + 0.7)
    )
    axes = _column(fig, len(images))
    for ax, original, centre in zip(axes, to_display(images), centres, strict=True):
        blank = torch.ones_like(original).unsqueeze(0)
        row = [original.unsqueeze(0), decode_batches(model, centre.unsqueeze(0))]
        for distance in distances:
            moved = centre + shell_codes(per_distance, len(centre), distance * scale, generator)
            row += [blank, decode_batches(model, moved)]
        _show(ax, torch.cat(row), nrow=sum(len(r) for r in row))
    groups = ", ".join(f"{d:g}" for d in distances)
    axes[0].set_title(
        f"real face | reconstruction | {per_distance} random codes at distance "
        f"{groups} x sqrt(d) from its code",
        fontsize=10,
    )
    fig.tight_layout()
    save_figure(fig, path)


def plot_attribute_edits(
    model: VAE,
    images: torch.Tensor,
    codes: torch.Tensor,
    directions: dict[str, torch.Tensor],
    strengths: list[float],
    path: Path,
) -> None:
    """Per attribute, per face: the real face, then its code plus each strength times the
    direction."""
    fig = Figure(
        figsize=(1.0 * (len(strengths) + 2), (1.05 * len(images) + 0.45) * len(directions))
    )
    originals = to_display(images)
    for ax, (name, direction) in zip(
        _column(fig, len(directions)), directions.items(), strict=True
    ):
        rows = [
            torch.cat(
                [
                    originals[i : i + 1],
                    torch.ones_like(originals[i : i + 1]),
                    decode_batches(model, apply_direction(code, direction, strengths)),
                ]
            )
            for i, code in enumerate(codes)
        ]
        _show(
            ax,
            torch.cat(rows),
            nrow=len(strengths) + 2,
            title=f"{name}: real | code + s x direction, s = "
            + ", ".join(f"{s:+g}" for s in strengths),
        )
    fig.tight_layout()
    save_figure(fig, path)


# --- figures of numbers ---------------------------------------------------------------------------


def plot_curves(histories: dict[str, list[dict]], path: Path) -> None:
    """Per-epoch train (solid) and test (dashed) curves of any runs' histories (run name -> rows of
    store.read_curves): objective, reconstruction NLL, KL, bits/dim and accuracy, each panel drawn
    when some run has it. The objective and the Gaussian NLL are negative once the decoder's sigma
    is small, so they get linear axes (a log axis would show nothing)."""
    panels = [
        (key, title)
        for key, title in CURVE_PANELS
        if any(
            f"{split}_{key}" in rows[0]
            for rows in histories.values()
            if rows
            for split in ("train", "test")
        )
    ]
    columns = 2 if len(panels) > 1 else 1
    fig = Figure(figsize=(5.5 * columns, 3.75 * math.ceil(len(panels) / columns)))
    axes = list(np.atleast_1d(fig.subplots(math.ceil(len(panels) / columns), columns)).flat)
    for ax, (key, title) in zip(axes, panels, strict=False):
        values = []
        for i, (name, rows) in enumerate(histories.items()):
            epochs = [r["epoch"] for r in rows]
            colour = MODEL_COLOURS.get(name, f"C{i}")
            for split, style in (("train", "-"), ("test", "--")):
                if rows and f"{split}_{key}" in rows[0]:
                    ys = [r[f"{split}_{key}"] for r in rows]
                    ax.plot(
                        epochs,
                        ys,
                        color=colour,
                        linestyle=style,
                        marker="." if len(rows) == 1 else None,
                        label=f"{name} {split}",
                    )
                    values += ys
        if key == "kl" and min(values) > 0:  # positive, with a large first-epoch transient
            ax.set_yscale("log")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    for ax in axes[len(panels) :]:  # an odd panel count leaves one cell empty
        fig.delaxes(ax)
    fig.tight_layout()
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
    fig.tight_layout()
    save_figure(fig, path)


def _beta_positions(*groups: dict) -> dict[float, int]:
    """Evenly spaced x positions for every beta present (betas like 1, 2, 5, 10 read best that
    way)."""
    betas = sorted({float(b) for group in groups for b in group})
    return {b: i for i, b in enumerate(betas)}


def plot_beta_tradeoff(
    shapes: dict[str, dict], cifar: dict[str, dict], autoencoder: dict, path: Path
) -> None:
    """Reconstruction error, MIG/DCI and KL against beta; the autoencoder as dotted lines."""
    where = _beta_positions(shapes, cifar)
    xs = lambda group: [where[float(b)] for b in group]  # noqa: E731
    fig = Figure(figsize=(15, 4.2))
    axes = fig.subplots(1, 3)

    ax = axes[0]
    ax.plot(
        xs(shapes),
        [m["recon_mse"] for m in shapes.values()],
        "o-",
        color="tab:purple",
        label="shapes",
    )
    ax.plot(
        xs(cifar),
        [m["recon_mse"] for m in cifar.values()],
        "s--",
        color="tab:blue",
        label="CIFAR-10",
    )
    ax.axhline(
        autoencoder["recon_mse"], color="tab:purple", linestyle=":", label="shapes autoencoder"
    )
    ax.set_yscale("log")
    ax.set_title("reconstruction MSE per pixel (test, lower is closer)", fontsize=10)

    ax = axes[1]
    for key, colour, title in (
        ("mig", "tab:red", "MIG"),
        ("dci", "tab:green", "DCI disentanglement"),
    ):
        ax.plot(
            xs(shapes),
            [m[key] for m in shapes.values()],
            "o-",
            color=colour,
            label=f"{title} (VAE)",
        )
        ax.axhline(autoencoder[key], color=colour, linestyle=":", label=f"{title} (autoencoder)")
    ax.set_ylim(0, 1)
    ax.set_title("disentanglement on shapes (1 = one factor per dim)", fontsize=10)

    ax = axes[2]
    for group, marker, colour, name in (
        (shapes, "o-", "tab:purple", "shapes"),
        (cifar, "s--", "tab:blue", "CIFAR-10"),
    ):
        ax.plot(xs(group), [m["kl"] for m in group.values()], marker, color=colour, label=name)
        for x, m in zip(xs(group), group.values(), strict=True):
            ax.annotate(
                f"{m['active_units']} active",
                (x, m["kl"]),
                textcoords="offset points",
                xytext=(4, 6),
                fontsize=8,
                color=colour,
            )
    ax.set_yscale("log")
    ax.set_title("KL to the prior (nats/image, test) and active units", fontsize=10)

    for ax in axes:
        ax.set_xticks(list(where.values()), [f"{b:g}" for b in where])
        ax.set_xlabel("beta")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


def plot_smoothness(entries: dict[str, dict], path: Path) -> None:
    """Per model (label -> metrics with path_ratios and path_mean_steps): the largest step over the
    mean step of each interpolation path, as a box plot and against the mean step."""
    fig = Figure(figsize=(12, 4.3))
    axes = fig.subplots(1, 2)
    labels = list(entries)
    axes[0].boxplot([entries[k]["path_ratios"] for k in labels])
    axes[0].set_xticks(range(1, len(labels) + 1), labels)
    axes[0].axhline(1.0, color="grey", linestyle=":")
    axes[0].set_ylabel("largest step / mean step along a path")
    axes[0].set_title("interpolation smoothness (1 = the image changes evenly)", fontsize=10)
    for label in labels:
        mean = np.asarray(entries[label]["path_mean_steps"])
        axes[1].scatter(
            mean, mean * np.asarray(entries[label]["path_ratios"]), s=12, alpha=0.7, label=label
        )
    top = max(
        max(np.asarray(e["path_mean_steps"]) * np.asarray(e["path_ratios"]))
        for e in entries.values()
    )
    axes[1].plot([0, top], [0, top], color="grey", linestyle=":", label="largest = mean (even)")
    axes[1].set_xlabel("mean step between consecutive frames (RMS pixel change)")
    axes[1].set_ylabel("largest step")
    axes[1].set_title("each point one path between the codes of two test images", fontsize=10)
    axes[1].legend(fontsize=8)
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)
