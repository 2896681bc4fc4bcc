"""GFL training step under bf16 autocast (train.precision: bf16) as a ratio of the fp32 step, in one
process: the evidence behind train.precision's default. Prints whether this machine counts as one
where bf16 is fast (what `train.precision: auto` picks by, detectron_ext/precision.py).

Usage: python tools/bench_precision.py [--backbone resnet|efficientnet-lite0] [--size 200] [--batch 8]
           [--channels 128] [--convs 4] [--steps 4] [--threads 2]
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import detectron_ext.modeling  # noqa: E402,F401
from detectron2.modeling import build_model  # noqa: E402
from detectron2.structures import Boxes, Instances  # noqa: E402
from detectron2.utils.events import EventStorage  # noqa: E402

from detectron_ext.precision import bf16_is_fast, resolve_precision  # noqa: E402
from pipeline.config import build_config  # noqa: E402
from pipeline.runs import run_spec  # noqa: E402


def step_times(args, precision: str, model_params: dict):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["model"].update(model_params)
    params["train"]["precision"] = precision
    params["scales"]["ci"].update(fpn_channels=args.channels, head_channels=args.channels, head_convs=args.convs,
                                  input_size=args.size, batch=args.batch)
    params.update(scale="ci", device="cpu")
    torch.manual_seed(0)
    model = build_model(build_config(params, run_spec(params, "gfl_joint"), 100))
    model.train()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    image = torch.randint(0, 255, (3, args.size, args.size), dtype=torch.uint8)
    inst = Instances((args.size, args.size))
    inst.gt_boxes = Boxes(torch.tensor([[10.0, 10.0, args.size / 2, args.size / 3]]))
    inst.gt_classes = torch.tensor([1])
    data = [{"image": image, "instances": inst, "height": args.size, "width": args.size}] * args.batch
    times = []
    with EventStorage():
        for _ in range(args.steps + 1):  # the first step warms up
            start = time.perf_counter()
            loss = sum(model(data).values())
            opt.zero_grad()
            loss.backward()
            opt.step()
            times.append(time.perf_counter() - start)
    return times[1:]


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
    model_params = {"backbone": args.backbone, "weights": ""}
    fp32, bf16 = [], []
    for _ in range(2):  # interleaved, so that a load change hits both
        fp32 += step_times(args, "fp32", model_params)
        bf16 += step_times(args, "bf16", model_params)
    a, b = statistics.median(fp32), statistics.median(bf16)
    print(f"GFL step, {args.backbone} {args.size} px, batch {args.batch}, {args.threads} threads: "
          f"fp32 {a:.2f} s, bf16 {b:.2f} s, bf16/fp32 = {b / a:.2f}")


if __name__ == "__main__":
    main()
