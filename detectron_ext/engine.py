"""Training: detectron2's DefaultTrainer with the project's evaluator, eval history and resume."""
import itertools
import json
import logging
import random
from pathlib import Path

import numpy as np
import torch
from detectron2.data import DatasetMapper, build_detection_train_loader
from detectron2.data.build import _train_loader_from_config
from detectron2.data.samplers import TrainingSampler
from detectron2.engine import DefaultTrainer, hooks
from detectron2.utils import comm
from detectron2.utils.env import seed_all_rng
from detectron2.utils.events import get_event_storage

from . import compat  # noqa: F401  (v0.6 fixes)
from . import modeling  # noqa: F401  (registers GFL, FCOS, backbone)
from .checkpoint import SafeCheckpointer, save_model
from .data.transforms import RandomRotate90
from .distributed import unwrap
from .evaluation import DefectEvaluator, nest_per_class
from .file_io import atomic_write_json
from .modeling.distill_gfl import detector_state, init_student_from_teacher
from .modeling.efficientnet import load_imagenet_weights, resolve_weights

EVAL_HISTORY = "eval_history.json"
DISTILL_TRACE = "distill_trace.csv"


class ScalarTraceHook(hooks.HookBase):
    """Appends, every iteration, the event-storage scalars whose names start with `prefix` to a CSV
    (iteration first). detectron2's writers only keep every 20th, smoothed value; this keeps all.
    A resumed run appends again from its checkpoint: readers keep the last row of an iteration."""

    def __init__(self, path, prefix: str = "distill/"):
        self.path, self.prefix, self.columns = Path(path), prefix, None

    def after_step(self):
        storage = get_event_storage()
        values = {k[len(self.prefix):]: v for k, (v, it) in storage.latest().items()
                  if k.startswith(self.prefix) and it == storage.iter}
        if not values:
            return
        if self.columns is None:
            self.columns = sorted(values)
            if not self.path.exists() or self.path.stat().st_size == 0:
                self.path.write_text(",".join(["iteration", *self.columns]) + "\n")
        row = [str(storage.iter)] + [f"{values[c]:.6g}" if c in values else "" for c in self.columns]
        with open(self.path, "a") as f:
            f.write(",".join(row) + "\n")


class ProgressBar(hooks.HookBase):
    """A progress bar over the iterations, its ETA from the mean time per iteration since this run
    started (stable, where detectron2's ETA follows the last 20 iterations)."""

    def __init__(self, desc: str = "training"):
        self.desc, self.bar = desc, None

    def before_train(self):
        from tqdm import tqdm

        self.bar = tqdm(total=self.trainer.max_iter, initial=self.trainer.start_iter, desc=self.desc, unit="it",
                        smoothing=0, dynamic_ncols=True)

    def after_step(self):
        self.bar.update(1)

    def after_train(self):
        if self.bar is not None:  # (None when an earlier hook failed before training began)
            self.bar.close()


class ResumableTrainingSampler(TrainingSampler):
    """detectron2's TrainingSampler (the same shuffled infinite stream for a seed), started `skip`
    indices in: a run resumed at iteration k draws what the uninterrupted run would have drawn."""

    def __init__(self, size: int, seed: int, skip: int = 0):  # skip: this worker's indices
        super().__init__(size, shuffle=True, seed=seed)
        self._skip = int(skip)

    def __iter__(self):
        yield from itertools.islice(self._infinite_indices(), self._rank + self._skip * self._world_size, None,
                                    self._world_size)


class GlobalRNGState:
    """Python's, numpy's and torch's global generators (augmentation draws from numpy's) as a
    checkpointable of tensors and ints, so that torch.load(weights_only=True) reads it back."""

    def state_dict(self):
        _, keys, pos, has_gauss, cached = np.random.get_state()
        version, internal, gauss_next = random.getstate()
        return {"numpy_keys": torch.from_numpy(keys.astype(np.int64)), "numpy_pos": int(pos),
                "numpy_has_gauss": int(has_gauss), "numpy_cached_gaussian": float(cached),
                "python_version": version, "python_internal": torch.tensor(internal, dtype=torch.int64),
                "python_gauss_next": gauss_next, "torch": torch.get_rng_state()}

    def load_state_dict(self, state):
        np.random.set_state(("MT19937", state["numpy_keys"].numpy().astype(np.uint32), state["numpy_pos"],
                             state["numpy_has_gauss"], state["numpy_cached_gaussian"]))
        random.setstate((state["python_version"], tuple(state["python_internal"].tolist()), state["python_gauss_next"]))
        torch.set_rng_state(state["torch"])


