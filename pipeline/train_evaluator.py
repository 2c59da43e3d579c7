"""DVC stage train_evaluator: params.yaml `evaluator` + data/cifar10.npz -> models/evaluator/ (the judge
classifier whose features score generated images), reports/curves/evaluator.csv, an MLflow run."""

from vaelab.cli import run_stage
from vaelab.evaluator import run_evaluator_training

if __name__ == "__main__":
    run_stage(run_evaluator_training)
