"""tools/make_workspace.py as a user runs it: a workspace from a params file and -S overrides, its split made."""
import json
import subprocess
import sys

import yaml

from helpers import ROOT, tiny_params

TOOL = ROOT / "tools" / "make_workspace.py"


def make(*args):
    return subprocess.run([sys.executable, str(TOOL), *map(str, args)], capture_output=True, text=True, timeout=600)


def test_workspace_from_params_and_overrides_has_its_split(tmp_path):
    source = tmp_path / "src" / "params.yaml"
    source.parent.mkdir()
    params = tiny_params()
    params["datasets"]["neu-det"]["root"] = "data/NEU"  # relative: resolved against the source's folder
    source.write_text(yaml.safe_dump(params, sort_keys=False))
    r = make(tmp_path / "ws", "--params", source, "-S", "train.seed=7", "-S", "alpha=3")
    assert r.returncode == 0, r.stderr[-2000:]
    made = yaml.safe_load((tmp_path / "ws" / "params.yaml").read_text())
    assert made["train"]["seed"] == 7 and made["alpha"] == 3
    assert made["datasets"]["neu-det"]["root"] == str(tmp_path / "src" / "data" / "NEU")
    split = json.loads((tmp_path / "ws" / "data" / "splits" / "phase0_train.json").read_text())
    assert split["images"], "the split stage ran: phase 0's training images listed"
    assert (tmp_path / "ws" / "stages").resolve() == ROOT / "stages"


def test_bad_override_is_one_line_naming_it(tmp_path):
    r = make(tmp_path / "ws", "-S", "train.nosuch=1")
    assert r.returncode == 1
    assert r.stderr.strip().count("\n") == 0 and "nosuch" in r.stderr, r.stderr
    assert not (tmp_path / "ws").exists(), "nothing made from bad params"
