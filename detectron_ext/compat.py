"""Work-arounds for detectron2 v0.6 on Python 3.11 / torch 2.x, applied once on import.

- MapDataset's retry path (a mapper returning None) calls random.sample on a set, which Python
  3.11 refuses ("Population must be a sequence"); the patched method samples from a sorted list.
- The LRScheduler hook saves and restores a scheduler only if it is a
  `torch.optim.lr_scheduler._LRScheduler`; since torch 2.0 the built-in schedulers (StepLR,
  MultiStepLR, ...) derive from `LRScheduler` instead, so they were not checkpointed and a resumed
  run restarted its schedule at 0 (upstream's test_checkpoint_resume fails). The patched hook
  accepts any `LRScheduler`. (detectron2's own LRMultiplier still derives from _LRScheduler.)
- `create_ddp_model` (DefaultTrainer's DDP wrapper) passes `device_ids=[local rank]`, which DDP
  refuses for a CPU model (training on CPU processes with gloo: distributed.py); the patched one
  leaves device_ids out for a CPU model.
"""
import logging

import torch
from detectron2.data import common
from detectron2.engine import defaults, hooks
from detectron2.utils import comm

_TORCH_SCHEDULER = getattr(torch.optim.lr_scheduler, "LRScheduler", torch.optim.lr_scheduler._LRScheduler)


def _map_dataset_getitem(self, idx):
    retry_count = 0
    cur_idx = int(idx)
    while True:
        data = self._map_func(self._dataset[cur_idx])
        if data is not None:
            self._fallback_candidates.add(cur_idx)
            return data
        retry_count += 1
        self._fallback_candidates.discard(cur_idx)
        if not self._fallback_candidates:
            raise RuntimeError("the dataset mapper returned None for every element")
        cur_idx = self._rng.choice(sorted(self._fallback_candidates))
        if retry_count >= 3:
            logging.getLogger(__name__).warning(
                f"Failed to apply `_map_func` for idx: {idx}, retry count: {retry_count}")


common.MapDataset.__getitem__ = _map_dataset_getitem


def _lr_hook_state_dict(self):
    return self.scheduler.state_dict() if isinstance(self.scheduler, _TORCH_SCHEDULER) else {}


def _lr_hook_load_state_dict(self, state_dict):
    if isinstance(self.scheduler, _TORCH_SCHEDULER):
        logging.getLogger(__name__).info("Loading scheduler from state_dict ...")
        self.scheduler.load_state_dict(state_dict)


hooks.LRScheduler.state_dict = _lr_hook_state_dict
hooks.LRScheduler.load_state_dict = _lr_hook_load_state_dict


_d2_create_ddp_model = defaults.create_ddp_model


def _create_ddp_model(model, *, fp16_compression=False, **kwargs):
    if comm.get_world_size() > 1 and next(model.parameters()).device.type == "cpu":
        kwargs["device_ids"] = None
    return _d2_create_ddp_model(model, fp16_compression=fp16_compression, **kwargs)


defaults.create_ddp_model = _create_ddp_model
