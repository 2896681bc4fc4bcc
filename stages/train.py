"""Stage train: train one run of params.yaml `runs` (a detector on the first class group, the
teacher, or on all classes, joint) with detectron2's trainer.

Usage: python stages/train.py RUN
Checkpoints go to checkpoints/RUN/ (a persistent DVC output): a killed run resumes from its last
checkpoint with the same iteration and learning-rate schedule. A changed config starts afresh.
Outputs: models/RUN/{model_final.pth, config.yaml, eval_history.json}, plots/RUN/train_log.{csv,png}.
"""
import sys

import detectron_ext  # noqa: F401,I001  (first: Pillow >= 10 aliases before detectron2.data loads)
from pipeline.params import load_params, run_stage
from pipeline.runner import train_run
from pipeline.runs import run_spec


def main(name):
    params = load_params()
    train_run(params, run_spec(params, name))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    run_stage(main, sys.argv[1])
