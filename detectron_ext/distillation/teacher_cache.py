"""The frozen teacher's outputs per image, kept between epochs: the teacher sees each training image
(after augmentation) once instead of once per epoch.

An entry is keyed by the exact bytes and shape of the image as the teacher sees it (normalised and
padded), so an augmentation that changes the image, or a batch padded to another size, is a new entry;
the teacher is frozen and in eval mode (per-image normalisation), so an image's outputs do not depend
on the rest of its batch. Missing images go through the teacher one at a time, so an output is the same
bits whether it was just computed or cached, and a resumed run (empty cache) equals an uninterrupted one.
Entries are added until `max_bytes` is reached (none after: the cache never evicts)."""
import hashlib
from typing import Callable, List, Sequence, Tuple

import torch

Entry = Tuple[torch.Tensor, ...]


def image_key(image: torch.Tensor) -> bytes:
    h = hashlib.blake2b(str((tuple(image.shape), image.dtype)).encode(), digest_size=16)
    h.update(image.detach().contiguous().cpu().numpy().tobytes())
    return h.digest()


class TeacherCache:
    def __init__(self, max_bytes: int):
        self.max_bytes = int(max_bytes)
        self.entries: dict = {}
        self.bytes = 0
        self.hits = self.misses = 0

    def __len__(self):
        return len(self.entries)

    def outputs(self, images: torch.Tensor, teacher: Callable[[torch.Tensor], Entry]) -> List[Entry]:
        """Each image's teacher outputs (a tuple of tensors without the batch dimension): cached, or
        `teacher(one_image_batch)` (tensors with a batch dimension of 1) and cached while room is left."""
        out = []
        for image in images:
            key = image_key(image)
            entry = self.entries.get(key)
            if entry is None:
                self.misses += 1
                entry = tuple(t[0] for t in teacher(image[None]))
                size = sum(t.numel() * t.element_size() for t in entry)
                if self.bytes + size <= self.max_bytes:
                    self.entries[key] = entry
                    self.bytes += size
            else:
                self.hits += 1
            out.append(entry)
        return out


def stack(entries: Sequence[Entry]) -> Entry:
    """Per-image entries back into batch tensors."""
    return tuple(torch.stack(parts) for parts in zip(*entries))
