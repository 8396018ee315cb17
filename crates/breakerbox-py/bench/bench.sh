#!/usr/bin/env bash
# breakerbox-py against pybreaker, circuitbreaker, aiobreaker and purgatory (compare.py),
# in the venv ci.sh makes (target/py-venv): builds and installs the wheel unless
# BENCH_NO_BUILD=1 (then the installed one is used), installs the pinned competitors,
# runs compare.py with its arguments. `bash crates/breakerbox-py/bench/bench.sh`.
set -euo pipefail
cd "$(dirname "$0")/../../.."
venv=target/py-venv
python=${PYTHON:-python3}
if [[ ! -x $venv/bin/python ]]; then
  "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check)
"${pip[@]}" "maturin>=1.9.4,<2" pybreaker==1.4.1 circuitbreaker==2.1.3 aiobreaker==1.2.0 purgatory==3.0.1
if [[ ${BENCH_NO_BUILD:-} != 1 ]]; then
  "${pip[@]}" --force-reinstall --no-deps ./crates/breakerbox-py
fi
# Outside the source tree, so that `import breakerbox` is the installed wheel.
cd crates/breakerbox-py/bench
exec "../../../$venv/bin/python" compare.py "$@"
