"""DVC stage make_shapes: params.yaml `shapes.data` + seed -> data/shapes.npz (every factor combination)."""

from pathlib import Path

from vaelab.cli import run_stage
from vaelab.shapes import make_shapes


def make(params: dict) -> None:
    data = params["shapes"]["data"]
    sizes = make_shapes(Path(data["path"]), data, data["test_count"], params["seed"])
    print(f"wrote {data['path']}: {sizes['train']:,} training and {sizes['test']:,} test images")


if __name__ == "__main__":
    run_stage(make)
