"""Speed as ratios measured in one process against a peer (params.yaml `bench`): training steps of
GFL, detectron2's FCOS and torchvision's FCOS on the same backbone, channels, input size and batch;
the incremental students' steps and the shares of the teacher's forward and of region selection in
them; inference; evaluation of the active dataset's test set; bf16 against fp32.

Every timing is the median of `steps` runs, the contenders interleaved (A B C A B C ...) so that a
change of load hits all of them; only ratios (and the one reference time they share) are reported."""
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from detectron2.modeling import build_model
from detectron2.structures import Boxes, Instances
from detectron2.utils.events import EventStorage
from torch.profiler import ProfilerActivity, profile

from detectron_ext.distillation.teacher_cache import TeacherCache

from .config import build_config, device
from .runs import RunSpec

OLD, NEW = ["a", "b", "c"], ["d", "e", "f"]
SELECTION_LABELS = {"sdidd": ("select_cr", "select_br", "select_fr"), "erd": ("select_erd",)}


def bench_params(params: dict, precision: str = "fp32") -> dict:
    """What the benchmark builds from: the `bench.scale` entry at `bench`'s input size and batch, `model`
    (ResNet from scratch), on `device`; training and the methods at their config defaults
    (detectron_ext/config.py, which params.yaml's values are): SD-IDD as the paper has it (CR, BR and FR
    selective), so that each selection's share is measured."""
    b = params["bench"]
    scale = {**params["scales"][b["scale"]], "input_size": b["input_size"], "batch": b["batch"]}
    return {"seed": 0, "device": device(params), "scale": "bench", "scales": {"bench": scale},
            "model": {**params["model"], "backbone": "resnet", "weights": ""}, "train": {"precision": precision},
            "finetune": {}, "erd": {}, "distill": {},
            "assigners": {"tgfs": {"cold_start_fraction": 0.0}},  # TGFS assigns from the first step timed
            "bench": b}


def spec(detector="gfl", method="", assigner="base") -> RunSpec:
    if not method:
        return RunSpec("bench", detector, "0", Path("-"), Path("-"), OLD + NEW, [], OLD + NEW, assigner=assigner)
    return RunSpec("bench", "gfl", "1", Path("-"), Path("-"), OLD + NEW, OLD, NEW, method, "bench_teacher")


def build(params, run: RunSpec, teacher_file=None) -> torch.nn.Module:
    cfg = build_config(params, run, 100)
    if run.teacher:
        cfg.MODEL.DISTILL.TEACHER_WEIGHTS = str(teacher_file)
    torch.manual_seed(0)
    return build_model(cfg)


def torchvision_fcos(params) -> torch.nn.Module:
    """torchvision's FCOS on the same ResNet (GroupNorm, from scratch) and FPN P3-P7 width as ours."""
    import torchvision
    from torchvision.models.detection.backbone_utils import BackboneWithFPN
    from torchvision.ops.feature_pyramid_network import LastLevelP6P7

    scale, size = params["scales"][params["scale"]], params["bench"]["input_size"]
    resnet = getattr(torchvision.models, f"resnet{scale['depth']}")(
        weights=None, norm_layer=lambda c: torch.nn.GroupNorm(32, c))
    wide = scale["depth"] >= 50
    c, f = scale["fpn_channels"], 4 if wide else 1
    backbone = BackboneWithFPN(resnet, {"layer2": "0", "layer3": "1", "layer4": "2"},
                               [128 * f, 256 * f, 512 * f], c, extra_blocks=LastLevelP6P7(c, c))
    head = torchvision.models.detection.fcos.FCOSHead(c, 1, len(OLD + NEW), num_convs=scale["head_convs"])
    torch.manual_seed(0)
    return torchvision.models.detection.FCOS(backbone, len(OLD + NEW), min_size=size, max_size=size, head=head,
                                             score_thresh=params["model"]["score_thresh"]).to(params["device"])


