"""DVC stages train@<run> and train_sweep@<sweep>: `python pipeline/train.py <run or sweep>
[--resume | --restart]`.

params.yaml runs.<run> + data/<dataset>.npz -> models/<run>/, reports/curves/<run>.csv, an MLflow
run; for a sweep, the same for each seed's run <sweep>/s<seed>. A rerun after an interruption
continues from the last epoch's checkpoint.
"""

from vaelab.cli import name_parser, run_stage
from vaelab.train import train_stage

parser = name_parser(__doc__, "a run of params.yaml runs, or a sweep of sweeps")
mode = parser.add_mutually_exclusive_group()
mode.add_argument(
    "--resume",
    dest="resume",
    action="store_const",
    const="always",
    help="require a checkpoint of this configuration and continue it",
)
mode.add_argument(
    "--restart",
    dest="resume",
    action="store_const",
    const="never",
    help="discard any checkpoint (an unreadable one too) and train from scratch",
)
parser.set_defaults(resume="auto")

if __name__ == "__main__":
    args = parser.parse_args()
    run_stage(train_stage, args.name, args.resume)
