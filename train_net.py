#!/usr/bin/env python
"""Train or evaluate this project's detectors with detectron2 alone, without DVC: detectron2's `train_net.py`
on a config the pipeline wrote. Every training run leaves its full config in `checkpoints/RUN/config.yaml`
(a phase of a chain: `checkpoints/CHAIN/phaseK/config.yaml`), a teacher's or a student's alike.

    python train_net.py --config-file checkpoints/gfl_teacher/config.yaml \\
        --dataset gfl_teacher_train=data/splits/phase0_train.json --dataset gfl_teacher_val=data/splits/phase0_val.json \\
        OUTPUT_DIR runs/teacher SOLVER.MAX_ITER 2000
    python train_net.py --config-file checkpoints/gfl_teacher/config.yaml --eval-only \\
        --dataset gfl_teacher_val=data/splits/phase0_test.json MODEL.WEIGHTS models/gfl_teacher/model_final.pth

The config names its datasets (DATASETS.TRAIN, DATASETS.TEST); `--dataset NAME=FILE.json` registers a COCO
JSON file (the split stage's `data/splits/*.json`, or your own) under a name, and a name that is itself the
path of a .json file registers that file. `--resume` continues from the last checkpoint in OUTPUT_DIR
(the pipeline's exact resume); `--num-gpus N` trains on N workers (GPUs, or CPU processes on gloo where
MODEL.DEVICE is cpu). `--eval-only` prints one JSON line of scores per test set. A student (DistillGFL) starts from the teacher its config names
(MODEL.DISTILL.TEACHER_WEIGHTS), an EfficientNet-Lite backbone from its ImageNet weights.
"""
import argparse
import json
import sys
from pathlib import Path

import yaml

import detectron_ext  # noqa: F401,I001  (first: the v0.6 fixes, and the project's architectures registered)
from detectron2.data import DatasetCatalog
from detectron2.utils import comm
from detectron2.utils.logger import setup_logger

from detectron_ext.checkpoint import SafeCheckpointer
from detectron_ext.config import new_config
from detectron_ext.data.register import register_coco_file
from detectron_ext.distributed import launch
from detectron_ext.engine import DefectTrainer, initial_weights, train
from detectron_ext.evaluation import nest_per_class
from detectron_ext.file_io import json_safe


def setup(args):
    """The config file (yaml safe_load only) and the command line's KEY VALUE pairs; an unreadable file, an
    unknown key or an odd number of opts is one line naming it."""
    try:
        written = yaml.safe_load(Path(args.config_file).read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        sys.exit(f"error: {args.config_file}: not readable as YAML ({type(e).__name__})")
    if not isinstance(written, dict) or "VERSION" not in written:
        sys.exit(f"error: {args.config_file}: not a detectron2 config (no VERSION key): give the config.yaml a run wrote")
    cfg = new_config()
    try:
        cfg.merge_from_file(args.config_file, allow_unsafe=False)
    except Exception as e:  # yaml errors, unknown keys, a file that is not a config
        sys.exit(f"error: {args.config_file}: not a config of this project ({type(e).__name__}: {e})".split("\n")[0])
    try:
        cfg.merge_from_list(args.opts)
    except Exception as e:
        sys.exit(f"error: command line options {' '.join(args.opts)}: {e}".split("\n")[0])
    cfg.freeze()
    return cfg


def register_datasets(cfg, given: dict, where: str):
    """Register the config's datasets: those given as NAME=FILE, and names that are .json files themselves."""
    for name in (*cfg.DATASETS.TRAIN, *cfg.DATASETS.TEST):
        path = given.get(name) or (name if name.endswith(".json") else None)
        if path:
            if not Path(path).is_file():
                sys.exit(f"error: {path}: no such COCO JSON file (dataset {name!r})")
            register_coco_file(name, path)
        elif name not in DatasetCatalog.list():
            sys.exit(f"error: {where}: dataset {name!r} is not registered: give --dataset {name}=FILE.json "
                     f"(a COCO JSON, e.g. the split stage's data/splits/*.json)")


def main(args):
    cfg = setup(args)
    register_datasets(cfg, dict(args.dataset), args.config_file)
    setup_logger(cfg.OUTPUT_DIR, distributed_rank=comm.get_rank(), name="detectron2")
    setup_logger(cfg.OUTPUT_DIR, distributed_rank=comm.get_rank(), name="detectron_ext")
    if args.eval_only:
        model = DefectTrainer.build_model(cfg)
        SafeCheckpointer(model, save_dir=cfg.OUTPUT_DIR).resume_or_load(cfg.MODEL.WEIGHTS, resume=args.resume)
        results = DefectTrainer.test(cfg, model)
        if comm.is_main_process():  # one JSON line per test set: mAP50 old / new / all, AP, AP50 per class (%)
            for name, res in results.items() if len(cfg.DATASETS.TEST) > 1 else [(cfg.DATASETS.TEST[0], results)]:
                print(json.dumps({"dataset": name, **json_safe(nest_per_class(res["bbox"]))}))
        return results
    train(cfg, resume=args.resume, init_weights=initial_weights(cfg))


def dataset_arg(text: str):
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=FILE.json")
    return name, path


def parser():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config-file", required=True, metavar="FILE", help="a config the pipeline wrote")
    ap.add_argument("--dataset", action="append", default=[], type=dataset_arg, metavar="NAME=FILE.json")
    ap.add_argument("--eval-only", action="store_true", help="evaluate MODEL.WEIGHTS on DATASETS.TEST")
    ap.add_argument("--resume", action="store_true", help="continue from the last checkpoint in OUTPUT_DIR")
    ap.add_argument("--num-gpus", type=int, default=1, help="workers on this machine")
    ap.add_argument("--num-machines", type=int, default=1)
    ap.add_argument("--machine-rank", type=int, default=0)
    ap.add_argument("--dist-url", default="auto")
    ap.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE pairs overriding the config")
    return ap


if __name__ == "__main__":
    args = parser().parse_args()
    if not Path(args.config_file).is_file():
        sys.exit(f"error: {args.config_file}: no such config file")
    device = "cpu" if "cpu" in str(setup(args).MODEL.DEVICE) else "cuda"
    launch(main, args.num_gpus, args.num_machines, args.machine_rank, args.dist_url, device, args=(args,))
