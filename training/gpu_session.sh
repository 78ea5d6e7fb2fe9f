#!/bin/bash
# The device's side of training/gpu_session.py (its docstring has the whole job): the carried wheels first on the
# path, then `run`, its output in $OUT/log.txt as it goes. Arguments go to run (and through it to run_all).
set -euo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:. PYTHONUNBUFFERED=1
python3 -m training.gpu_session run --out "$OUT" "$@" 2>&1 | tee "$OUT/log.txt"
