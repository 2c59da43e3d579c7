"""DVC stage evaluate_faces: models/conv_faces + data/faces.npz -> reports/faces/metrics.json,
reports/faces/report.md, reports/figures/faces_*.png (test metrics and the latent-space tour)."""

from vaelab.cli import run_stage
from vaelab.faces_evaluation import run_faces_evaluation

if __name__ == "__main__":
    run_stage(run_faces_evaluation)
