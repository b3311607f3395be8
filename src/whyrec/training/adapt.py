"""``--adapt-encoder``: fine-tune the item-text encoder on behaviour before the models are fitted.

The supervision is the users' next item, from the TRAINING part of the split only. Validation
targets serve only to stop early and keep the best state; test targets are never read.

- ``tune="adapter"`` (the default, chosen on validation: docs/language-model.md): the Transformer
  stays frozen and a residual linear layer after it learns, over the frozen item vectors, to place
  each item near the recency-weighted profile of what users had consumed before it (content's
  profile over the last ``profile_items`` items), with a softmax over the catalogue (a uniform
  sample of it above ``softmax_items``) that leaves out the context's own items, as ranking leaves
  out what a user has seen. The frozen vectors are computed once, so every training
  transition is read for many epochs in minutes.
- ``tune="top"`` / ``"all"``: the Transformer's top layers or all of it, by sentence-transformers'
  own trainer on (previous item's text, next item's text) pairs with an in-batch contrastive loss
  (MultipleNegativesRankingLoss) over duplicate-free batches.

The adapted encoder is cached under ``$WHYREC_CACHE/adapted/<key>``, keyed by the base model,
the config, the split and the item texts (:func:`cache_key`), and copied into each run directory.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import resource
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from whyrec.data.dataset import ItemCatalog
from whyrec.data.split import SequenceSplit
from whyrec.errors import WhyrecError
from whyrec.models.config import Config, setting
from whyrec.offline import stay_offline
from whyrec.text.encoder import DEFAULT_MODEL, default_cache_dir, default_model_path

log = logging.getLogger(__name__)

VALID_METRIC = "valid_cosine_ndcg@10"  # what the trainer's evaluator reports (eval_ prefixed)


@dataclass(frozen=True)
class AdaptConfig(Config):
    """How the encoder is adapted (``--set`` does not reach it; change it in code or benchmarks)."""

    # what is trained: a residual linear adapter after pooling (the Transformer frozen), the top
    # ``top_layers`` Transformer layers, or every layer
    tune: Literal["adapter", "top", "all"] = "adapter"
    top_layers: int = setting(2, ge=1)
    # the anchor of a pair: the previous item's text, or the titles of the last ``recent`` items
    context: Literal["previous", "recent"] = "previous"
    recent: int = setting(3, ge=1)
    max_pairs: int = setting(12000, ge=16)  # sampled from all training transitions
    epochs: int = setting(1, ge=1)
    batch_size: int = setting(64, ge=2)
    lr: float = setting(5e-5, gt=0)
    # tokens, for ``top``/``all`` (the tuned encoder keeps it); the adapter keeps the base's length
    max_seq_length: int = setting(64, ge=8)
    eval_steps: int = setting(50, ge=1)
    patience: int = setting(2, ge=1)  # evaluations without a better validation NDCG@10
    valid_users: int = setting(2000, ge=1)  # validation users sampled for early stopping
    max_minutes: float = setting(12.0, gt=0)  # training stops here whatever the schedule says
    seed: int = setting(0, ge=0)
    # the adapter: a user's context is the recency-weighted mean of their last ``profile_items``
    # item vectors (``half_life`` as content's profile); softmax temperature; Adam's rate; epochs
    # over every training transition, stopped after ``adapter_patience`` epochs without a better
    # validation NDCG@10
    profile_items: int = setting(10, ge=1)
    half_life: float = setting(10.0, gt=0)
    temperature: float = setting(0.1, gt=0)
    adapter_lr: float = setting(1e-3, gt=0)
    adapter_batch_size: int = setting(512, ge=1)
    # above this many items a step's softmax covers its own items and this many drawn at random
    softmax_items: int = setting(50_000, ge=1)
    adapter_epochs: int = setting(40, ge=1)
    adapter_patience: int = setting(5, ge=1)
    # leave the context's own items out of its softmax (the next item stays in), as ranking leaves
    # a user's seen items out
    mask_seen: bool = True


@dataclass(frozen=True)
class Adapted:
    """An adapted encoder on disk and what adapting it did."""

    path: Path
    report: dict[str, Any]


def _context(config: AdaptConfig, catalog: ItemCatalog, ids: Sequence[str]) -> str:
    if config.context == "previous":
        return catalog.text(ids[-1])
    return " ; ".join(catalog.title(i) for i in ids[-config.recent :])


def training_pairs(split: SequenceSplit, catalog: ItemCatalog, config: AdaptConfig) -> list[tuple[str, str]]:
    """(context text, next item text) for transitions inside the training sequences only; at most
    ``max_pairs``, sampled with the config's seed. Pairs whose two texts are equal are dropped."""
    transitions = [(u, t) for u, seq in enumerate(split.train()) for t in range(1, len(seq))]
    rng = random.Random(config.seed)
    if len(transitions) > config.max_pairs:
        transitions = rng.sample(transitions, config.max_pairs)
    train = split.train()
    pairs = []
    for user, t in transitions:
        ids = split.items.lookup_ids(train[user][max(0, t - config.recent) : t])
        anchor, positive = _context(config, catalog, ids), catalog.text(split.items.id(train[user][t]))
        if anchor != positive:
            pairs.append((anchor, positive))
    return pairs


