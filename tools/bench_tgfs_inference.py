"""TGFS adds no inference cost: time a plain detector and the same detector built with TGFS on
(same weights, same images), interleaved in one process, and print the ratio of their times.

Usage: python tools/bench_tgfs_inference.py [--detector fcos|gfl] [--size 200] [--batches 20]
       [--depth 18] [--channels 128]
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import detectron_ext.modeling  # noqa: F401,E402,I001  (registers the detectors)
from detectron2.modeling import build_model  # noqa: E402

from detectron_ext.config import new_config  # noqa: E402
from pipeline.config import CONFIG_DIR, DETECTOR_CONFIGS  # noqa: E402


def build(detector, depth, channels, tgfs):
    cfg = new_config()
    cfg.merge_from_file(str(CONFIG_DIR / DETECTOR_CONFIGS[detector]), allow_unsafe=False)
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.RESNETS.DEPTH = depth
    cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 64 if depth in (18, 34) else 256
    cfg.MODEL.FPN.OUT_CHANNELS = channels
    head = cfg.MODEL.GFL if detector == "gfl" else cfg.MODEL.FCOS
    head.HEAD_CHANNELS, head.NUM_CLASSES = channels, 6
    cfg.MODEL.TGFS.ENABLED = tgfs
    return build_model(cfg).eval()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--detector", default="fcos", choices=sorted(DETECTOR_CONFIGS))
    ap.add_argument("--size", type=int, default=200)
    ap.add_argument("--batches", type=int, default=20)
    ap.add_argument("--depth", type=int, default=18)
    ap.add_argument("--channels", type=int, default=128)
    args = ap.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    plain = build(args.detector, args.depth, args.channels, tgfs=False)
    tgfs = build(args.detector, args.depth, args.channels, tgfs=True)
    tgfs.load_state_dict(plain.state_dict())
    images = [{"image": torch.rand(3, args.size, args.size) * 255} for _ in range(4)]
    times = {"plain": [], "tgfs": []}
    with torch.no_grad():
        for model in (plain, tgfs):  # warm-up
            model(images)
        for i in range(args.batches):
            for name, model in (("plain", plain), ("tgfs", tgfs))[:: 1 if i % 2 == 0 else -1]:
                start = time.perf_counter()
                model(images)
                times[name].append(time.perf_counter() - start)
        same = all(torch.equal(a["instances"].scores, b["instances"].scores)
                   for a, b in zip(plain(images), tgfs(images)))
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"{args.detector}, R-{args.depth}, {args.size} px, batch of 4, {args.batches} interleaved batches each")
    print(f"median s/batch: plain {med['plain']:.4f}, TGFS-built {med['tgfs']:.4f}, "
          f"ratio TGFS/plain {med['tgfs'] / med['plain']:.3f}; identical detections: {same}")


if __name__ == "__main__":
    main()
