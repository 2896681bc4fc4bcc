"""Make a scratch DVC workspace of this pipeline (pipeline/workspace.py) from a params file and `-S`
overrides, and run its split stage: the starting point of every run queue in results/ (a teacher, its
students, their re-scores: results/neu-det-lite/run_queue.sh).

    python tools/make_workspace.py /work/ws/neu-lite-f --params /work/ws/neu-lite-e/params.yaml -S train.seed=5
    python tools/make_workspace.py /work/ws/pcb-g -S dataset=deeppcb -S scale=lite \
        -S datasets.deeppcb.root=/data/DeepPCB/PCBData -S model.backbone=efficientnet-lite0 -S model.weights=package

--params: the params to start from (default: the repository's params.yaml); -S KEY=VALUE as `dvc exp run
-S` (values as YAML). A relative dataset root is resolved against the params file's folder, so the
workspace reads the same data. An existing workspace keeps its outputs; its params.yaml is replaced.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pipeline.params import ParamsError, apply_overrides, load_params, validate_params  # noqa: E402
from pipeline.workspace import dvc, make_workspace  # noqa: E402


def workspace_params(source: Path, overrides) -> dict:
    params = load_params(source)
    apply_overrides(params, overrides, where=str(source))
    for spec in params.get("datasets", {}).values():
        for key in ("root", "train_json", "test_json"):
            if isinstance(spec.get(key), str) and not Path(spec[key]).is_absolute():
                spec[key] = str((source.parent / spec[key]).resolve())
    return validate_params(params, source)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("path", type=Path)
    ap.add_argument("--params", type=Path, default=Path(__file__).resolve().parent.parent / "params.yaml")
    ap.add_argument("-S", "--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides")
    args = ap.parse_args(argv)
    try:
        params = workspace_params(args.params, args.overrides)
    except ParamsError as e:
        sys.exit(f"error: {e}")
    make_workspace(args.path, params)
    print(f"make_workspace: {args.path} (dataset {params['dataset']}, scale {params['scale']}); dvc repro split ...",
          flush=True)
    sys.exit(dvc(args.path, "repro", "-q", "split").returncode)


if __name__ == "__main__":
    main()
