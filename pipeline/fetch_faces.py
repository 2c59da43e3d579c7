"""DVC stage fetch_faces: params.yaml `faces` -> data/faces.npz (uint8 64x64 faces, 40 attributes, verified)."""

from pathlib import Path

from vaelab.cli import run_stage
from vaelab.faces import fetch_faces
from vaelab.params import faces_section


def fetch(params: dict) -> None:
    settings = faces_section(params)
    print(f"wrote {settings['path']} from {fetch_faces(Path(settings['path']), settings)}")


if __name__ == "__main__":
    run_stage(fetch)
