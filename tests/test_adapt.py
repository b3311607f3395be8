"""--adapt-encoder: fine-tuning the item-text encoder on training transitions only.

The known-answer test uses a tiny randomly initialised BERT written by the test (seconds, no
download): items of six groups whose names share no meaning, and users who always move from group
g to group g + 1. Text alone cannot tell which group follows which; behaviour can."""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path

import numpy as np
import pytest

from whyrec.data.dataset import ItemCatalog
from whyrec.data.split import SequenceSplit
from whyrec.data.vocab import Vocabulary
from whyrec.errors import WhyrecError
from whyrec.text.encoder import make_encoder
from whyrec.training.adapt import (
    AdaptConfig,
    adapt_encoder,
    profile_examples,
    seen_mask,
    training_pairs,
    validation_task,
)

needs_training = pytest.mark.skipif(
    importlib.util.find_spec("datasets") is None, reason="needs whyrec[adapt] (Hugging Face datasets)"
)
WORDS = ["violin", "tractor", "glacier", "pepper", "satellite", "cactus"]
GROUP_SIZE = 3


def cycle_split(n_users: int = 80, length: int = 8, seed: int = 0) -> tuple[SequenceSplit, ItemCatalog]:
    """Users step from group g to g + 1 (mod 6), a random item of the group each time."""
    ids = [f"{g}-{k}" for g in range(len(WORDS)) for k in range(GROUP_SIZE)]
    titles = {f"{g}-{k}": f"{w} model {k}" for g, w in enumerate(WORDS) for k in range(GROUP_SIZE)}
    rng = random.Random(seed)
    sequences = []
    for _ in range(n_users):
        g, seq = rng.randrange(len(WORDS)), []
        for _ in range(length):
            seq.append(f"{g}-{rng.randrange(GROUP_SIZE)}")
            g = (g + 1) % len(WORDS)
        sequences.append(seq)
    items = Vocabulary(ids)
    users = Vocabulary([str(u) for u in range(n_users)], kind="user")
    split = SequenceSplit("cycle", users, items, tuple(items.indices(s) for s in sequences))
    return split, ItemCatalog(titles)


