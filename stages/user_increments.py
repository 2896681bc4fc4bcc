"""Stage user_increments: your own increments on the report page.

`defect-il increment MODEL DATA -o increments/NAME` trains a model that adds new classes to a saved one
and writes increments/NAME/report.json. This stage lists every increments/*/report.json:
- reports/user_increments.md: one row per increment (method, the model it started from, old and new
  classes, training images and iterations, the test sets, the new classes' mAP50 and AP50, the old
  classes' mAP50 before and after where an old test set was given, the boxes of other classes dropped);
- reports/user_increments.csv: the few short columns of it that the report page shows (`dvc plots show`,
  dvc.yaml's top-level `plots`), one row per increment and column; "none yet" when there is none.
It reads no params and no other stage's outputs: `dvc repro user_increments` runs it alone, in seconds.
"""
from detectron_ext.file_io import atomic_write_text
from pipeline.params import run_stage
from pipeline.report import increments_markdown, increments_page_rows, increments_table, read_increments
from pipeline.runs import REPORTS


def main():
    table = increments_table(read_increments())
    atomic_write_text(REPORTS / "user_increments.md", increments_markdown(table))
    atomic_write_text(REPORTS / "user_increments.csv", increments_page_rows(table).to_csv(index=False))
    print(f"user_increments: {len(table)} increment(s) listed in {REPORTS / 'user_increments.md'}")


if __name__ == "__main__":
    run_stage(main)
