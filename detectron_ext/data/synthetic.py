"""A small synthetic surface-defect dataset, generated in seconds, so the pipeline runs with no download.

Textured grey background; six visually distinct defect types, one to four per image, boxes as
annotations. Everything is drawn from numpy.random.default_rng((seed, split, index)): the same
seed gives the same images and boxes.
"""
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

SYNTHETIC_CLASSES = ["scratch", "patch", "inclusion", "crack", "pits", "streak"]


def _background(rng, size):
    low = cv2.resize(rng.normal(0, 1, (size // 16 + 1, size // 16 + 1)), (size, size),
                     interpolation=cv2.INTER_CUBIC)
    img = 128 + 12 * low + rng.normal(0, 5, (size, size))
    return img


def _draw(rng, kind, size):
    """Return (layer, alpha-mask) in a local canvas plus the object's tight box in that canvas."""
    if kind == "scratch":  # thin bright diagonal line
        length = rng.uniform(0.3, 0.55) * size
        ang = rng.uniform(np.pi / 8, 3 * np.pi / 8) + (np.pi / 2 if rng.random() < 0.5 else 0.0)
        w = int(np.ceil(abs(np.cos(ang)) * length)) + 6
        h = int(np.ceil(abs(np.sin(ang)) * length)) + 6
        canvas = np.zeros((h, w), np.float32)
        c = np.array([w / 2, h / 2])
        d = np.array([np.cos(ang), np.sin(ang)]) * length / 2
        p1, p2 = (c - d).astype(int), (c + d).astype(int)
        cv2.line(canvas, tuple(int(v) for v in p1), tuple(int(v) for v in p2), 1.0, 2, cv2.LINE_AA)
        return canvas, +70.0
    if kind == "patch":  # large soft dark blob
        r = rng.uniform(0.09, 0.16) * size
        s = int(2 * r * 1.4) + 4
        canvas = np.zeros((s, s), np.float32)
        for _ in range(4):
            off = rng.uniform(-0.3, 0.3, 2) * r
            cv2.ellipse(canvas, (int(s / 2 + off[0]), int(s / 2 + off[1])),
                        (int(r * rng.uniform(0.6, 1.0)), int(r * rng.uniform(0.6, 1.0))),
                        rng.uniform(0, 180), 0, 360, 1.0, -1)
        canvas = cv2.GaussianBlur(canvas, (0, 0), 1.5)
        return canvas, -45.0
    if kind == "inclusion":  # small very dark elongated spot
        a, b = rng.uniform(0.06, 0.1) * size, rng.uniform(0.035, 0.055) * size
        s = int(2 * a) + 6
        canvas = np.zeros((s, s), np.float32)
        cv2.ellipse(canvas, (s // 2, s // 2), (int(a), max(1, int(b))), rng.uniform(0, 180), 0, 360, 1.0, -1)
        return canvas, -85.0
    if kind == "crack":  # branching dark network
        s = int(rng.uniform(0.2, 0.3) * size)
        canvas = np.zeros((s, s), np.float32)
        for _ in range(rng.integers(3, 6)):
            p = rng.uniform(0.2, 0.8, 2) * s
            for _ in range(rng.integers(4, 8)):
                q = np.clip(p + rng.normal(0, s / 5, 2), 0, s - 1)
                cv2.line(canvas, tuple(int(v) for v in p), tuple(int(v) for v in q), 1.0, 1, cv2.LINE_AA)
                p = q
        return canvas, -60.0
    if kind == "pits":  # cluster of small dark dots
        s = int(rng.uniform(0.14, 0.22) * size)
        canvas = np.zeros((s, s), np.float32)
        for _ in range(rng.integers(6, 14)):
            c = rng.uniform(0.15, 0.85, 2) * s
            cv2.circle(canvas, (int(c[0]), int(c[1])), int(rng.integers(1, 3)), 1.0, -1)
        return canvas, -70.0
    if kind == "streak":  # wide bright axis-aligned band with soft edges
        length, width = rng.uniform(0.35, 0.6) * size, rng.uniform(0.08, 0.12) * size
        canvas = np.zeros((int(width) + 6, int(length)), np.float32)
        canvas[3:-3, :] = 1.0
        canvas = cv2.GaussianBlur(canvas, (0, 0), 1.2)
        if rng.random() < 0.5:
            canvas = canvas.T.copy()
        return canvas, +35.0
    raise ValueError(kind)


def _tight_box(mask, thr=0.2):
    ys, xs = np.nonzero(mask > thr)
    return xs.min(), ys.min(), xs.max() + 1, ys.max() + 1


def _iou(a, b):
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def synthesize_image(rng, size):
    """One image (uint8 HxW) and its boxes [(x1, y1, x2, y2, class_name)]."""
    img = _background(rng, size)
    boxes = []
    for _ in range(int(rng.integers(1, 5))):
        kind = SYNTHETIC_CLASSES[int(rng.integers(len(SYNTHETIC_CLASSES)))]
        layer, strength = _draw(rng, kind, size)
        h, w = layer.shape
        if h >= size or w >= size:
            continue
        for _ in range(20):  # place without heavy overlap
            x0, y0 = int(rng.integers(0, size - w)), int(rng.integers(0, size - h))
            bx1, by1, bx2, by2 = _tight_box(layer)
            box = (float(x0 + bx1), float(y0 + by1), float(x0 + bx2), float(y0 + by2))
            if all(_iou(box, b[:4]) < 0.05 for b in boxes):
                img[y0:y0 + h, x0:x0 + w] += strength * layer
                boxes.append((*box, kind))
                break
    return np.clip(img, 0, 255).astype(np.uint8), boxes


def generate_synthetic(out_dir, num_train=240, num_test=60, image_size=128, seed=0):
    """Write PNGs under out_dir/images and return (classes, train_records, test_records)."""
    out_dir = Path(out_dir)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    splits = {}
    for split_id, (split, n) in enumerate((("train", num_train), ("test", num_test))):
        records = []
        for i in tqdm(range(n), desc=f"synthesizing {split}", unit="img", mininterval=1.0):
            rng = np.random.default_rng((seed, split_id, i))
            img, boxes = synthesize_image(rng, image_size)
            rel = f"images/{split}_{i:05d}.png"
            cv2.imwrite(str(out_dir / rel), img)
            records.append({"file_name": rel, "width": image_size, "height": image_size, "boxes": boxes})
        splits[split] = records
    return list(SYNTHETIC_CLASSES), splits["train"], splits["test"]
