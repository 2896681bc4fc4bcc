"""A training run killed after a checkpoint and resumed ends bit-identical to an uninterrupted one:
same iteration, learning rate, data order and augmentation draws (the CI regression check relies on it)."""
import pytest
import torch
from detectron2.engine import hooks

from detectron_ext import engine
from detectron_ext.data.register import register_coco_file
from detectron_ext.data.sources import read_dataset
from detectron_ext.file_io import atomic_write_json

from helpers import run_config, tiny_params


class Killed(Exception):
    pass


class KillAfter(hooks.HookBase):
    def __init__(self, iteration):
        self.iteration = iteration

    def after_step(self):
        if self.trainer.iter == self.iteration:
            raise Killed


def test_resumed_run_equals_uninterrupted_run(tmp_path, monkeypatch):
    images = 6
    params = tiny_params(max_iter=8, checkpoint_period=4, batch=2)
    train_coco, _ = read_dataset({"format": "synthetic", "num_train": images, "num_test": 0, "image_size": 96},
                                 seed=3, work_dir=tmp_path)
    atomic_write_json(tmp_path / "train.json", train_coco)
    classes = register_coco_file("resume_exact", tmp_path / "train.json")

    def run(out, kill_at=None):
        cfg = run_config(params, "gfl", classes, "resume_exact", tmp_path / out, images)
        cfg.INPUT.RANDOM_FLIP = "horizontal"  # augmentation draws from numpy's global generator
        if kill_at is not None:
            build_hooks = engine.DefectTrainer.build_hooks
            monkeypatch.setattr(engine.DefectTrainer, "build_hooks",
                                lambda self: build_hooks(self) + [KillAfter(kill_at)])
            with pytest.raises(Killed):
                engine.train(cfg)
            monkeypatch.undo()
        trainer = engine.train(cfg)
        return trainer.model.state_dict(), trainer.start_iter

    uninterrupted, start = run("a")
    resumed, resumed_start = run("b", kill_at=5)  # checkpoints at iterations 3 and 7: resumes at 4
    assert (start, resumed_start) == (0, 4)
    assert all(torch.equal(uninterrupted[k], resumed[k]) for k in uninterrupted)


def test_sampler_skips_into_the_same_stream():
    full = engine.ResumableTrainingSampler(5, seed=7)
    later = engine.ResumableTrainingSampler(5, seed=7, skip=7)
    stream = [i for _, i in zip(range(20), iter(full))]
    assert [i for _, i in zip(range(13), iter(later))] == stream[7:]
    assert sorted(stream[:5]) == list(range(5))  # an epoch is a permutation