def synthetic_batch(size: int, batch: int, classes: list, seed: int = 0) -> list:
    """detectron2 inputs: random images, 1-4 boxes each of the given class indices."""
    g = np.random.default_rng(seed)
    data = []
    for _ in range(batch):
        n = int(g.integers(1, 5))
        xy = g.uniform(0, size * 0.6, (n, 2))
        wh = g.uniform(size * 0.08, size * 0.4, (n, 2))
        inst = Instances((size, size))
        inst.gt_boxes = Boxes(torch.tensor(np.concatenate([xy, np.minimum(xy + wh, size - 1)], 1), dtype=torch.float32))
        inst.gt_classes = torch.tensor(g.choice(classes, n), dtype=torch.int64)
        image = torch.tensor(g.integers(0, 256, (3, size, size)), dtype=torch.uint8)
        data.append({"image": image, "instances": inst, "height": size, "width": size})
    return data


def torchvision_inputs(data: list, device="cpu"):
    images = [d["image"].to(device).float() / 255 for d in data]
    targets = [{"boxes": d["instances"].gt_boxes.tensor.to(device), "labels": d["instances"].gt_classes.to(device)}
               for d in data]
    return images, targets


def train_step(model, data, torchvision_model=False):
    """One SGD step (forward, backward, update) of a detector on a batch."""
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    model.train()

    def step():
        losses = model(*torchvision_inputs(data, next(model.parameters()).device)) if torchvision_model \
            else model(data)
        opt.zero_grad()
        sum(losses.values()).backward()
        opt.step()
    return step


def infer(model, data, torchvision_model=False):
    model.eval()

    def run():
        with torch.no_grad():
            model(torchvision_inputs(data, next(model.parameters()).device)[0]) if torchvision_model else model(data)
    return run


def interleaved_medians(fns: dict, steps: int) -> dict:
    """Median seconds of each callable over `steps` runs, run in turn (one warm-up run each first)."""
    times = {k: [] for k in fns}
    with EventStorage():
        for k, fn in fns.items():
            fn()
        for _ in range(steps):
            for k, fn in fns.items():
                start = time.perf_counter()
                fn()
                if torch.cuda.is_initialized():
                    torch.cuda.synchronize()  # the GPU's work done, not just queued
                times[k].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in times.items()}


def labelled_shares(fn, labels, steps: int) -> dict:
    """Share of each record_function label (`distill/<label>`) in the time of `fn`, under the profiler
    (the host's time inside the label: on a GPU, what the label's work waits for, not its kernels)."""
    with EventStorage():
        fn()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            start = time.perf_counter()
            for _ in range(steps):
                fn()
            total = time.perf_counter() - start
    spent = {e.key: e.cpu_time_total / 1e6 for e in prof.key_averages() if e.key.startswith("distill/")}
    return {label: spent.get(f"distill/{label}", 0.0) / total for label in labels}


def evaluation_seconds(params, test_json: Path, limit: int) -> dict:
    """Evaluating a GFL (untrained: every image keeps its 100 highest-scoring detections, evaluation's
    worst case) on a test split: the whole of it (images read and mapped, inference, pycocotools) and
    inference alone on the same, already-read batches."""
    import json

    from detectron2.data import build_detection_test_loader
    from detectron2.evaluation import inference_on_dataset

    from detectron_ext.data.register import register_coco_file
    from detectron_ext.evaluation import DefectEvaluator

    coco = json.loads(test_json.read_text())
    if limit:
        coco["images"] = coco["images"][:limit]
        kept = {i["id"] for i in coco["images"]}
        coco["annotations"] = [a for a in coco["annotations"] if a["image_id"] in kept]
    classes = [c["name"] for c in sorted(coco["categories"], key=lambda c: c["id"])]
    with tempfile.TemporaryDirectory() as tmp:
        subset = Path(tmp) / "test.json"
        subset.write_text(json.dumps(coco))
        register_coco_file("bench_test", subset)
        spec_ = RunSpec("bench_eval", "gfl", "joint", Path("-"), subset, classes, [], classes)
        cfg = build_config(params, spec_, 100)
        cfg.DATASETS.TEST = ("bench_test",)
        torch.manual_seed(0)
        model = build_model(cfg)
        model.test_score_thresh = 0.0
        model.eval()
        loader = build_detection_test_loader(cfg, "bench_test")
        start = time.perf_counter()
        inference_on_dataset(model, loader, DefectEvaluator("bench_test", [], classes))
        whole = time.perf_counter() - start
        batches = list(loader)
        start = time.perf_counter()
        with torch.no_grad():
            for batch in batches:
                model(batch)
        alone = time.perf_counter() - start
    return {"images": len(coco["images"]), "evaluate_s": whole, "evaluate/inference": whole / alone}


