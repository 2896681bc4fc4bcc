"""`defect-il increment`: a saved model + a VOC folder of a new class -> a model of old + new classes and
a report; labels of other classes dropped and counted with --classes; the new classes scored on --test or a
held-out share (the report says which); the old classes before -> after on --old-test or the model folder's
own test set, else "not measured"; a class it already has, one named like it, data without the new classes,
and a non-GFL model are refused. The first test runs the command as a process, as a user does."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from detectron_ext.checkpoint import load_model_config, save_model
from detectron_ext.data.coco_format import make_coco
from detectron_ext.data.errors import DatasetError
from detectron_ext.data.register import register_coco_file
from detectron_ext.data.sources import read_dataset
from detectron_ext.engine import train
from detectron_ext.file_io import atomic_write_json
from defect_il.cli import main
from defect_il.increment import LISTED, choose_new_classes, merge_by_image, similar_names

from helpers import ROOT, only_progress_bars, run_config, tiny_params, voc_xml

OLD, NEW = ["scratch", "patch", "inclusion"], "crack"
TINY = ["--scale", "ci", "--set", "device=cpu", "--set", "scales.ci.max_iter=4", "--set", "scales.ci.batch=2",
        "--set", "scales.ci.warmup_iters=1", "--set", "scales.ci.step_fractions=[0.5, 0.75]"]


def voc_folder(folder: Path, coco: dict, classes) -> Path:
    """The images of a COCO dict as a VOC folder holding the boxes of `classes` only (every image)."""
    root = Path(coco["info"]["image_root"])
    names = {c["id"]: c["name"] for c in coco["categories"]}
    (folder / "Annotations").mkdir(parents=True)
    (folder / "JPEGImages").mkdir()
    for im in coco["images"]:
        objs = [(names[a["category_id"]], [round(a["bbox"][0]), round(a["bbox"][1]), round(a["bbox"][0] + a["bbox"][2]),
                                           round(a["bbox"][1] + a["bbox"][3])])
                for a in coco["annotations"] if a["image_id"] == im["id"] and names[a["category_id"]] in classes]
        name = Path(im["file_name"]).name
        shutil.copy(root / im["file_name"], folder / "JPEGImages" / name)
        (folder / "Annotations" / f"{Path(name).stem}.xml").write_text(voc_xml(name, objs, im["width"], im["height"]))
    return folder


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A GFL teacher of the 3 old synthetic classes (a few iterations), and VOC folders of the new class
    (crack) and of the old classes (an old test set)."""
    tmp = tmp_path_factory.mktemp("increment")
    train_coco, test_coco = read_dataset({"format": "synthetic", "num_train": 16, "num_test": 6, "image_size": 96},
                                         seed=4, work_dir=tmp)
    names = {c["id"]: c["name"] for c in train_coco["categories"]}
    records = [{"file_name": im["file_name"], "width": im["width"], "height": im["height"],
                "boxes": [(a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3],
                           names[a["category_id"]]) for a in train_coco["annotations"]
                          if a["image_id"] == im["id"] and names[a["category_id"]] in OLD]}
               for im in train_coco["images"]]
    atomic_write_json(tmp / "old.json", make_coco(records, OLD, train_coco["info"]["image_root"]))
    register_coco_file("increment_teacher_train", tmp / "old.json")
    cfg = run_config(tiny_params(max_iter=4, checkpoint_period=100, batch=2), "gfl", OLD, "increment_teacher_train",
                     tmp / "ckpt", 16)
    save_model(tmp / "teacher", train(cfg, resume=False).model.state_dict(), cfg, 4)
    voc_folder(tmp / "new_test", test_coco, [NEW])  # the user's own test images of the new class (--test)
    return tmp / "teacher", voc_folder(tmp / "new", train_coco, [NEW]), voc_folder(tmp / "old_test", test_coco, OLD)


def defect_il(*args, cwd=None):
    """The installed console command, run as a process from a shell would run it."""
    exe = Path(sys.executable).parent / "defect-il"
    assert exe.is_file(), "defect-il is installed by `pip install -e .` (make setup)"
    env = {**os.environ, "PYTHONWARNINGS": "default"}  # a warning the command lets through would show
    return subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, cwd=cwd or ROOT, env=env)


