"""Training and evaluation throughput of each model in params.yaml (a benchmark, not a test).

    python benchmarks/throughput.py [--steps 20] [--models fc conv conv_beta5]

Prints images/second for a training step (forward, backward, Adam) and for a test-set forward
pass, and the seconds one epoch over the 50,000 training images would take. Uses the fetched
data/cifar10.npz when present (random uint8 images otherwise: the speed is the same).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

import torch.nn.functional as F

from vaelab.data import load_dataset, to_model_input
from vaelab.evaluator import Classifier, augment
from vaelab.losses import vae_loss
from vaelab.models import build_model
from vaelab.params import MODEL_NAMES, load_params, model_section
from vaelab.runtime import resolve_device

EPOCH_IMAGES = 50_000


def images(count: int) -> torch.Tensor:
    if Path("data/cifar10.npz").is_file():
        return load_dataset(Path("data/cifar10.npz"), train_limit=count)["x_train"]
    return torch.randint(0, 256, (count, 32, 32, 3), dtype=torch.uint8)


def measure(section: dict, data: torch.Tensor, device: torch.device, steps: int) -> tuple[float, float]:
    torch.manual_seed(0)
    model = build_model(section["model"]).to(device).to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=section["lr"])
    batch = section["batch_size"]

    def train_step(i: int) -> None:
        x = to_model_input(data[(i * batch) % len(data):][:batch], device)
        mean, mu, logvar = model(x)
        loss = vae_loss(x, mean, model.log_sigma, mu, logvar, section["beta"])["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for i in range(3):  # warm-up: allocator, oneDNN kernel choice
        train_step(i)
    started = time.perf_counter()
    for i in range(steps):
        train_step(i)
    train_rate = steps * batch / (time.perf_counter() - started)

    model.eval()
    with torch.no_grad():
        started = time.perf_counter()
        for i in range(steps):
            x = to_model_input(data[(i * 500) % len(data):][:500], device)
            model.decode(model.encode(x)[0])
        eval_rate = steps * 500 / (time.perf_counter() - started)
    return train_rate, eval_rate


def measure_evaluator(width: int, batch: int, data: torch.Tensor, device: torch.device, steps: int,
                      bfloat16: bool) -> float:
    """Training images/second of the evaluator classifier (augmentation included)."""
    torch.manual_seed(0)
    model = Classifier(width).to(device).to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    labels = torch.randint(0, 10, (len(data),))
    generator = torch.Generator().manual_seed(0)

    def train_step(i: int) -> None:
        start = (i * batch) % (len(data) - batch)
        x = augment(data[start:start + batch], generator).to(device).permute(0, 3, 1, 2).float().div(255)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bfloat16):
            loss = F.cross_entropy(model(x).float(), labels[start:start + batch].to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for i in range(2):
        train_step(i)
    started = time.perf_counter()
    for i in range(steps):
        train_step(i)
    return steps * batch / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--models", nargs="+", default=list(MODEL_NAMES), choices=MODEL_NAMES)
    parser.add_argument("--evaluator-widths", nargs="*", type=int, default=None,
                        help="also time the evaluator classifier at these widths (default: params.yaml's)")
    args = parser.parse_args()
    params = load_params("params.yaml")
    device = resolve_device(params["device"])
    data = images(10_000)
    started = time.perf_counter()
    for _ in range(20):
        data[torch.randint(len(data), (256,))]
    gather_rate = 20 * 256 / (time.perf_counter() - started)
    print(f"device {device}, {torch.get_num_threads()} threads; batch gather from uint8 memory: "
          f"{gather_rate:,.0f} img/s\n")
    print("| model | params | train img/s | s per 50k-image epoch | eval img/s |")
    print("|---|---|---|---|---|")
    for name in args.models:
        section = model_section(params, name)
        count = sum(p.numel() for p in build_model(section["model"]).parameters())
        train_rate, eval_rate = measure(section, data, device, args.steps)
        print(f"| {name} | {count / 1e6:.2f} M | {train_rate:,.0f} | {EPOCH_IMAGES / train_rate:.1f} | "
              f"{eval_rate:,.0f} |", flush=True)
    widths = args.evaluator_widths if args.evaluator_widths is not None else [params["evaluator"]["width"]]
    if widths:
        print("\n| evaluator width | precision | train img/s | s per 50k-image epoch |\n|---|---|---|---|")
    for width in widths:
        for bfloat16 in (False, True):
            rate = measure_evaluator(width, params["evaluator"]["batch_size"], data, device, args.steps, bfloat16)
            print(f"| {width} | {'bf16 autocast' if bfloat16 else 'fp32'} | {rate:,.0f} | {EPOCH_IMAGES / rate:.1f} |",
                  flush=True)


if __name__ == "__main__":
    main()