class DefectTrainer(DefaultTrainer):
    """Evaluates with pycocotools (AP50 per class, old/new/all) and keeps every periodic
    evaluation in OUTPUT_DIR/eval_history.json, so the best one can be reported beside the final."""

    def build_hooks(self):
        """Keep two periodic checkpoints; and as detectron2 v0.6's EvalHook evaluates after
        training even with TEST.EVAL_PERIOD 0, drop it then (the evaluate stage scores the model)."""
        hooks_ = super().build_hooks()
        for h in hooks_:
            if isinstance(h, hooks.PeriodicCheckpointer):
                h.max_to_keep = 2  # the last two periodic checkpoints are enough to resume
        if self.cfg.TEST.EVAL_PERIOD <= 0:
            hooks_ = [h for h in hooks_ if not isinstance(h, hooks.EvalHook)]
        if self.cfg.MODEL.META_ARCHITECTURE == "DistillGFL" and comm.is_main_process():
            hooks_.append(ScalarTraceHook(Path(self.cfg.OUTPUT_DIR) / DISTILL_TRACE))
        return hooks_

    def __init__(self, cfg):
        super().__init__(cfg)
        # the checkpointer with safe readers (checkpoint.py), for resuming and the periodic saves alike
        self.checkpointer = SafeCheckpointer(self.checkpointer.model, cfg.OUTPUT_DIR,
                                             **self.checkpointer.checkpointables)  # trainer=weakref.proxy(self)
        self.checkpointer.add_checkpointable("rng", GlobalRNGState())
        for h in self._hooks:
            if isinstance(h, hooks.PeriodicCheckpointer):
                h.checkpointer = self.checkpointer

    @classmethod
    def build_train_loader(cls, cfg, skip_iterations: int = 0):
        """detectron2's train loader, its sampler seeded by cfg.SEED and started after
        `skip_iterations` batches (exact with one aspect-ratio group and DATALOADER.NUM_WORKERS 0;
        a quarter turn puts a non-square image in the other group). IMS_PER_BATCH is the batch of all
        workers together; each worker draws its share.
        INPUT.RANDOM_ROTATE90 > 0 adds a quarter turn after detectron2's resize and flip."""
        mapper = None
        if cfg.INPUT.RANDOM_ROTATE90 > 0:  # at 0 nothing is drawn: the augmentation stream stays as before
            mapper = DatasetMapper.from_config(cfg, is_train=True)
            mapper["augmentations"] = [*mapper["augmentations"], RandomRotate90(cfg.INPUT.RANDOM_ROTATE90)]
            mapper = DatasetMapper(**mapper)
        args = _train_loader_from_config(cfg, mapper)
        args["sampler"] = ResumableTrainingSampler(len(args["dataset"]), cfg.SEED,
                                                   skip_iterations * cfg.SOLVER.IMS_PER_BATCH // comm.get_world_size())
        return build_detection_train_loader(**args)

    # detectron2 v0.6's DefaultTrainer checkpoints the iteration and the hooks (the LR scheduler) but
    # not the optimizer: a resumed run lost SGD's momentum and ran its first iteration at the
    # scheduler's initial LR (later versions save self._trainer.state_dict(); so do we)
    def state_dict(self):
        return {**super().state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        if "optimizer" in state_dict:
            self.optimizer.load_state_dict(state_dict["optimizer"])

    def resume_or_load(self, resume=True):
        """detectron2's resume (weights, scheduler, iteration; and here the optimizer and the global
        RNG states), then the data stream moved to where the interrupted run stopped."""
        super().resume_or_load(resume=resume)
        if self.start_iter > 0:
            rng = GlobalRNGState()
            state = rng.state_dict()  # as restored: building the loader must not move it
            loader = self.build_train_loader(self.cfg, self.start_iter)
            self._trainer.data_loader, self._trainer._data_loader_iter = loader, iter(loader)
            rng.load_state_dict(state)

    @classmethod
    def build_evaluator(cls, cfg, dataset_name):
        return DefectEvaluator(dataset_name, old_classes=cfg.TEST.OLD_CLASSES)

    @classmethod
    def test(cls, cfg, model, evaluators=None):
        results = super().test(cfg, model, evaluators)
        if not comm.is_main_process():  # the main process scores every worker's detections
            return results
        try:
            iteration = get_event_storage().iter + 1
        except AssertionError:  # called outside training
            return results
        path = Path(cfg.OUTPUT_DIR) / EVAL_HISTORY
        history = json.loads(path.read_text()) if path.exists() else []
        history = [h for h in history if h["iteration"] < iteration]  # a resumed run re-evaluates
        history.append({"iteration": iteration, **nest_per_class(results["bbox"])})
        atomic_write_json(path, history)
        return results


def initial_weights(cfg):
    """How a run without a checkpoint starts, besides MODEL.WEIGHTS: a student (DistillGFL) from the teacher it
    loads (MODEL.DISTILL.TEACHER_WEIGHTS), an EfficientNet-Lite backbone from its ImageNet weights; else None.
    The `init_weights` of `train`."""
    if cfg.MODEL.META_ARCHITECTURE == "DistillGFL":
        return init_student_from_teacher
    if cfg.MODEL.BACKBONE.NAME == "build_efficientnet_lite_fpn_backbone" and cfg.MODEL.EFFICIENTNET.WEIGHTS:
        imagenet = resolve_weights(cfg.MODEL.EFFICIENTNET.NAME, cfg.MODEL.EFFICIENTNET.WEIGHTS)

        def init_imagenet(model):
            n = load_imagenet_weights(model.backbone.bottom_up, imagenet)
            logging.getLogger("detectron_ext").info(f"{n} ImageNet tensors loaded from {imagenet}")
        return init_imagenet
    return None


def train(cfg, resume: bool = True, init_weights=None, extra_hooks=()):
    """Train (resuming from the last checkpoint in OUTPUT_DIR when there is one); returns the trainer.
    init_weights(model) initialises a run that has no checkpoint yet (e.g. a student from its teacher);
    `extra_hooks` are added to the trainer's own (e.g. a ProgressBar)."""
    torch.set_num_threads(cfg.SOLVER.NUM_THREADS)
    torch.use_deterministic_algorithms(cfg.SOLVER.DETERMINISTIC, warn_only=True)
    # one seed for init, augmentation and data order; a resumed run restores the generators' states
    # and the data stream's position from its checkpoint, so it continues as if never stopped
    seed_all_rng(cfg.SEED + comm.get_rank())  # workers draw their own augmentations (DDP: the same init from rank 0)
    Path(cfg.OUTPUT_DIR).mkdir(parents=True, exist_ok=True)
    trainer = DefectTrainer(cfg)
    if init_weights is not None and not (resume and trainer.checkpointer.has_checkpoint()):
        init_weights(unwrap(trainer.model))  # before DDP's first step: every worker starts from the same
    trainer.resume_or_load(resume=resume)
    trainer.register_hooks(list(extra_hooks))
    if trainer.start_iter > 0:
        logging.getLogger("detectron_ext").info(f"resumed at iteration {trainer.start_iter}")
    if trainer.start_iter < cfg.SOLVER.MAX_ITER:
        trainer.train()
    return trainer


def train_model(cfg, model_dir, test_set=None, extra_hooks=()):
    """Train a run (resuming from OUTPUT_DIR; a new one from `initial_weights`) and save the detector alone
    into model_dir (no teacher inside, not the distillation's own parameters such as FR's λ; `test_set`:
    the COCO file of its classes' test images, named in the folder). The pipeline's runs and
    `defect-il increment` train through it. Returns the trainer (the model is saved by the main process)."""
    trainer = train(cfg, resume=True, init_weights=initial_weights(cfg), extra_hooks=extra_hooks)
    if comm.is_main_process():
        save_model(model_dir, detector_state(unwrap(trainer.model).state_dict()), cfg, cfg.SOLVER.MAX_ITER,
                   test_set=test_set)
    return trainer
