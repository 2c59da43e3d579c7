"""DVC stages evaluate@<run> and evaluate_sweep@<sweep>: `python pipeline/evaluate.py <run or sweep>`.

models/<run>/ + its dataset -> reports/eval/<run>.json, reports/figures/<run>/ and the DVC metrics
reports/metrics/<run>.json; for a sweep, the same for each seed's run <sweep>/s<seed>, and the
sweep's metrics (mean and standard deviation over its seeds) in reports/metrics/<sweep>.json.
"""

from vaelab.cli import name_parser, run_stage
from vaelab.evaluate import evaluate_stage

if __name__ == "__main__":
    parser = name_parser(__doc__, "a run of params.yaml runs, or a sweep of sweeps")
    run_stage(evaluate_stage, parser.parse_args().name)
