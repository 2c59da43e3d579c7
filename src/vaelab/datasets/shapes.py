"""Coloured shapes with six known factors, every combination once (like dSprites or 3D Shapes, but
coloured and 32x32 like CIFAR-10): the dataset on which disentanglement can be measured.

Rotation stays below 90 degrees: the square repeats itself every 90, the ellipse every 180 and the
triangle every 120, so every rotation level is visible on every shape (a circle would make rotation
invisible, which no model could encode). Shapes are drawn at 4x the size and shrunk with a box
filter, so edges are anti-aliased and small rotations still change pixels. The drawing is a pure
function of the factor values; the seed only decides which images form the held-out test split.
"""

from __future__ import annotations

import colorsys
import itertools
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ..errors import VaelabError
from . import write_dataset

IMAGE_SIZE = 32
SUPERSAMPLE = 4
SHAPE_KINDS = ("square", "ellipse", "triangle")
FACTORS = ("shape", "hue", "scale", "rotation", "x", "y")
FACTOR_LABELS = {"x": "x position", "y": "y position"}  # in figures; the others by name
CORNER_ANGLES = {"square": [45, 135, 225, 315], "triangle": [90, 210, 330]}  # degrees
SCALE_RANGE = (4.0, 7.0)  # circumradius in pixels
ROTATION_RANGE = (0.0, 75.0)  # degrees; the module docstring says why below 90
POSITION_MARGIN = 7.5  # pixels from the border to the centre: the largest radius + 0.5


def _outline(kind: str) -> np.ndarray:
    """Unit outline (vertices, 2) with circumradius 1, centred on the origin."""
    if kind == "ellipse":
        angles = np.linspace(0, 2 * np.pi, 64, endpoint=False)
        return np.stack([np.cos(angles), 0.5 * np.sin(angles)], axis=1)
    angles = np.deg2rad(CORNER_ANGLES[kind])
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)


def factor_values(levels: dict) -> dict[str, list]:
    """The value of every level of every factor, from the level counts of `datasets.<name>` (the
    schema makes each count a positive integer)."""
    shapes = list(levels["shapes"])
    if any(s not in SHAPE_KINDS for s in shapes) or len(set(shapes)) != len(shapes):
        raise VaelabError(
            f"params.yaml: datasets.{levels.get('name', 'shapes')}.shapes must be distinct names "
            f"from {', '.join(SHAPE_KINDS)}, got {shapes!r}; fix it in params.yaml"
        )
    low, high = POSITION_MARGIN, IMAGE_SIZE - POSITION_MARGIN

    def spread(lo: float, hi: float, n: int) -> list[float]:
        return np.linspace(lo, hi, n).tolist() if n > 1 else [(lo + hi) / 2]

    return {
        "shape": shapes,
        "hue": (np.arange(levels["hue"]) / levels["hue"]).tolist(),
        "scale": spread(*SCALE_RANGE, levels["scale"]),
        "rotation": spread(*ROTATION_RANGE, levels["rotation"]),
        "x": spread(low, high, levels["x"]),
        "y": spread(low, high, levels["y"]),
    }


def render_shape(
    kind: str, hue: float, scale: float, rotation: float, x: float, y: float
) -> np.ndarray:
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
    levels = itertools.product(*(range(len(values[f])) for f in FACTORS))
    return np.array(list(levels), dtype=np.int64)


def render_grid(values: dict[str, list], grid: np.ndarray) -> np.ndarray:
    """(N, 6) level indices -> (N, 32, 32, 3) uint8 images."""
    # No progress bar: the 15,552 images of params.yaml take 2-3 s.
    return np.stack(
        [render_shape(*(values[f][i] for f, i in zip(FACTORS, row, strict=True))) for row in grid]
    )


def fetch(config: dict, out_path: Path) -> str:
    """Write the full factor grid to `out_path`, `test_count` images held out at random (seeded)."""
    values = factor_values(config)
    grid = factor_grid(values)
    test_count = config["test_count"]  # an integer >= 1 (the schema)
    if test_count >= len(grid):
        raise VaelabError(
            f"params.yaml: datasets.{config['name']}.test_count must be an integer "
            f"between 1 and {len(grid) - 1} (the grid has {len(grid)} images), got "
            f"{test_count!r}; fix it in params.yaml"
        )
    images = render_grid(values, grid)
    order = np.random.default_rng(config["seed"]).permutation(len(grid))
    test, train = order[:test_count], order[test_count:]
    source = f"drawn: every combination of {', '.join(f'{len(values[f])} {f}' for f in FACTORS)}"
    write_dataset(
        out_path,
        images[train],
        images[test],
        source,
        factors_train=grid[train],
        factors_test=grid[test],
        factor_names=np.array(FACTORS),
        **{f"values_{f}": np.array(values[f]) for f in FACTORS},
    )
    return f"{source}: {len(train):,} training and {len(test):,} test images"
