"""Which conv VAE gives samples a reader can name: one VAE trained per arm at a fixed CPU-minute
budget, judged as sample_quality judges the committed runs (a benchmark, not a DVC stage).

    python benchmarks/ablation.py [RUN] (--minutes M | --epochs N) [--seed N] [--arm NAME ...]

Each arm is the run of params.yaml (default conv) with only the keys of `model` that the arm names
replaced, trained by train.fit on the whole training set. With --minutes, every arm gets the
epochs that fill M minutes at its own measured training throughput (equal CPU time, not equal
epochs); with --epochs, the same epochs. Scored exactly as `quality.sample_quality` scores a run,
with the committed judge (models/evaluator), its split of the test set and its sample count: for
the prior and for the mixture of evaluate.cifar10 fitted to the training codes,
fd_clf (classifier-space FD, not FID; beside it as a multiple of the blurred-real reference row),
the smallest and largest class share, the share labelled with confidence >= 0.9; and the judge's
accuracy on the test reconstructions (does the code keep the object). Bits/dim, MSE and KL on the
test set sit beside them.

Every finished arm is an MLflow run of the experiment `vaelab-samples-ablation` and a line of
`benchmarks/results/samples.jsonl`; an arm already there (same arm, seed and budget) is skipped, so
an interrupted ablation restarts where it stopped. The Markdown table of every recorded arm is
printed at the end, with the CPU it ran on. (The likelihood and code-map ablations of issue 10,
docs/benchmarks.md, ran on an earlier version of this script: `git show 1a13b56:benchmarks/ablation.py`.)
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import mlflow
import torch

from throughput import cpu_name, measure  # noqa: I001  (benchmarks/ is the script's own folder)
from vaelab import datasets, tracking
from vaelab.compare import load_run_model
from vaelab.config import dataset_config, load_params, run_config
from vaelab.metrics.sample_quality import fit_latent_gmm, sample_codes
from vaelab.models import build_model, decode_batches, encode_batches, reconstruct_batches
from vaelab.quality import Judge, reference_images, split_test_set
from vaelab.runtime import resolve_device, seed_everything, use_mixed_precision
from vaelab.train import fit

RESULTS = Path(__file__).parent / "results"
# Issue 26: code size x width at an 8x8 code map (its dense-512 arm, "w64-128 z64 fc512", needs
# the conv model's fc_hidden, removed since: `git show 41db6f2:benchmarks/ablation.py`).
SAMPLES_ARMS = {
    f"w{widths[0]}-{widths[1]} z{latent}": {"widths": widths, "latent_dim": latent}
    for widths in ([32, 64], [64, 128])
    for latent in (32, 64, 128)
}
EXPERIMENT = "vaelab-samples-ablation"
RESULTS_FILE = RESULTS / "samples.jsonl"


class Scorer:
    """The judge and the test split of quality.sample_quality, with its reference rows."""

    def __init__(self, params: dict, data: dict, device: torch.device):
        config = params["compare"]["sample_quality"]
        self.gmm = params["evaluate"]["cifar10"]
        self.count, self.batch, self.seed = (
            config["sample_count"],
            config["batch_size"],
            config["seed"],
        )
        real, scored = split_test_set(len(data["x_test"]))
        holdout = run_config(params, config["judge"])["holdout"]
        self.judge = Judge(
            load_run_model(config["judge"], device),
            data["x_test"][real],
            data["x_train"][-holdout:],
            data["y_train"][-holdout:],
            data["classes"],
            device,
            self.batch,
        )
        self.scored, self.labels = data["x_test"][scored], data["y_test"][scored]
        self.x_train, self.device = data["x_train"], device
        references = reference_images(self.scored, self.seed, config["blur_sigma"])
        self.blurred_fd = self.judge(references["blurred"])["fd_clf"]

    def __call__(self, model, components: list[int]) -> dict:
        """The prior, and a mixture of each size in `components`."""
        codes, _ = encode_batches(model, self.x_train, self.device, self.batch, self.seed)
        draws = {"prior": sample_codes("prior", self.count, model.latent_dim, self.seed)}
        for k in components:
            gmm = fit_latent_gmm(codes, k, self.seed, self.gmm["gmm_covariance"])
            label = "gmm" if k == self.gmm["gmm_components"] else f"gmm{k}"  # as sample_quality
            draws[label] = sample_codes("gmm", self.count, model.latent_dim, self.seed, gmm)
        rows = {}
        for name, z in draws.items():
            judged = self.judge(decode_batches(model, z, self.device, self.batch))
            rows[name] = {
                k: judged[k] for k in ("fd_clf", "class_min", "class_max", "recognisable")
            }
        recon = self.judge(
            reconstruct_batches(model, self.scored, self.device, self.batch), self.labels
        )
        return {
            "samplers": rows,
            "recon_keeps_class": recon["accuracy"],
            "recon_fd_clf": recon["fd_clf"],
            "blurred_fd_clf": self.blurred_fd,
        }


def epochs_for(run: dict, data: dict, device, minutes: float) -> tuple[int, float]:
    """The epochs that fill `minutes` of training at the run's measured img/s, and that rate."""
    mixed = use_mixed_precision(run.get("mixed_precision", False), device)
    rate = measure(run, data, device, 50, mixed)  # 10 steps misjudged the rate by up to 20%
    return max(1, round(minutes * 60 * rate / len(data["x_train"]))), rate