def run(params: dict, test_json=None, log=print) -> dict:
    """Every measurement of metrics/bench.json; `test_json`: a test split to time evaluation on."""
    b = params["bench"]
    torch.set_num_threads(int(b["threads"]))
    p = bench_params(params)
    size, batch, steps = int(b["input_size"]), int(b["batch"]), int(b["steps"])
    data_all = synthetic_batch(size, batch, list(range(6)))
    where = torch.cuda.get_device_name(0) if p["device"] == "cuda" else "cpu"
    out = {"setup": {"device": where, "input_size": size, "batch": batch, "steps": steps, "threads": int(b["threads"]),
                     "scale": b["scale"], "torch": torch.__version__,
                     "cpu_capability": torch.backends.cpu.get_cpu_capability()}}

    log("bench: training steps of GFL, detectron2 FCOS, torchvision FCOS")
    gfl, fcos, tv = build(p, spec("gfl")), build(p, spec("fcos")), torchvision_fcos(p)
    t = interleaved_medians({"gfl": train_step(gfl, data_all), "fcos": train_step(fcos, data_all),
                             "tv_fcos": train_step(tv, data_all, True)}, steps)
    out["train_step"] = {"gfl_s": t["gfl"], "detectron2_fcos/gfl": t["fcos"] / t["gfl"],
                         "torchvision_fcos/gfl": t["tv_fcos"] / t["gfl"]}

    log("bench: FCOS + TGFS against FCOS (the same weights): training step, inference")
    out["tgfs"] = tgfs_speeds(fcos, build(p, spec("fcos", assigner="tgfs")), data_all, steps)

    log("bench: incremental students (fine-tune, ERD, SD-IDD)")
    out["student_step"], student = student_steps(p, synthetic_batch(size, batch, [3, 4, 5], seed=1), steps)

    log("bench: inference (batch 1 latency, batch throughput)")
    lat = interleaved_medians({"gfl": infer(gfl, data_all[:1]), "sdidd": infer(student, data_all[:1]),
                               "tv_fcos": infer(tv, data_all[:1], True)}, steps)
    thr = interleaved_medians({"gfl": infer(gfl, data_all), "sdidd": infer(student, data_all),
                               "tv_fcos": infer(tv, data_all, True)}, steps)
    out["inference"] = {"gfl_latency_s": lat["gfl"], "gfl_images_per_s": batch / thr["gfl"],
                        "student/gfl_latency": lat["sdidd"] / lat["gfl"],
                        "torchvision_fcos/gfl_latency": lat["tv_fcos"] / lat["gfl"],
                        "student/gfl_throughput": thr["gfl"] / thr["sdidd"],
                        "torchvision_fcos/gfl_throughput": thr["gfl"] / thr["tv_fcos"]}

    if p["device"] == "cpu":  # ONNX Runtime runs on the CPU here: a GPU's PyTorch is no peer for it
        log("bench: inference backends (PyTorch, TorchScript, ONNX Runtime; one image at a time)")
        out["backends"] = backend_speeds(gfl, data_all, steps)

    log("bench: GFL step under bf16 autocast")
    bf16 = build(bench_params(params, "bf16"), spec("gfl"))
    t = interleaved_medians({"fp32": train_step(gfl, data_all), "bf16": train_step(bf16, data_all)}, steps)
    out["precision"] = {"bf16/fp32_train_step": t["bf16"] / t["fp32"]}

    if test_json is not None:
        log(f"bench: evaluation of {test_json}")
        out["evaluation"] = evaluation_seconds(p, Path(test_json), int(b["eval_images"]))
    return out


def tgfs_speeds(plain, tgfs, data: list, steps: int) -> dict:
    """TGFS's cost: a training step of the detector with TGFS assigning against the plain one's, and
    its inference (batch-1 latency, batch throughput), which should be the plain detector's."""
    tgfs.load_state_dict(plain.state_dict())
    t = interleaved_medians({"plain": train_step(plain, data), "tgfs": train_step(tgfs, data)}, steps)
    lat = interleaved_medians({"plain": infer(plain, data[:1]), "tgfs": infer(tgfs, data[:1])}, steps)
    thr = interleaved_medians({"plain": infer(plain, data), "tgfs": infer(tgfs, data)}, steps)
    return {"fcos_tgfs/fcos_train_step": t["tgfs"] / t["plain"], "fcos_tgfs/fcos_latency": lat["tgfs"] / lat["plain"],
            "fcos_tgfs/fcos_throughput": thr["plain"] / thr["tgfs"]}


