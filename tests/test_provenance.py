"""pipeline/provenance.py: what every metrics file records about what made it."""
import hashlib
import re
from pathlib import Path

from pipeline.provenance import code_commit, provenance, write_params_copy
from pipeline.runs import RunSpec

from helpers import ROOT


def test_code_commit_in_and_outside_a_checkout(tmp_path):
    assert re.fullmatch(r"[0-9a-f]{40}(\+dirty)?", code_commit(ROOT))
    assert code_commit(tmp_path) == "unknown"


def test_a_students_provenance_names_its_params_weights_and_teacher(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = RunSpec("chain/phase1", "gfl", "1", Path("t.json"), Path("t.json"), ["a", "b"], ["a"], ["b"], "sdidd",
                   "teacher")
    spec.model_dir.mkdir(parents=True)
    spec.teacher_weights.parent.mkdir(parents=True)
    spec.teacher_weights.write_bytes(b"teacher weights")
    (spec.model_dir / "model_final.pth").write_bytes(b"student weights")
    write_params_copy(spec.model_dir, {"alpha": 2.0, "distill": {"cls_mode": "selective"}})
    p = provenance({"alpha": 3.0}, spec)  # the copy written at training wins over the params now
    copy = (spec.model_dir / "params.yaml").read_text()
    assert "alpha: 2.0" in copy and p["params_sha256"] == hashlib.sha256(copy.encode()).hexdigest()
    assert p["teacher_sha256"] == hashlib.sha256(b"teacher weights").hexdigest()
    assert p["model_sha256"] == hashlib.sha256(b"student weights").hexdigest()
    assert p["teacher"] == "teacher" and p["code_commit"] == code_commit(ROOT)  # the code's checkout, not the cwd
    plain = RunSpec("joint", "gfl", "joint", Path("t.json"), Path("t.json"), ["a"], [], ["a"])
    assert provenance({}, plain)["teacher_sha256"] is None
