"""train_net.py, detectron2's entry point for people without DVC, run as a process on a config the pipeline writes."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(*args, cwd):
    return subprocess.run([sys.executable, str(ROOT / "train_net.py"), *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=600)


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    """A config as the train stage writes it (build_config, dumped), and the COCO JSON it trains on."""
    from detectron_ext.data.register import register_coco_file
    from detectron_ext.data.sources import read_dataset
    from detectron_ext.file_io import atomic_write_json
    from helpers import run_config, tiny_params

    tmp = tmp_path_factory.mktemp("train_net")
    train_coco, _ = read_dataset({"format": "synthetic", "num_train": 4, "num_test": 2, "image_size": 96}, seed=5,
                                 work_dir=tmp)
    atomic_write_json(tmp / "train.json", train_coco)
    classes = register_coco_file("net_train", tmp / "train.json")
    cfg = run_config(tiny_params(max_iter=3, checkpoint_period=100), "gfl", classes, "net_train", tmp / "ckpt", 4)
    (tmp / "config.yaml").write_text(cfg.dump())
    return tmp


def test_trains_resumes_and_evaluates_as_detectron2s_train_net(config):
    r = run("--config-file", "config.yaml", "--dataset", "net_train=train.json", "OUTPUT_DIR", "out", cwd=config)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (config / "out" / "model_final.pth").is_file()
    r = run("--config-file", "config.yaml", "--dataset", "net_train=train.json", "--resume", "OUTPUT_DIR", "out",
            "SOLVER.MAX_ITER", "5", cwd=config)
    assert r.returncode == 0, r.stderr[-2000:]
    log = (config / "out" / "log.txt").read_text()
    assert "resumed at iteration 3" in log
    r = run("--config-file", "config.yaml", "--eval-only", "--dataset", "net_train=train.json", "OUTPUT_DIR", "ev",
            "MODEL.WEIGHTS", "out/model_final.pth", cwd=config)
    assert r.returncode == 0, r.stderr[-2000:]
    scores = json.loads(r.stdout.strip().splitlines()[-1])
    assert scores["dataset"] == "net_train" and {"mAP50", "mAP50_new", "AP", "AP50_per_class"} <= set(scores)


def test_a_dataset_named_by_its_json_path_needs_no_flag(config):
    cfg = (config / "config.yaml").read_text().replace("- net_train", f"- {config / 'train.json'}")
    (config / "by_path.yaml").write_text(cfg)
    r = run("--config-file", "by_path.yaml", "OUTPUT_DIR", "by_path", cwd=config)
    assert r.returncode == 0, r.stderr[-2000:]


@pytest.mark.parametrize("args, message", [
    (["--config-file", "config.yaml"], "config.yaml: dataset 'net_train' is not registered: give --dataset net_train="),
    (["--config-file", "config.yaml", "--dataset", "net_train=nothing.json"], "nothing.json: no such COCO JSON file"),
    (["--config-file", "missing.yaml"], "missing.yaml: no such config file"),
    (["--config-file", "train.json"], "train.json: not a detectron2 config (no VERSION key)"),
    (["--config-file", "bad_key.yaml"], "bad_key.yaml: not a config of this project (KeyError"),
    (["--config-file", "config.yaml", "--dataset", "net_train=train.json", "SOLVER.NO_SUCH_KEY", "1"],
     "command line options SOLVER.NO_SUCH_KEY 1"),
])
def test_bad_input_is_one_line(config, args, message):
    (config / "bad_key.yaml").write_text("VERSION: 2\nMODEL:\n  NO_SUCH_KEY: 1\n")
    r = run(*args, cwd=config)
    assert r.returncode == 1 and message in r.stderr, r.stderr[-2000:]
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
