#!/usr/bin/env bash
# Create (or reuse) bench/.recbole-venv with RecBole 1.2.1 for bench/compare.py --recbole.
#
#   bash bench/setup_recbole.sh        # about a minute the first time, a second after that
#
# RecBole lives in its own venv: it wants numpy 1.x, pandas 2.1 and old colorlog/colorama pins
# that whyrec's own environment does not (and should not) have. torch goes first, alone and
# pinned, so that the CPU wheel satisfies it instead of pip pulling a multi-GB CUDA build.
# RecBole is installed without its declared dependencies: it pins ray<=2.6.3 (and lists plotly)
# for its hyper-parameter tuning only, which the benchmark never imports; everything it imports
# on the train/evaluate path is listed below. setuptools is left to torch (2.13 needs >= 77):
# nothing on that path imports pkg_resources, and an old setuptools would break pip's resolution.
set -euo pipefail
cd "$(dirname "$0")"
VENV=${RECBOLE_VENV:-.recbole-venv}
PY="$VENV/bin/python"

REQUIREMENTS=(
    "recbole==1.2.1"
    "numpy==1.26.4" "pandas==2.1.4" "scipy==1.11.4" "scikit-learn==1.3.2"
    "colorlog==4.7.2" "colorama==0.4.4" "pyyaml>=5.1" "tqdm>=4.48" "tensorboard>=2.5"
    "texttable>=0.9" "tabulate>=0.8.10" "psutil>=5.9" "thop>=0.1.1.post2207130030"
)
STAMP="$VENV/.whyrec-setup"
WANT="torch==2.13.0 ${REQUIREMENTS[*]}"

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ] && "$PY" -c "import recbole" 2>/dev/null; then
    echo "RecBole venv ready: $(cd "$VENV" && pwd)"
    exit 0
fi

[ -x "$PY" ] || python3 -m venv "$VENV"
"$PY" -m pip install -q torch==2.13.0
"$PY" -m pip install -q "${REQUIREMENTS[@]:1}" torch==2.13.0
"$PY" -m pip install -q --no-deps "${REQUIREMENTS[0]}"
"$PY" -c "import torch; assert '+cpu' in torch.__version__ or not torch.cuda.is_available(), torch.__version__"

# torch >= 2.6 loads with weights_only=True by default, which refuses RecBole's checkpoints
# (they hold its config object). Every torch.load(...) call in RecBole gets weights_only=False;
# lines that already name weights_only are left alone, so running this twice changes nothing.
SITE=$("$PY" -c "import os, recbole; print(os.path.dirname(recbole.__file__))")
grep -rl --include='*.py' 'torch\.load(' "$SITE" | while read -r file; do
    sed -i '/weights_only/!s/torch\.load(\([^()]*\))/torch.load(\1, weights_only=False)/g' "$file"
done
left=$(grep -rn --include='*.py' 'torch\.load(' "$SITE" | grep -vc weights_only || true)
if [ "$left" != 0 ]; then
    echo "setup_recbole.sh: $left torch.load call(s) in RecBole were not patched" >&2
    exit 1
fi

"$PY" - <<'EOF'
import recbole
from recbole.config import Config  # noqa: F401
from recbole.data import create_dataset, data_preparation  # noqa: F401
from recbole.trainer import Trainer  # noqa: F401
from recbole.utils import get_model, init_seed  # noqa: F401
import torch
print(f"RecBole {recbole.__version__}, torch {torch.__version__}")
EOF
echo "$WANT" > "$STAMP"
echo "RecBole venv ready: $(cd "$VENV" && pwd)"