def backend_speeds(model, data: list, steps: int) -> dict:
    """Images/s of the exported graphs (`defect-il export`: TorchScript, and ONNX in ONNX Runtime where it is
    installed) as ratios to the PyTorch model's, one image at a time as `defect-il predict` runs them."""
    from defect_il.export import write_graphs

    images = [d["image"].float() for d in data]
    model.eval()
    with tempfile.TemporaryDirectory() as tmp:
        written = write_graphs(model, (images[0],), tmp)
        traced = torch.jit.load(str(Path(tmp) / written["torchscript"]))
        fns = {"pytorch": lambda: [model([{"image": x}]) for x in images],
               "torchscript": lambda: [traced(x) for x in images]}
        try:
            import onnxruntime
            session = onnxruntime.InferenceSession(str(Path(tmp) / written["onnx"]), providers=["CPUExecutionProvider"])
            arrays = [x.numpy() for x in images]
            fns["onnxruntime"] = lambda: [session.run(None, {"image": a}) for a in arrays]
        except ImportError:  # an optional dependency ([export]): its row is left out
            pass
        with torch.no_grad():
            t = interleaved_medians(fns, steps)
    out = {"pytorch_images_per_s": len(images) / t["pytorch"]}
    out.update({f"{k}/pytorch_images_per_s": t["pytorch"] / t[k] for k in fns if k != "pytorch"})
    return out


