"""DVC stage evaluate: models/* + test set -> reports/metrics.json, reports/latent_kl.json."""

from vaelab.cli import run_stage
from vaelab.evaluate import run_evaluation

if __name__ == "__main__":
    run_stage(run_evaluation)
