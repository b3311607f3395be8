"""Loading, cleaning and splitting behaviour logs."""

from whyrec.data.dataset import CleaningReport, Dataset, ItemCatalog
from whyrec.data.loaders import KINDS, LoadOptions, load_dataset
from whyrec.data.split import SequenceSplit, leave_one_out
from whyrec.data.vocab import Vocabulary

__all__ = [
    "KINDS",
    "CleaningReport",
    "Dataset",
    "ItemCatalog",
    "LoadOptions",
    "SequenceSplit",
    "Vocabulary",
    "leave_one_out",
    "load_dataset",
]
