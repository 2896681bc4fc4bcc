"""Write the NEU-DET folders of the `defect-il increment` walk-through (docs/commands.md): what a line engineer brings,
Pascal VOC folders of one defect type's images labelled as NEU-DET labels them (other classes' boxes too:
46 of the 240 scratches images also label inclusion), and optionally the old classes' test images.

Usage: python tools/neu_voc_demo.py NEU_DET_ROOT OUT [--new scratches] [--old crazing inclusion patches]
Writes OUT/<new>/ (the class's images 1-240), OUT/<new>_test/ (its images 241-300) and, with --old,
OUT/old_test/ (the old classes' images 241-300), each image with its XML as it comes.
"""
import argparse
import shutil
from pathlib import Path


def write_voc(root: Path, out: Path, stems):
    """Copy each image and its XML unchanged into a VOC folder (Annotations/, JPEGImages/)."""
    (out / "Annotations").mkdir(parents=True, exist_ok=True)
    (out / "JPEGImages").mkdir(exist_ok=True)
    for stem in stems:
        shutil.copy(root / "ANNOTATIONS" / f"{stem}.xml", out / "Annotations" / f"{stem}.xml")
        shutil.copy(root / "IMAGES" / f"{stem}.jpg", out / "JPEGImages" / f"{stem}.jpg")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--new", default="scratches")
    ap.add_argument("--old", nargs="*", default=[])
    args = ap.parse_args()
    write_voc(args.root, args.out / args.new, [f"{args.new}_{i}" for i in range(1, 241)])
    write_voc(args.root, args.out / f"{args.new}_test", [f"{args.new}_{i}" for i in range(241, 301)])
    written = [f"{args.out}/{args.new} (240 images)", f"{args.out}/{args.new}_test (60 images)"]
    if args.old:
        write_voc(args.root, args.out / "old_test", [f"{c}_{i}" for c in args.old for i in range(241, 301)])
        written.append(f"{args.out}/old_test ({60 * len(args.old)} images)")
    print(", ".join(written))


if __name__ == "__main__":
    main()
