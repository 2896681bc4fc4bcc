#!/bin/sh
# Runs, one after another, in a scratch workspace (pipeline/workspace.py: make_workspace), each collected into
# $RESULTS with its metrics (provenance inside), training log, distillation trace, false-positive tally and
# wall-clock time. Code: $CODE (a git worktree of one commit, first on PYTHONPATH, so edits on main during a
# queue reach none of its runs).
#
#   WS=/work/ws/neu-lite TEACHER=a SEED=0 RESULTS=results/neu-det-lite/validation \
#     results/neu-det-lite/run_queue.sh run:gfl_teacher run:gfl_joint finetune erd sdidd
#
# run:NAME trains and evaluates params.yaml's `runs` entry NAME (folder NAME_<TEACHER> for a teacher,
# NAME_s<SEED> otherwise; run:NAME=ROW names the folder ROW_... instead: a workspace's variant of a run,
# e.g. run:fcos_tgfs_joint=fcos_tgfs_m07 in a workspace with its own `assigners.tgfs`); any other word is a chain of `increments` (folder CHAIN_t<TEACHER>_s<SEED>,
# the layout tools/results_tables.py reads). SEED and TEACHER label the folders: the seed itself is the
# workspace's `train.seed` (null: `seed`), the teacher its models/<chain's teacher>. CHAIN=ROW collects the
# chain CHAIN under the row name ROW (a workspace's chain that is today's default of a method:
# sdidd_frstd=sdidd).
#
# A chain of several phases (-S task=2+2+2): its last phase's model is tallied and its training log collected
# as train_log.csv, every phase's also as phaseK_train_log.csv.
#
# SPLIT=test (or val) re-scores runs the workspace has already trained on that split, without training:
# params.yaml's `evaluate.split` is set for the queue and restored after it; run:NAME is only evaluated, a
# chain resumes at its last iteration (nothing to train) and is evaluated. A queue that finds anything to
# train stops there (the model's checksum changed), so a re-score never replaces a model. (A chain's resume
# at its last iteration still runs its final periodic evaluation on the validation images, ~1 min.)
#
#   WS=/work/ws/neu-lite TEACHER=a SEED=0 SPLIT=test RESULTS=results/neu-det-lite/test \
#     results/neu-det-lite/run_queue.sh run:gfl_joint sdidd_frstd=sdidd global_erdbox erd finetune
RESULTS=$(realpath -m "${RESULTS:?}")
cd "${WS:?}" || exit 1
CODE=${CODE:-$(dirname "$(readlink -f stages)")}
export PYTHONPATH=$CODE
mkdir -p logs fp
if [ -n "$SPLIT" ]; then
  cp params.yaml logs/params.before_rescore.yaml
  trap 'cp logs/params.before_rescore.yaml params.yaml' EXIT INT TERM
  python -c "import sys, yaml; p = yaml.safe_load(open('params.yaml')); p['evaluate']['split'] = sys.argv[1]; \
yaml.safe_dump(p, open('params.yaml', 'w'), sort_keys=False)" "$SPLIT" || exit 1
fi
models_sha() { cat models/"$1"/phase*/model_final.pth 2>/dev/null | sha256sum | cut -c1-64; }
collect() {  # name out wall [model_dir]
  mkdir -p "$2"
  cp "metrics/$1.json" "$2/metrics.json" && cp "metrics/$1.md" "$2/metrics.md" 2>/dev/null
  if [ -n "$4" ] && [ -z "$SPLIT" ]; then  # (a re-score keeps the tally its training run made)
    python "$CODE/tools/false_positives.py" "$4" "data/splits/$(basename "$4")_val.json" > "$2/false_positives.md" 2>/dev/null
  fi
  for f in train_log.csv distill_trace.csv; do
    cp "plots/$1/$f" "$2/" 2>/dev/null  # a run
    for d in "plots/$1"/phase*; do      # a chain: its last phase's as $f, with several phases each as phaseK_$f too
      [ -f "$d/$f" ] || continue
      cp "$d/$f" "$2/$f"
      [ -d "plots/$1/phase2" ] && cp "$d/$f" "$2/$(basename "$d")_$f"
    done
  done
  echo "$3" > "$2/${SPLIT:+rescore_}wall_s.txt"
}
for item in "$@"; do
  start=$(date +%s)
  case $item in
    run:*)
      name=${item#run:}
      row=${name#*=}
      name=${name%%=*}
      if [ -n "$SPLIT" ]; then
        python stages/evaluate.py "$name" > "logs/$name.$SPLIT.log" 2>&1 || { echo "$name failed" >> logs/queue.txt; continue; }
      else
        { python stages/train.py "$name" && python stages/evaluate.py "$name"; } > "logs/$name.log" 2>&1 \
          || { echo "$name failed" >> logs/queue.txt; continue; }
      fi
      case $name in *teacher*) out=$RESULTS/${row}_$TEACHER ;; *) out=$RESULTS/${row}_s$SEED ;; esac
      model= ;;
    *)
      name=${item%%=*}
      row=${item#*=}
      if [ -n "$SPLIT" ] && [ ! -f "models/$name/phase1/model_final.pth" ]; then
        echo "$name: no trained model in $WS/models/$name to re-score" | tee -a logs/queue.txt; continue
      fi
      before=$(models_sha "$name")
      python stages/increment.py "$name" > "logs/$name${SPLIT:+.$SPLIT}.log" 2>&1 \
        || { echo "$name failed" >> logs/queue.txt; continue; }
      if [ -n "$SPLIT" ] && [ "$before" != "$(models_sha "$name")" ]; then
        echo "$name: trained instead of re-scored (no model, or its inputs changed): queue stopped" | tee -a logs/queue.txt
        exit 1
      fi
      out=$RESULTS/${row}_t${TEACHER}_s$SEED
      model=$(ls -d "models/$name"/phase* | sort -V | tail -1) ;;  # a chain's last phase
  esac
  wall=$(( $(date +%s) - start ))
  echo "$name $wall s" >> logs/queue.txt
  collect "$name" "$out" "$wall" "$model"
done
