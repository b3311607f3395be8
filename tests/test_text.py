"""Text encoders: the bundled MiniLM loads offline and means something; the disk cache makes a
second run encode nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from whyrec.errors import WhyrecError
from whyrec.text import CachedEncoder, HashingEncoder, TextEncoder, make_encoder


class CountingEncoder:
    name = "counting"
    dim = 8

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.inner = HashingEncoder(8)

    def encode(self, texts):  # type: ignore[no-untyped-def]
        self.calls.append(len(texts))
        return self.inner.encode(texts)


def test_cache_encodes_each_text_once(tmp_path: Path) -> None:
    base = CountingEncoder()
    encoder = CachedEncoder(base, tmp_path)
    first = encoder.encode(["a b", "c d", "a b"])
    assert base.calls == [2] and encoder.last_encoded == 2
    again = CachedEncoder(CountingEncoder(), tmp_path)  # a new process would start like this
    second = again.encode(["c d", "a b"])
    assert again.last_encoded == 0 and again.encoder.calls == []  # type: ignore[attr-defined]
    np.testing.assert_array_equal(second, first[[1, 0]])
    encoder.encode(["a b", "new text"])
    assert base.calls == [2, 1]


def test_damaged_cache_is_rebuilt_not_fatal(tmp_path: Path) -> None:
    encoder = CachedEncoder(HashingEncoder(8), tmp_path)
    encoder.encode(["x"])
    next(tmp_path.glob("*.npz")).write_bytes(b"not a zip")
    assert CachedEncoder(HashingEncoder(8), tmp_path).encode(["x"]).shape == (1, 8)


def test_encoders_follow_the_protocol(tmp_path: Path) -> None:
    assert isinstance(HashingEncoder(8), TextEncoder)
    assert isinstance(make_encoder("hashing-16", cache_dir=tmp_path), TextEncoder)
    with pytest.raises(WhyrecError, match="model path not found"):
        make_encoder("/no/such/model", cache_dir=tmp_path)


def test_bundled_minilm_is_a_real_language_model_offline(tmp_path: Path) -> None:
    encoder = make_encoder(None, cache_dir=tmp_path, progress=False)
    vectors = encoder.encode(
        [
            "A space opera with starships and aliens",
            "Science fiction war among the stars",
            "A gentle romantic comedy about a wedding",
        ]
    )
    assert vectors.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.1  # meaning, not word overlap
