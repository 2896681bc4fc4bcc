"""The quarter-turn augmentation (INPUT.RANDOM_ROTATE90, params train.random_rotate90): exact on pixels
and boxes, invertible, and in the training loader only when asked for."""
import numpy as np
import pytest
import torch
from detectron2.data import transforms as T

from detectron_ext import engine
from detectron_ext.data.register import register_coco_file
from detectron_ext.data.sources import read_dataset
from detectron_ext.data.transforms import RandomRotate90, Rotate90Transform
from detectron_ext.file_io import atomic_write_json

from helpers import run_config, tiny_params


def marked_image(h=40, w=64, box=(5, 7, 30, 12)):
    """An h x w image, zero but for the pixels of box (x0, y0, x1, y1): a thin horizontal bar."""
    img = np.zeros((h, w, 3), dtype=np.uint8)
    x0, y0, x1, y1 = box
    img[y0:y1, x0:x1] = 255
    return img, np.array([box], dtype=np.float32)


def box_of_marked_pixels(img):
    ys, xs = np.nonzero(img[..., 0])
    return [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]


@pytest.mark.parametrize("k", [1, 3])
def test_quarter_turn_moves_the_box_with_its_pixels(k):
    img, boxes = marked_image()
    t = Rotate90Transform(*img.shape[:2], k=k)
    turned = t.apply_image(img)
    assert turned.shape == (64, 40, 3)  # w high, h wide
    out = t.apply_box(boxes)[0]
    assert out.tolist() == box_of_marked_pixels(turned)
    assert out[3] - out[1] > out[2] - out[0]  # the horizontal bar now stands upright
    assert np.array_equal(t.inverse().apply_image(turned), img)
    assert np.allclose(t.inverse().apply_box(t.apply_box(boxes)), boxes)


def test_random_quarter_turn_follows_its_probability():
    img, _ = marked_image()
    assert isinstance(RandomRotate90(0.0).get_transform(img), T.NoOpTransform)
    assert isinstance(RandomRotate90(1.0).get_transform(img), Rotate90Transform)
    with pytest.raises(ValueError, match="prob"):
        RandomRotate90(1.5)
    with pytest.raises(ValueError, match="k must be"):
        Rotate90Transform(4, 4, k=2)


def test_training_loader_turns_images_and_boxes_only_when_asked(tmp_path):
    coco, _ = read_dataset({"format": "synthetic", "num_train": 4, "num_test": 0, "image_size": 96},
                           seed=5, work_dir=tmp_path)
    atomic_write_json(tmp_path / "train.json", coco)
    classes = register_coco_file("rotate90_loader", tmp_path / "train.json")

    def first_batch(prob):
        cfg = run_config(tiny_params(batch=2), "gfl", classes, "rotate90_loader", tmp_path / "out", 4)
        cfg.INPUT.RANDOM_FLIP = "none"
        cfg.INPUT.RANDOM_ROTATE90 = prob
        np.random.seed(0)
        return next(iter(engine.DefectTrainer.build_train_loader(cfg)))

    plain, turned = first_batch(0.0), first_batch(1.0)
    for a, b in zip(plain, turned):
        assert a["file_name"] == b["file_name"]  # same data order
        assert torch.equal(b["image"], torch.rot90(a["image"], 1, dims=(1, 2)))
        h, w = a["image"].shape[1:]
        expected = Rotate90Transform(h, w).apply_box(a["instances"].gt_boxes.tensor.numpy())
        assert np.allclose(b["instances"].gt_boxes.tensor.numpy(), expected)
        assert not torch.equal(a["image"], b["image"])
