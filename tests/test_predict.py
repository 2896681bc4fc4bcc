"""`defect-il predict`: a saved model folder on images, folders and globs; COCO detections named by
the model's classes, drawn images, unreadable images skipped and reported (or stopping), one-line errors;
run as a process as a user runs it: no warnings, exit 1 when nothing could be read, damaged weights named so,
`--help` without loading torch."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from defect_il.cli import main

from helpers import ROOT, coco_detections, lowest_kept, only_progress_bars, same_detections


def defect_il(*args):
    exe = Path(sys.executable).parent / "defect-il"
    assert exe.is_file(), "defect-il is installed by `pip install -e .` (make setup)"
    env = {**os.environ, "PYTHONWARNINGS": "default"}
    return subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, cwd=ROOT, env=env)


def test_the_command_on_a_folder_and_on_one_image(model_and_images, tmp_path):
    model, folder, classes = model_and_images
    r = defect_il("predict", model, folder, "-o", tmp_path / "folder")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("3 images, ") and r.stdout.endswith("/drawn/\n") and len(r.stdout.splitlines()) == 1
    assert only_progress_bars(r.stderr), r.stderr  # no warnings, no log lines
    r = defect_il("predict", model, folder / "img_1.png", "-o", tmp_path / "one", "--no-draw")
    assert r.returncode == 0 and r.stdout.startswith("1 images, "), r.stderr
    whole, one = (json.loads((tmp_path / d / "detections.json").read_text()) for d in ("folder", "one"))
    assert [c["name"] for c in one["categories"]] == classes
    image_id = next(im["id"] for im in whole["images"] if im["file_name"].endswith("img_1.png"))
    same_detections(coco_detections(one, 1), coco_detections(whole, image_id), lowest_kept(one, whole))


def test_the_command_when_nothing_can_be_read_or_the_weights_are_damaged(model_and_images, tmp_path):
    model, folder, _ = model_and_images
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.jpg").write_bytes(b"not an image")
    (bad / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    r = defect_il("predict", model, bad, "-o", tmp_path / "out")
    last = r.stderr.strip().splitlines()[-1]
    assert r.returncode == 1 and last.startswith(f"error: {bad}: none of its 2 image(s) could be read (first: ")
    assert "object at 0x" not in r.stderr and not (tmp_path / "out" / "detections.json").exists()
    damaged = tmp_path / "damaged"
    shutil.copytree(model, damaged)
    weights = damaged / "model_final.pth"
    weights.write_bytes(weights.read_bytes()[:5000])
    r = defect_il("predict", damaged, folder, "-o", tmp_path / "o2")
    assert r.returncode == 1 and r.stderr.strip().splitlines() == [
        f"error: {weights}: truncated or damaged (not a readable PyTorch file)"]


def test_help_answers_without_loading_torch():
    code = ("import sys\nfrom defect_il.cli import main\ntry:\n    main(['predict', '--help'])\nexcept SystemExit:\n"
            "    pass\nprint('torch' in sys.modules, 'detectron2' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0 and r.stdout.splitlines()[-1] == "False False", r.stdout + r.stderr


def test_predict_a_folder_writes_named_coco_detections_and_drawn_images(model_and_images, tmp_path):
    model, folder, classes = model_and_images
    main(["predict", str(model), str(folder), "-o", str(tmp_path / "out"), "--batch", "2"])
    coco = json.loads((tmp_path / "out" / "detections.json").read_text())
    assert [c["name"] for c in coco["categories"]] == classes
    assert len(coco["images"]) == 3 and coco["info"]["skipped"] == []
    assert coco["annotations"] and all(0 <= a["score"] <= 1 and len(a["bbox"]) == 4 for a in coco["annotations"])
    assert {a["image_id"] for a in coco["annotations"]} <= {im["id"] for im in coco["images"]}
    assert sorted(p.name for p in (tmp_path / "out" / "drawn").iterdir()) == ["img_0.jpg", "img_1.jpg", "img_2.jpg"]


def test_batch_size_does_not_change_the_detections(model_and_images, tmp_path):
    model, folder, _ = model_and_images
    main(["predict", str(model), str(folder), "-o", str(tmp_path / "a"), "--batch", "1", "--no-draw"])
    main(["predict", str(model), str(folder / "*.png"), "-o", str(tmp_path / "b"), "--batch", "3", "--no-draw"])
    a, b = (json.loads((tmp_path / d / "detections.json").read_text()) for d in "ab")
    assert a["images"] == b["images"]
    for im in a["images"]:
        same_detections(coco_detections(a, im["id"]), coco_detections(b, im["id"]), lowest_kept(a, b))
    assert not (tmp_path / "a" / "drawn").exists()


def test_an_unreadable_image_is_skipped_and_reported_or_stops(model_and_images, tmp_path, capsys):
    model, folder, _ = model_and_images
    bad = tmp_path / "imgs"
    bad.mkdir()
    (bad / "good.png").write_bytes((folder / "img_0.png").read_bytes())
    (bad / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    main(["predict", str(model), str(bad), "-o", str(tmp_path / "out"), "--no-draw"])
    coco = json.loads((tmp_path / "out" / "detections.json").read_text())
    assert [im["file_name"].rsplit("/", 1)[-1] for im in coco["images"]] == ["good.png"]
    assert len(coco["info"]["skipped"]) == 1 and "broken.jpg" in coco["info"]["skipped"][0]["error"]
    assert "1 image(s) skipped" in capsys.readouterr().err
    with pytest.raises(SystemExit, match=r"^error: .*broken.jpg: "):
        main(["predict", str(model), str(bad), "-o", str(tmp_path / "stop"), "--on-error", "stop"])


def test_a_folder_that_is_not_a_model_and_inputs_that_match_nothing(model_and_images, tmp_path):
    model, folder, _ = model_and_images
    with pytest.raises(SystemExit, match=r"^error: .*nope: no such model folder$"):
        main(["predict", str(tmp_path / "nope"), str(folder), "-o", str(tmp_path / "o")])
    with pytest.raises(SystemExit, match=r"^error: .*missing_\*.png: no such file or folder"):
        main(["predict", str(model), str(tmp_path / "missing_*.png"), "-o", str(tmp_path / "o")])


def test_the_console_entry_point_is_installed():
    r = defect_il("predict", "--help")
    assert r.returncode == 0 and "--on-error" in r.stdout and "--backend" in r.stdout
