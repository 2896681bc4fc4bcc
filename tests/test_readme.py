"""The README is a short manual that stays true: its pipeline picture is `dvc dag`'s, every chapter it sends a
reader to exists and every chapter is reachable from it, and the test command it gives is the one CI runs."""
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def test_the_readme_is_a_short_manual():
    assert len(README.splitlines()) <= 300


def test_the_pipeline_picture_is_what_dvc_dag_draws():
    block = re.search(r"<!-- dvc-dag -->\n```mermaid\n(.*?)```\n<!-- /dvc-dag -->", README, re.S)
    assert block, "README.md: no <!-- dvc-dag --> mermaid block"
    r = subprocess.run([sys.executable, "-m", "dvc", "dag", "--mermaid"], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert block.group(1).strip() == r.stdout.strip(), "README.md's pipeline picture is stale: paste `dvc dag --mermaid`"


def test_every_chapter_is_linked_and_exists():
    named = set(re.findall(r"docs/[\w-]+\.md", README))
    present = {f"docs/{p.name}" for p in (REPO / "docs").glob("*.md")}
    assert named == present, (named, present)


def test_the_readme_test_command_is_what_ci_runs():
    assert "make test" in README and "make test" in (REPO / ".ci" / "run").read_text()
