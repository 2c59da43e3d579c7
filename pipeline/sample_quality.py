"""DVC stage sample_quality: the CIFAR-10 VAEs' models and evaluations, and the judge ->
reports/sample_quality.json, its DVC metrics and figures."""

from vaelab.cli import run_stage
from vaelab.quality import sample_quality

if __name__ == "__main__":
    run_stage(sample_quality)
