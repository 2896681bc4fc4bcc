#!/bin/bash
# alpha x beta sweep through DVC's experiment queue on NEU-DET (CI scale), in a scratch clone
set -x
export PATH=/work/main/.venv/bin:$PATH
rm -rf /tmp/sweep && git clone -q /work/main /tmp/sweep && cd /tmp/sweep || exit 1
python - <<'PY'
import yaml
p = yaml.safe_load(open("params.yaml"))
p["dataset"] = "neu-det"; p["scale"] = "ci"
p["datasets"]["neu-det"]["root"] = "/work/shared/datasets/NEU-DET"
p["runs"] = {"gfl_teacher": p["runs"]["gfl_teacher"]}
# the paper's CR and BR, which read alpha and beta (the defaults when this ran; today's are global)
p["distill"]["cls_mode"] = p["distill"]["reg_mode"] = "selective"
yaml.safe_dump(p, open("params.yaml", "w"), sort_keys=False)
PY
git -c user.name=sweep -c user.email=sweep@local commit -qam "sweep base: NEU-DET, CI scale, SD-IDD" || exit 1
for a in 1 3; do for b in 1 3; do dvc exp run --queue sdidd -S alpha=$a -S beta=$b; done; done
dvc queue start -j 1
while dvc queue status | grep -q -E "Running|Queued"; do sleep 30; done
dvc queue status
dvc exp show --csv > /tmp/sweep_table.csv 2>&1; dvc exp show --only-changed --md > /tmp/sweep_table.md 2>&1
cat /tmp/sweep_table.md
