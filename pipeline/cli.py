"""`defect-il`: the line engineer's commands. `defect-il predict MODEL_DIR IMAGES... -o OUT`,
`defect-il export MODEL_DIR SAMPLE_IMAGE -o OUT`,
`defect-il increment MODEL_DIR NEW_DATA -o OUT`.

Bad input (an unreadable image with --on-error stop, a folder that is not a model, a pattern that
matches nothing) ends with one line `error: <file>: <problem>` and exit status 1.
"""
import argparse
import os
import sys
from pathlib import Path

import detectron_ext  # noqa: F401,I001  (first: Pillow >= 10 aliases before detectron2.data loads)
from detectron_ext.checkpoint import CheckpointError
from detectron_ext.data.errors import DatasetError

from .params_schema import ParamsError


def _predict(args):
    from .predict import predict

    coco = predict(args.model, args.images, args.out, batch=args.batch, device=args.device,
                   score_thresh=args.score_thresh, draw_thresh=args.draw_thresh, draw=not args.no_draw,
                   on_error=args.on_error)
    skipped = coco["info"]["skipped"]
    print(f"{len(coco['images'])} images, {len(coco['annotations'])} detections -> {args.out}/detections.json"
          + ("" if args.no_draw else f", {args.out}/drawn/"))
    for s in skipped:
        print(f"skipped: {s['error']}", file=sys.stderr)
    if skipped:
        print(f"{len(skipped)} image(s) skipped (unreadable); --on-error stop stops at the first", file=sys.stderr)


def _export(args):
    from .export import export_model

    info = export_model(args.model, args.sample, args.out, formats=args.formats, score_thresh=args.score_thresh)
    print(f"{', '.join(info['files'].values())} in {args.out}/ (input {info['input_format']} "
          f"{info['input_height']}x{info['input_width']}; export.json says what the caller does)")


def _increment(args):
    from .increment import increment
    from .params import apply_overrides, load_params
    from .params_schema import validate_params

    path = Path(args.params) if args.params else Path("params.yaml")
    if not path.is_file() and not args.params:
        path = Path(__file__).resolve().parent.parent / "params.yaml"  # the repository's defaults
    params = apply_overrides(load_params(path), args.set, path)
    if args.scale:
        params["scale"] = args.scale
    params = validate_params(params, f"{path} with --set/--scale")
    r = increment(params, args.model, args.data, args.out, method=args.method, classes=args.classes,
                  old_test=args.old_test, test_fraction=args.test_fraction)
    print(f"new model: {r['model']} ({', '.join(r['old_classes'])} + {', '.join(r['new_classes'])}); "
          f"new classes mAP50 {r['new_classes_mAP50']}; report: {args.out}/report.md")


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="defect-il", description="Incremental surface-defect detection.")
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("predict", help="run a trained model on images: COCO detections JSON and drawn images",
                       description="Run a saved model folder (models/<run>/, any phase) on images.")
    p.add_argument("model", help="a model folder: model_final.pth + config.yaml (e.g. models/sdidd/phase1)")
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
    i.add_argument("--method", choices=("sdidd", "erd", "finetune"), default="sdidd")
    i.add_argument("--classes", nargs="+", default=None, help="the new classes (default: every class labelled in data)")
    i.add_argument("--old-test", default=None, help="a VOC folder or COCO .json labelled with the old classes: "
                                                    "mAP of the old classes before and after")
    i.add_argument("--test-fraction", type=float, default=0.2, help="share of the new images held out (0.2)")
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
    try:
        args.run(args)
    except (DatasetError, CheckpointError, ParamsError) as e:
        if os.environ.get("DEFECT_IL_DEBUG"):
            raise
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()
