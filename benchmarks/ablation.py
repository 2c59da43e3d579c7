"""Which pixel likelihood, which architecture: one VAE trained per arm on the same budget (a benchmark).

    python benchmarks/ablation.py {likelihood,architecture} [RUN] [--epochs 2]
        [--train-images 20000] [--seed N] [--arm NAME ...]

Each arm is the run of params.yaml (default conv) with only the keys of `model` that the arm
names replaced (`LIKELIHOOD_ARMS`, `ARCHITECTURE_ARMS`), trained by train.fit from the same seed
on the first N training images. Scored on 2,000 test images: bits/dim on the 8-bit grid, the MSE
of the decoder mean (what every figure shows) and the KL; and by the committed judge
(models/evaluator, as in sample_quality): fd_clf, precision and recall of 2,000 prior samples
against 2,000 other real test images. Every arm is an MLflow run of the experiment
`vaelab-<study>-ablation` (params, per-epoch metrics, the scores), and the table, with minutes
and fd_clf per CPU-minute's worth of training, is printed as Markdown with the CPU it ran on.
The same comparison at full scale is a DVC experiment, e.g.
`dvc exp run -S runs.conv.model.widths=[64,128,256,512]`.
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
from vaelab.compare import Judge, load_run_model
from vaelab.config import dataset_config, load_params, run_config
from vaelab.metrics.sample_quality import sample_codes
from vaelab.models import build_model, decode_batches
from vaelab.runtime import resolve_device, seed_everything
from vaelab.train import fit

SCORED = 2000  # test images scored, and prior samples judged against as many other test images
LIKELIHOOD_ARMS = {
    "gaussian": {"likelihood": {"kind": "gaussian", "sigma": 0.1, "mixtures": 1}},
    "logistic_mixture:1": {"likelihood": {"kind": "logistic_mixture", "sigma": 0.1, "mixtures": 1}},
    "logistic_mixture:3": {"likelihood": {"kind": "logistic_mixture", "sigma": 0.1, "mixtures": 3}},
}
# Width, depth and latent trade-offs the conv builder takes as config (widths: one stride-2 stage
# each, so their count sets the side of the code's feature map). Every arm names its widths, so the
# table means the same whatever params.yaml's default.
ARCHITECTURE_ARMS = {
    "conv 32-256, z128": {"widths": [32, 64, 128, 256]},
    "conv 16-128, z128": {"widths": [16, 32, 64, 128]},
    "conv 64-512, z128": {"widths": [64, 128, 256, 512]},
    "conv 32-128 (4x4 code map), z128": {"widths": [32, 64, 128]},
    "conv 48-192 (4x4 code map), z128": {"widths": [48, 96, 192]},
    "conv 32-64 (8x8 code map), z128": {"widths": [32, 64]},
    "conv 64-128 (8x8 code map), z128": {"widths": [64, 128]},
    "conv 32 (16x16 code map), z128": {"widths": [32]},
    "conv 32-256, z64": {"widths": [32, 64, 128, 256], "latent_dim": 64},
    "conv 32-256, z256": {"widths": [32, 64, 128, 256], "latent_dim": 256},
    "fc 1024-512, z128": {"arch": "fc", "hidden": [1024, 512], "latent_dim": 128},
}
STUDIES = {"likelihood": LIKELIHOOD_ARMS, "architecture": ARCHITECTURE_ARMS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", choices=sorted(STUDIES))
    parser.add_argument("run", nargs="?", default="conv")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--train-images", type=int, default=20_000)
    parser.add_argument("--seed", type=int, help="replaces the run's seed (a second seed's spread)")
    parser.add_argument("--arm", action="append", help="an arm's name; repeatable (default: all)")
    args = parser.parse_args()
    arms = STUDIES[args.study]
    unknown = set(args.arm or []) - set(arms)
    if unknown:
        parser.error(f"unknown arm(s) {sorted(unknown)}; choose from {sorted(arms)}")
    params = load_params("params.yaml")
    device = resolve_device(params["device"])
    base = run_config(params, args.run)
    data = datasets.load(base["dataset"], dataset_config(params, base["dataset"]))
    x_test = data["x_test"]
    judge = Judge(
        load_run_model("evaluator", device),
        x_test[SCORED : 2 * SCORED],
        data["x_train"][-SCORED:],  # the judge's own held-out training images calibrate it
        data["y_train"][-SCORED:],
        data["classes"],
        device,
        500,
    )
    data = {"x_train": data["x_train"][: args.train_images], "x_test": x_test[:SCORED]}
    shape = {"image_size": data["x_train"].shape[1], "channels": data["x_train"].shape[3]}

    tracking.use_repository_store()
    mlflow.set_experiment(f"vaelab-{args.study}-ablation")
    rows = []
    for name in args.arm or list(arms):
        run = {**base, "epochs": args.epochs, "model": {**base["model"], **arms[name]}}
        run["seed"] = base["seed"] if args.seed is None else args.seed
        seed_everything(run["seed"])
        model = build_model({**run["model"], **shape})
        started = time.perf_counter()
        title = f"{args.run} {name} seed {run['seed']}"
        with mlflow.start_run(run_name=title), tempfile.TemporaryDirectory() as tmp:
            mlflow.log_params({k: str(v) for k, v in tracking.flatten("", run).items()})
            mlflow.log_params({"train_images": len(data["x_train"]), "test_images": SCORED})
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
            minutes = (time.perf_counter() - started) / 60
            prior = sample_codes("prior", SCORED, model.latent_dim, run["seed"])
            scores = judge(decode_batches(model, prior, device))
            mlflow.log_metrics(
                {k: scores[k] for k in ("fd_clf", "precision", "recall")} | {"minutes": minutes}
            )
        last = history[-1]
        parameters = sum(p.numel() for p in model.parameters()) / 1e6
        rows.append(
            f"| {name} | {parameters:.2f} M | {last['test_bpd']:.3f} | {last['test_mse']:.4f} | "
            f"{last['test_kl']:.1f} | {scores['fd_clf']:.0f} | {scores['precision']:.3f} | "
            f"{scores['recall']:.3f} | {last['images_per_second']:.0f} | {minutes:.1f} |"
        )
    print(
        f"\n{cpu_name()}, {torch.get_num_threads()} threads; run {args.run} (seed {run['seed']}), "
        f"{args.epochs} epochs "
        f"on {len(data['x_train']):,} training images; bits/dim, MSE and KL on {SCORED:,} test "
        f"images; fd_clf, precision and recall of {SCORED:,} prior samples against {SCORED:,} "
        "other test images (classifier-space FD, not FID)\n"
    )
    print(
        "| arm | parameters | test bits/dim | MSE (decoder mean) | KL (nats) | fd_clf | precision "
        "| recall | train img/s | minutes |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