def validation_users(split: SequenceSplit, config: AdaptConfig) -> list[int]:
    """The users (with a validation history) whose validation item stops adapting early: at most
    ``valid_users``, sampled with the config's seed."""
    users = [u for u, h in enumerate(split.valid()[0]) if len(h)]
    return random.Random(config.seed + 1).sample(users, min(config.valid_users, len(users)))


def validation_task(
    split: SequenceSplit, catalog: ItemCatalog, config: AdaptConfig
) -> tuple[dict[str, str], dict[str, str], dict[str, set[str]]]:
    """Queries (sampled users' last training context), the corpus (every item) and each query's
    relevant item (the user's validation target): for early stopping only."""
    histories, targets = split.valid()
    users = validation_users(split, config)
    queries = {str(u): _context(config, catalog, split.items.lookup_ids(histories[u][-config.recent :]))
               for u in users}  # fmt: skip
    corpus = {item: catalog.text(item) for item in split.items.ids}
    relevant = {str(u): {split.items.id(targets[u])} for u in users}
    return queries, corpus, relevant


def cache_key(base: str, split: SequenceSplit, catalog: ItemCatalog, config: AdaptConfig) -> str:
    """The base model, the config, the split (training sequences and validation targets) and every
    item's text: anything that changes what adapting would learn."""
    digest = hashlib.sha256()
    digest.update(json.dumps([base, config.to_dict(), split.items.ids], sort_keys=True).encode())
    for seq in split.train():
        digest.update(np.asarray(seq, np.int64).tobytes() + b"\x01")
    digest.update(np.asarray(split.valid()[1], np.int64).tobytes())
    for item in split.items.ids:
        digest.update(catalog.text(item).encode() + b"\x00")
    return digest.hexdigest()[:16]


def adapt_encoder(
    split: SequenceSplit,
    catalog: ItemCatalog,
    base: str | None = None,
    config: AdaptConfig | None = None,
    cache_dir: Path | None = None,
    progress: bool = True,
) -> Adapted:
    """Fine-tune BASE (a sentence-transformers path; default the bundled MiniLM) on SPLIT's
    training transitions, or reuse the cached result of the same base, data and config."""
    config = config or AdaptConfig()
    if base in (None, "", "minilm", DEFAULT_MODEL):
        base_path, base_name = default_model_path(), DEFAULT_MODEL
    elif base.startswith("hashing"):
        raise WhyrecError("--adapt-encoder needs a language model, not the hashing encoder")
    else:
        if not Path(base).exists():
            raise WhyrecError(f"text encoder model path not found: {base}")
        base_path, base_name = base, Path(base).name
    key = cache_key(base_name, split, catalog, config)
    root = (Path(cache_dir) if cache_dir else default_cache_dir().parent) / "adapted"
    target = root / f"adapted-{key}"
    if (target / "adaptation.json").exists():
        log.info(f"adapted encoder from the cache: {target}")
        return Adapted(target, json.loads((target / "adaptation.json").read_text()))
    if config.tune == "adapter":
        report = _fit_adapter(base, base_path, split, catalog, config, target, progress)
    else:
        pairs = training_pairs(split, catalog, config)
        if len(pairs) < config.batch_size:
            raise WhyrecError(f"too few training transitions to adapt the encoder ({len(pairs)} pairs)")
        queries, corpus, relevant = validation_task(split, catalog, config)
        report = _fit(base_path, pairs, queries, corpus, relevant, config, target, progress)
    report.update(base=base_name, config=config.to_dict())
    (target / "adaptation.json").write_text(json.dumps(report, indent=2))
    return Adapted(target, report)


