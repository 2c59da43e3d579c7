"""DVC stage evaluate@<run>: `python pipeline/evaluate.py <run>`.

models/<run>/ + its dataset -> reports/eval/<run>.json and reports/figures/<run>/.
"""

from vaelab.cli import name_parser, run_stage
from vaelab.evaluate import evaluate_run

if __name__ == "__main__":
    run_stage(evaluate_run, name_parser(__doc__, "a run of params.yaml runs").parse_args().name)
