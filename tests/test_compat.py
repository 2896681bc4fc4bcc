"""detectron2 v0.6 work-arounds on Python 3.11."""
import detectron_ext.compat  # noqa: F401
from detectron2.data.common import MapDataset


def test_map_dataset_retry_path_on_python_311():
    """Upstream calls random.sample on a set (a TypeError since Python 3.11) when the mapper
    returns None; the patched retry picks another element."""
    ds = MapDataset(list(range(5)), lambda x: None if x == 2 else x * 10)
    assert ds[2] in {0, 10, 30, 40}
    assert [ds[i] for i in (0, 1, 3, 4)] == [0, 10, 30, 40]


def test_trainer_resume_restores_a_torch_builtin_scheduler(tmp_path):
    """upstream v0.6's test_checkpoint_resume: a StepLR scheduler must be checkpointed with the
    trainer, so a resumed run continues its schedule instead of restarting it at 0."""
    import torch
    from detectron2.checkpoint import Checkpointer
    from detectron2.engine import SimpleTrainer, hooks

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(1))

        def forward(self, _):
            return {"loss": (self.w ** 2).sum()}

    def data():
        while True:
            yield 0

    def make():
        model = Model()
        opt = torch.optim.SGD(model.parameters(), 0.1)
        sched = torch.optim.lr_scheduler.StepLR(opt, 3)
        trainer = SimpleTrainer(model, data(), opt)
        ckpt = Checkpointer(model, str(tmp_path), optimizer=opt, trainer=trainer)
        trainer.register_hooks([hooks.LRScheduler(scheduler=sched), hooks.PeriodicCheckpointer(ckpt, 10)])
        return trainer, ckpt, sched, opt

    trainer, _, sched, opt = make()
    trainer.train(0, 12)
    assert sched.last_epoch == 12 and abs(opt.param_groups[0]["lr"] - 1e-5) < 1e-12
    trainer, ckpt, sched, opt = make()
    ckpt.resume_or_load("non_exist.pth")
    assert trainer.iter == 11
    assert sched.last_epoch == 12  # restarted at 0 before the fix
    assert abs(opt.param_groups[0]["lr"] - 1e-5) < 1e-12
