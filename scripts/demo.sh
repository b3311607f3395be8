#!/usr/bin/env bash
# Fresh machine -> the demo: installs everything, trains on the bundled MovieTweetings data
# (offline), then serves the web UI on http://127.0.0.1:8000. Extra arguments go to `whyrec demo`
# (e.g. --no-serve to print explained recommendations instead).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1
exec "${WHYREC_VENV:-.venv}/bin/whyrec" demo "$@"
