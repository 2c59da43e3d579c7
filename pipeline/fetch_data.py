"""DVC stage fetch_data: params.yaml `data` -> data/cifar10.npz (uint8, verified)."""

from pathlib import Path

from vaelab.cli import run_stage
from vaelab.data import fetch_cifar10


def fetch(params: dict) -> None:
    data = params["data"]
    source = fetch_cifar10(Path(data["path"]), data.get("mirror_dirs", []), data["official_md5"],
                           data["png_sha256"], Path(data["download_dir"]), bool(data.get("allow_download", True)))
    print(f"wrote {data['path']} from {source}")


if __name__ == "__main__":
    run_stage(fetch)
