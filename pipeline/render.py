"""DVC stage render: models/* + metrics -> reports/figures/*.png, reports/summary.md, reports/README.md."""

from vaelab.cli import run_stage
from vaelab.report import run_render

if __name__ == "__main__":
    run_stage(run_render)
