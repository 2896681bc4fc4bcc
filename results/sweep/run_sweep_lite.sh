#!/bin/bash
# alpha x beta through DVC's experiment queue: NEU-DET 3+3, `lite` scale, scored on the validation split,
# every student distilled from the SAME teacher as the validation runs (results/neu-det-lite/validation,
# teacher a), so each point pairs with sdidd_frstd_ta_s0 (alpha = beta = 2).
#
#   TEACHER_WS=/work/ws/neu-lite SWEEP=/work/ws/sweep-lite results/sweep/run_sweep_lite.sh [A:B ...]
#
# A scratch clone of the repository (its HEAD: commit first) with params.yaml = the repository's + the
# validation runs' workspace settings; prepare and split run, the teacher's model is copied in from
# TEACHER_WS and recorded with `dvc commit` (so no experiment retrains it); then one queued experiment per
# A:B (default 1:1 1:3 3:1 3:3) of the sdidd stage alone, `dvc queue start -j 1`, and each one's metrics/sdidd.json copied to
# results/neu-det-lite/validation/sdidd_a<A>b<B>_ta_s0/ (tools/results_tables.py reads it there).
# QUEUE=0 stops after the set-up (to check it).
set -e
REPO=$(cd "$(dirname "$0")/../.." && pwd)
TEACHER_WS=${TEACHER_WS:?the workspace that trained teacher a}
SWEEP=${SWEEP:-/work/ws/sweep-lite}
POINTS=${*:-1:1 1:3 3:1 3:3}
export PATH=$REPO/.venv/bin:$PATH
rm -rf "$SWEEP" && git clone -q "$REPO" "$SWEEP" && cd "$SWEEP"
python - <<'PY'
import yaml
p = yaml.safe_load(open("params.yaml"))
p.update(dataset="neu-det", scale="lite", device="cpu")
p["datasets"]["neu-det"]["root"] = "/work/shared/datasets/NEU-DET"
p["model"].update(backbone="efficientnet-lite0", weights="package")
p["train"].update(precision="auto", random_rotate90=0.5)
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
  "sweep base: NEU-DET 3+3 lite, validation split, teacher a ($(sha256sum models/gfl_teacher/model_final.pth | cut -c1-8))"
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
  out=$REPO/results/neu-det-lite/validation/sdidd_${ab}_ta_s0
  mkdir -p "$out" && git show "$rev:metrics/sdidd.json" > "$out/metrics.json"
  git show "$rev:metrics/sdidd.md" > "$out/metrics.md" 2>/dev/null || true
done
cp "$SWEEP"/dvc_exp_show.* "$REPO/results/sweep/" 2>/dev/null || true
