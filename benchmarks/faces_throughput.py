"""Training and evaluation throughput of conv_faces at faces.image_size (a benchmark, not a test).

    python benchmarks/faces_throughput.py [--steps 20] [--threads N]

Prints images/second for a training step (forward, backward, Adam) and for an evaluation pass, and
the minutes `train_faces` should then take: epochs x (training images / rate), plus the per-epoch
test pass. Random uint8 images: the speed is the same as on faces. `--threads 1` measures one core
without competing for the other when the machine is busy.
"""

from __future__ import annotations

import argparse

import torch
from throughput import measure  # the CIFAR-10 benchmark's timing loop, beside this file

from vaelab.faces_training import faces_training_section
from vaelab.params import faces_section, load_params
from vaelab.runtime import resolve_device


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    params = load_params("params.yaml")
    faces, section = faces_section(params), faces_training_section(params)
    device = resolve_device(params["device"])
    size = faces["image_size"]
    data = torch.randint(0, 256, (2000, size, size, 3), dtype=torch.uint8)
    train_rate, eval_rate = measure(section, data, device, args.steps)
    images = (faces["max_images"] or 10_000) - faces["test_count"]
    epoch_seconds = images / train_rate + faces["test_count"] / eval_rate
    print(f"device {device}, {torch.get_num_threads()} threads, {size}x{size}, widths {section['model']['widths']}, "
          f"batch {section['batch_size']}")
    print(f"train {train_rate:,.0f} img/s, eval {eval_rate:,.0f} img/s: {epoch_seconds:.1f} s per epoch of "
          f"{images:,} faces, {section['epochs'] * epoch_seconds / 60:.1f} min for {section['epochs']} epochs")


if __name__ == "__main__":
    main()