def test_the_command_on_a_folder_labelling_an_old_class_too(setup, tmp_path):
    """As a user's folder comes: the new class and an old one labelled. Without --classes: one line saying
    how; with it: the old labels dropped and counted, the new classes scored on a held-out share (said so),
    forgetting 'not measured' (no old test images), a progress bar, no architecture, no warnings."""
    teacher, new, old_test = setup
    both = tmp_path / "both"
    shutil.copytree(new, both)
    first = sorted((both / "Annotations").glob("*.xml"))[0]
    first.write_text(first.read_text().replace("</annotation>", "<object><name>patch</name><bndbox><xmin>1</xmin>"
                                               "<ymin>1</ymin><xmax>20</xmax><ymax>20</ymax></bndbox></object></annotation>"))
    r = defect_il("increment", teacher, both, "-o", tmp_path / "refused", *TINY)
    assert r.returncode == 1 and r.stderr.strip().splitlines() == [
        f"error: {both}: class(es) ['patch'] are already the model's (scratch, patch, inclusion): pass --classes "
        f"{NEW} to learn only those (the other labels are dropped and counted)"]
    assert not (tmp_path / "refused" / "model").exists()

    r = defect_il("increment", teacher, both, "-o", tmp_path / "out", "--classes", NEW, *TINY)
    assert r.returncode == 0, r.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["old_classes"] == OLD and report["new_classes"] == [NEW] and report["method"] == "sdidd"
    assert report["dropped_classes"] == {"patch": 1} and report["iterations"] == 4
    assert report["new_test"]["source"] == "held-out share of the new data"
    assert report["train_images"] + report["new_test"]["images"] == 16
    assert report["old_test"] is None and report["old_classes_mAP50_after"] is None
    assert "dropped the other labels (patch 1 boxes)" in r.stdout
    assert "old classes: forgetting not measured (give their test images: --old-test FOLDER)" in r.stdout
    md = (tmp_path / "out" / "report.md").read_text()
    assert "forgetting not measured" in md and "--old-test" in md and "held out of" in md and "patch (1 boxes)" in md
    assert "increment: 100%" in r.stderr and "4/4" in r.stderr  # the progress bar reached the end
    assert only_progress_bars(r.stderr), r.stderr  # no warnings, no log lines, no architecture
    assert r.stdout.splitlines()[0].startswith("increment: ") and r.stdout.splitlines()[-1].startswith("report: ")
    assert len(r.stdout.splitlines()) == 6 and "GFLHead" not in r.stdout
    assert "GFLHead" in (tmp_path / "out" / "checkpoints" / "log.txt").read_text()  # the log file keeps it
    cfg = load_model_config(tmp_path / "out" / "model")
    assert cfg.MODEL.CLASS_NAMES == OLD + [NEW] and cfg.MODEL.META_ARCHITECTURE == "GFL"
    # the new model is a model folder like any other: it can be predicted with and extended again
    r = defect_il("predict", tmp_path / "out" / "model", new / "JPEGImages", "-o", tmp_path / "pred", "--no-draw")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "pred" / "detections.json").read_text())["categories"][-1]["name"] == NEW


def test_an_old_test_set_gives_each_old_class_before_and_after(setup, tmp_path):
    """... and a folder with its own split (ImageSets/Main) is scored on its test list, as the report says."""
    teacher, new, old_test = setup
    listed = tmp_path / "listed"
    shutil.copytree(new, listed)
    stems = sorted(x.stem for x in (listed / "Annotations").glob("*.xml"))
    with_crack = [x for x in stems if f"<name>{NEW}<" in (listed / "Annotations" / f"{x}.xml").read_text()]
    (listed / "ImageSets" / "Main").mkdir(parents=True)
    (listed / "ImageSets" / "Main" / "test.txt").write_text("\n".join(with_crack[:1]) + "\n")
    (listed / "ImageSets" / "Main" / "train.txt").write_text("\n".join(x for x in stems if x not in with_crack[:1]))
    main(["increment", str(teacher), str(listed), "-o", str(tmp_path / "out"), "--old-test", str(old_test),
          "--method", "erd", *TINY])
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["new_test"]["source"] == LISTED and report["new_test"]["images"] == 1
    assert "listed in the folder's ImageSets/Main" in (tmp_path / "out" / "report.md").read_text()
    assert report["method"] == "erd" and report["old_test"]["source"] == "--old-test"
    assert set(report["old_classes_AP50_before"]) == set(report["old_classes_AP50_after"]) == set(OLD)
    assert report["old_classes_mAP50_before"] is not None and report["old_classes_mAP50_after"] is not None
    md = (tmp_path / "out" / "report.md").read_text()
    assert "before -> after" in md and all(f"| {c} |" in md for c in OLD)
    # the new model names its own test set (new + old classes' images): the next increment scores on it
    model = tmp_path / "out" / "model"
    coco = json.loads((model / json.loads((model / "test_set.json").read_text())["coco"]).read_text())
    assert [c["name"] for c in coco["categories"]] == OLD + [NEW]
    assert len(coco["images"]) == report["new_test"]["images"] + report["old_test"]["images"]


