"""Errors a user can cause. The CLI turns each into one line and a non-zero exit."""


class WhyrecError(Exception):
    """Base class: a problem with the user's input, reported as one clear line."""


class DataError(WhyrecError):
    """A dataset that cannot be read: missing file, bad column, nothing left after cleaning."""


class UnknownIdError(WhyrecError, KeyError):
    """A user or item id that the run does not know."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "unknown id"


class RunError(WhyrecError):
    """A run directory that is missing or incomplete."""


class TrainingError(WhyrecError):
    """Training that cannot give a model: the loss or validation scores became non-finite."""
