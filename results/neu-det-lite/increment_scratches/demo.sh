#!/usr/bin/env bash
# the README's walk-through on NEU-DET's scratches folder, from a lite NEU-DET workspace (models/gfl_teacher)
set -u
cd /tmp/ws_neu
source /work/main/.venv/bin/activate
lscpu | grep "Model name" > demo_cpu.txt
echo "== refused" ; defect-il increment models/gfl_teacher neu_demo/scratches -o increments/scratches --scale lite; echo "rc=$?"
echo "== increment"
/usr/bin/time -f "wall %e s" defect-il increment models/gfl_teacher neu_demo/scratches -o increments/scratches \
    --classes scratches --test neu_demo/scratches_test --scale lite 2> demo_increment.err; echo "rc=$?"
tail -c 2000 demo_increment.err | tr '\r' '\n' | tail -5
echo "== predict"; defect-il predict increments/scratches/model neu_demo/scratches_test/JPEGImages -o preds; echo "rc=$?"
echo "== export"; defect-il export increments/scratches/model neu_demo/scratches_test/JPEGImages/scratches_241.jpg -o exported; echo "rc=$?"
echo "== predict onnxruntime"; defect-il predict exported neu_demo/scratches_test/JPEGImages -o preds_ort --backend onnxruntime; echo "rc=$?"
echo "== user_increments"; dvc repro user_increments >/dev/null 2>&1; cat reports/user_increments.md
