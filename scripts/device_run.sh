#!/usr/bin/env bash
# Run pipeline stages on a GPU machine that has Python + torch but no network and no ../shared.
# Carried in .devcarry/ (git-ignored): pb1-detectron2-0.6.tar.gz, whl/ (pure-python deps and
# cp312 wheels), data/<dataset folder>. Builds detectron2 with the project's minimal extension,
# then runs `stages/*.py` for the given runs in a scratch workspace; metrics go to $OUT.
# Usage: DATASET=neu-det DATA_DIR=NEU-DET SCALE=cpu RUNS="gfl_teacher gfl_joint" bash scripts/device_run.sh
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
CARRY=$REPO/.devcarry
OUT=${OUT:-/tmp/out}
SITE=/tmp/site
export PYTHONUNBUFFERED=1
mkdir -p "$SITE" "$OUT"
python3 -m pip install -q --no-index --no-deps --no-build-isolation --target "$SITE" "$CARRY"/whl/*
export PYTHONPATH=$SITE:$REPO
if ! python3 -c "import detectron2._C" 2>/dev/null; then
  B=$(mktemp -d); tar xzf "$CARRY"/pb1-detectron2-0.6.tar.gz -C "$B"
  mkdir -p "$B"/pb1-detectron2-0.6/detectron2/layers/csrc
  cp "$REPO"/third_party/detectron2_csrc/vision.cpp "$B"/pb1-detectron2-0.6/detectron2/layers/csrc/
  (cd "$B"/pb1-detectron2-0.6 && CUDA_VISIBLE_DEVICES= python3 -m pip install -q --no-deps --no-index \
     --no-build-isolation --target "$SITE" . > "$OUT"/d2_build.log 2>&1)
fi
python3 -c "import torch, detectron2, detectron_ext.engine; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0))"
W=/tmp/work; mkdir -p "$W"
python3 - "$REPO/params.yaml" "$W/params.yaml" <<PY
import sys, yaml
p = yaml.safe_load(open(sys.argv[1]))
p["dataset"] = "${DATASET}"; p["scale"] = "${SCALE}"; p["device"] = "cuda"
p["datasets"]["${DATASET}"]["root"] = "${CARRY}/data/${DATA_DIR}"
p["train"]["num_workers"] = 4
yaml.safe_dump(p, open(sys.argv[2], "w"), sort_keys=False)
PY
cd "$W"
python3 "$REPO"/stages/prepare.py
python3 "$REPO"/stages/split.py
for run in $RUNS; do
  start=$(date +%s)
  python3 "$REPO"/stages/train.py "$run" > "$OUT/train_$run.log" 2>&1 || { tail -30 "$OUT/train_$run.log"; exit 1; }
  python3 "$REPO"/stages/evaluate.py "$run" 2>&1 | tail -1
  echo "$run: $(( $(date +%s) - start )) s (train + evaluate)"
done
mkdir -p "$OUT"/metrics && cp metrics/*.json metrics/*.md "$OUT"/metrics/
