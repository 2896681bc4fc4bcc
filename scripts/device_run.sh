#!/usr/bin/env bash
# Run pipeline stages on a GPU machine that has Python + torch but no network, no DVC and no ../shared.
# Carried in .devcarry/ (git-ignored): pb1-detectron2-0.6.tar.gz, whl/ (pure-python deps and cp312
# wheels), data/<dataset folder> (or its .tar.gz: device_plan.py --data), and plan.txt + params.yaml from `python scripts/device_plan.py TARGET...`
# (the stage commands DVC would run for the targets, in DVC's order: dvc.yaml stays the only map).
# Builds detectron2 with the project's minimal extension, then runs the plan in a scratch workspace;
# metrics go to $OUT.
# Usage: DATA_DIR=NEU-DET [WEIGHTS=file.pth] [JOBS=N] bash scripts/device_run.sh
#   DATA_DIR: the carried data/ folder of params.yaml's dataset; WEIGHTS: a carried backbone weights file
#   (model.weights then points to it); JOBS: how many stages of one plan level (no stage depends on another
#   of its level) run side by side on the one GPU, default 1 (one after another, in the plan's order);
#   WORK: the scratch workspace (default /tmp/work).
#   $OUT gets summary.txt and results.tgz (metrics/, logs/) after every stage, so a run stopped at its time
#   limit still returns what finished; a failed stage is reported and the plan goes on (stages that need
#   its outputs fail in turn).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
CARRY=${CARRY:-$REPO/.devcarry}
OUT=${OUT:-/tmp/out}
SITE=/tmp/site
export PYTHONUNBUFFERED=1
mkdir -p "$SITE" "$OUT"
[ -d "$CARRY"/whl ] && python3 -m pip install -q --no-index --no-deps --no-build-isolation --target "$SITE" "$CARRY"/whl/*
export PYTHONPATH=$SITE:$REPO
if ! python3 -c "import detectron2._C" 2>/dev/null; then
  B=$(mktemp -d); tar xzf "$CARRY"/pb1-detectron2-0.6.tar.gz -C "$B"
  mkdir -p "$B"/pb1-detectron2-0.6/detectron2/layers/csrc
  cp "$REPO"/third_party/detectron2_csrc/vision.cpp "$B"/pb1-detectron2-0.6/detectron2/layers/csrc/
  (cd "$B"/pb1-detectron2-0.6 && CUDA_VISIBLE_DEVICES= python3 -m pip install -q --no-deps --no-index \
     --no-build-isolation --target "$SITE" . > "$OUT"/d2_build.log 2>&1)
fi
python3 -c "import torch, detectron2, detectron_ext.engine; print('torch', torch.__version__, 'cuda', torch.cuda.is_available() and torch.cuda.get_device_name(0))"
W=${WORK:-/tmp/work}; mkdir -p "$W"   # the scratch workspace
[ -f "$CARRY/data/$DATA_DIR.tar.gz" ] && tar xzf "$CARRY/data/$DATA_DIR.tar.gz" -C "$CARRY/data"  # device_plan.py --data
python3 - "$CARRY/params.yaml" "$W/params.yaml" <<PY
import sys, yaml
p = yaml.safe_load(open(sys.argv[1]))
p["datasets"][p["dataset"]]["root"] = "${CARRY}/data/${DATA_DIR}"
p["train"]["num_workers"] = 6
if "${WEIGHTS:-}":
    p["model"]["weights"] = "${CARRY}/${WEIGHTS:-}"
yaml.safe_dump(p, open(sys.argv[2], "w"), sort_keys=False)
PY
cd "$W"
for name in stages detectron_ext pipeline defect_il configs; do ln -sfn "$REPO/$name" "$name"; done
mkdir -p metrics logs
JOBS=${JOBS:-1}
save() {  # metrics, stage logs and training logs (no checkpoints, no images); one temp file per writer
  local tmp="$OUT/.results.$BASHPID.tgz"
  # tar's status 1: a log changed while read (a stage beside this one still writes); the archive is kept
  if tar czf "$tmp" metrics logs $(find checkpoints -name log.txt -o -name metrics.json 2>/dev/null) ||
    [ $? -eq 1 ]; then mv "$tmp" "$OUT"/results.tgz; fi
}
run_stage() {  # one stage command of dvc.yaml, split on spaces (no shell): its log, a summary line, a save
  local argv=("$@") start rc log
  start=$(date +%s); log="logs/$(IFS=_; echo "${argv[*]:1}" | tr '/' '_').log"
  [ "${argv[0]}" = python ] && argv[0]=python3
  if "${argv[@]}" > "$log" 2>&1; then rc=0; else rc=$?; tail -30 "$log"; fi
  echo "${argv[*]}: rc $rc, $(( $(date +%s) - start )) s; $(tail -1 "$log")" | tee -a "$OUT"/summary.txt
  save
}
run_level() {  # the stages of one level, at most JOBS at once
  local cmd argv
  for cmd in "${level_cmds[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || true; done
    read -r -a argv <<< "$cmd"
    run_stage "${argv[@]}" &
  done
  wait
  level_cmds=()
}
: > "$OUT"/summary.txt
level_cmds=(); current=
while read -r level cmd; do   # plan.txt: LEVEL COMMAND, levels in order (scripts/device_plan.py)
  [ "$level" != "$current" ] && [ ${#level_cmds[@]} -gt 0 ] && run_level
  current=$level; level_cmds+=("$cmd")
done < "$CARRY/plan.txt"
[ ${#level_cmds[@]} -gt 0 ] && run_level
! grep -q ': rc [1-9]' "$OUT"/summary.txt
