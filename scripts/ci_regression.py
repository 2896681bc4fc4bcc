"""CI regression of mAP: the incremental pipeline at CI scale on real NEU-DET (teacher on the old
classes, then the SD-IDD student), compared with reference metrics committed in ci/reference/.
Fails (exit 1) when the student's mAP_old, mAP_new or mAP_all falls more than the reference's
tolerance below it.

Usage: python scripts/ci_regression.py [--reference ci/reference/neu-det-ci.json]
           [--workspace DIR] [--fresh] [--set key.sub=value ...] [--update]
The workspace is a scratch DVC project (pipeline/workspace.py) where `dvc repro increment@sdidd` runs the stages;
--fresh deletes it first (otherwise DVC reuses the stages in it that are up to date);
--set overrides params.yaml entries in the scratch workspace (e.g. distill.cls_mode=none to break CR
on purpose); --update writes the current metrics as the new reference (keeping the tolerance).
"""
import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from detectron_ext.file_io import atomic_write_json  # noqa: E402
from pipeline.params import apply_overrides  # noqa: E402
from pipeline.regression import compare_to_reference  # noqa: E402
from pipeline.workspace import dvc, make_workspace  # noqa: E402

KEYS = ("mAP50_old", "mAP50_new", "mAP50")


def scratch_params(reference: dict, overrides) -> dict:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params.update(dataset=reference["dataset"], task="default", scale=reference["scale"], device="cpu")
    params["evaluate"]["split"] = reference.get("split", "val")  # the split the reference was scored on
    params["runs"] = {"gfl_teacher": {"detector": "gfl", "phase": 0, "assigner": "base"}}  # the teacher of every chain
    apply_overrides(params, overrides)
    spec = params["datasets"][reference["dataset"]]
    spec["root"] = str((ROOT / spec["root"]).resolve())
    if not Path(spec["root"]).is_dir():
        raise SystemExit(f"ci_regression: dataset folder {spec['root']} not found (params.yaml "
                         f"datasets.{reference['dataset']}.root, relative to the repository; or set NEU_DET_ROOT)")
    return params


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reference", default=str(ROOT / "ci" / "reference" / "neu-det-ci.json"))
    ap.add_argument("--workspace", default=str(ROOT / ".ci-work"))
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--update", action="store_true")
    ap.add_argument("--fresh", action="store_true")
    args = ap.parse_args()
    reference = json.loads(Path(args.reference).read_text())
    work = Path(args.workspace)
    if args.fresh and work.exists():
        shutil.rmtree(work)
    make_workspace(work, scratch_params(reference, args.set))
    start = time.time()
    print(f"ci_regression: dvc repro increment@sdidd in {work} (prepare, split, train@gfl_teacher, increment@sdidd) ...",
          flush=True)
    if dvc(work, "repro", "increment@sdidd").returncode:
        raise SystemExit(f"ci_regression: dvc repro increment@sdidd failed (workspace {work})")
    print(f"ci_regression: done in {time.time() - start:.0f} s", flush=True)
    current = json.loads((work / "metrics" / "sdidd.json").read_text())
    if args.update:
        reference["metrics"] = {k: current[k] for k in KEYS}
        reference["split"] = current["split"]
        atomic_write_json(Path(args.reference), reference)
        print(f"ci_regression: reference {args.reference} updated: {reference['metrics']}")
        return
    if not reference.get("metrics"):
        raise SystemExit(f"ci_regression: {args.reference} holds no reference metrics yet: rerun with --update")
    if current.get("split") != reference.get("split", "val"):
        raise SystemExit(f"ci_regression: the student was scored on the {current.get('split')} split, the reference "
                         f"on the {reference.get('split', 'val')} split")
    table = compare_to_reference(reference["metrics"], current, reference["tolerance"])
    print(f"\nSD-IDD student, {reference['dataset']} at {reference['scale']} scale, mAP50 in % "
          f"(reference: {args.reference})\n" + table.to_markdown(index=False))
    if (table["Status"] != "ok").any():
        raise SystemExit("ci_regression: mAP regressed beyond the tolerance")
    print("ci_regression: no regression")


if __name__ == "__main__":
    main()
