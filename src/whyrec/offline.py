"""whyrec never downloads weights or data: every model it loads lies on disk.

:func:`stay_offline` is the one place that tells Hugging Face libraries so; importing
:mod:`whyrec` calls it, before any of them is imported. A value already set in the environment
is kept.
"""

from __future__ import annotations

import os

OFFLINE_ENVIRONMENT = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",  # tokenizers' threads and torch's would compete for 2 cores
}


def stay_offline() -> None:
    for name, value in OFFLINE_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