def student_steps(p: dict, data: list, steps: int) -> tuple:
    """The students' steps against GFL's and fine-tuning's, the shares of their labelled parts, and the
    SD-IDD student (for inference). erd, sdidd: the teacher on every batch; *_cached: served by the
    teacher cache (a later epoch); sdidd_miss: a cache that misses every image (the first epoch)."""
    with tempfile.TemporaryDirectory() as tmp:
        teacher_file = Path(tmp) / "teacher.pth"
        torch.save(build(p, RunSpec("t", "gfl", "0", Path("-"), Path("-"), OLD, [], OLD)).state_dict(), teacher_file)
        variants = {"finetune": "finetune", "erd": "erd", "sdidd": "sdidd", "erd_cached": "erd",
                    "sdidd_cached": "sdidd", "sdidd_miss": "sdidd"}
        students = {k: build(p, spec(method=m), teacher_file) for k, m in variants.items()}
    plain = build(p, spec("gfl"))
    for k, s in students.items():
        s.load_state_dict(plain.state_dict(), strict=False)
        if k in ("erd", "sdidd"):
            s.teacher_cache = None
        elif k == "sdidd_miss":
            s.teacher_cache = TeacherCache(0)
    fns = {"gfl": train_step(plain, data), **{k: train_step(s, data) for k, s in students.items()}}
    t = interleaved_medians(fns, steps)
    out = {f"{k}/gfl": t[k] / t["gfl"] for k in students}
    out.update({f"{k}/finetune": t[k] / t["finetune"] for k in students if k != "finetune"})
    for m in ("erd", "sdidd"):
        shares = labelled_shares(fns[m], ("teacher", *SELECTION_LABELS[m]), max(2, steps // 2))
        out.update({f"{m}_share_{k}": v for k, v in shares.items()})
    return out, students["sdidd"]


ROWS = [  # (section, key, what it is, the goal the issue set)
    ("train_step", "detectron2_fcos/gfl", "training step: detectron2 FCOS / GFL", ""),
    ("train_step", "torchvision_fcos/gfl", "training step: torchvision FCOS / GFL", "≥ 1 (GFL no slower)"),
    ("tgfs", "fcos_tgfs/fcos_train_step", "training step: FCOS + TGFS / FCOS", ""),
    ("tgfs", "fcos_tgfs/fcos_latency", "inference latency (1 image): FCOS + TGFS / FCOS", "1.00 ± 0.05"),
    ("tgfs", "fcos_tgfs/fcos_throughput", "inference images/s (batch): FCOS + TGFS / FCOS", "1.00 ± 0.05"),
    ("student_step", "finetune/gfl", "student step: fine-tune / GFL", ""),
    ("student_step", "erd/gfl", "student step: ERD / GFL", ""),
    ("student_step", "sdidd/gfl", "student step: SD-IDD (CR+BR+FR, teacher on every batch) / GFL", ""),
    ("student_step", "erd/finetune", "student step: ERD / fine-tune (teacher on every batch)", ""),
    ("student_step", "erd_cached/finetune", "student step: ERD / fine-tune (teacher cached: a later epoch)", ""),
    ("student_step", "sdidd/finetune", "student step: SD-IDD / fine-tune (teacher on every batch)", "≤ 1.2"),
    ("student_step", "sdidd_miss/finetune", "student step: SD-IDD / fine-tune (cache misses: the first epoch)", ""),
    ("student_step", "sdidd_cached/finetune", "student step: SD-IDD / fine-tune (teacher cached: a later epoch)",
     "≤ 1.2"),
    ("student_step", "sdidd_share_teacher", "SD-IDD step: share of the teacher's forward", ""),
    ("student_step", "sdidd_share_select_cr", "SD-IDD step: share of CR's selection", ""),
    ("student_step", "sdidd_share_select_br", "SD-IDD step: share of BR's selection", ""),
    ("student_step", "sdidd_share_select_fr", "SD-IDD step: share of FR's selection", ""),
    ("student_step", "erd_share_teacher", "ERD step: share of the teacher's forward", ""),
    ("student_step", "erd_share_select_erd", "ERD step: share of ERD's selection", ""),
    ("inference", "student/gfl_latency", "inference latency (1 image): SD-IDD student / GFL", "1.00 ± 0.05"),
    ("inference", "torchvision_fcos/gfl_latency", "inference latency (1 image): torchvision FCOS / GFL", ""),
    ("inference", "student/gfl_throughput", "inference images/s (batch): SD-IDD student / GFL", "1.00 ± 0.05"),
    ("inference", "torchvision_fcos/gfl_throughput", "inference images/s (batch): torchvision FCOS / GFL", ""),
    ("backends", "torchscript/pytorch_images_per_s", "predict images/s (1 at a time): TorchScript export / PyTorch", ""),
    ("backends", "onnxruntime/pytorch_images_per_s", "predict images/s (1 at a time): ONNX Runtime / PyTorch", ""),
    ("precision", "bf16/fp32_train_step", "GFL training step: bf16 autocast / fp32", ""),
    ("evaluation", "evaluate/inference", "evaluating the test set / inference alone on it", ""),
]


def shown(key: str, value: float) -> str:
    """A ratio to 2 decimals; a share of a step in per cent."""
    return f"{100 * value:.1f} %" if "_share_" in key else f"{value:.2f}"


def table(out: dict) -> str:
    """metrics/bench.md: every ratio with what it compares and its goal, under the shared setup."""
    s = out["setup"]
    lines = [f"# Speed: ratios in one process ({s['scale']} scale models, {s['input_size']} px, batch {s['batch']}, "
             f"{s['threads']} threads, median of {s['steps']} interleaved runs; torch {s['torch']}, "
             f"{s['device']}, CPU {s['cpu_capability']})", "",
             f"Reference: a GFL training step {out['train_step']['gfl_s']:.3f} s; GFL inference "
             f"{out['inference']['gfl_latency_s'] * 1000:.0f} ms per image alone, "
             f"{out['inference']['gfl_images_per_s']:.1f} images/s in a batch"
             + (f", {out['backends']['pytorch_images_per_s']:.1f} images/s one at a time." if "backends" in out else ".")
             , "",
             "| ratio | value | goal |", "|---|---|---|"]
    for section, key, what, goal in ROWS:
        if key in out.get(section, {}):
            lines.append(f"| {what} | {shown(key, out[section][key])} | {goal} |")
    if "evaluation" in out:
        e = out["evaluation"]
        lines += ["", f"Evaluation of {e['images']} test images (untrained GFL: 100 detections per image): "
                      f"{e['evaluate_s']:.1f} s."]
    return "\n".join(lines) + "\n"
