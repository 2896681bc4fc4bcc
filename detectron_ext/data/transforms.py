"""Training augmentation detectron2 lacks: a quarter turn of the image (INPUT.RANDOM_ROTATE90).

Surface defects have no canonical orientation, and a split can hold them in one orientation for training
and another for testing: NEU-DET's common split (n <= 240 train) has 88 % of its training scratches
vertical and 96 % of its test scratches horizontal (docs/pipeline.md, "Data checks"). detectron2's
RandomRotation resamples the image (cv2.warpAffine, half-pixel shifts); a quarter turn is exact.
"""
import numpy as np
from detectron2.data import transforms as T


class Rotate90Transform(T.Transform):
    """The image of height h and width w turned a quarter counter-clockwise (k = 1, np.rot90) or
    clockwise (k = 3): a point (x, y) goes to (y, w - x), resp. (h - y, x); the result is w high, h wide."""

    def __init__(self, h: int, w: int, k: int = 1):
        super().__init__()
        if k not in (1, 3):
            raise ValueError(f"k must be 1 (counter-clockwise) or 3 (clockwise), not {k!r}")
        self._set_attributes(locals())

    def apply_image(self, img: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.rot90(img, self.k, axes=(0, 1)))

    def apply_segmentation(self, segmentation: np.ndarray) -> np.ndarray:
        return self.apply_image(segmentation)

    def apply_coords(self, coords: np.ndarray) -> np.ndarray:
        x, y = coords[:, 0].copy(), coords[:, 1].copy()
        if self.k == 1:
            coords[:, 0], coords[:, 1] = y, self.w - x
        else:
            coords[:, 0], coords[:, 1] = self.h - y, x
        return coords

    def inverse(self) -> T.Transform:
        return Rotate90Transform(self.w, self.h, 4 - self.k)


class RandomRotate90(T.Augmentation):
    """A quarter turn counter-clockwise with probability `prob` (with a horizontal flip: 4 of the 8
    orientations of the square's symmetry group, among them both of every line's directions)."""

    def __init__(self, prob: float = 0.5):
        super().__init__()
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f"prob must be in [0, 1], not {prob!r}")
        self._init(locals())

    def get_transform(self, image):
        h, w = image.shape[:2]
        return Rotate90Transform(h, w) if self._rand_range() < self.prob else T.NoOpTransform()
