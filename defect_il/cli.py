"""`defect-il`: the line engineer's commands. `defect-il predict MODEL_DIR IMAGES... -o OUT`,
`defect-il export MODEL_DIR SAMPLE_IMAGE -o OUT`,
`defect-il increment MODEL_DIR NEW_DATA -o OUT`.

Bad input (an unreadable image with --on-error stop, no readable image at all, a folder that is not a
model, a pattern that matches nothing) ends with one line `error: <file>: <problem>` and exit status 1.
torch and detectron2 are imported only once a command runs (`--help` answers at once).
"""
import argparse
import os
import sys
from pathlib import Path


def _predict(args):
    from .predict import predict

    coco = predict(args.model, args.images, args.out, batch=args.batch, device=args.device,
                   score_thresh=args.score_thresh, draw_thresh=args.draw_thresh, draw=not args.no_draw,
                   on_error=args.on_error, backend=args.backend)
    skipped = coco["info"]["skipped"]
    for s in skipped:
        print(f"skipped: {s['error']}", file=sys.stderr)
    print(f"{len(coco['images'])} images, {len(coco['annotations'])} detections -> {args.out}/detections.json"
          + ("" if args.no_draw else f", {args.out}/drawn/"))
    if skipped:
        print(f"{len(skipped)} image(s) skipped (unreadable); --on-error stop stops at the first", file=sys.stderr)


def _export(args):
    from .export import export_model

    info = export_model(args.model, args.sample, args.out, formats=args.formats, score_thresh=args.score_thresh)
    print(f"{', '.join(info['files'].values())} in {args.out}/ (input {info['input_format']} "
          f"{info['input_height']}x{info['input_width']}; export.json says what the caller does)")


def _increment(args):
    from .increment import increment
    from pipeline.params import apply_overrides, load_params
    from pipeline.params_schema import validate_params

    path = Path(args.params) if args.params else Path("params.yaml")
    if not path.is_file() and not args.params:
        path = Path(__file__).resolve().parent.parent / "params.yaml"  # the repository's defaults
    params = apply_overrides(load_params(path), args.set, path)
    if args.scale:
        params["scale"] = args.scale
    params = validate_params(params, f"{path} with --set/--scale")
    r = increment(params, args.model, args.data, args.out, method=args.method, classes=args.classes,
                  old_test=args.old_test, new_test=args.test, test_fraction=args.test_fraction,
                  allow_similar_names=args.allow_similar_names, verbose=args.verbose)
    print(summary(r, args.out))