def profile_examples(split: SequenceSplit, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Every transition inside the training sequences: the up to LENGTH items before it (oldest
    first, padded on the left with -1) and the item taken next."""
    contexts, nexts = [], []
    for seq in split.train():
        for t in range(1, len(seq)):
            window = np.asarray(seq[max(0, t - length) : t], np.int64)
            contexts.append(np.pad(window, (length - len(window), 0), constant_values=-1))
            nexts.append(seq[t])
    if not contexts:
        return np.zeros((0, length), np.int64), np.zeros(0, np.int64)
    return np.stack(contexts), np.asarray(nexts, np.int64)


def _fit_adapter(base: str | None, base_path: str, split: SequenceSplit, catalog: ItemCatalog,
                 config: AdaptConfig, target: Path, progress: bool) -> dict[str, Any]:  # fmt: skip
    """Train the residual linear adapter over the frozen item vectors; save base + adapter as a
    sentence-transformers model at TARGET (the base alone if the adapter never beat it)."""
    import torch
    import torch.nn.functional as F
    from tqdm.auto import tqdm

    from whyrec.metrics.ranking import metrics_from_ranks, rank_targets
    from whyrec.models.base import recency_weights
    from whyrec.models.simple import ContentConfig, ContentModel
    from whyrec.text.encoder import make_encoder

    stay_offline()
    try:
        from sentence_transformers import SentenceTransformer
        from sentence_transformers.base.modules import Dense, Normalize
    except ImportError:
        needs = "sentence_transformers.base.modules: pip install -U sentence-transformers"
        raise WhyrecError(f"the encoder adapter needs a sentence-transformers release with {needs}") from None
    start = time.perf_counter()
    contexts, nexts = profile_examples(split, config.profile_items)
    if len(nexts) < 2:
        raise WhyrecError(f"too few training transitions to adapt the encoder ({len(nexts)})")
    frozen = make_encoder(base, progress=progress).encode([catalog.text(i) for i in split.items.ids])
    histories, targets = split.valid()
    users = validation_users(split, config)
    scorer = ContentModel(ContentConfig(half_life=config.half_life))

    def valid_ndcg(vectors: np.ndarray) -> float:  # the content model's own validation measure
        ranks, _ = rank_targets(scorer.use_vectors(vectors), [histories[u] for u in users], targets[users])
        return float(metrics_from_ranks(ranks)["NDCG@10"])

    generator = torch.Generator().manual_seed(config.seed)
    x = torch.as_tensor(frozen, dtype=torch.float32)
    dim = x.shape[1]
    weight = torch.zeros(dim, dim, requires_grad=True)  # x -> x + x W^T + b: starts as the identity
    bias = torch.zeros(dim, requires_grad=True)
    recency = torch.as_tensor(recency_weights(config.profile_items, config.half_life), dtype=torch.float32)
    context, following = torch.as_tensor(contexts), torch.as_tensor(nexts)
    optimiser = torch.optim.Adam([weight, bias], lr=config.adapter_lr)

    def adapted(rows: torch.Tensor) -> torch.Tensor:
        return F.normalize(rows + rows @ weight.T + bias, dim=1)

    n_items = len(x)
    sampled = n_items > config.softmax_items  # else every step's softmax covers the whole catalogue

    before = best = valid_ndcg(frozen)
    log.info(f"encoder adaptation (adapter): {len(nexts):,} training transitions; "
             f"validation NDCG@10 before {before:.4f}")  # fmt: skip
    best_state, history, stale, steps = None, [], 0, 0
    deadline = time.monotonic() + 60 * config.max_minutes
    epochs = tqdm(
        range(config.adapter_epochs), desc="adapting the encoder", unit="epoch", disable=not progress
    )
    for epoch in epochs:
        order = torch.randperm(len(following), generator=generator)
        for batch in order.split(config.adapter_batch_size):
            rows, taken = context[batch], following[batch]
            present = rows >= 0  # the left padding is -1
            weights = present.float() * recency
            rows = rows.clamp(min=0)
            if sampled:  # the batch's own items and a uniform sample of the others (sorted, unique)
                drawn = torch.randint(n_items, (config.softmax_items,), generator=generator)
                candidates = torch.unique(torch.cat([taken, rows.flatten(), drawn]))
                items = adapted(x[candidates])
                rows, taken = torch.searchsorted(candidates, rows), torch.searchsorted(candidates, taken)
            else:
                items = adapted(x)
            profile = F.normalize((items[rows] * weights[..., None]).sum(1), dim=1)
            logits = profile @ items.T / config.temperature
            if config.mask_seen:
                logits = logits.masked_fill(seen_mask(rows, present, taken, len(items)), float("-inf"))
            loss = F.cross_entropy(logits, taken)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            steps += 1
            if time.monotonic() > deadline:
                break
        with torch.no_grad():
            score = valid_ndcg(adapted(x).numpy())
        history.append({"epoch": epoch + 1, "step": steps, "valid_NDCG@10": round(score, 5)})
        if score > best:
            best, stale = score, 0
            best_state = (weight.detach().clone(), bias.detach().clone())
        else:
            stale += 1
        epochs.set_postfix(valid=f"{score:.4f}", best=f"{best:.4f}")
        if stale >= config.adapter_patience or time.monotonic() > deadline:
            break
    epochs.close()

    model = SentenceTransformer(base_path, device="cpu")
    if best_state is not None:  # appended, so the base's prompts and settings stay
        if not isinstance(model[-1], Normalize):  # the adapter was trained on unit vectors
            model.append(Normalize())
        learned, offset = best_state
        model.append(Dense(dim, dim, bias=True, activation_function=torch.nn.Identity(),
                           init_weight=learned, init_bias=offset, use_residual=True))  # fmt: skip
        model.append(Normalize())
    _save(model, target)
    seconds = time.perf_counter() - start
    log.info(f"encoder adaptation (adapter): validation NDCG@10 {before:.4f} -> {best:.4f} in "
             f"{len(history)} epochs, {seconds:.0f}s; saved {target}")  # fmt: skip
    return {
        "valid_NDCG@10_before": round(before, 5),
        "valid_NDCG@10_best": round(best, 5),
        "kept": "adapted" if best_state is not None else "base",
        "steps": steps,
        "transitions": len(nexts),
        "evaluations": history,
        "seconds": round(seconds, 1),
        "peak_rss_mb": _peak_rss_mb(),
    }


def seen_mask(rows: Any, present: Any, taken: Any, width: int) -> Any:
    """(B, WIDTH) True where a column is one of its row's context items (the PRESENT slots of
    ROWS) and not the row's next item TAKEN: what a step's softmax leaves out."""
    import torch

    mask = torch.zeros(len(rows), width, dtype=torch.bool)
    batch = torch.arange(len(rows))[:, None].expand_as(rows)
    mask[batch[present], rows[present]] = True
    mask[torch.arange(len(rows)), taken] = False
    return mask


def _save(model: Any, target: Path) -> None:
    """Write a sentence-transformers model to TARGET whole: beside it first, then moved in place."""
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save(str(tmp))
    shutil.rmtree(target, ignore_errors=True)
    tmp.replace(target)


def _peak_rss_mb() -> float:
    return float(round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def _fit(base_path: str, pairs: list[tuple[str, str]], queries: dict[str, str], corpus: dict[str, str],
         relevant: dict[str, set[str]], config: AdaptConfig, target: Path,
         progress: bool) -> dict[str, Any]:  # fmt: skip
    stay_offline()
    try:
        import datasets
        import torch
        from sentence_transformers import (
            SentenceTransformer,
            SentenceTransformerTrainer,
            SentenceTransformerTrainingArguments,
        )
        from sentence_transformers.base.modules import Dense, Normalize
        from sentence_transformers.base.sampler import BatchSamplers
        from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator
        from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
        from transformers import EarlyStoppingCallback, TrainerCallback
    except ImportError as exc:
        raise WhyrecError(f"--adapt-encoder needs {exc.name}: pip install 'whyrec[adapt]'") from None

    class TimeBudget(TrainerCallback):  # type: ignore[misc]
        def __init__(self, seconds: float) -> None:
            self.deadline = time.monotonic() + seconds

        def on_step_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
            if time.monotonic() > self.deadline:
                control.should_training_stop = True
            return control

    torch.manual_seed(config.seed)
    model = SentenceTransformer(base_path, device="cpu")
    model.max_seq_length = config.max_seq_length
    transformer: Any = model[0].auto_model
    if config.tune == "top":
        layers = transformer.encoder.layer
        frozen = [transformer.embeddings, *layers[: max(0, len(layers) - config.top_layers)]]
        for module in frozen:
            module.requires_grad_(False)
    elif config.tune == "adapter":
        transformer.requires_grad_(False)
        dim = int(transformer.config.hidden_size)  # the width MiniLM-style mean pooling keeps
        adapter = Dense(dim, dim, bias=True, activation_function=torch.nn.Identity(),
                        init_weight=torch.zeros(dim, dim), init_bias=torch.zeros(dim),
                        use_residual=True)  # fmt: skip
        model = SentenceTransformer(modules=[model[0], model[1], adapter, Normalize()], device="cpu")
    texts: tuple[dict[str, Any], dict[str, Any]] = (dict(queries), dict(corpus))
    evaluator = InformationRetrievalEvaluator(
        *texts, relevant, name="valid", main_score_function="cosine", write_csv=False,
        mrr_at_k=[10], ndcg_at_k=[10], accuracy_at_k=[10], precision_recall_at_k=[10], map_at_k=[10],
        batch_size=128,
    )  # fmt: skip
    start = time.perf_counter()
    before = float(evaluator(model)[VALID_METRIC])
    log.info(f"encoder adaptation: {len(pairs):,} training pairs; validation NDCG@10 before {before:.4f}")
    data = datasets.Dataset.from_dict({"anchor": [a for a, _ in pairs], "positive": [p for _, p in pairs]})
    with tempfile.TemporaryDirectory(prefix="whyrec-adapt-") as scratch:
        args = SentenceTransformerTrainingArguments(
            output_dir=scratch, num_train_epochs=config.epochs, per_device_train_batch_size=config.batch_size,
            learning_rate=config.lr, warmup_steps=0.1, batch_sampler=BatchSamplers.NO_DUPLICATES,
            eval_strategy="steps", eval_steps=config.eval_steps, save_strategy="steps",
            save_steps=config.eval_steps, save_total_limit=2, load_best_model_at_end=True,
            metric_for_best_model=f"eval_{VALID_METRIC}", greater_is_better=True,
            logging_steps=config.eval_steps, report_to="none", disable_tqdm=not progress,
            seed=config.seed, use_cpu=True, dataloader_num_workers=0,
        )  # fmt: skip
        trainer = SentenceTransformerTrainer(
            model=model, args=args, train_dataset=data, loss=MultipleNegativesRankingLoss(model),
            evaluator=evaluator,
            callbacks=[EarlyStoppingCallback(config.patience), TimeBudget(60 * config.max_minutes)],
        )  # fmt: skip
        trainer.train()
        history = [
            {"step": e["step"], "valid_NDCG@10": round(e[f"eval_{VALID_METRIC}"], 5)}
            for e in trainer.state.log_history
            if f"eval_{VALID_METRIC}" in e
        ]
        best = max([before, *(h["valid_NDCG@10"] for h in history)])
        steps = int(trainer.state.global_step)
        if history and best > before:
            _save(trainer.model, target)  # the best checkpoint (load_best_model_at_end)
        else:  # adapting did not beat the base model on validation: keep the base model
            base = SentenceTransformer(base_path, device="cpu")
            base.max_seq_length = config.max_seq_length
            _save(base, target)
    seconds = time.perf_counter() - start
    log.info(f"encoder adaptation: validation NDCG@10 {before:.4f} -> {best:.4f} in {steps} steps, "
             f"{seconds:.0f}s; saved {target}")  # fmt: skip
    return {
        "valid_NDCG@10_before": round(before, 5),
        "valid_NDCG@10_best": round(best, 5),
        "kept": "adapted" if best > before else "base",
        "steps": steps,
        "evaluations": history,
        "seconds": round(seconds, 1),
        "pairs": len(pairs),
        "peak_rss_mb": _peak_rss_mb(),
    }
