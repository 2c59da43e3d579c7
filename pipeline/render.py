"""DVC stage render: every evaluation and comparison -> reports/figures/compare/, reports/summary.md,
reports/README.md."""

from vaelab.cli import run_stage
from vaelab.report import render

if __name__ == "__main__":
    run_stage(render)
