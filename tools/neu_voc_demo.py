"""Write the NEU-DET folders of the `defect-il increment` demonstration (README): a Pascal VOC folder of
one class's images labelled with that class only (what a line engineer brings: a new defect type), and
a VOC folder of the old classes' test images (NEU-DET's images 241-300 of each class).

Usage: python tools/neu_voc_demo.py NEU_DET_ROOT OUT --new scratches --old crazing inclusion patches
Writes OUT/new_<class>/ (images 1-240 of the class) and OUT/old_test/.
"""
import argparse
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path


def write_voc(root: Path, out: Path, stems, keep: set):
    """Copy each image and its XML, keeping only the objects of `keep`."""
    (out / "Annotations").mkdir(parents=True, exist_ok=True)
    (out / "JPEGImages").mkdir(exist_ok=True)
    for stem in stems:
        tree = ET.parse(root / "ANNOTATIONS" / f"{stem}.xml")
        for obj in tree.getroot().findall("object"):
            if obj.findtext("name", "").strip() not in keep:
                tree.getroot().remove(obj)
        tree.write(out / "Annotations" / f"{stem}.xml")
        shutil.copy(root / "IMAGES" / f"{stem}.jpg", out / "JPEGImages" / f"{stem}.jpg")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--new", default="scratches")
    ap.add_argument("--old", nargs="+", default=["crazing", "inclusion", "patches"])
    args = ap.parse_args()
    write_voc(args.root, args.out / f"new_{args.new}", [f"{args.new}_{i}" for i in range(1, 241)], {args.new})
    write_voc(args.root, args.out / "old_test", [f"{c}_{i}" for c in args.old for i in range(241, 301)], set(args.old))
    print(f"{args.out}/new_{args.new} (240 images), {args.out}/old_test ({60 * len(args.old)} images)")


if __name__ == "__main__":
    main()