def test_the_model_folders_own_test_set_and_a_test_folder(setup, tmp_path):
    """A model folder naming its test set (test_set.json, as the pipeline's models do) is scored on it
    before -> after without --old-test; --test scores the new class on the user's folder, and every image
    of the new data then trains."""
    teacher, new, old_test = setup
    model = tmp_path / "teacher"
    shutil.copytree(teacher, model)
    old_records = json.loads((teacher.parent / "old.json").read_text())  # the teacher's training set, as a test set
    atomic_write_json(tmp_path / "old_test.json", old_records)
    (model / "test_set.json").write_text(json.dumps({"coco": "../old_test.json"}))
    test_folder = teacher.parent / "new_test"
    main(["increment", str(model), str(new), "-o", str(tmp_path / "out"), "--test", str(test_folder), *TINY])
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["old_test"]["source"] == "the model folder's test set" and report["old_test"]["images"] == 16
    assert report["new_test"] == {"source": f"--test {test_folder}", "path": str(test_folder), "images": 6}
    assert report["train_images"] == 16
    # rerun as it was: it resumes (nothing left to train) to the same report; with other settings: refused
    main(["increment", str(model), str(new), "-o", str(tmp_path / "out"), "--test", str(test_folder), *TINY])
    assert json.loads((tmp_path / "out" / "report.json").read_text()) == report
    with pytest.raises(SystemExit, match=r"^error: .*out: holds an increment started with other settings .* delete "
                                         r".*out/checkpoints to start afresh$"):
        main(["increment", str(model), str(new), "-o", str(tmp_path / "out"), "--method", "finetune", *TINY])


def test_the_next_test_set_holds_each_image_once_with_every_label():
    a = {"digest": "1", "file_name": "/x/a.jpg", "boxes": [(1, 1, 5, 5, "scratches"), (2, 2, 9, 9, "inclusion")]}
    same = {"digest": "1", "file_name": "/y/a.jpg", "boxes": [(2, 2, 9, 9, "inclusion"), (0, 0, 3, 3, "patches")]}
    other = {"digest": "2", "file_name": "/y/b.jpg", "boxes": []}
    merged = merge_by_image([a, same, other])
    assert [r["file_name"] for r in merged] == ["/x/a.jpg", "/y/b.jpg"]
    assert merged[0]["boxes"] == [(1, 1, 5, 5, "scratches"), (2, 2, 9, 9, "inclusion"), (0, 0, 3, 3, "patches")]
    assert a["boxes"] == [(1, 1, 5, 5, "scratches"), (2, 2, 9, 9, "inclusion")]  # the inputs are left as they were


def test_similar_class_names_are_caught():
    assert similar_names(["scratches"], ["scratch", "patches"]) == [("scratches", "scratch")]
    assert similar_names(["Rolled-In Scale", "dent"], ["rolled-in_scale"]) == [("Rolled-In Scale", "rolled-in_scale")]
    assert similar_names(["crazing", "pit"], ["crack", "pits_deep"]) == []
    assert similar_names(["scratch"], ["scratch"]) == []  # the same name is the "already the model's" error
    with pytest.raises(DatasetError, match=r"^d: new class 'scratches' is named like the model's 'scratch' .case, "
                                           r"plural or punctuation.: .* --allow-similar-names$"):
        choose_new_classes("d", ["scratches"], ["scratch"])
    assert choose_new_classes("d", ["scratches"], ["scratch"], allow_similar_names=True) == ["scratches"]
    with pytest.raises(DatasetError, match=r"--classes names \['dent'\], which it does not label .it labels: crack"):
        choose_new_classes("d", ["crack"], ["scratch"], classes=["dent"])
    assert choose_new_classes("d", ["crack", "inclusion"], ["inclusion"], classes=["crack"]) == ["crack"]


def test_refused_a_class_the_model_has_data_without_new_classes_and_another_architecture(setup, tmp_path):
    teacher, new, old_test = setup
    with pytest.raises(SystemExit, match=r"^error: .*old_test: class\(es\) \['inclusion', 'patch', 'scratch'\] are "
                                         r"already the model's"):
        main(["increment", str(teacher), str(old_test), "-o", str(tmp_path / "a"), *TINY])
    empty = tmp_path / "empty"
    shutil.copytree(new, empty)
    for xml in (empty / "Annotations").glob("*.xml"):
        xml.write_text(voc_xml(xml.stem + ".png", []))
    with pytest.raises(SystemExit, match=r"^error: .*Annotations: no labelled objects"):
        main(["increment", str(teacher), str(empty), "-o", str(tmp_path / "b"), *TINY])
    fcos = tmp_path / "fcos"
    shutil.copytree(teacher, fcos)
    cfg = yaml.safe_load((fcos / "config.yaml").read_text())
    cfg["MODEL"]["META_ARCHITECTURE"] = "ConfigurableFCOS"
    cfg["MODEL"]["FCOS"] = {"NUM_CLASSES": 3}
    (fcos / "config.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(SystemExit, match=r"^error: .*fcos: a ConfigurableFCOS model; SD-IDD, ERD and fine-tuning"):
        main(["increment", str(fcos), str(new), "-o", str(tmp_path / "c"), *TINY])
    with pytest.raises(SystemExit, match=r"^error: method 'sdid' is none of finetune, erd, sdidd and no chain of "
                                         r"params.yaml increments \(finetune, erd, sdidd, global_erdbox\)$"):
        main(["increment", str(teacher), str(new), "-o", str(tmp_path / "d"), "--method", "sdid", *TINY])
