"""Stage train: train one run of params.yaml `runs` (a detector on a phase's training set) or
`increments` (a student distilled from its teacher run's final model: fine-tune, ERD or SD-IDD).

Usage: python stages/train.py RUN
Checkpoints go to checkpoints/RUN/ (a persistent DVC output): a killed run resumes from its last
checkpoint with the same iteration and learning-rate schedule. A changed config starts afresh.
Outputs: models/RUN/{model_final.pth, config.yaml, eval_history.json}, plots/RUN/train_log.csv.
"""
import json
import shutil
import sys
from functools import partial

import torch
from detectron2.utils.logger import setup_logger

from detectron_ext.config import apply_increment_params, build_config
from detectron_ext.data.coco_format import atomic_write_text
from detectron_ext.data.register import register_coco_file
from detectron_ext.engine import DISTILL_TRACE, EVAL_HISTORY, train
from detectron_ext.modeling.backbone import convert_torchvision_checkpoint, is_torchvision_checkpoint
from detectron_ext.modeling.distill_gfl import detector_state, init_student_from_teacher
from detectron_ext.pipeline import CHECKPOINTS, MODELS, PLOTS, load_params, run_spec
from detectron_ext.training_log import write_distill_trace, write_training_log


def main(run_name: str):
    params = load_params()
    spec = run_spec(params, run_name)
    out_dir, model_dir = CHECKPOINTS / run_name, MODELS / run_name
    train_set, test_set = f"{run_name}_train", f"{run_name}_test"
    register_coco_file(train_set, spec.train_json)
    register_coco_file(test_set, spec.test_json)
    num_images = len(json.loads(spec.train_json.read_text())["images"])
    cfg = build_config(params, spec.detector, len(spec.seen_classes), train_set, test_set, out_dir, num_images)
    cfg.TEST.OLD_CLASSES = spec.old_classes
    init_weights = None
    if spec.teacher:
        teacher = str(MODELS / spec.teacher / "model_final.pth")
        native = min(json.loads(spec.train_json.read_text())["images"][0][k] for k in ("width", "height"))
        apply_increment_params(cfg, params, spec.method, teacher, len(spec.old_classes), native)
        init_weights = partial(init_student_from_teacher, teacher_path=teacher, num_old_classes=len(spec.old_classes))
    if cfg.MODEL.WEIGHTS and is_torchvision_checkpoint(cfg.MODEL.WEIGHTS):
        cfg.MODEL.WEIGHTS = convert_torchvision_checkpoint(cfg.MODEL.WEIGHTS, out_dir / "imagenet_d2.pkl")

    logger = setup_logger(str(out_dir), name="detectron2")
    setup_logger(str(out_dir), name="detectron_ext")
    config_file = out_dir / "config.yaml"
    if config_file.exists() and config_file.read_text() != cfg.dump():
        logger.info(f"config changed since the checkpoints in {out_dir} were written: starting afresh")
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(config_file, cfg.dump())

    trainer = train(cfg, resume=True, init_weights=init_weights)

    model_dir.mkdir(parents=True, exist_ok=True)
    tmp = model_dir / ".model_final.pth.tmp"
    # the detector alone: no teacher inside, and not the distillation's own parameters (FR's λ)
    torch.save({"model": detector_state(trainer.model.state_dict()), "iteration": cfg.SOLVER.MAX_ITER}, tmp)
    tmp.replace(model_dir / "model_final.pth")
    atomic_write_text(model_dir / "config.yaml", cfg.dump())
    history = out_dir / EVAL_HISTORY
    atomic_write_text(model_dir / EVAL_HISTORY, history.read_text() if history.exists() else "[]\n")
    write_training_log(out_dir / "metrics.json", PLOTS / run_name / "train_log.csv",
                       PLOTS / run_name / "train_log.png", f"{run_name} ({spec.detector}, {params['scale']} scale)")
    if spec.teacher:
        write_distill_trace(out_dir / DISTILL_TRACE, PLOTS / run_name / "distill_trace.csv",
                            PLOTS / run_name / "distill_trace.png", f"{run_name} ({spec.method})")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(sys.argv[1])
