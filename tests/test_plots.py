"""Every figure is checked by what it shows: each panel holds finite data, each image grid the
stated number of cells, and the PNG on disk decodes to the figure."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from vaelab import plots, study_plots
from vaelab.models import build_model

SIZE = 32  # image side of the tiny model and data


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model(
        {"arch": "conv", "latent_dim": 4, "widths": [4, 8], "image_size": SIZE, "channels": 3}
    ).eval()


@pytest.fixture(scope="module")
def images():
    """uint8 (12, 32, 32, 3) test images: never pure white, so white rows are grid padding."""
    return torch.randint(0, 250, (12, SIZE, SIZE, 3), generator=rng(1), dtype=torch.uint8)


def rng(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _finite(values) -> bool:
    values = np.asarray(values, dtype=float)
    return values.size > 0 and bool(np.isfinite(values).all())


def assert_every_axes_shows_data(*figs) -> None:
    """Each axes has at least one finite line, image, bar or scatter point."""
    for fig in figs:
        assert fig.axes, "the figure has no axes"
        for ax in fig.axes:
            heights = [p.get_height() for p in ax.patches if hasattr(p, "get_height")]
            shown = [line.get_xydata() for line in ax.lines] + [im.get_array() for im in ax.images]
            shown += [[height] for height in heights if height > 0]
            shown += [c.get_offsets() for c in ax.collections if len(c.get_offsets())]
            assert any(_finite(v) for v in shown), f"axes {ax.get_title()!r} shows no finite data"


def grid_shape(rows: int, columns: int, side: int = SIZE, padding: int = 2) -> tuple[int, int]:
    """(height, width) of make_grid's image of rows x columns cells."""
    return rows * (side + padding) + padding, columns * (side + padding) + padding


def assert_grid(ax, rows: int, columns: int) -> None:
    shown = ax.images[0].get_array()
    assert shown.shape[:2] == grid_shape(rows, columns)
    assert _finite(shown)


def tiles_in_png(path) -> tuple[int, int]:
    """(rows, columns) of cells in a saved torchvision grid, counted between its white padding."""
    white = (np.asarray(Image.open(path).convert("RGB")) == 255).all(axis=2)

    def runs(is_padding: np.ndarray) -> int:
        content = ~is_padding
        return int(content[0]) + int(np.sum(content[1:] & ~content[:-1]))

    return runs(white.all(axis=1)), runs(white.all(axis=0))


def test_saved_grids_have_their_cells_and_no_leftover_files(model, tmp_path):
    z = torch.randn(16, 4, generator=rng())
    plots.save_samples(model, z, tmp_path / "samples.png")
    assert tiles_in_png(tmp_path / "samples.png") == (4, 4)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["samples.png"]  # no temporary file left
    array = plots.sample_grid_image(model, z)
    assert array.dtype == np.uint8 and array.shape == (*grid_shape(4, 4), 3)
    # the prior interpolation: a row per pair, a column per step
    plots.plot_prior_interpolation(model, rng(), tmp_path / "p.png", rows=3, steps=7)
    assert tiles_in_png(tmp_path / "p.png") == (3, 7)


def test_curves_show_a_negative_objective_linearly_and_a_classifiers_accuracy(tmp_path, figures):
    vae = [
        dict(epoch=e, train_loss=-1000.0 * e, test_loss=-1100.0 * e, test_bpd=7.0 - 0.1 * e)
        | dict(train_recon=-1200.0 * e, test_recon=-1300.0 * e, train_kl=50.0 + e, test_kl=52.0 + e)
        for e in (1, 2, 3)
    ]
    autoencoder = [
        {"epoch": e, "train_recon": -900.0 * e, "test_recon": -950.0 * e, "test_mse": 0.01}
        for e in (1, 2, 3)
    ]
    plots.plot_curves({"conv": vae, "shapes_ae": autoencoder}, tmp_path / "curves.png")
    fig = figures["curves.png"]
    assert_every_axes_shows_data(fig)
    assert len(fig.axes) == 4  # objective, recon, KL, bits/dim; no accuracy panel without accuracy
    objective = next(ax for ax in fig.axes if ax.get_title().startswith("training objective"))
    assert objective.get_yscale() == "linear"
    low, high = objective.get_ylim()
    for ys in (line.get_ydata() for line in objective.lines):  # visible, not clipped
        assert _finite(ys) and low <= min(ys) and max(ys) < 0 and max(ys) <= high
    recon = next(ax for ax in fig.axes if ax.get_title().startswith("reconstruction"))
    assert len(recon.lines) == 4  # train and test of both runs
    assert Image.open(tmp_path / "curves.png").size[0] > 100
    classifier = [
        {"epoch": e, "train_loss": 2.0 / e, "train_accuracy": 0.3 * e, "test_accuracy": 0.25 * e}
        for e in (1, 2, 3)
    ]
    plots.plot_curves({"evaluator": classifier}, tmp_path / "curves.png")
    fig = figures["curves.png"]
    assert_every_axes_shows_data(fig)
    assert sorted(ax.get_title().split(" ")[0] for ax in fig.axes) == ["classification", "training"]


