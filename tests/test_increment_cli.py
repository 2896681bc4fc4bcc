"""`defect-il increment`: a saved model + a VOC folder of a new class -> a model of old + new classes and
a report; the class it already has, data without the new classes, and a non-GFL model are refused."""
import json
import shutil
from pathlib import Path

import pytest
import yaml

from detectron_ext.checkpoint import load_model_config, save_model
from detectron_ext.data.coco_format import make_coco
from detectron_ext.data.register import register_coco_file
from detectron_ext.data.sources import read_dataset
from detectron_ext.engine import train
from detectron_ext.file_io import atomic_write_json
from pipeline.cli import main

from helpers import run_config, tiny_params, voc_xml

OLD, NEW = ["scratch", "patch", "inclusion"], "crack"
TINY = ["--scale", "ci", "--set", "device=cpu", "--set", "scales.ci.max_iter=4", "--set", "scales.ci.batch=2",
        "--set", "scales.ci.warmup_iters=1", "--set", "scales.ci.step_fractions=[0.5, 0.75]"]


def voc_folder(folder: Path, coco: dict, classes) -> Path:
    """The images of a COCO dict as a VOC folder holding the boxes of `classes` only."""
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
    return tmp / "teacher", voc_folder(tmp / "new", train_coco, [NEW]), voc_folder(tmp / "old_test", test_coco, OLD)


def test_a_new_class_from_a_voc_folder_gives_a_model_of_old_and_new_classes(setup, tmp_path):
    teacher, new, _ = setup
    main(["increment", str(teacher), str(new), "-o", str(tmp_path / "out"), *TINY])
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["old_classes"] == OLD and report["new_classes"] == [NEW] and report["method"] == "sdidd"
    assert report["train_images"] + report["held_out_images"] == 16 and report["iterations"] == 4
    assert set(report["new_classes_AP50"]) == {NEW} and "agreement_AP50" in report
    assert set(report["agreement_AP50_per_class"]) == set(OLD)
    cfg = load_model_config(tmp_path / "out" / "model")
    assert cfg.MODEL.CLASS_NAMES == OLD + [NEW] and cfg.MODEL.META_ARCHITECTURE == "GFL"
    assert "agreement" in (tmp_path / "out" / "report.md").read_text()
    # the new model is a model folder like any other: it can be predicted with and extended again
    main(["predict", str(tmp_path / "out" / "model"), str(new / "JPEGImages"), "-o", str(tmp_path / "pred"),
          "--no-draw"])
    assert json.loads((tmp_path / "pred" / "detections.json").read_text())["categories"][-1]["name"] == NEW


def test_an_old_test_set_gives_the_old_classes_map_before_and_after(setup, tmp_path):
    teacher, new, old_test = setup
    main(["increment", str(teacher), str(new), "-o", str(tmp_path / "out"), "--old-test", str(old_test),
          "--method", "erd", *TINY])
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["method"] == "erd" and set(report["old_classes_AP50"]) == set(OLD)
    assert "old_classes_mAP50" in report and "old_classes_mAP50_before" in report and "agreement_AP50" not in report


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
