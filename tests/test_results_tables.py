"""tools/results_tables.py: README tables from the runs in results/, with provenance, paired differences."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

TOOLS = Path(__file__).resolve().parents[1] / "tools"
sys.path.insert(0, str(TOOLS))
import results_tables  # noqa: E402


def write_run(folder, name, old, new, split="test", teacher_sha="abc12345ff", provenance=True, commit="0123456789abcdef"):
    run = folder / name
    run.mkdir(parents=True)
    prov = {"params_sha256": "p" * 64, "code_commit": commit, "teacher": "gfl_teacher" if "_t" in name else None,
            "teacher_sha256": teacher_sha if "_t" in name else None}
    (run / "metrics.json").write_text(json.dumps({"mAP50_old": old, "mAP50_new": new, "mAP50": (old + new) / 2,
                                                  "split": split, **({"provenance": prov} if provenance else {})}))


@pytest.fixture
def repo(tmp_path):
    runs = tmp_path / "results" / "x"
    write_run(runs, "joint_s0", 70.0, 68.0)
    for teacher, shift, gain in (("a", 0.0, 0.0), ("b", 2.0, 1.0)):
        for seed in (0, 1):
            write_run(runs, f"erd_t{teacher}_s{seed}", 50.0 + shift, 40.0 + seed, teacher_sha=f"{teacher}" * 10)
            write_run(runs, f"sdidd_t{teacher}_s{seed}", 54.0 + shift + gain, 42.0 + seed,
                      teacher_sha=f"{teacher}" * 10)
    tables = {"demo": {"runs": "results/x", "split": "test", "compare": ["erd"],
                       "rows": {"joint": "joint training", "erd": "ERD", "sdidd": "SD-IDD"}}}
    (tmp_path / "results" / "tables.yaml").write_text(yaml.safe_dump(tables, sort_keys=False))
    (tmp_path / "README.md").write_text("intro\n<!-- results-table: demo -->\nold typed table\n"
                                        "<!-- /results-table: demo -->\nend\n")
    return tmp_path


def test_rows_give_mean_std_over_runs_and_the_paired_difference(repo):
    table = yaml.safe_load((repo / "results" / "tables.yaml").read_text())["demo"]
    text = results_tables.render(table, repo)
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in text.splitlines() if line.startswith("|")]
    assert rows[4][:4] == ["SD-IDD", "4", "a, b", "55.5 ± 1.7"]  # old: 54, 54, 57, 57
    # SD-IDD − ERD on the 4 (teacher, seed) pairs: (4 + 2) / 2 on a, (5 + 2) / 2 on b; then per teacher
    assert rows[4][6] == "+3.2 ± 0.3 (4; a +3.0, b +3.5)"
    assert rows[3][6] == ""  # the compared row itself
    assert rows[2][:6] == ["joint training", "1", "-", "70.0", "68.0", "69.0"] and rows[2][6] == ""
    assert "teachers a: sha256 aaaaaaaa" in text and "b: sha256 bbbbbbbb" in text


def test_the_readme_block_is_replaced_and_check_sees_a_stale_one(repo):
    cmd = [sys.executable, str(TOOLS / "results_tables.py"), "--tables", str(repo / "results" / "tables.yaml"),
           "--pages", str(repo / "README.md")]
    stale = subprocess.run(cmd + ["--check"], capture_output=True, text=True)
    assert stale.returncode == 1 and "README.md not what" in stale.stderr
    assert subprocess.run(cmd, capture_output=True, text=True).returncode == 0
    readme = (repo / "README.md").read_text()
    assert "old typed table" not in readme and readme.startswith("intro\n") and readme.endswith("end\n")
    assert subprocess.run(cmd + ["--check"], capture_output=True, text=True).returncode == 0


@pytest.mark.parametrize("case, message", [
    ("split", "scored on the val split, the table reads test"),
    ("provenance", "no provenance"),
    ("unlisted", "rows the table does not list: other"),
    ("unlisted, not left out", "rows the table does not list: other"),
    ("unknown commit", "no provenance"),
    ("retrained teacher", "teacher a names several teachers")])
def test_runs_without_provenance_or_on_another_split_are_refused(repo, case, message):
    runs = repo / "results" / "x"
    if case == "split":
        write_run(runs, "sdidd_ta_s5", 1.0, 1.0, split="val")
    elif case == "provenance":
        write_run(runs, "sdidd_ta_s5", 1.0, 1.0, provenance=False)
    elif case.startswith("unlisted"):
        write_run(runs, "other_ta_s0", 1.0, 1.0)
        write_run(runs, "older_ta_s0", 1.0, 1.0)
    elif case == "unknown commit":
        write_run(runs, "sdidd_ta_s5", 1.0, 1.0, commit="unknown")
    else:
        write_run(runs, "sdidd_ta_s5", 1.0, 1.0, teacher_sha="c" * 10)
    table = yaml.safe_load((repo / "results" / "tables.yaml").read_text())["demo"]
    table["leave_out"] = ["older"] + (["other"] if case == "unlisted" else [])
    if case == "unlisted":  # both left out: the table renders without them
        text = results_tables.render(table, repo)
        assert sum(line.startswith("|") for line in text.splitlines()) == 2 + 3  # header, rule, the 3 listed rows
        table["leave_out"] = ["older"]
    with pytest.raises(results_tables.TableError, match=message):
        results_tables.render(table, repo)


def test_the_projects_readme_tables_are_what_results_generate():
    """No typed result table: every block in README.md and docs/results.md is what results/tables.yaml generates."""
    r = subprocess.run([sys.executable, str(TOOLS / "results_tables.py"), "--check"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_run_names_and_readme_blocks():
    assert results_tables.RUN.match("sdidd_topk50_s0").group("row", "teacher") == ("sdidd_topk50", None)
    assert results_tables.RUN.match("global_erdbox_tb_s2").group("row", "teacher", "seed") == ("global_erdbox", "b", "2")
    with pytest.raises(results_tables.TableError, match="table\\(s\\) typed not listed"):
        results_tables.replace_blocks("<!-- results-table: typed -->\nx\n<!-- /results-table: typed -->\n", {}, "p")
    text, keys = results_tables.replace_blocks("a\n<!-- results-table: t -->\nold\n<!-- /results-table: t -->\n",
                                               {"t": "new", "u": "elsewhere"}, "p")
    assert text == "a\n<!-- results-table: t -->\nnew\n<!-- /results-table: t -->\n" and keys == {"t"}


def test_joint_from_regroups_a_joint_run_by_the_students_task(repo):
    """A 2+2+2 table reuses the 3+3 folder's joint model: its old / new are the means of its AP50 per class
    over the task's groups (params.yaml), not the 3+3 numbers its metrics.json carries; the chains' earlier
    phase gets a column."""
    classes = ["a1", "a2", "b1", "b2", "c1", "c2"]
    params = {"datasets": {"toy": {"class_groups": [classes[:3], classes[3:]],
                                   "tasks": {"2+2+2": [classes[:2], classes[2:4], classes[4:]]}}}}
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    three = repo / "results" / "x"
    ap = dict(zip(classes, [10.0, 20.0, 30.0, 40.0, 50.0, 90.0]))
    metrics = json.loads((three / "joint_s0" / "metrics.json").read_text())
    (three / "joint_s0" / "metrics.json").write_text(json.dumps({**metrics, "AP50_per_class": ap, "mAP50": 40.0}))
    six = repo / "results" / "y"
    for row, old, new in (("erd", 40.0, 30.0), ("sdidd", 42.0, 33.0)):
        write_run(six, f"{row}_ta_s0", old, new)
        path = six / f"{row}_ta_s0" / "metrics.json"
        phases = {"1": {"mAP50": old + 10}, "2": {"mAP50": (old + new) / 2}}
        path.write_text(json.dumps({**json.loads(path.read_text()), "dataset": "toy", "task": "2+2+2", "phases": phases}))
    table = {"runs": "results/y", "split": "test", "compare": ["erd"], "joint_from": "results/x",
             "rows": {"joint": "joint training", "erd": "ERD", "sdidd": "SD-IDD"}}
    text = results_tables.render(table, repo)
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in text.splitlines() if line.startswith("|")]
    assert rows[2][:6] == ["joint training", "1", "-", "25.0", "70.0", "40.0"]  # old a1..b2, new c1, c2
    assert rows[0][6] == "mAP_all after phase 1" and [r[6] for r in rows[2:]] == ["-", "50.0", "52.0"]
    assert rows[4][5:] == ["37.5", "52.0", "+2.5 (1)"] and "`results/x`'s joint runs" in text
    params["datasets"]["toy"]["tasks"] = {}
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(results_tables.TableError, match="no class groups for toy task 2\\+2\\+2"):
        results_tables.render(table, repo)


def test_every_table_is_on_a_page_and_a_page_may_hold_some(repo):
    """The headline on one page (README), every table on another (docs/results.md); a table on no page is refused."""
    (repo / "results.md").write_text("<!-- results-table: demo -->\n<!-- /results-table: demo -->\n")
    (repo / "README.md").write_text("no tables here\n")
    cmd = [sys.executable, str(TOOLS / "results_tables.py"), "--tables", str(repo / "results" / "tables.yaml"),
           "--pages", str(repo / "README.md"), str(repo / "results.md")]
    assert subprocess.run(cmd, capture_output=True, text=True).returncode == 0
    assert "| SD-IDD" in (repo / "results.md").read_text() and (repo / "README.md").read_text() == "no tables here\n"
    tables = yaml.safe_load((repo / "results" / "tables.yaml").read_text())
    (repo / "results" / "tables.yaml").write_text(yaml.safe_dump({**tables, "other": tables["demo"]}))
    r = subprocess.run(cmd + ["--check"], capture_output=True, text=True)
    assert r.returncode == 1 and "table(s) other of" in r.stderr and "are on none of" in r.stderr


def test_runs_without_a_teacher_pair_by_seed(tmp_path):
    """A table of joint models (TGFS against its detector): the rows pair on the seed."""
    runs = tmp_path / "results" / "y"
    for seed, (plain, tgfs) in enumerate(((60.0, 61.0), (62.0, 62.5), (58.0, 60.5))):
        write_run(runs, f"fcos_joint_s{seed}", plain, plain)
        write_run(runs, f"fcos_tgfs_joint_s{seed}", tgfs, tgfs)
    write_run(runs, "fcos_tgfs_joint_s7", 99.0, 99.0)  # no FCOS run of seed 7: left out of the pairs
    table = {"runs": "results/y", "split": "test", "compare": ["fcos_joint"],
             "rows": {"fcos_joint": "FCOS", "fcos_tgfs_joint": "FCOS + TGFS"}}
    rows = [[c.strip() for c in line.strip("|").split("|")]
            for line in results_tables.render(table, tmp_path).splitlines() if line.startswith("|")]
    assert rows[2][:3] == ["FCOS", "3", "-"] and rows[2][6] == ""
    assert rows[3][1] == "4" and rows[3][6] == "+1.3 ± 1.0 (3)"  # +1.0, +0.5, +2.5
