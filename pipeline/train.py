"""DVC stages train@<run> and train_sweep@<sweep>: `python pipeline/train.py <run or sweep>`.

params.yaml runs.<run> + data/<dataset>.npz -> models/<run>/, reports/curves/<run>.csv, an MLflow
run; for a sweep, the same for each seed's run <sweep>/s<seed>. A rerun after an interruption
continues from the last epoch's checkpoint.
"""

from vaelab.cli import name_parser, run_stage
from vaelab.train import train_stage

if __name__ == "__main__":
    parser = name_parser(__doc__, "a run of params.yaml runs, or a sweep of sweeps")
    run_stage(train_stage, parser.parse_args().name)
