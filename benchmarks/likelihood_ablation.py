"""Which pixel likelihood: the same VAE trained with each, on the same budget (a benchmark).

    python benchmarks/likelihood_ablation.py [RUN] [--epochs 2] [--train-images 20000]
        [--arm gaussian] [--arm logistic_mixture:1] [--arm logistic_mixture:3]

Each arm is the run of params.yaml (default conv) with only `model.likelihood` replaced, trained by
train.fit from the same seed on the first N training images and scored on 2,000 test images. Every
arm is an MLflow run of the experiment `vaelab-likelihood-ablation` (params, per-epoch metrics),
and the table (test bits/dim, MSE of the decoder mean, KL, images/s, minutes) is printed as
Markdown with the CPU it ran on. The same comparison at full scale is a DVC experiment:
`dvc exp run -S runs.conv.model.likelihood.kind=gaussian -S runs.conv.model.likelihood.sigma=0.1`.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import mlflow
import torch

from throughput import cpu_name  # noqa: I001  (benchmarks/ is the script's own folder)
from vaelab import datasets, tracking
from vaelab.config import dataset_config, load_params, run_config
from vaelab.models import build_model
from vaelab.runtime import resolve_device, seed_everything
from vaelab.train import fit


def likelihood(arm: str) -> dict:
    kind, _, mixtures = arm.partition(":")
    if kind == "logistic_mixture":
        return {"kind": kind, "mixtures": int(mixtures or 1)}
    return {"kind": kind, "sigma": 0.1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", nargs="?", default="conv")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--train-images", type=int, default=20_000)
    parser.add_argument("--arm", action="append", help="kind[:mixtures]; repeatable")
    args = parser.parse_args()
    arms = args.arm or ["gaussian", "logistic_mixture:1", "logistic_mixture:3"]
    params = load_params("params.yaml")
    device = resolve_device(params["device"])
    base = run_config(params, args.run)
    data = datasets.load(base["dataset"], dataset_config(params, base["dataset"]))
    data = {"x_train": data["x_train"][: args.train_images], "x_test": data["x_test"][:2000]}
    shape = {"image_size": data["x_train"].shape[1], "channels": data["x_train"].shape[3]}

    tracking.use_repository_store()
    mlflow.set_experiment("vaelab-likelihood-ablation")
    rows = []
    for arm in arms:
        run = {
            **base,
            "epochs": args.epochs,
            "model": {**base["model"], "likelihood": likelihood(arm)},
        }
        seed_everything(run["seed"])
        model = build_model({**run["model"], **shape})
        started = time.perf_counter()
        with mlflow.start_run(run_name=f"{args.run}-{arm}"), tempfile.TemporaryDirectory() as tmp:
            mlflow.log_params({k: str(v) for k, v in tracking.flatten("", run).items()})
            mlflow.log_params({"train_images": len(data["x_train"]), "test_images": 2000})
            history = fit(
                model,
                run,
                data,
                device,
                Path(tmp) / "state.pt",
                on_epoch=lambda epoch, row, _: mlflow.log_metrics(
                    {k: v for k, v in row.items() if k != "epoch"}, step=epoch
                ),
            )
        last = history[-1]
        rows.append(
            f"| {arm} | {last['test_bpd']:.3f} | {last['test_mse']:.4f} | {last['test_kl']:.1f} | "
            f"{last['images_per_second']:.0f} | {(time.perf_counter() - started) / 60:.1f} |"
        )
    print(
        f"\n{cpu_name()}, {torch.get_num_threads()} threads; run {args.run}, {args.epochs} epochs "
        f"on {len(data['x_train']):,} training images, scored on 2,000 test images\n"
    )
    print("| likelihood | test bits/dim | MSE (decoder mean) | KL (nats) | train img/s | minutes |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
