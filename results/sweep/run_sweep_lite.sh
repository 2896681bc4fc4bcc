#!/bin/bash
# alpha x beta through DVC's experiment queue: NEU-DET 3+3, `lite` scale, scored on the validation split,
# every student distilled from the SAME teacher as one workspace's validation runs
# (results/neu-det-lite/validation, teacher TEACHER trained with train.seed SEED), so each point pairs with
# that workspace's SD-IDD run, sdidd_frstd_t<TEACHER>_s<SEED> (at the workspace's alpha, beta: 2 in d and e).
#
#   TEACHER_WS=/work/ws/neu-lite-d TEACHER=d SEED=3 SWEEP=/work/ws/sweep-lite results/sweep/run_sweep_lite.sh [A:B ...]
#
# A scratch clone of the repository (its HEAD: commit first) with params.yaml = TEACHER_WS's (the same
# settings and train.seed as its runs; `runs` cut to the teacher); prepare and split run, the teacher's model is copied in from
# TEACHER_WS and recorded with `dvc commit` (so no experiment retrains it); then one queued experiment per
# A:B (default 1:1 1:3 3:1 3:3) of the sdidd stage alone, `dvc queue start -j 1`, and each one's metrics/sdidd.json copied to
# results/neu-det-lite/validation/sdidd_a<A>b<B>_t<TEACHER>_s<SEED>/ (tools/results_tables.py reads it there);
# `dvc exp show`'s table to results/sweep/dvc_exp_show_t<TEACHER>_<points>.{md,csv}.
# QUEUE=0 stops after the set-up (to check it).
set -e
REPO=$(cd "$(dirname "$0")/../.." && pwd)
TEACHER_WS=$(realpath "${TEACHER_WS:?the workspace that trained the teacher}")
TEACHER=${TEACHER:?the teacher's letter (results folders)}
SEED=${SEED:?the workspace's train.seed (results folders)}
SWEEP=${SWEEP:-/work/ws/sweep-lite}
POINTS=${*:-1:1 1:3 3:1 3:3}
export PATH=$REPO/.venv/bin:$PATH
rm -rf "$SWEEP" && git clone -q "$REPO" "$SWEEP" && cd "$SWEEP"
export PYTHONPATH=$SWEEP  # the clone's code (its commit) for every stage of the sweep, not the editable install's
python - "$TEACHER_WS/params.yaml" "$SEED" <<'PY'
import sys, yaml
p = yaml.safe_load(open(sys.argv[1]))
if int(p["train"]["seed"] if p["train"]["seed"] is not None else p["seed"]) != int(sys.argv[2]):
    sys.exit(f"error: {sys.argv[1]}: train.seed is not SEED={sys.argv[2]}")
p["runs"] = {"gfl_teacher": p["runs"]["gfl_teacher"]}
yaml.safe_dump(p, open("params.yaml", "w"), sort_keys=False)
PY
dvc repro -q split
mkdir -p models plots
cp -r "$TEACHER_WS/models/gfl_teacher" models/
cp -r "$TEACHER_WS/plots/gfl_teacher" plots/
mkdir -p checkpoints/gfl_teacher
cp "$TEACHER_WS/checkpoints/gfl_teacher/"{config.yaml,last_checkpoint,model_final.pth} checkpoints/gfl_teacher/
dvc commit -f -q train@gfl_teacher
git add -A params.yaml dvc.lock && git -c user.name=sweep -c user.email=sweep@local commit -qm \
  "sweep base: NEU-DET 3+3 lite, validation split, teacher $TEACHER ($(sha256sum models/gfl_teacher/model_final.pth | cut -c1-8))"
dvc status sdidd
[ "${QUEUE:-1}" = 0 ] && exit 0
for point in $POINTS; do
  # -s: the sdidd stage alone; its inputs (splits, teacher) come from the cache. Without it an experiment's
  # copy of the workspace lacks the teacher's checkpoint folder (a persist output, not cached) and retrains it.
  dvc exp run -q --queue -s sdidd -S alpha=${point%:*} -S beta=${point#*:}
done
dvc queue start -j 1
while dvc queue status | grep -q -E "Running|Queued"; do sleep 60; done
dvc queue status
dvc exp show --csv > "$SWEEP/dvc_exp_show.csv"
dvc exp show --md --drop '.*' --keep '^Experiment$|^State$|^alpha$|^beta$|metrics/sdidd.json:mAP50' > "$SWEEP/dvc_exp_show.md"
base=$(git rev-parse HEAD)
for rev in $(dvc exp ls --sha-only); do
  git diff --quiet "$base" "$rev" -- metrics/sdidd.json && continue   # an experiment that did not train sdidd
  ab=$(git show "$rev:params.yaml" | python -c "import sys,yaml; p=yaml.safe_load(sys.stdin); print(f\"a{p['alpha']:g}b{p['beta']:g}\")")
  out=$REPO/results/neu-det-lite/validation/sdidd_${ab}_t${TEACHER}_s${SEED}
  mkdir -p "$out" && git show "$rev:metrics/sdidd.json" > "$out/metrics.json"
  git show "$rev:metrics/sdidd.md" > "$out/metrics.md" 2>/dev/null || true
done
tag=t${TEACHER}_$(echo "$POINTS" | tr ' :' '_-')   # one table per teacher and grid: dvc_exp_show_te_0-1_1-0.md
for f in "$SWEEP"/dvc_exp_show.*; do cp "$f" "$REPO/results/sweep/dvc_exp_show_${tag}.${f##*.}"; done
