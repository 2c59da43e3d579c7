"""How long the shapes beta study must train before its disentanglement scores stop moving
(issue 27's pilot; a benchmark, not a DVC stage).

    python benchmarks/beta_pilot.py [--beta B ...] [--epochs E ...] [--seeds S ...] [--batch-size N]
        [--kl-warmup F]

Each arm (beta, epochs) is the shapes sweep of params.yaml (`sweep_templates.shapes`) with only
beta, epochs, batch size, KL warm-up and seeds replaced, trained and measured by the project's own stages
(`train_stage`, `evaluate_stage`: the seeds side by side, one thread each) in a scratch folder,
benchmarks/.pilot/. Every run is an MLflow run of the shapes experiment named
`pilot_b<beta>_e<epochs>[_w<warm-up>]/s<seed>`
(training curves, then its final scores); every measured seed is a line of
benchmarks/results/beta_pilot.jsonl, and an arm whose seeds are all there is skipped, so a stopped
pilot restarts where it stopped. The Markdown table of every recorded line is printed at the end,
with the CPU it ran on.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

from throughput import cpu_name  # noqa: I001  (benchmarks/ is the script's own folder)
from vaelab import store
from vaelab.betas import convergence
from vaelab.config import check_params
from vaelab.evaluate import evaluate_stage
from vaelab.sweep import SCORES, differs, spread
from vaelab.train import train_stage

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SCRATCH = HERE / ".pilot"
RESULTS_FILE = HERE / "results" / "beta_pilot.jsonl"
FACTORS = ("shape", "hue", "scale", "rotation", "x position", "y position")


def record_of(params: dict, sweep: str, seed: int) -> dict:
    """One measured seed: its steps and last-fifth test-MSE change as the beta study counts them
    (betas.convergence), its final numbers and scores."""
    run = f"{sweep}/s{seed}"
    measured = json.loads(store.eval_path(run).read_text())
    curve = pd.read_csv(store.curves_path(run))
    trained = convergence(params, run, training_images())
    return {
        "steps": trained["steps"],
        "seed": seed,
        "train_minutes": float(curve["epoch_seconds"].sum() / 60),
        "test_mse": measured["test_recon_mse"],
        "kl": measured["test_kl"],
        "mse_last_fifth_change": trained["test_mse_last_fifth_change"],
        "active_units": measured["active_units"],
        "mig": measured["mig"],
        "factor_vae": measured["factor_vae"],
        "mig_per_factor": measured["mig_per_factor"],
    }


def training_images() -> int:
    with np.load(store.data_path("shapes")) as data:
        return len(data["x_train"])


def table(records: list[dict]) -> str:
    frame = pd.DataFrame(records)
    lines = [
        "| beta | KL warm-up | epochs | steps | seeds | test MSE | MSE change, last fifth | KL | MIG "
        "| FactorVAE | best factor MIG |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def cell(group: pd.DataFrame, key: str, fmt: str = "{:.3f}") -> str:
        values = group[key]
        return f"{fmt.format(values.mean())} ({', '.join(fmt.format(v) for v in values)})"

    for (beta, warmup, epochs), group in frame.groupby(["beta", "kl_warmup_fraction", "epochs"]):
        best = max(FACTORS, key=lambda f: sum(r[f] for r in group["mig_per_factor"]) / len(group))
        best_values = [r[best] for r in group["mig_per_factor"]]
        lines.append(
            f"| {beta:g} | {warmup:g} | {epochs} | {int(group['steps'].iloc[0]):,} | {len(group)} | "
            f"{cell(group, 'test_mse', '{:.5f}')} | {cell(group, 'mse_last_fifth_change', '{:+.1%}')} | "
            f"{cell(group, 'kl', '{:.1f}')} | {cell(group, 'mig')} | {cell(group, 'factor_vae')} | "
            f"{best} {sum(best_values) / len(best_values):.3f} |"
        )
    return "\n".join(lines)


def length_verdicts(records: list[dict]) -> str:
    """Per beta, for each length and the next: which of MIG and the FactorVAE score changed beyond the
    seeds' spread (the study's own rule, sweep.differs)."""
    frame = pd.DataFrame(records)
    lines = []
    for (beta, warmup), by_beta in frame.groupby(["beta", "kl_warmup_fraction"]):
        spreads = {
            epochs: spread(group.to_dict("records"), SCORES)
            for epochs, group in by_beta.groupby("epochs")
        }
        lengths = sorted(spreads)
        for short, long in zip(lengths, lengths[1:], strict=False):
            moved = [k for k in SCORES if differs(spreads[short][k], spreads[long][k], k)]
            lines.append(
                f"- beta {beta:g}, KL warm-up {warmup:g}, {short} -> {long} epochs: "
                + (
                    f"changed beyond the seeds' spread: {', '.join(moved)}"
                    if moved
                    else "no change"
                )
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--beta", type=float, nargs="+", default=[1.0, 16.0])
    parser.add_argument("--epochs", type=int, nargs="+", default=[5, 10, 20])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--kl-warmup", type=float, default=0.0, help="kl_warmup_fraction of every arm (0 = none)"
    )
    args = parser.parse_args()
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    template = raw["sweep_templates"]["shapes"]
    (SCRATCH / "data").mkdir(parents=True, exist_ok=True)
    data_file = SCRATCH / "data" / "shapes.npz"
    if not data_file.exists():
        shutil.copy(ROOT / "data" / "shapes.npz", data_file)
    # the project's MLflow store, not one in the scratch folder
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{ROOT / 'mlflow.db'}")
    recorded = (
        [json.loads(line) for line in RESULTS_FILE.read_text().splitlines()]
        if RESULTS_FILE.exists()
        else []
    )
    os.chdir(SCRATCH)
    for epochs in args.epochs:
        for beta in args.beta:
            key = {
                "beta": beta,
                "epochs": epochs,
                "batch_size": args.batch_size,
                "kl_warmup_fraction": args.kl_warmup,
            }
            seeds = [
                s
                for s in args.seeds
                if not any(all(r[k] == v for k, v in {**key, "seed": s}.items()) for r in recorded)
            ]
            if not seeds:
                print(f"beta {beta:g}, {epochs} epochs: recorded in {RESULTS_FILE}, skipped")
                continue
            sweep = f"pilot_b{beta:g}_e{epochs}" + (
                f"_w{args.kl_warmup:g}" if args.kl_warmup else ""
            )
            params = copy.deepcopy(raw)
            params["sweeps"][sweep] = {**template, **key, "seeds": seeds}
            params = check_params(params)
            train_stage(params, sweep)
            evaluate_stage(params, sweep)
            with RESULTS_FILE.open("a") as out:
                for seed in seeds:
                    record = {**key, **record_of(params, sweep, seed)}
                    record["cpu"] = f"{cpu_name()} ({torch.backends.cpu.get_cpu_capability()})"
                    out.write(json.dumps(record) + "\n")
                    recorded.append(record)
    print(f"\n{cpu_name()} ({torch.backends.cpu.get_cpu_capability()}), one thread per seed\n")
    print(table(recorded))
    print()
    print(length_verdicts(recorded))


if __name__ == "__main__":
    main()