def save_tiny_bert(root: Path, normalize: bool = True) -> str:
    """A 2-layer, 32-wide BERT with a word-level vocabulary, saved as a sentence-transformers model
    (ending in a Normalize module, or giving the raw mean-pooled vector)."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Normalize, Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling
    from transformers import BertConfig, BertModel, BertTokenizer

    torch.manual_seed(0)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "model", ";", *WORDS, *map(str, range(10))]
    (root / "vocab.txt").write_text("\n".join(vocab) + "\n")
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)  # fmt: skip
    BertModel(config).save_pretrained(root / "hf")
    BertTokenizer(str(root / "vocab.txt")).save_pretrained(root / "hf")
    modules = [Transformer(str(root / "hf"), max_seq_length=16), Pooling(32, "mean")]
    model = SentenceTransformer(modules=[*modules, Normalize()] if normalize else modules, device="cpu")
    model.save(str(root / "st"))
    return str(root / "st")


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> str:
    pytest.importorskip("sentence_transformers")
    return save_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


def successor_margin(vectors: np.ndarray) -> float:
    """Mean cosine of items to the next group's items minus that to a non-adjacent group's."""
    groups = vectors.reshape(len(WORDS), GROUP_SIZE, -1)
    nxt = [float((groups[g] @ groups[(g + 1) % 6].T).mean()) for g in range(6)]
    far = [float((groups[g] @ groups[(g + 3) % 6].T).mean()) for g in range(6)]
    return float(np.mean(nxt) - np.mean(far))


FAST = {
    "all": AdaptConfig(tune="all", max_pairs=192, batch_size=8, epochs=2, lr=3e-3, max_seq_length=8,
                       eval_steps=24, patience=3, valid_users=80),
    "adapter": AdaptConfig(tune="adapter", profile_items=1, half_life=1.0, adapter_lr=1e-2,
                           adapter_batch_size=64, adapter_epochs=30,
                           adapter_patience=30),
}  # fmt: skip
# a softmax over each step's own items (at most 8 of 18) and 4 drawn ones, not the whole catalogue
FAST["adapter, sampled"] = AdaptConfig(**{**FAST["adapter"].to_dict(), "softmax_items": 4,
                                          "adapter_batch_size": 4, "adapter_epochs": 8})  # fmt: skip


@pytest.mark.parametrize("case", list(FAST))
def test_adapted_encoder_learns_what_follows_what(tiny_bert: str, tmp_path: Path, case: str) -> None:
    tune = FAST[case].tune
    if tune != "adapter" and importlib.util.find_spec("datasets") is None:
        pytest.skip("needs whyrec[adapt] (Hugging Face datasets)")
    split, catalog = cycle_split()
    texts = [catalog.text(i) for i in split.items.ids]
    frozen = make_encoder(tiny_bert, cached=False, progress=False).encode(texts)
    adapted = adapt_encoder(split, catalog, tiny_bert, FAST[case], cache_dir=tmp_path, progress=False)
    report = adapted.report
    assert report["kept"] == "adapted"
    # the Transformer is stopped on retrieving a user's next item from their last item's text; the
    # adapter on content's own ranking, whose symmetric profile cosine cannot tell the group after
    # the last item from the one before it (both neighbours), so it can gain less
    assert report["valid_NDCG@10_best"] > report["valid_NDCG@10_before"] + (0.15 if tune == "all" else 0.04)
    tuned = make_encoder(str(adapted.path), cached=False, progress=False).encode(texts)
    assert abs(successor_margin(frozen)) < 0.2  # text alone does not know the order of groups
    assert successor_margin(tuned) > successor_margin(frozen) + 0.05


def test_cache_reuses_and_invalidates(tiny_bert: str, tmp_path: Path) -> None:
    split, catalog = cycle_split(n_users=40)
    config = AdaptConfig(tune="adapter", adapter_epochs=2, valid_users=20)

    def adapt(split: SequenceSplit, catalog: ItemCatalog, config: AdaptConfig) -> Path:
        return adapt_encoder(split, catalog, tiny_bert, config, cache_dir=tmp_path, progress=False).path

    first = adapt_encoder(split, catalog, tiny_bert, config, cache_dir=tmp_path, progress=False)
    again = adapt_encoder(split, catalog, tiny_bert, config, cache_dir=tmp_path, progress=False)
    assert again.path == first.path and again.report == first.report
    paths = {first.path}
    paths.add(adapt(split, catalog, AdaptConfig(**{**config.to_dict(), "adapter_lr": 1e-2})))
    paths.add(adapt(cycle_split(n_users=40, seed=1)[0], catalog, config))  # other behaviour
    titles = {i: catalog.title(i) for i in split.items.ids}
    paths.add(adapt(split, ItemCatalog({**titles, "0-0": "violin model 9"}), config))  # an item's text
    assert len(paths) == 4 and len(list((tmp_path / "adapted").iterdir())) == 4
    # a test target is never read, so changing one adapts nothing again
    sequences = [list(split.items.lookup_ids(seq)) for seq in split.sequences]
    sequences[0][-1] = "5-2" if sequences[0][-1] != "5-2" else "5-1"
    moved_test = SequenceSplit(
        "cycle", split.users, split.items, tuple(split.items.indices(s) for s in sequences)
    )
    assert adapt(moved_test, catalog, config) == first.path


@pytest.mark.parametrize("context", ["previous", "recent"])
def test_no_validation_or_test_target_reaches_the_adaptation_data(context: str) -> None:
    # each user's last two items (validation and test targets) are items of their own
    ids = [f"i{k}" for k in range(10)] + [f"val{u}" for u in range(20)] + [f"test{u}" for u in range(20)]
    rng = random.Random(0)
    sequences = [[f"i{rng.randrange(10)}" for _ in range(6)] + [f"val{u}", f"test{u}"] for u in range(20)]
    items = Vocabulary(ids)
    split = SequenceSplit("s", Vocabulary([str(u) for u in range(20)], "user"), items,
                          tuple(items.indices(s) for s in sequences))  # fmt: skip
    catalog = ItemCatalog({i: f"title {i}" for i in ids})
    config = AdaptConfig(context=context, max_pairs=10_000)
    pairs = training_pairs(split, catalog, config)
    # every training transition (but those whose two texts are equal), and nothing else
    train = [seq[:-2] for seq in sequences]
    transitions = [(seq[:t], seq[t]) for seq in train for t in range(1, len(seq))]
    if context == "previous":
        expected = [(f"title {h[-1]}", f"title {n}") for h, n in transitions if h[-1] != n]
    else:
        expected = [(" ; ".join(f"title {i}" for i in h[-3:]), f"title {n}") for h, n in transitions]
        expected = [(a, b) for a, b in expected if a != b]
    assert sorted(pairs) == sorted(expected)
    text = " ".join(a + " " + b for a, b in pairs)
    assert "val" not in text and "test" not in text
    queries, _, relevant = validation_task(split, catalog, config)
    assert "val" not in " ".join(queries.values()) and "test" not in " ".join(queries.values())
    assert all(r == {f"val{u}"} for u, r in ((int(q), r) for q, r in relevant.items()))
    # the adapter's examples: each training transition's preceding items and its next item
    contexts, nexts = profile_examples(split, 4)
    assert sorted(items.lookup_ids(nexts)) == sorted(n for _, n in transitions)
    read = set(items.lookup_ids(np.concatenate([contexts[contexts >= 0], nexts])))
    assert not any(i.startswith(("val", "test")) for i in read)


def test_the_adapter_softmax_leaves_out_the_context_but_not_the_next_item() -> None:
    import torch

    rows = torch.tensor([[0, 2, 3], [1, 1, 4]])  # row 0's first slot is padding (clamped to item 0)
    present = torch.tensor([[False, True, True], [True, True, True]])
    taken = torch.tensor([3, 0])  # row 0's next item is also in its context: it stays in
    mask = seen_mask(rows, present, taken, 5)
    assert mask.tolist() == [[False, False, True, False, False], [False, True, False, False, True]]


@pytest.mark.parametrize("normalize", [True, False])
def test_the_saved_adapter_encodes_as_it_was_trained(tmp_path: Path, normalize: bool) -> None:
    """The saved encoder is the base, then (for a base without one) a normalisation, the residual
    linear layer and a normalisation: what the adapter was trained on, reproduced from its weights."""
    pytest.importorskip("sentence_transformers")
    from sentence_transformers import SentenceTransformer

    (tmp_path / "base").mkdir()
    base = save_tiny_bert(tmp_path / "base", normalize)
    split, catalog = cycle_split()
    adapted = adapt_encoder(split, catalog, base, FAST["adapter"], cache_dir=tmp_path, progress=False)
    assert adapted.report["kept"] == "adapted"
    texts = [catalog.text(i) for i in split.items.ids]
    frozen = make_encoder(base, cached=False, progress=False).encode(texts)  # unit vectors
    dense = SentenceTransformer(str(adapted.path), device="cpu")[-2]
    weight, bias = (t.detach().numpy() for t in (dense.linear.weight, dense.linear.bias))
    expected = frozen + frozen @ weight.T + bias
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    got = make_encoder(str(adapted.path), cached=False, progress=False).encode(texts)
    assert np.abs(weight).max() > 1e-3  # it learned something
    assert np.allclose(got, expected, atol=1e-5)
    assert not np.allclose(got, frozen, atol=1e-2)


def test_hashing_encoder_cannot_be_adapted() -> None:
    split, catalog = cycle_split(n_users=10)
    with pytest.raises(WhyrecError, match="language model"):
        adapt_encoder(split, catalog, "hashing-64", AdaptConfig())


@pytest.mark.parametrize("tune", ["top", "adapter"])
def test_a_run_keeps_and_uses_its_adapted_encoder(tiny_bert: str, tmp_path: Path, tune: str) -> None:
    from whyrec.training.pipeline import prepare, train_run
    from whyrec.training.recommender import Recommender

    if tune != "adapter" and importlib.util.find_spec("datasets") is None:
        pytest.skip("needs whyrec[adapt] (Hugging Face datasets)")
    config = AdaptConfig(tune=tune, top_layers=1, max_pairs=32, batch_size=16, epochs=1, eval_steps=1,
                         max_seq_length=8, valid_users=10, adapter_epochs=3)  # fmt: skip
    prepared = prepare("demo", encoder=tiny_bert, progress=False, adapt=config)
    assert prepared.adapted is not None
    texts = [prepared.dataset.catalog.text(i) for i in prepared.split.items.ids[:5]]
    adapted = make_encoder(str(prepared.adapted.path), cached=False, progress=False).encode(texts)
    assert np.allclose(prepared.item_vectors[:5], adapted, atol=1e-5)  # the models read these vectors
    train_run(prepared, "content", tmp_path / "run", progress=False)
    run = Recommender.load(tmp_path / "run")
    copy = Path(run.info["encoder"])
    assert copy.parent == (tmp_path / "run").resolve() and (copy / "adaptation.json").exists()
    assert run.info["adaptation"]["steps"] > 0


def test_adapt_encoder_with_hashing_is_one_clear_line(capsys: pytest.CaptureFixture[str]) -> None:
    from whyrec.cli import main

    args = ["--quiet", "evaluate", "--dataset", "demo", "--encoder", "hashing", "--models", "pop"]
    assert main([*args, "--adapt-encoder"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "language model" in err
