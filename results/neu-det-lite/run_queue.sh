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
# NAME_s<SEED> otherwise); any other word is a chain of `increments` (folder CHAIN_t<TEACHER>_s<SEED>,
# the layout tools/results_tables.py reads). SEED and TEACHER label the folders: the seed itself is the
# workspace's `train.seed` (null: `seed`), the teacher its models/<chain's teacher>.
RESULTS=$(realpath -m "${RESULTS:?}")
cd "${WS:?}" || exit 1
CODE=${CODE:-$(dirname "$(readlink -f stages)")}
export PYTHONPATH=$CODE
mkdir -p logs fp
collect() {  # name out wall [model_dir]
  mkdir -p "$2"
  cp "metrics/$1.json" "$2/metrics.json" && cp "metrics/$1.md" "$2/metrics.md" 2>/dev/null
  if [ -n "$4" ]; then
    python "$CODE/tools/false_positives.py" "$4" data/splits/phase1_val.json > "$2/false_positives.md" 2>/dev/null
  fi
  for f in train_log.csv distill_trace.csv; do
    cp "plots/$1/phase1/$f" "$2/" 2>/dev/null || cp "plots/$1/$f" "$2/" 2>/dev/null
  done
  echo "$3" > "$2/wall_s.txt"
}
for item in "$@"; do
  start=$(date +%s)
  case $item in
    run:*)
      name=${item#run:}
      { python stages/train.py "$name" && python stages/evaluate.py "$name"; } > "logs/$name.log" 2>&1 \
        || { echo "$name failed" >> logs/queue.txt; continue; }
      case $name in *teacher*) out=$RESULTS/${name}_$TEACHER ;; *) out=$RESULTS/${name}_s$SEED ;; esac
      model= ;;
    *)
      name=$item
      python stages/increment.py "$name" > "logs/$name.log" 2>&1 || { echo "$name failed" >> logs/queue.txt; continue; }
      out=$RESULTS/${name}_t${TEACHER}_s$SEED
      model=models/$name/phase1 ;;
  esac
  wall=$(( $(date +%s) - start ))
  echo "$name $wall s" >> logs/queue.txt
  collect "$name" "$out" "$wall" "$model"
done
