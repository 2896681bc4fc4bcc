"""tools/compare_traces.py: means over the last iterations per run, a PNG, clear errors."""
import json
import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import compare_traces  # noqa: E402


def trace(path: Path, lambdas, feats):
    rows = [{"iteration": i, "fr_lambda": lam, "selected_cls": 1.0, "selected_feat": f, "selected_reg": 0.0}
            for i, (lam, f) in enumerate(zip(lambdas, feats))]
    # a resumed run logs iteration 1 twice: the later row counts
    rows.insert(2, {**rows[1], "fr_lambda": 9.0})
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_means_over_the_last_iterations_and_outputs(tmp_path):
    a = trace(tmp_path / "a.csv", [0.5, 0.45, 0.4, 0.4], [100, 120, 140, 160])
    b = trace(tmp_path / "b.csv", [0.8] * 4, [10, 20, 30, 40])
    out = tmp_path / "out" / "lam"
    compare_traces.main([f"learnable={a}", f"fixed={b}", "--out", str(out), "--last", "2"])
    table = json.loads(out.with_suffix(".json").read_text())
    assert table["learnable"]["fr_lambda"] == pytest.approx(0.4)
    assert table["learnable"]["selected_feat"] == pytest.approx(150.0)
    assert table["fixed"]["selected_feat"] == pytest.approx(35.0)
    assert out.with_suffix(".png").stat().st_size > 0
    assert "| learnable" in out.with_suffix(".md").read_text()
    # iteration 1 logged twice (a resumed run): the later row (λ 9.0) is the one kept
    three = compare_traces.summary(compare_traces.read_traces([f"a={a}"]), last=3)
    assert three.loc["a", "fr_lambda"] == pytest.approx((9.0 + 0.4 + 0.4) / 3)


def test_bad_entries_are_errors_naming_them(tmp_path):
    with pytest.raises(SystemExit, match="LABEL=PATH"):
        compare_traces.read_traces([str(tmp_path / "x.csv")])
    with pytest.raises(FileNotFoundError, match="missing.csv"):
        compare_traces.read_traces([f"a={tmp_path / 'missing.csv'}"])
    (tmp_path / "log.csv").write_text("iteration,loss\n0,1.0\n")
    with pytest.raises(ValueError, match="not a distillation trace"):
        compare_traces.read_traces([f"a={tmp_path / 'log.csv'}"])


def test_a_trace_without_fr_is_read_and_plotted(tmp_path):
    """ERD's and FR-off SD-IDD's traces have no fr_lambda column: their selected counts still compare."""
    erd = tmp_path / "erd.csv"
    pd.DataFrame({"iteration": [0, 1, 2], "selected_cls": [40.0, 50.0, 60.0],
                  "selected_reg": [90.0, 95.0, 100.0]}).to_csv(erd, index=False)
    sdidd = trace(tmp_path / "sdidd.csv", [0.5] * 3, [10, 20, 30])
    out = tmp_path / "t"
    compare_traces.main([f"erd={erd}", f"sdidd={sdidd}", "--out", str(out), "--last", "2"])
    table = json.loads(out.with_suffix(".json").read_text())
    assert table["erd"]["selected_reg"] == pytest.approx(97.5)
    assert table["erd"]["selected_cls"] == pytest.approx(55.0)
    assert table["erd"]["fr_lambda"] is None  # no λ traced: null, not 0
    assert out.with_suffix(".png").stat().st_size > 0


def test_training_logs_are_tabled_over_their_last_iterations(tmp_path):
    """train_log.csv has a row every 20 iterations: `--last` counts iterations, not rows; no PNG."""
    log = tmp_path / "train_log.csv"
    pd.DataFrame({"iteration": [19, 39, 59, 79], "loss_bbox": [0.9, 0.7, 0.5, 0.3],
                  "loss_qfl": [1.0, 0.8, 0.6, 0.4]}).to_csv(log, index=False)
    out = tmp_path / "losses"
    compare_traces.main([f"sdidd={log}", "--out", str(out), "--last", "40"])
    table = json.loads(out.with_suffix(".json").read_text())
    assert table["sdidd"]["loss_bbox"] == pytest.approx(0.4)  # iterations 59 and 79
    assert table["sdidd"]["loss_qfl"] == pytest.approx(0.5)
    assert not out.with_suffix(".png").exists()