@pytest.mark.parametrize(
    ("labels", "classes", "pairs", "steps"),
    [(torch.tensor([0, 1, 2] * 4), ["cat", "dog", "ship"], 3, 5), (None, None, 4, 3)],
)
def test_image_interpolation_rows_are_two_different_images_around_the_steps(
    model, images, tmp_path, figures, labels, classes, pairs, steps
):
    """With labels, the two images are of different classes."""
    plots.plot_image_interpolation(
        model, images, labels, classes, rng(), tmp_path / "i.png", pairs=pairs, steps=steps
    )
    fig = figures["i.png"]
    assert_every_axes_shows_data(fig)
    assert len(fig.axes) == pairs
    for ax in fig.axes:
        assert_grid(ax, 1, steps + 2)
        first, last = ax.get_ylabel().split("\n-> ")
        assert first != last and (classes is None or {first, last} <= set(classes))


def test_traversals_have_one_labelled_row_per_dim(model, images, tmp_path, figures):
    labels = ["z2 x position", "z0 hue", "z3 no factor"]
    path = tmp_path / "t.png"
    plots.plot_traversals(model, images[0], [2, 0, 3], labels, path, span=2.0, steps=6, title="T")
    fig = figures["t.png"]
    assert_every_axes_shows_data(fig)
    assert [ax.get_ylabel() for ax in fig.axes] == labels and fig.axes[0].get_title() == "T"
    for ax in fig.axes:
        assert_grid(ax, 1, 6)
    # The swept dim changes the decoded image: the row is not one image repeated.
    row = fig.axes[0].images[0].get_array()
    assert not np.allclose(row[:, 2 : SIZE + 2], row[:, -(SIZE + 2) : -2])


def test_reconstructions_and_side_by_side(model, images, tmp_path, figures):
    plots.plot_reconstructions({"a": model, "b": model}, images[:6], tmp_path / "r.png")
    z = torch.randn(16, 4, generator=rng())
    kl_per_dim = {"conv": [0.5, 2.0, 0.1, 1.0], "conv_beta5": [0.2, 1.0, 0.05, 0.3]}
    study_plots.plot_side_by_side(
        ("left", model, z), ("right", model, z), images[:8], tmp_path / "s.png", kl_per_dim
    )
    reconstructions, side = figures.values()
    assert_every_axes_shows_data(*figures.values())
    assert len(reconstructions.axes) == 3
    for ax in reconstructions.axes:
        assert_grid(ax, 1, 6)
    # 4x4 samples, a blank row, then twice a row of 4 originals over a row of their reconstructions
    assert_grid(side.axes[0], 4 + 1 + 2 * 2, 4)
    assert len(side.axes[2].patches) == 8  # one KL bar per latent dim per model


def test_labelled_samples(tmp_path, figures):
    samples = torch.rand(8, 3, SIZE, SIZE, generator=rng())
    logits = torch.randn(8, 3, generator=rng(1))
    study_plots.plot_labelled_samples(
        samples, logits, ["cat", "dog", "ship"], tmp_path / "l.png", "Samples", columns=3
    )
    labelled = figures["l.png"]
    assert_every_axes_shows_data(labelled)
    assert len(labelled.axes) == 8  # the empty cell of the last row is removed
    assert all(ax.get_title().split(" ")[0] in ("cat", "dog", "ship") for ax in labelled.axes)


def test_beta_study_figures(model, images, tmp_path, figures):
    entries = {
        "autoencoder": {"path_ratios": [3.0, 4.0], "path_mean_steps": [0.02, 0.03]},
        "beta = 1": {"path_ratios": [1.5, 1.2], "path_mean_steps": [0.01, 0.02]},
    }
    study_plots.plot_smoothness(entries, tmp_path / "s.png")
    models = {"autoencoder": model, "beta = 1": model}
    study_plots.plot_autoencoder_vs_vae(models, images[:2], tmp_path / "v.png", samples=5, steps=4)
    smoothness, versus = figures.values()
    assert_every_axes_shows_data(smoothness, versus)
    assert len(smoothness.axes) == 2
    assert_grid(versus.axes[0], 1, 5)
    assert_grid(versus.axes[1], 1, 4 + 2)
