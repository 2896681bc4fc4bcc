"""Small configurations for tests that train (seconds to a minute on 2 CPU cores), and builders of
tiny datasets in each supported layout."""
import copy
import zlib
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent


def tiny_params(max_iter=40, checkpoint_period=10, num_train=8, num_test=4, lr=0.01, batch=4) -> dict:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params = copy.deepcopy(params)
    params["dataset"] = "synthetic"
    params["datasets"]["synthetic"].update(num_train=num_train, num_test=num_test)
    params["scale"] = "ci"
    params["scales"]["ci"].update(max_iter=max_iter, batch=batch, lr=lr, warmup_iters=10,
                                  step_fractions=[0.5, 0.75], eval_period=0)
    params["train"]["checkpoint_period"] = checkpoint_period
    params["device"] = "cpu"
    params["bench"].update(scale="ci", input_size=64, batch=2, steps=1, eval_images=2)  # the bench stage in seconds
    return params


def run_config(params, detector="gfl", classes=("a", "b", "c"), dataset="x", out_dir="/tmp/out", num_images=8,
               assigner="base"):
    """build_config of a plain run of `detector` on `classes`, trained and tested on the registered
    dataset `dataset`, writing to `out_dir` (what a test that trains outside the stages needs)."""
    from pipeline.config import build_config
    from pipeline.runs import RunSpec

    spec = RunSpec("run", detector, "0", Path("train.json"), Path("test.json"), list(classes), [], list(classes),
                   assigner=assigner)
    cfg = build_config(params, spec, num_images)
    cfg.DATASETS.TRAIN, cfg.DATASETS.TEST, cfg.OUTPUT_DIR = (dataset,), (dataset,), str(out_dir)
    return cfg


def write_image(path, w=64, h=48):
    """A random grey image, different for every path (identical images under two names are refused)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(zlib.crc32(str(path).encode()))
    Image.fromarray((rng.random((h, w)) * 255).astype(np.uint8)).save(path)


def voc_xml(filename, objects, w=64, h=48):
    objs = "".join(f"<object><name>{n}</name><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin>"
                   f"<xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>" for n, b in objects)
    return (f"<annotation><filename>{filename}</filename><size><width>{w}</width><height>{h}</height>"
            f"<depth>1</depth></size>{objs}</annotation>")


def make_neu(root, n_per_class=2, layout="original"):
    classes = ["crazing", "inclusion", "patches", "pitted_surface", "rolled-in_scale", "scratches"]
    for c in classes:
        for i in (1, 2, 241, 242)[: 2 * n_per_class]:
            if layout == "original":
                img, ann = root / "IMAGES" / f"{c}_{i}.jpg", root / "ANNOTATIONS" / f"{c}_{i}.xml"
            else:
                split = "train" if i <= 240 else "validation"
                img = root / split / "images" / c / f"{c}_{i}.jpg"
                ann = root / split / "annotations" / f"{c}_{i}.xml"
            write_image(img)
            ann.parent.mkdir(parents=True, exist_ok=True)
            ann.write_text(voc_xml(img.name, [(c, (2, 3, 30, 40))]))
    return classes


def make_deeppcb(root, lines, with_test=False, sep=" ", final_newline=True):
    split = []
    for i, boxes in enumerate(lines):
        write_image(root / "group1" / "1" / f"1000{i}_test.jpg", 640, 640)
        ann = root / "group1" / "1_not" / f"1000{i}.txt"
        ann.parent.mkdir(parents=True, exist_ok=True)
        text = "\n".join(sep.join(map(str, b)) for b in boxes)
        ann.write_text(text + ("\n" if final_newline else ""))
        split.append(f"group1/1/1000{i}.jpg group1/1_not/1000{i}.txt")
    (root / "trainval.txt").write_text("\n".join(split) + "\n")
    if with_test:
        (root / "test.txt").write_text(split[0] + "\n")


def build_voc(root):
    for i, name in enumerate("abcd"):
        write_image(root / "JPEGImages" / f"{name}.jpg")
        (root / "Annotations").mkdir(exist_ok=True)
        (root / "Annotations" / f"{name}.xml").write_text(voc_xml(f"{name}.jpg", [("dent", (2, 3, 30, 40))]))
    (root / "ImageSets" / "Main").mkdir(parents=True)
    (root / "ImageSets" / "Main" / "train.txt").write_text("a\nb\nc\n")
    (root / "ImageSets" / "Main" / "test.txt").write_text("d\n")
    return {"format": "voc", "root": str(root), "classes": ["dent"]}, root / "JPEGImages" / "a.jpg", \
        root / "Annotations" / "a.xml"


MARGIN = 1e-3  # a detection scoring this close to a threshold may pass on one CPU and not on another


def same_detections(got, want, thresh):
    """(boxes, classes, scores) of two runs: each side's detections scoring at least thresh + MARGIN have a
    partner on the other side of the same class, score within 5e-4 and box within 0.05 px (one to one;
    equal scores may come in any order). What holds on any CPU."""
    got, want = [tuple(np.asarray(t) for t in d) for d in (got, want)]
    for a, b in ((want, got), (got, want)):
        boxes, classes, scores = b
        unused = set(range(len(scores)))
        confident = [(box, cls, score) for box, cls, score in zip(*a) if score >= thresh + MARGIN]
        assert confident
        for box, cls, score in confident:
            partner = [j for j in unused if classes[j] == cls and abs(scores[j] - score) < 5e-4
                       and np.abs(boxes[j] - box).max() < 0.05]
            assert partner, (box, cls, score)
            unused.remove(partner[0])


def coco_detections(coco: dict, image_id: int):
    """(boxes x1 y1 x2 y2, category ids, scores) of one image of a detections.json."""
    anns = [x for x in coco["annotations"] if x["image_id"] == image_id]
    boxes = np.array([[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in anns)]).reshape(-1, 4)
    return boxes, np.array([a["category_id"] for a in anns]), np.array([a["score"] for a in anns])


def lowest_kept(*cocos) -> float:
    """The highest of the runs' lowest scores: above it every run kept all it found (the per-image cap of
    detections cuts each run at its own score)."""
    return max(min(a["score"] for a in c["annotations"]) for c in cocos)


def only_progress_bars(stderr: str) -> bool:
    """Whether a command's stderr holds nothing but tqdm progress bars (no warning, no log line)."""
    import re
    lines = [line for line in stderr.replace("\r", "\n").splitlines() if line.strip()]
    return all(re.match(r"^(predict|increment|reading [^:]+): +\d+%\||^reading [^:]+: \d+img", line) for line in lines)
