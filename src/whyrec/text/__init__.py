"""Item text encoders (a pretrained language model by default)."""

from whyrec.text.encoder import CachedEncoder, HashingEncoder, SentenceEncoder, TextEncoder, make_encoder

__all__ = ["CachedEncoder", "HashingEncoder", "SentenceEncoder", "TextEncoder", "make_encoder"]
