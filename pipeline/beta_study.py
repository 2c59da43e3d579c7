"""DVC stage beta_study: the shapes sweeps' and the CIFAR-10 beta pair's models and evaluations ->
reports/metrics_beta.json, its DVC metrics, reports/theory.md and figures."""

from vaelab.betas import beta_study
from vaelab.cli import run_stage

if __name__ == "__main__":
    run_stage(beta_study)
