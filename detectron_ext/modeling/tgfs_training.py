"""What a dense detector (FCOS, GFL) needs to train with TGFS (./tgfs.py): its options and cold start,
and, with a cost momentum, each ground truth's level costs remembered over the epochs."""
from typing import Dict, List, Optional

import torch
from detectron2.utils.events import get_event_storage
from torch import nn

from .tgfs import TGFSOptions, smoothed_level_costs


class LevelCostMemory(nn.Module):
    """Each GT's level costs over the epochs, keyed by "<image id>/<GT index>" (tag_gt_keys): `update`
    folds the current costs in (smoothed_level_costs) and returns what the levels are chosen from. The
    table is the module's extra state, so checkpoints carry it and a resumed training chooses as the
    killed one would have. In distributed training each process remembers the images it saw (rank 0's is
    saved)."""

    def __init__(self, momentum: float):
        super().__init__()
        self.momentum = momentum
        self.costs: Dict[str, torch.Tensor] = {}

    def update(self, keys: List[str], current: torch.Tensor) -> torch.Tensor:
        unknown = current.new_full((current.shape[0],), float("inf"))
        previous = torch.stack([self.costs[k].to(current) if k in self.costs else unknown for k in keys], dim=1)
        smoothed = smoothed_level_costs(previous, current, self.momentum)
        for k, column in zip(keys, smoothed.detach().cpu().unbind(dim=1)):
            self.costs[k] = column
        return smoothed

    def get_extra_state(self):
        keys = sorted(self.costs)
        return {"keys": keys, "costs": torch.stack([self.costs[k] for k in keys]) if keys else torch.zeros(0)}

    def set_extra_state(self, state):
        self.costs = dict(zip(state["keys"], state["costs"].unbind(dim=0)))


def tag_gt_keys(batched_inputs):
    """Give each training image's ground truths the keys LevelCostMemory files them under (field
    gt_keys: "<image id>/<index>"; the annotations keep the dataset's order through augmentation)."""
    for x in batched_inputs:
        image = x.get("image_id", x.get("file_name"))
        x["instances"].gt_keys = [f"{image}/{i}" for i in range(len(x["instances"]))]


class TGFSTraining:
    """Mixin of a dense detector trained with TGFS: `setup_tgfs` in its __init__, `tgfs_active()` where it
    assigns, `self.tgfs_memory` passed to assign_batch. Inference is untouched."""

    def setup_tgfs(self, tgfs: Optional[TGFSOptions], cold_start_iters: int):
        self.tgfs, self.tgfs_cold_start_iters = tgfs, cold_start_iters
        self.tgfs_memory = LevelCostMemory(tgfs.cost_momentum) if tgfs is not None and tgfs.cost_momentum > 0 else None

    def tgfs_active(self) -> bool:
        """TGFS assigns (it is on, and its cold start of the detector's own assignment is over)."""
        return self.tgfs is not None and get_event_storage().iter >= self.tgfs_cold_start_iters

    def forward(self, batched_inputs):
        if self.training and self.tgfs_memory is not None:
            tag_gt_keys(batched_inputs)
        return super().forward(batched_inputs)
