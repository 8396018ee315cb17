#!/usr/bin/env bash
# The Python package's build and tests, as a user gets it: a venv under target/py-venv
# (ignored), maturin, pytest, requests and httpx from PyPI, `pip install ./crates/breakerbox-py`
# (a release build of the abi3 wheel, through maturin), then the pytest suite against a
# real HTTP server on 127.0.0.1. Run from anywhere: `bash crates/breakerbox-py/ci.sh`.
# PYTHON picks the interpreter (3.9 or later; default python3).
set -euo pipefail
cd "$(dirname "$0")/../.."
started=$SECONDS

venv=target/py-venv
python=${PYTHON:-python3}
if [[ ! -x $venv/bin/python ]]; then
  "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade "maturin>=1.9.4,<2" pytest requests httpx

# --force-reinstall --no-deps: the version does not change between commits, and pip
# would keep an older build of the same version.
"$venv/bin/python" -m pip install --disable-pip-version-check --force-reinstall --no-deps ./crates/breakerbox-py

# Run from the tests' directory, so that `import breakerbox` finds the installed wheel,
# not the source tree (which has no compiled _core).
(cd crates/breakerbox-py/tests && "../../../$venv/bin/python" -m pytest -q -p no:cacheprovider .)
echo "breakerbox-py: built and tested in $((SECONDS - started))s"
