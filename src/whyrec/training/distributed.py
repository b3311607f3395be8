"""Several processes training one model, launched by torch's own launcher.

``whyrec train --nproc N`` starts N local worker processes through torch's elastic launch API
(what ``torchrun`` runs); each joins one process group (gloo on CPU, NCCL on CUDA) and trains the
same model on its share of every batch (``whyrec.models.parallel``). Started by ``torchrun``
instead (several machines), ``whyrec train`` finds the group's environment and joins it.
Rank 0 alone tests the model and writes the run directory.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
from torch.distributed.launcher.api import LaunchConfig, elastic_launch

from whyrec.errors import WhyrecError

log = logging.getLogger(__name__)


def backend(device: str) -> str:
    return "nccl" if device == "cuda" else "gloo"


def check_device(device: str) -> None:
    """One clear line when DEVICE cannot be used here."""
    if device == "cuda" and not torch.cuda.is_available():
        raise WhyrecError("--device cuda: torch sees no CUDA GPU here (use --device cpu)")


def launched_by_torchrun() -> bool:
    """This process is one of several started by torchrun (and not yet in their group)."""
    started = "TORCHELASTIC_RUN_ID" in os.environ and int(os.environ.get("WORLD_SIZE", "1")) > 1
    return started and not dist.is_initialized()


def in_group(device: str, entry: Callable[..., Any], *args: Any) -> Any:
    """ENTRY(*ARGS) inside the process group described by the environment (torchrun's variables)."""
    if device == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend(device))
    try:
        return entry(*args)
    finally:
        dist.destroy_process_group()


def _spawned(device: str, entry: Callable[..., Any], *args: Any) -> Any:
    """A launched worker: a user mistake comes back as ``{"error": message}``, not a crash."""
    try:
        return in_group(device, entry, *args)
    except WhyrecError as error:
        return {"error": str(error)}


def launch(nproc: int, device: str, entry: Callable[..., Any], *args: Any) -> Any:
    """ENTRY(*ARGS) in NPROC local processes forming one group; rank 0's return value.

    ENTRY and ARGS must be picklable (the workers are spawned)."""
    if nproc < 1:
        raise WhyrecError(f"--nproc must be at least 1, not {nproc}")
    check_device(device)
    if device == "cuda" and nproc > torch.cuda.device_count():
        raise WhyrecError(
            f"--nproc {nproc} on cuda needs as many GPUs; torch sees {torch.cuda.device_count()}"
        )
    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=nproc,
        run_id=f"whyrec-{uuid.uuid4().hex[:8]}",
        rdzv_backend="c10d",
        rdzv_endpoint="127.0.0.1:0",  # a free port on this machine
        max_restarts=0,
        monitor_interval=0.1,
        start_method="spawn",
    )
    log.info(f"training on {nproc} processes ({backend(device)})")
    try:
        results = elastic_launch(config, _spawned)(device, entry, *args)
    except ChildFailedError as error:
        rank, failure = error.get_first_failure()
        raise WhyrecError(
            f"training on {nproc} processes failed: process {rank} exited with code {failure.exitcode}"
            + (f" ({failure.message})" if failure.message and failure.message != "<N/A>" else "")
        ) from None
    result = results[0]
    if isinstance(result, dict) and set(result) == {"error"}:
        raise WhyrecError(result["error"])
    return result