def summary(r: dict, out) -> str:
    """What `increment` prints at the end: the new classes' number and where it comes from, and the old
    classes' before -> after, or that forgetting was not measured."""
    f = lambda v: "-" if v is None else f"{v:.1f}"
    lines = [f"new model: {r['model']} ({', '.join(r['old_classes'])} + {', '.join(r['new_classes'])})",
             f"new classes: mAP50 {f(r['new_classes_mAP50'])} on {r['new_test']['images']} images "
             f"({r['new_test']['source']})"]
    if r["old_classes_mAP50_after"] is None:
        lines.append("old classes: forgetting not measured (give their test images: --old-test FOLDER)")
    else:
        lines.append(f"old classes: mAP50 {f(r['old_classes_mAP50_before'])} -> {f(r['old_classes_mAP50_after'])} "
                     f"on {r['old_test']['images']} images ({r['old_test']['path']})")
        lines += [f"  {c}: {f(r['old_classes_AP50_before'][c])} -> {f(v)}"
                  for c, v in r["old_classes_AP50_after"].items()]
    lines.append(f"report: {out}/report.md")
    return "\n".join(lines)


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 1")
    return value


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="defect-il", description="Incremental surface-defect detection.")
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("predict", help="run a trained model on images: COCO detections JSON and drawn images",
                       description="Run a saved model folder (models/<run>/, any phase) on images.")
    p.add_argument("model", help="a model folder: model_final.pth + config.yaml (e.g. models/sdidd/phase1); "
                                 "with --backend onnxruntime, a folder written by `defect-il export`")
    p.add_argument("images", nargs="+", help="image files, folders or glob patterns ('**' recursive; quote it)")
    p.add_argument("-o", "--out", required=True, help="output folder: detections.json, drawn/")
    p.add_argument("--batch", type=int, default=4, help="images per forward pass (default 4)")
    p.add_argument("--device", default=None, help="cpu | cuda | cuda:N (default: the model's config)")
    p.add_argument("--score-thresh", type=float, default=None,
                   help="keep detections scoring at least this (default: the model's, 0.05)")
    p.add_argument("--draw-thresh", type=float, default=0.3, help="draw detections scoring at least this (0.3)")
    p.add_argument("--no-draw", action="store_true", help="write detections.json only")
    p.add_argument("--on-error", choices=("skip", "stop"), default="skip",
                   help="an unreadable image: skip it and report it (default) or stop with an error")
    p.add_argument("--backend", choices=("pytorch", "onnxruntime"), default="pytorch",
                   help="pytorch (a model folder, default) or onnxruntime (an export folder's model.onnx on the "
                        "CPU; each image resized to the graph's input size, stretched if its aspect differs; "
                        "the same output)")
    p.set_defaults(run=_predict)
    e = sub.add_parser("export", help="export a model to TorchScript and ONNX (post-processing inside)",
                       description="Trace a saved model folder on a sample image: model.ts, model.onnx, export.json. "
                                   "The graph's input size is the sample's after the model's test resize.")
    e.add_argument("model", help="a model folder (models/<run>/)")
    e.add_argument("sample", help="an image of the size the exported model will take")
    e.add_argument("-o", "--out", required=True, help="output folder")
    e.add_argument("--formats", nargs="+", choices=("torchscript", "onnx"), default=["torchscript", "onnx"])
    e.add_argument("--score-thresh", type=float, default=None, help="the graph's threshold (default: the model's)")
    e.set_defaults(run=_export)
    i = sub.add_parser("increment", help="teach a model new defect classes from a labelled folder (SD-IDD)",
                       description="A saved model + new images labelled with new classes (Pascal VOC folder or COCO "
                                   "JSON) -> a model of the old and new classes, trained without the old images, "
                                   "and report.md (new classes on held-out images; old classes kept).")
    i.add_argument("model", help="the model folder to extend (models/<run>/, a GFL model of any phase)")
    i.add_argument("data", help="a VOC folder (Annotations/, JPEGImages/) or a COCO .json with the new classes")
    i.add_argument("-o", "--out", required=True, help="output folder: model/, checkpoints/ (resumable), report.md")
    i.add_argument("--method", default="sdidd",
                   help="sdidd (the paper's SD-IDD), erd, finetune, or a chain of params.yaml increments: a "
                        "variant such as global_erdbox (global distillation with ERD's box weight)")
    i.add_argument("--classes", nargs="+", default=None,
                   help="the new classes to learn; other labels in data are dropped and counted (default: every "
                        "class labelled in data)")
    i.add_argument("--test", default=None, help="a VOC folder or COCO .json of new-class images to score the new "
                                                "classes on (default: a held-out share of data)")
    i.add_argument("--old-test", default=None, help="a VOC folder or COCO .json labelled with the old classes: "
                                                    "each old class's mAP50 before -> after (default: the model "
                                                    "folder's own test set, when it names one)")
    i.add_argument("--test-fraction", type=_fraction, default=0.2,
                   help="share of data held out to score the new classes when --test is not given (0.2)")
    i.add_argument("--allow-similar-names", action="store_true",
                   help="accept a new class named like an old one but for case, plural or punctuation")
    i.add_argument("--verbose", action="store_true", help="log the model's architecture and every training line")
    i.add_argument("--params", default=None, help="params.yaml for the schedule and method parameters "
                                                  "(default: ./params.yaml, else the repository's)")
    i.add_argument("--scale", default=None, help="a scale of params.yaml (default: its `scale`)")
    i.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a parameter")
    i.set_defaults(run=_increment)
    return ap


def main(argv=None):
    args = parser().parse_args(argv)
    if getattr(args, "batch", 1) < 1:
        parser().error("--batch must be at least 1")
    import detectron_ext  # noqa: F401,I001  (first: Pillow aliases and warning filters before detectron2 loads)
    from detectron_ext.checkpoint import CheckpointError
    from detectron_ext.data.errors import DatasetError

    from pipeline.params_schema import ParamsError

    try:
        args.run(args)
    except (DatasetError, CheckpointError, ParamsError, OSError, ImportError) as e:
        if os.environ.get("DEFECT_IL_DEBUG"):
            raise
        if isinstance(e, ImportError):  # an optional dependency: onnx / onnxruntime ([export])
            e = f"{e.name or e}: not installed (pip install '.[export]' installs onnx and onnxruntime)"
        elif isinstance(e, OSError) and e.filename:  # e.g. an output folder that cannot be written
            e = f"{e.filename}: {e.strerror or e}"
        sys.exit(f"error: {e}")
    except KeyboardInterrupt:
        resume = f"; rerun the same command to resume from {args.out}/checkpoints" if args.command == "increment" else ""
        print(f"\ninterrupted{resume}", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
