"""How long the beta study on shapes will take here (a benchmark, not a test).

    python benchmarks/shapes_throughput.py [--images 3000]

Renders the shapes dataset of params.yaml in memory, trains the shapes model of `shapes.train`
for one epoch on `--images` of it with `train.fit` (the loop the stages use, on `shapes.threads`
threads), measures one evaluation (`evaluate_shapes_model`, untrained codes), and prints the
images/second and the expected time of each stage at the params' dataset size and epochs.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from vaelab.models import build_model
from vaelab.params import load_params
from vaelab.shapes import FACTOR_LABELS, load_shapes, make_shapes
from vaelab.shapes_evaluate import evaluate_shapes_model, evaluation_settings
from vaelab.shapes_train import limit_threads, shapes_betas, training_section
from vaelab.train import fit

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--images", type=int, default=3000, help="training images for the timed epoch")

if __name__ == "__main__":
    args = parser.parse_args()
    params = load_params("params.yaml")
    limit_threads(params)
    data = params["shapes"]["data"]
    cpu = torch.device("cpu")
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        make_shapes(Path(tmp) / "shapes.npz", data, data["test_count"], params["seed"])
        generate = time.perf_counter() - started
        dataset = load_shapes(Path(tmp) / "shapes.npz")
        dataset["factor_names"] = [FACTOR_LABELS[n] for n in dataset["factor_names"]]
        section = {**training_section(params), "beta": 1.0, "epochs": 1}
        torch.manual_seed(0)
        model = build_model(section["model"])
        started = time.perf_counter()
        history = fit(model, section, dataset["x_train"][:args.images], dataset["x_test"], cpu,
                      Path(tmp) / "state.pt", params["seed"])
        test_seconds = time.perf_counter() - started - history[0]["epoch_seconds"]
        started = time.perf_counter()
        evaluate_shapes_model(model, False, dataset, evaluation_settings(params), cpu, params["seed"])
        evaluate = time.perf_counter() - started
    rate = history[0]["images_per_second"]
    epochs, train_images = training_section(params)["epochs"], len(dataset["x_train"])
    per_model = epochs * (train_images / rate + test_seconds)
    models = len(shapes_betas(params)) + 1  # and the autoencoder
    print(f"threads {torch.get_num_threads()}: training {rate:,.0f} img/s; test pass {test_seconds:.1f} s per epoch; "
          f"make_shapes {generate:.1f} s; one evaluation {evaluate:.1f} s")
    print(f"expected (plus a few seconds of start-up per stage): {per_model:.0f} s per training "
          f"({epochs} epochs x {train_images:,} images), {models} trainings {models * per_model / 60:.1f} min, "
          f"{models} evaluations {models * evaluate:.0f} s")
