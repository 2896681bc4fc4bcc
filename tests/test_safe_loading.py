"""Nothing loaded from a file runs code: a teacher or resume checkpoint (.pth), ImageNet weights
(.pkl, .pth) and a model's config.yaml, each with a planted payload that must not run."""
import pickle

import pytest
import torch
import yaml
from detectron2.modeling import build_model

from detectron_ext.checkpoint import CheckpointError, SafeCheckpointer, load_model, load_model_config, load_torch
from detectron_ext.modeling.distill_gfl import load_teacher
from detectron_ext.modeling.efficientnet import load_imagenet_weights

from helpers import run_config, tiny_params


class Payload:
    """Unpickling this writes `marker`: what a malicious file would do instead."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').write('ran')",)


@pytest.fixture
def marker(tmp_path):
    return tmp_path / "payload_ran"


@pytest.fixture
def model(tmp_path):
    return build_model(run_config(tiny_params(), out_dir=tmp_path))


def test_the_payload_is_real(marker):
    pickle.loads(pickle.dumps(Payload(marker)))  # what plain pickle.load (detectron2 v0.6's .pkl reader) does
    assert marker.read_text() == "ran"


def planted_pth(tmp_path, marker, model):
    state = {k: v for k, v in model.state_dict().items()}
    state["extra"] = Payload(marker)
    path = tmp_path / "planted.pth"
    torch.save({"model": state}, path)
    return path


def test_a_planted_teacher_checkpoint_is_refused(tmp_path, marker, model):
    path = planted_pth(tmp_path, marker, model)
    with pytest.raises(CheckpointError, match=f"{path}: not a weights-only PyTorch file: it asks for exec") as e:
        load_teacher(model, str(path), 3)
    assert not marker.exists()
    assert "weights_only" not in str(e.value) and "\n" not in str(e.value)  # no advice to load it unsafely


def test_a_planted_resume_checkpoint_is_refused(tmp_path, marker, model):
    path = planted_pth(tmp_path, marker, model)
    with pytest.raises(CheckpointError, match="not a weights-only PyTorch file"):
        SafeCheckpointer(model).load(str(path))  # how training resumes and evaluation loads a model
    assert not marker.exists()


def test_a_planted_pkl_is_refused_and_a_numpy_pkl_loads(tmp_path, marker, model):
    path = tmp_path / "imagenet.pkl"
    path.write_bytes(pickle.dumps({"model": {"stem.conv1.weight": Payload(marker)}, "__author__": "x"}))
    with pytest.raises(CheckpointError, match=r"imagenet.pkl: not loaded: it asks for builtins.exec"):
        SafeCheckpointer(model).load(str(path))
    assert not marker.exists()
    weight = model.backbone.bottom_up.stem.conv1.weight
    good = tmp_path / "good.pkl"
    good.write_bytes(pickle.dumps({"model": {"backbone.bottom_up.stem.conv1.weight": (weight * 0 + 0.5).detach().numpy()},
                                   "__author__": "test"}))
    SafeCheckpointer(model).load(str(good))
    assert torch.all(model.backbone.bottom_up.stem.conv1.weight == 0.5)


def test_planted_imagenet_weights_for_efficientnet_are_refused(tmp_path, marker):
    path = tmp_path / "lite0.pth"
    torch.save({"_conv_stem.weight": Payload(marker)}, path)
    with pytest.raises(CheckpointError, match="lite0.pth"):
        load_imagenet_weights(None, path)
    assert not marker.exists()


def test_a_planted_model_config_is_refused(tmp_path, marker, model):
    folder = tmp_path / "model"
    folder.mkdir()
    torch.save({"model": model.state_dict()}, folder / "model_final.pth")
    (folder / "config.yaml").write_text(f"MODEL:\n  WEIGHTS: !!python/object/apply:builtins.exec\n"
                                        f"  - open('{marker}', 'w').write('ran')\n")
    with pytest.raises(CheckpointError, match="config.yaml: not a detector config"):
        load_model(folder)
    assert not marker.exists()


def test_a_saved_model_folder_rebuilds_its_detector_alone(tmp_path, model):
    from detectron_ext.checkpoint import save_model
    cfg = run_config(tiny_params(), classes=("dent", "scratch", "pit"), out_dir=tmp_path)
    save_model(tmp_path / "m", model.state_dict(), cfg, 7)
    rebuilt, rebuilt_cfg = load_model(tmp_path / "m", device="cpu")
    assert rebuilt_cfg.MODEL.CLASS_NAMES == ["dent", "scratch", "pit"] and not rebuilt.training
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), rebuilt.state_dict().values()))
    assert torch.load(tmp_path / "m" / "model_final.pth", weights_only=True)["iteration"] == 7


def test_a_folder_that_is_not_a_model_says_so(tmp_path):
    with pytest.raises(CheckpointError, match="no such model folder"):
        load_model_config(tmp_path / "nope")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.yaml").write_text("MODEL: {}\n")
    with pytest.raises(CheckpointError, match="half: not a model folder .no model_final.pth"):
        load_model_config(tmp_path / "half")
    torch.save({"model": {}}, tmp_path / "half" / "model_final.pth")
    with pytest.raises(CheckpointError, match="CLASS_NAMES names 0 classes, the detector has 80"):
        load_model_config(tmp_path / "half")
    (tmp_path / "half" / "config.yaml").write_text(yaml.safe_dump({"MODEL": {"NOT_A_KEY": 1}}))
    with pytest.raises(CheckpointError, match="not a detector config of this project"):
        load_model_config(tmp_path / "half")


def test_a_truncated_pkl_is_named_so(tmp_path, model):
    path = tmp_path / "imagenet.pkl"
    path.write_bytes(pickle.dumps({"model": {"w": __import__("numpy").ones(100)}, "__author__": "x"})[:60])
    with pytest.raises(CheckpointError, match=r"imagenet.pkl: truncated or damaged \(not a readable pickle"):
        SafeCheckpointer(model).load(str(path))


def test_load_torch_reads_a_plain_state_dict(tmp_path):
    torch.save({"w": torch.ones(2)}, tmp_path / "w.pth")
    assert torch.equal(load_torch(tmp_path / "w.pth")["w"], torch.ones(2))
