"""Stage bench: speed as ratios measured in one process (pipeline/bench.py; params.yaml `bench`).

Usage: python stages/bench.py
Writes metrics/bench.json (every ratio, the setup) and metrics/bench.md (the table docs/pipeline.md shows).
"""
import detectron_ext  # noqa: F401,I001  (first: Pillow >= 10 aliases before detectron2.data loads)
from detectron_ext.file_io import atomic_write_json, atomic_write_text
from pipeline.bench import run, table
from pipeline.params import load_params, run_stage
from pipeline.runs import METRICS, SPLITS


def main():
    params = load_params()
    out = run(params, SPLITS / "joint_test.json")  # dvc.yaml: its one dependency on data/splits
    atomic_write_json(METRICS / "bench.json", out)
    atomic_write_text(METRICS / "bench.md", table(out))
    print(table(out))


if __name__ == "__main__":
    run_stage(main)
