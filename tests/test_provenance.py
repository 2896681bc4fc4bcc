"""pipeline/provenance.py: what every metrics file records about what made it."""
import hashlib
import json
import re
from pathlib import Path

from pipeline.provenance import (code_commit, keep_record, provenance, read_record, same_inputs, start_record,
                                 training_record)
from pipeline.runs import RunSpec

from helpers import ROOT


def test_code_commit_in_and_outside_a_checkout(tmp_path):
    assert re.fullmatch(r"[0-9a-f]{40}(\+dirty)?", code_commit(ROOT))
    assert code_commit(tmp_path) == "unknown"


def student(tmp_path):
    spec = RunSpec("chain/phase1", "gfl", "1", Path("train.json"), Path("t.json"), ["a", "b"], ["a"], ["b"], "sdidd",
                   "teacher")
    spec.teacher_weights.parent.mkdir(parents=True)
    spec.teacher_weights.write_bytes(b"teacher weights")
    Path("train.json").write_text('{"images": [1]}')
    return spec


def test_the_record_is_made_at_training_and_kept_with_the_weights(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = student(tmp_path)
    record = training_record({"alpha": 2.0}, spec)
    assert record["teacher_sha256"] == hashlib.sha256(b"teacher weights").hexdigest()
    assert record["train_json_sha256"] == hashlib.sha256(b'{"images": [1]}').hexdigest()
    assert record["code_commit"] == code_commit(ROOT)  # the code's checkout, not the working directory
    spec.checkpoint_dir.mkdir(parents=True)
    start_record(spec.checkpoint_dir, {"alpha": 2.0}, record)
    # resumed with other code: that commit added, the rest kept
    start_record(spec.checkpoint_dir, {"alpha": 2.0}, {**record, "code_commit": "f" * 40})
    kept = read_record(spec.checkpoint_dir)
    assert kept["code_commit"] == record["code_commit"] and kept["resumed_with"] == ["f" * 40]
    spec.model_dir.mkdir(parents=True)
    (spec.model_dir / "model_final.pth").write_bytes(b"student weights")
    keep_record(spec.checkpoint_dir, spec.model_dir)
    p = provenance({"alpha": 3.0}, spec)  # the record of training wins over the params now
    copy = (spec.model_dir / "params.yaml").read_text()
    assert "alpha: 2.0" in copy and p["params_sha256"] == hashlib.sha256(copy.encode()).hexdigest()
    assert p["model_sha256"] == hashlib.sha256(b"student weights").hexdigest() and p["teacher"] == "teacher"
    assert "recorded" not in p and p["evaluated_with"] == code_commit(ROOT)
    json.dumps(p)


def test_other_training_data_or_teacher_is_not_the_same_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = student(tmp_path)
    record = training_record({}, spec)
    assert same_inputs(record, dict(record)) and not same_inputs({}, record)  # unrecorded: not the same
    Path("train.json").write_text('{"images": [1, 2]}')  # another validation share
    assert not same_inputs(record, training_record({}, spec))
    spec.teacher_weights.write_bytes(b"retrained")
    assert not same_inputs(record, training_record({}, spec))
    plain = RunSpec("joint", "gfl", "joint", Path("train.json"), Path("t.json"), ["a"], [], ["a"])
    assert training_record({}, plain)["teacher_sha256"] is None
    assert provenance({}, plain)["recorded"] == "at evaluation"  # a model trained before records existed
