"""TGFS adds no inference cost: time a plain detector and the same detector built with TGFS on
(same weights, same images), interleaved in one process (the bench's timing), and print the ratio of their times.

Usage: python tools/bench_tgfs_inference.py [--detector fcos|gfl] [--size 200] [--batches 20]
       [--depth 18] [--channels 128]
"""
import argparse
import sys
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import detectron_ext.modeling  # noqa: F401,E402,I001  (registers the detectors)
from detectron2.modeling import build_model  # noqa: E402

from pipeline.bench import infer, interleaved_medians  # noqa: E402
from pipeline.config import build_config  # noqa: E402
from pipeline.runs import run_spec  # noqa: E402


def build(run: str, args):
    """params.yaml's run (fcos_joint, fcos_tgfs_joint, ...) at the ci scale, resized by the arguments."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["model"].update(backbone="resnet", weights="")
    params["scales"]["ci"].update(depth=args.depth, fpn_channels=args.channels, head_channels=args.channels,
                                  input_size=args.size)
    params.update(scale="ci", device="cpu")
    return build_model(build_config(params, run_spec(params, run), 100)).eval()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--detector", default="fcos", choices=("fcos", "gfl"))
    ap.add_argument("--size", type=int, default=200)
    ap.add_argument("--batches", type=int, default=20)
    ap.add_argument("--depth", type=int, default=18)
    ap.add_argument("--channels", type=int, default=128)
    args = ap.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    plain = build(f"{args.detector}_joint", args)
    tgfs = build(f"{args.detector}_tgfs_joint", args)
    tgfs.load_state_dict(plain.state_dict())
    images = [{"image": torch.rand(3, args.size, args.size) * 255} for _ in range(4)]
    med = interleaved_medians({"plain": infer(plain, images), "tgfs": infer(tgfs, images)}, args.batches)
    with torch.no_grad():
        same = all(torch.equal(a["instances"].scores, b["instances"].scores)
                   for a, b in zip(plain(images), tgfs(images)))
    print(f"{args.detector}, R-{args.depth}, {args.size} px, batch of 4, {args.batches} interleaved batches each")
    print(f"median s/batch: plain {med['plain']:.4f}, TGFS-built {med['tgfs']:.4f}, "
          f"ratio TGFS/plain {med['tgfs'] / med['plain']:.3f}; identical detections: {same}")


if __name__ == "__main__":
    main()
