"""Training throughput of runs in params.yaml, on this machine (a benchmark, not a test).

    python benchmarks/throughput.py [RUN ...] [--steps 20] [--mixed-precision]

For each run: images/second of a training step of its objective (the very step train.fit takes:
forward, loss, backward, optimiser), the seconds one epoch over its training set would take, and
the CPU it was measured on. Uses data/<dataset>.npz (fetch it first: dvc repro fetch@<dataset>).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import torch

from vaelab import datasets
from vaelab.config import dataset_config, load_params, run_config
from vaelab.errors import VaelabError
from vaelab.models import build_model
from vaelab.runtime import autocast, resolve_device, use_mixed_precision
from vaelab.train import batch_loss, make_optimizer


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def measure(run: dict, data: dict, device: torch.device, steps: int, mixed: bool) -> float:
    torch.manual_seed(0)
    x_train = data["x_train"]
    model = build_model(
        {**run["model"], "image_size": x_train.shape[1], "channels": x_train.shape[3]}
    )
    model.to(device).to(memory_format=torch.channels_last).train()
    optimizer, _ = make_optimizer(model, run, 1)
    generator = torch.Generator().manual_seed(0)
    batch = run["batch_size"]

    def step(i: int) -> None:
        index = torch.randint(len(x_train), (batch,), generator=generator)
        labels = data["y_train"][index] if "y_train" in data else None
        with autocast(device, mixed):
            loss = batch_loss(model, run, x_train[index], labels, device, generator)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for i in range(3):  # warm-up: allocator, oneDNN kernel choice
        step(i)
    started = time.perf_counter()
    for i in range(steps):
        step(i)
    return steps * batch / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*", help="runs of params.yaml (default: all)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument(
        "--mixed-precision", action="store_true", help="also time bf16/fp16 autocast"
    )
    args = parser.parse_args()
    params = load_params("params.yaml")
    device = resolve_device(params["device"])
    print(
        f"{cpu_name()}, torch capability {torch.backends.cpu.get_cpu_capability()}, device {device}, "
        f"{torch.get_num_threads()} threads; auto mixed precision: {use_mixed_precision('auto', device)}\n"
    )
    print(
        "| run | objective | params | precision | train img/s | s per epoch |\n|---|---|---|---|---|---|"
    )
    for name in args.runs or list(params["runs"]):
        run = run_config(params, name)
        data = datasets.load(run["dataset"], dataset_config(params, run["dataset"]))
        count = sum(
            p.numel()
            for p in build_model(
                {**run["model"], "image_size": data["x_train"].shape[1], "channels": 3}
            ).parameters()
        )
        for mixed in (False, True) if args.mixed_precision else (False,):
            rate = measure(run, data, device, args.steps, mixed)
            print(
                f"| {name} | {run['objective']} | {count / 1e6:.2f} M | {'mixed' if mixed else 'fp32'} | "
                f"{rate:,.0f} | {len(data['x_train']) / rate:.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    try:
        main()
    except VaelabError as e:
        sys.exit(f"error: {e}")
