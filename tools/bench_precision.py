"""GFL training step under bf16 autocast (train.precision: bf16) as a ratio of the fp32 step, in one
process: the evidence behind train.precision's default. Prints whether this machine counts as one
where bf16 is fast (what `train.precision: auto` picks by, detectron_ext/precision.py).

Usage: python tools/bench_precision.py [--backbone resnet|efficientnet-lite0] [--size 200] [--batch 8]
           [--channels 128] [--convs 4] [--steps 4] [--threads 2]
"""
import argparse
import sys
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import detectron_ext.modeling  # noqa: E402,F401
from detectron2.modeling import build_model  # noqa: E402

from detectron_ext.precision import bf16_is_fast, resolve_precision  # noqa: E402
from pipeline.bench import interleaved_medians, synthetic_batch, train_step  # noqa: E402
from pipeline.config import build_config  # noqa: E402
from pipeline.runs import run_spec  # noqa: E402


def model(args, precision: str):
    """The pipeline's gfl_joint at the ci scale, resized by the arguments, with this training precision."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["model"].update(backbone=args.backbone, weights="")
    params["train"]["precision"] = precision
    params["scales"]["ci"].update(fpn_channels=args.channels, head_channels=args.channels, head_convs=args.convs,
                                  input_size=args.size, batch=args.batch)
    params.update(scale="ci", device="cpu")
    torch.manual_seed(0)
    spec = run_spec(params, "gfl_joint")
    return build_model(build_config(params, spec, 100)), spec.seen_classes


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbone", default="resnet")
    ap.add_argument("--size", type=int, default=200)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--channels", type=int, default=128)
    ap.add_argument("--convs", type=int, default=4)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"CPU: AVX-512 BF16 {'yes' if bf16_is_fast('cpu') else 'no'} (train.precision auto: "
          f"{resolve_precision('auto', 'cpu')}); torch {torch.__version__}, {torch.backends.cpu.get_cpu_capability()}")
    (fp32, classes), (bf16, _) = model(args, "fp32"), model(args, "bf16")
    data = synthetic_batch(args.size, args.batch, list(range(len(classes))))
    t = interleaved_medians({"fp32": train_step(fp32, data), "bf16": train_step(bf16, data)}, args.steps)
    print(f"GFL step, {args.backbone} {args.size} px, batch {args.batch}, {args.threads} threads: "
          f"fp32 {t['fp32']:.2f} s, bf16 {t['bf16']:.2f} s, bf16/fp32 = {t['bf16'] / t['fp32']:.2f}")


if __name__ == "__main__":
    main()
