"""What every benchmark shares: the stamp that says which code and machine produced a result, and
writing a result file with it."""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from whyrec.training.adapt import AdaptConfig

ROOT = Path(__file__).resolve().parents[1]


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


#: the code a benchmark runs is what was checked out when it started (this module is imported at
#: start), not what is checked out when it writes, perhaps an hour later
CODE = {
    "commit": _git("rev-parse", "HEAD"),
    "dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
}


def stamp(config: dict[str, Any] | None = None) -> dict[str, Any]:
    """The commit (and whether the tree had uncommitted changes) at start, machine, versions, CONFIG."""
    import numpy as np
    import torch

    return {
        **CODE,
        "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "config": config or {},
    }


def write_result(path: Path, payload: dict[str, Any], config: dict[str, Any] | None = None) -> Path:
    """PAYLOAD with the stamp under ``"stamp"``, as indented JSON at PATH (folders created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"stamp": stamp(config), **payload}, indent=2, default=str))
    return path


def add_adapt_encoder(parser: argparse.ArgumentParser) -> None:
    """The ``--adapt-encoder`` option of a benchmark that prepares a dataset (see :func:`adaptation`)."""
    parser.add_argument(
        "--adapt-encoder",
        action="store_true",
        help="fine-tune the text encoder on the training split first (whyrec --adapt-encoder)",
    )


def adaptation(args: argparse.Namespace) -> AdaptConfig | None:
    """The default adaptation when ``--adapt-encoder`` was given, else None (as ``whyrec`` does)."""
    from whyrec.training.adapt import AdaptConfig

    return AdaptConfig() if args.adapt_encoder else None
