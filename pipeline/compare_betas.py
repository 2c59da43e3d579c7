"""DVC stage compare_betas: every shapes model's report + the autoencoder + reports/metrics.json ->
reports/metrics_beta.json, reports/theory.md, beta_tradeoff.png, interpolation_smoothness.png,
autoencoder_vs_vae_shapes.png."""

from vaelab.beta_study import run_beta_study
from vaelab.cli import run_stage

if __name__ == "__main__":
    run_stage(run_beta_study)