def train_and_score(
    name: str, run: dict, data: dict, device, scorer: Scorer, samplers: dict
) -> dict:
    seed_everything(run["seed"])
    model = build_model({**run["model"], "image_size": 32, "channels": 3})
    with (
        mlflow.start_run(run_name=f"{name} seed {run['seed']}"),
        tempfile.TemporaryDirectory() as tmp,
    ):
        mlflow.log_params({k: str(v) for k, v in tracking.flatten("", run).items()})
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
        scores = scorer(model, **samplers)
        last = history[-1]
        record = {
            "arm": name,
            "seed": run["seed"],
            "epochs": run["epochs"],
            "parameters": sum(p.numel() for p in model.parameters()),
            "train_minutes": sum(row["epoch_seconds"] for row in history) / 60,
            "images_per_second": last["images_per_second"],
            **{key: last[f"test_{key}"] for key in ("bpd", "mse", "kl")},
            "test_bpd_by_epoch": [row["test_bpd"] for row in history],
            **scores,
        }
        mlflow.log_metrics(
            {k: v for k, v in tracking.flatten("", scores).items() if isinstance(v, float)}
        )
    return record


def best_sampler(record: dict) -> str:
    return min(record["samplers"], key=lambda s: record["samplers"][s]["fd_clf"])


def table(records: list[dict]) -> str:
    lines = [
        "| arm | seed | epochs | train min | img/s | bits/dim | KL | lowest-fd sampler | fd_clf "
        "(x blurred) | class min / max | confident | recon keeps class |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        best = best_sampler(r)
        s = r["samplers"][best]
        lines.append(
            f"| {r['arm']} | {r['seed']} | {r['epochs']} | {r['train_minutes']:.1f} | "
            f"{r['images_per_second']:,.0f} | {r['bpd']:.3f} | {r['kl']:.0f} | {best} | "
            f"{s['fd_clf']:.1f} ({s['fd_clf'] / r['blurred_fd_clf']:.1f}x) | "
            f"{s['class_min']:.1%} / {s['class_max']:.1%} | {s['recognisable']:.1%} | "
            f"{r['recon_keeps_class']:.1%} |"
        )
    lines += [
        "",
        "| arm | seed | epochs | sampler | fd_clf (x blurred) | class min / max | confident |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in records:
        for name, s in r["samplers"].items():
            lines.append(
                f"| {r['arm']} | {r['seed']} | {r['epochs']} | {name} | {s['fd_clf']:.1f} "
                f"({s['fd_clf'] / r['blurred_fd_clf']:.1f}x) | {s['class_min']:.1%} / "
                f"{s['class_max']:.1%} | {s['recognisable']:.1%} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", nargs="?", default="conv")
    limit = parser.add_mutually_exclusive_group(required=True)
    limit.add_argument("--minutes", type=float, help="each arm's training minutes (equal CPU time)")
    limit.add_argument("--epochs", type=int, help="each arm's epochs")
    parser.add_argument("--seed", type=int, help="replaces the run's seed (a second seed's spread)")
    parser.add_argument("--arm", action="append", help="an arm's name; repeatable (default: all)")
    parser.add_argument(
        "--components", type=int, nargs="+", help="mixture sizes (default evaluate.cifar10's)"
    )
    args = parser.parse_args()
    arms = SAMPLES_ARMS
    unknown = set(args.arm or []) - set(arms)
    if unknown:
        parser.error(f"unknown arm(s) {sorted(unknown)}; choose from {sorted(arms)}")
    params = load_params("params.yaml")
    device = resolve_device(params["device"])
    base = run_config(params, args.run)
    data = datasets.load(base["dataset"], dataset_config(params, base["dataset"]))
    scorer = Scorer(params, data, device)
    samplers = {"components": args.components or [scorer.gmm["gmm_components"]]}
    results = RESULTS_FILE
    results.parent.mkdir(parents=True, exist_ok=True)
    recorded = (
        [json.loads(line) for line in results.read_text().splitlines()] if results.exists() else []
    )
    tracking.use_repository_store()
    mlflow.set_experiment(EXPERIMENT)
    budget = {"minutes": args.minutes} if args.minutes else {"epochs_asked": args.epochs}
    for name in args.arm or list(arms):
        seed = base["seed"] if args.seed is None else args.seed
        arm_budget = {"run": args.run, "arm": name, **budget}
        key = {**arm_budget, "seed": seed, "components": samplers["components"]}
        if any(all(r.get(k) == v for k, v in key.items()) for r in recorded):
            print(f"{name} seed {seed}: recorded in {results}, skipped")
            continue
        run = {**base, "seed": seed, "model": {**base["model"], **arms[name]}}
        # Another seed of a recorded arm and budget trains its epochs: a seed's spread must not
        # mix in a second, noisy throughput measurement.
        earlier = [r for r in recorded if all(r.get(k) == v for k, v in arm_budget.items())]
        rate = None
        if earlier:
            run["epochs"] = earlier[0]["epochs"]
        elif args.minutes:
            run["epochs"], rate = epochs_for(run, data, device, args.minutes)
        else:
            run["epochs"] = args.epochs
        print(
            f"{name} seed {seed}: {run['epochs']} epochs"
            + (f" at {rate:,.0f} img/s" if rate else "")
        )
        record = {**arm_budget, "components": samplers["components"]}
        record |= train_and_score(name, run, data, device, scorer, samplers)
        record["cpu"] = f"{cpu_name()} ({torch.backends.cpu.get_cpu_capability()})"
        with results.open("a") as out:
            out.write(json.dumps(record) + "\n")
        recorded.append(record)
    print(
        f"\n{cpu_name()} ({torch.backends.cpu.get_cpu_capability()}), {torch.get_num_threads()} "
        f"threads, device {device}; run {args.run}; {scorer.count:,} samples per sampler and "
        f"{len(scorer.labels):,} scored test images, judge {params['compare']['sample_quality']['judge']}; "
        f"blurred-real fd_clf {scorer.blurred_fd:.1f}\n"
    )
    print(table(recorded))


if __name__ == "__main__":
    main()
