"""Work-arounds for detectron2 v0.6 on Python 3.11 / torch 2.x, applied once on import.

- MapDataset's retry path (a mapper returning None) calls random.sample on a set, which Python
  3.11 refuses ("Population must be a sequence"); the patched method samples from a sorted list.
"""
import logging

from detectron2.data import common


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
