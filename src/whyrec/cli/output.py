"""The command line's one output channel for progress messages: the ``whyrec`` logger, written to
stderr without breaking tqdm's progress bars. Results go to stdout with ``print``."""

from __future__ import annotations

import logging
import sys

from tqdm.auto import tqdm


class _TqdmHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # logging must never take the command down
            self.handleError(record)


def configure_output(quiet: bool) -> None:
    """Messages from every whyrec module on stderr (warnings only with ``--quiet``)."""
    logger = logging.getLogger("whyrec")
    for handler in list(logger.handlers):
        if isinstance(handler, _TqdmHandler):
            logger.removeHandler(handler)
    handler = _TqdmHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    logger.propagate = False
