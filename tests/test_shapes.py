import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from vaelab.errors import VaelabError
from vaelab.params import load_params
from vaelab.shapes import FACTORS, factor_grid, factor_values, load_shapes, make_shapes, render_shape
from vaelab.shapes_evaluate import evaluation_settings
from vaelab.shapes_train import shapes_betas, training_section

ROOT = Path(__file__).resolve().parents[1]
TINY = {"shapes": ["square", "ellipse", "triangle"], "hue": 3, "scale": 2, "rotation": 2, "x": 3, "y": 2}
BASE = {"kind": "triangle", "hue": 0.0, "scale": 6.0, "rotation": 30.0, "x": 16.0, "y": 16.0}


def test_the_dataset_holds_every_factor_combination_once(tmp_path):
    sizes = make_shapes(tmp_path / "shapes.npz", TINY, test_count=20, seed=0)
    expected = 3 * 3 * 2 * 2 * 3 * 2
    assert sizes == {"train": expected - 20, "test": 20}
    data = load_shapes(tmp_path / "shapes.npz")
    assert data["factor_names"] == list(FACTORS)
    assert data["x_train"].shape == (expected - 20, 32, 32, 3) and data["x_test"].shape == (20, 32, 32, 3)
    assert data["x_train"].dtype.is_floating_point is False
    everything = np.concatenate([data["factors_train"], data["factors_test"]])
    assert len({tuple(row) for row in everything}) == expected  # every combination, none twice
    for k, name in enumerate(FACTORS):
        assert set(everything[:, k]) == set(range(len(data["factor_values"][name])))
    assert data["factor_values"]["shape"] == TINY["shapes"]
    assert data["factor_values"]["rotation"] == [0.0, 75.0]


def test_generation_is_deterministic_and_the_seed_only_moves_the_split(tmp_path):
    make_shapes(tmp_path / "a.npz", TINY, 20, seed=3)
    make_shapes(tmp_path / "b.npz", TINY, 20, seed=3)
    make_shapes(tmp_path / "c.npz", TINY, 20, seed=4)
    a, b, c = (load_shapes(tmp_path / f"{n}.npz") for n in "abc")
    assert np.array_equal(a["x_train"].numpy(), b["x_train"].numpy())
    assert np.array_equal(a["factors_test"], b["factors_test"])
    assert not np.array_equal(a["factors_test"], c["factors_test"])
    # The same factors always give the same image, whichever split it landed in.
    images_a = {tuple(f): x.tobytes() for f, x in zip(a["factors_train"], a["x_train"].numpy())}
    for f, x in zip(c["factors_train"], c["x_train"].numpy()):
        if tuple(f) in images_a:
            assert images_a[tuple(f)] == x.tobytes()


@pytest.mark.parametrize("factor, other", [("kind", "square"), ("kind", "ellipse"), ("hue", 0.5), ("scale", 4.0),
                                           ("rotation", 45.0), ("x", 12.0), ("y", 20.0)])
def test_changing_one_factor_changes_the_image(factor, other):
    before = render_shape(**BASE)
    after = render_shape(**{**BASE, factor: other})
    assert before.shape == (32, 32, 3) and before.dtype == np.uint8
    assert np.abs(before.astype(int) - after.astype(int)).sum() > 100


@pytest.mark.parametrize("kind", ["square", "ellipse", "triangle"])
def test_every_rotation_level_is_visible_on_every_shape(kind):
    values = factor_values({**TINY, "rotation": 6})["rotation"]
    images = [render_shape(kind, 0.3, 7.0, r, 16.0, 16.0).astype(int) for r in values]
    for i in range(len(images)):
        for j in range(i + 1, len(images)):
            assert np.abs(images[i] - images[j]).sum() > 100, (kind, values[i], values[j])


def test_the_shape_sits_at_its_position_in_its_colour():
    image = render_shape("square", 1 / 3, 5.0, 0.0, 9.0, 22.0)  # hue 1/3 is pure green
    ys, xs = np.nonzero(image.sum(axis=2) > 0)
    assert abs(xs.mean() + 0.5 - 9.0) < 0.6 and abs(ys.mean() + 0.5 - 22.0) < 0.6
    inside = image[22, 9]
    assert inside[1] == 255 and inside[0] == 0 and inside[2] == 0
    assert image[0, 0].sum() == 0  # plain black background


def _extent(image: np.ndarray) -> tuple[int, int]:
    ys, xs = np.nonzero(image.sum(axis=2))
    return xs.max() - xs.min(), ys.max() - ys.min()


def test_the_largest_shape_at_the_edge_is_not_cut():
    values = factor_values({**TINY, "scale": 4, "x": 6, "y": 6})
    size = max(values["scale"])
    for kind in ("square", "ellipse", "triangle"):
        for rotation in (0.0, 45.0):
            centred = _extent(render_shape(kind, 0.0, size, rotation, 16.0, 16.0))
            for x, y in ((min(values["x"]), max(values["y"])), (max(values["x"]), min(values["y"]))):
                at_edge = _extent(render_shape(kind, 0.0, size, rotation, x, y))
                assert abs(at_edge[0] - centred[0]) <= 1 and abs(at_edge[1] - centred[1]) <= 1, (kind, rotation)


@pytest.mark.parametrize("levels, test_count, message", [
    ({**TINY, "shapes": ["square", "circle"]}, 5, r"shapes.data.shapes must be distinct names"),
    ({**TINY, "hue": 0}, 5, r"shapes.data.hue must be a positive integer"),
    ({**TINY, "x": 2.5}, 5, r"shapes.data.x must be a positive integer"),
    (TINY, 216, r"test_count must be an integer between 1 and 215"),
])
def test_bad_generator_params_fail_in_one_line(tmp_path, levels, test_count, message):
    with pytest.raises(VaelabError, match=message) as error:
        make_shapes(tmp_path / "s.npz", levels, test_count, seed=0)
    assert "\n" not in str(error.value)
    assert not (tmp_path / "s.npz").exists()


def test_a_missing_dataset_names_the_stage(tmp_path):
    with pytest.raises(VaelabError, match="run the make_shapes stage"):
        load_shapes(tmp_path / "nothing.npz")


def test_the_project_shapes_params_are_valid_and_sweep_the_four_betas():
    params = load_params(ROOT / "params.yaml")
    assert shapes_betas(params) == [1, 2, 5, 10]
    section = training_section(params)
    assert section["model"]["latent_dim"] >= 2 and section["epochs"] >= 1
    settings = evaluation_settings(params)
    assert params["shapes"]["mlflow_experiment"] == "shapes-beta"
    data = params["shapes"]["data"]
    grid = factor_grid(factor_values(data))
    assert len(grid) == math.prod([len(data["shapes"])] + [data[f] for f in FACTORS[1:]])
    assert len(grid) - data["test_count"] >= settings["code_count"]  # enough training codes for MIG/DCI


@pytest.mark.parametrize("edit, message", [
    (lambda s: s.update(betas=[1, 1.0]), r"shapes.betas holds the same beta twice"),
    (lambda s: s.update(betas=[1, -2]), r"shapes.betas must hold numbers >= 0"),
    (lambda s: s["train"].update(lr="fast"), r"shapes.train.lr must be a number"),
    (lambda s: s["train"]["model"].update(latent_dim=1), r"shapes.train.model.latent_dim must be >= 2"),
])
def test_bad_sweep_params_name_the_key(tmp_path, edit, message):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    edit(params["shapes"])
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    loaded = load_params(tmp_path / "params.yaml")
    with pytest.raises(VaelabError, match=message):
        shapes_betas(loaded)
        training_section(loaded)
