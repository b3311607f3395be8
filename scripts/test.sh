#!/usr/bin/env bash
# Fresh machine -> the whole test suite: installs everything, starts PostgreSQL and installs
# Debian's chromium when run as root (what CI does), then runs pytest. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    # shellcheck source=/dev/null
    source .ci/services.sh
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
status=0
"${WHYREC_VENV:-.venv}/bin/python" -m pytest "$@" || status=$?
if [ "$status" = 5 ]; then
    echo "test.sh: pytest collected no tests; treating that as a failure" >&2
fi
exit "$status"
