"""Coloured shapes with known factors: the dataset on which disentanglement can be measured.

Every image is one shape on a black background, drawn from six independent ground-truth factors,
each a small discrete set, and the dataset holds every combination once (like dSprites or 3D
Shapes, but coloured and 32x32 like CIFAR-10):

* shape: square, ellipse (axes 1 : 0.5), triangle (equilateral);
* hue: evenly spaced around the colour wheel, full saturation and value;
* scale: the radius of the shape's circumscribed circle, 4 to 7 pixels;
* rotation: 0 to 75 degrees. Kept below 90 degrees because the square repeats itself every 90,
  the ellipse every 180 and the triangle every 120, so every rotation level is visible on every
  shape (a circle would make rotation invisible, which no model could encode);
* x, y: the centre, kept 7 pixels from the border so the largest shape is never cut.

Shapes are drawn with PIL at 4x the size and shrunk with a box filter, so edges are anti-aliased
and small rotations still change pixels. The drawing is a pure function of the factor values; the
seed only decides which images form the held-out test split.
"""

from __future__ import annotations

import colorsys
import itertools
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .data import write_npz_atomically
from .errors import VaelabError

IMAGE_SIZE = 32
SUPERSAMPLE = 4
SHAPE_KINDS = ("square", "ellipse", "triangle")
FACTORS = ("shape", "hue", "scale", "rotation", "x", "y")
FACTOR_LABELS = {"shape": "shape", "hue": "hue", "scale": "scale", "rotation": "rotation",
                 "x": "x position", "y": "y position"}
SCALE_RANGE = (4.0, 7.0)       # circumradius in pixels
ROTATION_RANGE = (0.0, 75.0)   # degrees; see the module docstring for why below 90
POSITION_MARGIN = 7.5          # pixels from the border to the centre: the largest radius + 0.5


def _outline(kind: str) -> np.ndarray:
    """Unit outline (vertices, 2) with circumradius 1, centred on the origin."""
    if kind == "square":
        angles = np.deg2rad([45, 135, 225, 315])
        return np.stack([np.cos(angles), np.sin(angles)], axis=1)
    if kind == "ellipse":
        angles = np.linspace(0, 2 * np.pi, 64, endpoint=False)
        return np.stack([np.cos(angles), 0.5 * np.sin(angles)], axis=1)
    if kind == "triangle":
        angles = np.deg2rad([90, 210, 330])
        return np.stack([np.cos(angles), np.sin(angles)], axis=1)
    raise VaelabError(f"unknown shape {kind!r}; choose from {', '.join(SHAPE_KINDS)}")


def factor_values(levels: dict) -> dict[str, list]:
    """The value of every level of every factor, from the level counts in params (shapes.data)."""
    shapes = list(levels["shapes"])
    unknown = [s for s in shapes if s not in SHAPE_KINDS]
    if unknown or not shapes or len(set(shapes)) != len(shapes):
        raise VaelabError(f"params.yaml: shapes.data.shapes must be distinct names from {', '.join(SHAPE_KINDS)}, "
                          f"got {shapes!r}; fix it in params.yaml")
    counts = {}
    for factor in FACTORS[1:]:
        count = levels.get(factor)
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise VaelabError(f"params.yaml: shapes.data.{factor} must be a positive integer (the number of "
                              f"levels), got {count!r}; fix it in params.yaml")
        counts[factor] = count
    low, high = POSITION_MARGIN, IMAGE_SIZE - POSITION_MARGIN

    def spread(lo: float, hi: float, n: int) -> list[float]:
        return np.linspace(lo, hi, n).tolist() if n > 1 else [(lo + hi) / 2]

    return {
        "shape": shapes,
        "hue": (np.arange(counts["hue"]) / counts["hue"]).tolist(),
        "scale": spread(*SCALE_RANGE, counts["scale"]),
        "rotation": spread(*ROTATION_RANGE, counts["rotation"]),
        "x": spread(low, high, counts["x"]),
        "y": spread(low, high, counts["y"]),
    }


def render_shape(kind: str, hue: float, scale: float, rotation: float, x: float, y: float) -> np.ndarray:
    """One image, uint8 (32, 32, 3): the shape filled with the hue's colour on black."""
    theta = np.deg2rad(rotation)
    turn = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    points = (_outline(kind) @ turn.T * scale + [x, y]) * SUPERSAMPLE
    colour = tuple(round(255 * c) for c in colorsys.hsv_to_rgb(hue, 1.0, 1.0))
    big = Image.new("RGB", (IMAGE_SIZE * SUPERSAMPLE,) * 2)
    ImageDraw.Draw(big).polygon([tuple(p) for p in points], fill=colour)
    return np.asarray(big.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BOX), dtype=np.uint8)


def factor_grid(values: dict[str, list]) -> np.ndarray:
    """Every combination of level indices, (N, 6) int64, in a fixed order (last factor fastest)."""
    return np.array(list(itertools.product(*(range(len(values[f])) for f in FACTORS))), dtype=np.int64)


def render_grid(values: dict[str, list], grid: np.ndarray) -> np.ndarray:
    """(N, 6) level indices -> (N, 32, 32, 3) uint8 images."""
    return np.stack([render_shape(*(values[f][i] for f, i in zip(FACTORS, row))) for row in grid])


def make_shapes(out_path: Path, levels: dict, test_count: int, seed: int) -> dict[str, int]:
    """Write the full factor grid to `out_path` (.npz: x_train, factors_train, x_test, factors_test,
    factor_names, values_<factor>), `test_count` images held out at random. Returns the split sizes."""
    values = factor_values(levels)
    grid = factor_grid(values)
    if isinstance(test_count, bool) or not isinstance(test_count, int) or not 0 < test_count < len(grid):
        raise VaelabError(f"params.yaml: shapes.data.test_count must be an integer between 1 and {len(grid) - 1} "
                          f"(the grid has {len(grid)} images), got {test_count!r}; fix it in params.yaml")
    images = render_grid(values, grid)
    order = np.random.default_rng(seed).permutation(len(grid))
    test, train = order[:test_count], order[test_count:]
    write_npz_atomically(out_path, x_train=images[train], factors_train=grid[train],
                         x_test=images[test], factors_test=grid[test], factor_names=np.array(FACTORS),
                         **{f"values_{f}": np.array(values[f]) for f in FACTORS})
    return {"train": len(train), "test": len(test)}


def load_shapes(path: Path) -> dict:
    """The generated dataset: uint8 NHWC torch tensors, factor indices, factor names and values."""
    import torch

    if not Path(path).is_file():
        raise VaelabError(f"{path} is missing; run the make_shapes stage first (dvc repro make_shapes)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
        names = [str(n) for n in arrays["factor_names"]]
        dataset = {"factor_names": names,
                   "factor_values": {n: arrays[f"values_{n}"].tolist() for n in names}}
        for split in ("train", "test"):
            dataset[f"x_{split}"] = torch.from_numpy(arrays[f"x_{split}"])
            dataset[f"factors_{split}"] = arrays[f"factors_{split}"]
    except (KeyError, ValueError, OSError, zlib.error) as e:
        raise VaelabError(f"{path} is unreadable ({e}); delete it and rerun make_shapes") from None
    return dataset
