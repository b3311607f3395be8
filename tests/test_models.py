"""Every model keeps the Scorer contract; sequence models must learn a known Markov chain and
item-kNN must recover co-occurrence blocks (known-answer synthetic data)."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from whyrec.data import SequenceSplit, Vocabulary
from whyrec.errors import WhyrecError
from whyrec.metrics import evaluate
from whyrec.models import (
    BERT4Rec,
    ContentModel,
    FitData,
    GRU4Rec,
    GRU4RecConfig,
    Hybrid,
    HybridConfig,
    ItemEmbeddingConfig,
    ItemKNN,
    Popularity,
    SASRec,
    SASRecConfig,
    Scorer,
    TrainingConfig,
    sequence,
)
from whyrec.models.nets import ItemItem, byte_dropout
from whyrec.models.parallel import Step
from whyrec.models.windows import training_windows
from whyrec.text import HashingEncoder
from whyrec.training.retrieval import inner_product_parts

from .conftest import markov_sequences, markov_successor

SMALL_SASREC = SASRecConfig(dim=32, n_layers=1, n_heads=1, max_len=20, dropout=0.1)
SMALL_TRAINING = TrainingConfig(lr=5e-3, max_epochs=30, patience=3, batch_size=64)
SHORT = replace(SMALL_TRAINING, max_epochs=2)
SHORT_GRU = replace(GRU4Rec.default_training, max_epochs=2)


def make_split(sequences: list[list[int]], n_items: int | None = None) -> SequenceSplit:
    n_items = n_items or max(max(s) for s in sequences) + 1
    return SequenceSplit(
        name="synthetic",
        users=Vocabulary([f"u{i}" for i in range(len(sequences))], kind="user"),
        items=Vocabulary([f"i{i}" for i in range(n_items)]),
        sequences=tuple(np.array(s, dtype=np.int64) for s in sequences),
    )


def fit_data(split: SequenceSplit) -> FitData:
    vectors = HashingEncoder(16).encode([f"item {i} group {i % 5}" for i in range(split.n_items)])
    return FitData(split, vectors, progress=False)


@pytest.fixture(scope="module")
def markov() -> FitData:
    return fit_data(make_split(markov_sequences(n_users=300, n_items=40, length=20)))


def test_data_has_a_known_answer(markov: FitData) -> None:
    histories, targets = markov.split.test()
    successor = markov_successor(40)
    assert sorted(successor.tolist()) == list(range(40))  # a permutation
    assert all(t == successor[h[-1]] and t not in h for h, t in zip(histories, targets, strict=True))


@pytest.mark.parametrize(
    ("factory", "threshold"),
    [
        (lambda: SASRec(SMALL_SASREC, SMALL_TRAINING), 0.9),
        (lambda: SASRec(replace(SMALL_SASREC, item_item=True), SMALL_TRAINING), 0.9),
        (lambda: GRU4Rec(GRU4RecConfig(dim=32, max_len=20), SMALL_TRAINING), 0.9),
        (lambda: BERT4Rec(replace(SMALL_SASREC, objective="masked"), SMALL_TRAINING), 0.6),
    ],
    ids=["sasrec", "sasrec-item-item", "gru4rec", "bert4rec-masked"],
)
def test_sequence_models_learn_an_order1_markov_chain(markov: FitData, factory, threshold: float) -> None:  # type: ignore[no-untyped-def]
    histories, targets = markov.split.test()
    model = factory().fit(markov)
    learned = evaluate(model, histories, targets, markov.split.n_items)
    baseline = evaluate(Popularity().fit(markov), histories, targets, markov.split.n_items)
    assert learned["MRR@10"] > threshold, learned
    assert baseline["MRR@10"] < 0.2, baseline
    assert model.fit_info.best_epoch is not None and model.fit_info.train_seconds > 0


def test_itemknn_recovers_cooccurrence_blocks() -> None:
    rng = np.random.default_rng(1)
    block, n_blocks = 5, 6
    sequences = []
    for user in range(240):  # each user only ever touches the 5 items of one block
        b = user % n_blocks
        sequences.append(list(rng.permutation(block) + b * block))
    split = make_split(sequences)
    model = ItemKNN().fit(fit_data(split))
    for b in range(n_blocks):
        history = np.array([b * block, b * block + 1])
        scores = model.score([history])[0]
        scores[history] = -np.inf
        top3 = set(np.argsort(-scores)[:3].tolist())
        assert top3 == {b * block + 2, b * block + 3, b * block + 4}


def test_content_model_scores_unseen_items_by_text() -> None:
    split = make_split([[0, 1, 2], [0, 1, 2]], n_items=4)  # item 3 never occurs
    vectors = HashingEncoder(32).encode(["space war", "space opera", "romance", "space war saga"])
    model = ContentModel().fit(FitData(split, vectors, progress=False))
    scores = model.score([np.array([0])])[0]
    assert scores[3] > scores[2]  # the unseen sci-fi item beats the seen romance


def test_sasrec_represents_items_unseen_in_training_by_text(markov: FitData) -> None:
    model = SASRec(SMALL_SASREC, SMALL_TRAINING).fit(markov)
    table = model.net.items.table().detach().numpy()  # type: ignore[union-attr]
    assert np.abs(table[1:41]).sum(axis=1).min() > 0  # every item has a representation
    ids_only = SASRec(SMALL_SASREC, replace(SHORT, max_epochs=1), ItemEmbeddingConfig(use_text=False))
    ids_only.fit(markov)
    assert ids_only.net.items.text is None  # type: ignore[union-attr]


def test_bad_config_is_refused() -> None:
    with pytest.raises(ValueError, match="objective"):
        SASRecConfig(objective="bidirectional")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="divisible"):
        SASRecConfig(dim=30, n_heads=4)
    with pytest.raises(ValueError, match="schedule"):
        TrainingConfig(schedule="linear")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="dim must be an integer"):
        GRU4RecConfig(dim=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="lr must be more than 0"):
        TrainingConfig(lr=0)
    with pytest.raises(ValueError, match="use_text"):
        ItemEmbeddingConfig(use_text=False, id_dropout=0.3)
    with pytest.raises(TypeError, match="GRU4RecConfig"):
        GRU4Rec(SMALL_SASREC)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="objective='masked'"):
        BERT4Rec(SMALL_SASREC)
    with pytest.raises(ValueError, match="no field 'mask_prob'"):
        GRU4RecConfig.from_dict({"mask_prob": 0.2})


FAST_MODELS = {
    "pop": Popularity,
    "itemknn": ItemKNN,
    "content": ContentModel,
    "sasrec": lambda: SASRec(SMALL_SASREC, SHORT),
    "gru4rec": lambda: GRU4Rec(GRU4RecConfig(dim=16, max_len=20), SHORT_GRU),
    "sasrec-item-item": lambda: SASRec(replace(SMALL_SASREC, item_item=True), SHORT),
    "hybrid": lambda: Hybrid(
        HybridConfig(seeds=2),
        prototypes=[SASRec(SMALL_SASREC, SHORT), GRU4Rec(GRU4RecConfig(dim=16, max_len=20), SHORT_GRU)],
    ),
}


@pytest.mark.parametrize("name", list(FAST_MODELS))
def test_scorer_contract(name: str, markov: FitData, tmp_path: Path) -> None:
    """Shape, finiteness, batch independence, and an exact save/load round trip."""
    model: Scorer = FAST_MODELS[name]()
    assert not model.fitted
    model.fit(markov)
    assert isinstance(model, Scorer) and model.fitted
    histories, _ = markov.split.test()
    batch = [*histories[:7], np.array([3]), np.array([], dtype=np.int64)]
    scores = model.score(batch)
    assert scores.shape == (len(batch), markov.split.n_items)
    assert np.isfinite(scores).all()
    alone = np.concatenate([model.score([h]) for h in batch])
    np.testing.assert_allclose(scores, alone, rtol=1e-4, atol=1e-4)  # occlusion relies on this
    model.save(tmp_path)
    loaded = type(model).load(tmp_path, markov.item_vectors)
    assert loaded.fitted and dict(loaded.configs()) == dict(model.configs())
    np.testing.assert_allclose(loaded.score(batch), scores, rtol=1e-5, atol=1e-5)


def test_item_item_sums_are_those_of_a_plain_loop() -> None:
    """The embedding_bag form against the definition: for each chosen position, the sum of the
    weight rows of the items up to it (padding left out), in row-major order."""
    torch.manual_seed(0)
    wide = ItemItem(n_items=6, dropout=0.0)
    with torch.no_grad():
        wide.weight.normal_()
    x = torch.tensor([[0, 0, 3, 1, 5], [2, 4, 4, 6, 1], [0, 0, 0, 0, 2]])
    positions = torch.tensor([[0, 1, 1, 0, 1], [1, 0, 0, 1, 1], [0, 0, 0, 0, 1]], dtype=torch.bool)
    expected = [wide.weight[[i for i in x[b, : t + 1].tolist() if i > 0]].sum(0) if (x[b, : t + 1] > 0).any()
                else torch.zeros(6) for b, t in positions.nonzero().tolist()]  # fmt: skip
    torch.testing.assert_close(wide(x, positions), torch.stack(expected))
    whole = [wide.weight[[3, 1, 5]].sum(0), wide.weight[[2, 4, 4, 6, 1]].sum(0), wide.weight[2]]
    torch.testing.assert_close(wide(x), torch.stack(whole))
    wide.dropout = 0.5
    wide.train()  # items left out at random, the others weighted x2: the mean sum is unchanged
    mean = torch.stack([wide(x) for _ in range(4000)]).mean(0)
    torch.testing.assert_close(mean, wide.eval()(x), atol=0.15, rtol=0.05)


def test_item_item_part_is_refused_where_it_cannot_work(
    markov: FitData, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ValueError, match="causal objective"):
        BERT4Rec(replace(SMALL_SASREC, objective="masked", item_item=True))
    monkeypatch.setattr(sequence, "ITEM_ITEM_MAX_ITEMS", markov.split.n_items - 1)
    with pytest.raises(WhyrecError, match="over the limit"):
        SASRec(replace(SMALL_SASREC, item_item=True), SHORT).fit(markov)
    monkeypatch.undo()
    with pytest.raises(WhyrecError, match="needs the full softmax"):
        SASRec(replace(SMALL_SASREC, item_item=True), replace(SHORT, sampled_softmax_above=10)).fit(markov)


def test_item_item_part_adds_new_items_without_moving_the_old_scores(markov: FitData) -> None:
    model = SASRec(replace(SMALL_SASREC, item_item=True), SHORT).fit(markov)
    histories = markov.split.test()[0][:5]
    assert model.net is not None and model.net.wide is not None
    assert float(model.net.wide.weight.detach().abs().sum()) > 0  # the wide part was trained
    before = model.score(histories)
    model.add_items(markov.item_vectors[:3])
    after = model.score(histories)
    assert after.shape == (5, markov.split.n_items + 3)
    np.testing.assert_allclose(after[:, : markov.split.n_items], before, rtol=1e-5, atol=1e-5)
    assert inner_product_parts(model) is None  # its score is not user vector · item vector


def test_sasrec_training_is_reproducible(markov: FitData) -> None:
    a = SASRec(SMALL_SASREC, SHORT).fit(markov).score(markov.split.test()[0][:5])
    b = SASRec(SMALL_SASREC, SHORT).fit(markov).score(markov.split.test()[0][:5])
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_hybrid_weights_are_chosen_on_validation(markov: FitData) -> None:
    model = Hybrid(
        HybridConfig(sequence_models=("sasrec",), seeds=1), prototypes=[SASRec(SMALL_SASREC, SHORT)]
    ).fit(markov)
    grid = model.weights.grid
    c = model.config
    assert len(grid) == len(c.cf_weights) * len(c.content_weights) * len(c.ease_weights)
    best = max(g["valid_NDCG@10"] for g in grid)
    w = model.weights
    chosen = next(g for g in grid if (g["cf"], g["content"], g["ease"]) == (w.cf, w.content, w.ease))
    assert chosen["valid_NDCG@10"] == best


def test_hybrid_sequence_part_is_an_ensemble_of_seeds_and_models(markov: FitData) -> None:
    sasrec = SASRec(SMALL_SASREC, replace(SHORT, max_epochs=3))
    gru = GRU4Rec(GRU4RecConfig(dim=16, max_len=20), replace(SHORT_GRU, max_epochs=3))
    model = Hybrid(HybridConfig(seeds=2), prototypes=[gru, sasrec])
    names = [(m.name, m.training.seed) for m in model.members]
    assert names == [("sasrec", 0), ("sasrec", 1), ("gru4rec", 0), ("gru4rec", 1)]
    assert model.members[1].training == replace(sasrec.training, seed=1)
    assert model.members[0] is not sasrec  # a prototype gives its configs, never its instance
    sasrec.fit(markov)
    assert model.adopt([sasrec, gru]) == ["sequence_0"]  # gru is not fitted: nothing to take
    assert model.members[0] is sasrec
    model.fit(markov)
    histories = markov.split.test()[0][:8]
    a, b = model.members[0].score(histories), model.members[1].score(histories)
    assert not np.allclose(a, b)  # different seeds, different nets
    # the sequence part is the mean of the members' rank-normalised scores
    from whyrec.models.hybrid import rank_scores

    expected = np.mean([rank_scores(m.score(histories), histories) for m in model.members], axis=0)
    np.testing.assert_allclose(model.sequence_scores(histories), expected, rtol=1e-6)
    with pytest.raises(ValueError, match="not in sequence_models"):
        Hybrid(HybridConfig(sequence_models=("gru4rec",)), prototypes=[sasrec])
    with pytest.raises(ValueError, match="seeds"):
        HybridConfig(seeds=0)


def test_hybrid_members_take_consecutive_seeds_from_their_prototype() -> None:
    """A prototype with seed 1 gives members 1, 2, 3: never two identical networks."""
    prototype = SASRec(SMALL_SASREC, replace(SHORT, seed=1))
    model = Hybrid(HybridConfig(sequence_models=("sasrec",), seeds=3), prototypes=[prototype])
    assert [m.training.seed for m in model.members] == [1, 2, 3]


def test_hybrid_adopts_only_the_same_model(markov: FitData) -> None:
    other = SASRec(replace(SMALL_SASREC, dim=16), SHORT).fit(markov)
    model = Hybrid(
        HybridConfig(sequence_models=("sasrec",), seeds=1), prototypes=[SASRec(SMALL_SASREC, SHORT)]
    )
    assert model.adopt([other, Popularity().fit(markov)]) == []
    assert model.members[0] is not other


def test_rank_fusion_ranks_unseen_items_and_puts_seen_last() -> None:
    from whyrec.models.hybrid import rank_scores

    scores = np.array([[0.1, 0.9, 0.5, 0.7], [3.0, 2.0, 1.0, 0.0]])
    fused = rank_scores(scores, [np.array([1]), np.array([], dtype=np.int64)])
    # row 0: item 1 is seen; unseen order 3 > 2 > 0, then the seen item
    np.testing.assert_allclose(fused[0], -np.log1p([2, 3, 1, 0]))
    np.testing.assert_allclose(fused[1], -np.log1p([0, 1, 2, 3]))
    assert np.isfinite(fused).all()


@pytest.mark.parametrize("p", [0.1, 0.2, 0.5])
def test_byte_dropout_keeps_the_expectation_and_drops_about_p(p: float) -> None:
    torch.manual_seed(0)
    x = torch.rand(200, 50, 64) + 0.5
    out = byte_dropout(x, p, training=True)
    dropped = (out == 0).float().mean().item()
    assert abs(dropped - p) < 0.01  # p is rounded to 1/256 at most
    assert out.mean().item() == pytest.approx(x.mean().item(), rel=0.01)
    kept = out != 0
    assert torch.allclose(out[kept], x[kept] * 256 / (256 - round(p * 256)))
    assert torch.equal(byte_dropout(x, p, training=False), x)
    assert torch.equal(byte_dropout(x, 0.0, training=True), x)


def test_byte_dropout_passes_gradients_only_through_kept_units() -> None:
    torch.manual_seed(1)
    x = torch.ones(1000, requires_grad=True)
    out = byte_dropout(x, 0.25, training=True)
    out.sum().backward()
    assert x.grad is not None
    assert torch.equal(x.grad == 0, out.detach() == 0)


@pytest.mark.parametrize("causal", [True, False])
def test_block_computes_what_torchs_pre_norm_encoder_layer_computes(causal: bool) -> None:
    """The hand-written layer (written for its cheap dropout) is the standard one: same weights,
    same outputs in eval mode."""
    from torch import nn

    from whyrec.models.nets import Block

    torch.manual_seed(0)
    reference = nn.TransformerEncoderLayer(32, 2, 128, 0.2, batch_first=True, norm_first=True).eval()
    block = Block(32, 2, 0.2).eval()
    attention = reference.self_attn
    with torch.no_grad():
        block.qkv.weight.copy_(attention.in_proj_weight)
        block.qkv.bias.copy_(attention.in_proj_bias)
        block.out.load_state_dict(attention.out_proj.state_dict())
        for mine, theirs in [("ff1", "linear1"), ("ff2", "linear2"), ("norm1", "norm1"), ("norm2", "norm2")]:
            getattr(block, mine).load_state_dict(getattr(reference, theirs).state_dict())
    x = torch.randn(3, 12, 32)
    if causal:
        mask = torch.triu(torch.ones(12, 12, dtype=torch.bool), 1)
        expected, got = reference(x, src_mask=mask), block(x, mask)
    else:
        pad = torch.zeros(3, 12, dtype=torch.bool)
        pad[0, :5] = True
        expected, got = reference(x, src_key_padding_mask=pad), block(x, pad[:, None, None, :])
    assert torch.allclose(expected, got, atol=1e-5)


def test_id_dropout_shows_some_items_by_text_alone_in_training_only() -> None:
    from whyrec.models.nets import ItemEmbedding

    torch.manual_seed(0)
    n_items, text = 400, torch.randn(400, 16)
    seen = torch.ones(n_items + 2)
    items = ItemEmbedding(n_items, 8, text, seen, id_dropout=0.25)
    assert items.text is not None
    with torch.no_grad():
        items.unknown.copy_(torch.randn(8))  # the shared "unknown ID" vector, trained in real use
    text_only = items.text(torch.cat([torch.zeros(1, 16), text, torch.zeros(1, 16)])) + items.unknown
    items.train()
    table = items.table()
    hidden = torch.isclose(table[1 : n_items + 1], text_only[1 : n_items + 1]).all(dim=1)
    assert 0.18 < hidden.float().mean().item() < 0.32  # about a quarter of the items, text only
    assert torch.equal(table[0], torch.zeros(8))  # padding stays zero
    items.eval()
    table = items.table()
    assert not torch.isclose(table[1 : n_items + 1], text_only[1 : n_items + 1]).all(dim=1).any()


def test_items_unseen_in_training_share_the_unknown_id_vector() -> None:
    from whyrec.models.nets import ItemEmbedding

    n_items, text = 6, torch.randn(6, 4)
    seen = torch.tensor([0, 1, 1, 0, 1, 1, 0, 0], dtype=torch.float32)  # items 3 and 6 are cold
    items = ItemEmbedding(n_items, 8, text, seen).eval()
    assert items.text is not None
    with torch.no_grad():
        items.unknown.copy_(torch.randn(8))
        table = items.table()
        for cold in (3, 6):
            assert torch.allclose(table[cold], items.unknown + items.text(text[cold - 1]))
        assert torch.allclose(table[2], items.ids.weight[2] + items.text(text[1]))


def test_cold_items_can_borrow_the_ids_of_their_textual_neighbours() -> None:
    from whyrec.models.nets import ItemEmbedding

    text = torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [0.6, 0.8, 0], [0, 0, 1.0]])  # unit length
    seen = torch.tensor([0, 1, 1, 0, 1, 0], dtype=torch.float32)  # item 3 (0.6, 0.8, 0) is cold
    items = ItemEmbedding(4, 8, text, seen, cold_neighbours=2).eval()
    assert items.text is not None
    with torch.no_grad():
        table = items.table()
        ids = items.ids.weight
        borrowed = (0.6 * ids[1] + 0.8 * ids[2]) / 1.4  # its two closest seen items, by similarity
        assert torch.allclose(table[3], borrowed + items.text(text[2]), atol=1e-6)
        assert torch.allclose(table[1], ids[1] + items.text(text[0]))  # seen items keep their own
        items.train()
        assert torch.allclose(items.table()[3], items.unknown + items.text(text[2]))  # training: unknown


def test_unseen_items_can_be_left_out_of_the_training_softmax() -> None:
    """unseen_negatives=False: the loss is cross-entropy over the items seen in training only."""
    sequences = markov_sequences(n_users=60, n_items=30, length=8)
    split = make_split([[i for i in s[:-2] if i not in (7, 19)] + s[-2:] for s in sequences], n_items=30)
    seen = split.train_item_counts() > 0
    assert not seen[[7, 19]].any() and seen.sum() == 28
    training = replace(SMALL_TRAINING, max_epochs=1)
    model = SASRec(SMALL_SASREC, training, ItemEmbeddingConfig(unseen_negatives=False)).fit(fit_data(split))
    net = model.net
    assert net is not None
    batch = torch.from_numpy(training_windows(split.train(), SMALL_SASREC.max_len)[:16])
    with torch.no_grad():
        total, n_targets = model._loss(Step(net), batch, torch.Generator())  # eval mode: no dropout
        loss = total / n_targets
        table = net.items.table()
        x, y = batch[:, :-1], batch[:, 1:]
        hidden = net(x, table)[y > 0]
        index = np.flatnonzero(seen)
        logits = hidden @ table[1:][index].T  # seen items only
        targets = torch.from_numpy(np.searchsorted(index, (y[y > 0] - 1).numpy()))
        expected = torch.nn.functional.cross_entropy(logits, targets)
    assert torch.isclose(loss, expected, atol=1e-5)
    with_unseen = SASRec(SMALL_SASREC, training, ItemEmbeddingConfig(unseen_negatives=True))
    with_unseen.n_items, with_unseen.net = model.n_items, net
    with torch.no_grad():
        more, _ = with_unseen._loss(Step(net), batch, torch.Generator())
        assert more / n_targets > loss  # two more negatives


def test_text_carries_items_never_seen_in_training() -> None:
    """Known answer: users stay within one genre; each genre's last item is only ever a test
    target, never in training. Its text (the genre) must bring it to the top for the users of that
    genre; an ID-only model can only guess."""
    n_genres, size = 8, 6
    rng = np.random.default_rng(0)
    sequences = []
    for user in range(400):
        genre = user % n_genres
        warm = list(rng.permutation(size - 1) + genre * size)
        sequences.append([*warm, genre * size + size - 1] if user % 2 == 0 else warm)
    split = make_split(sequences, n_items=n_genres * size)
    texts = [f"genre{i // size} genre{i // size} item{i}" for i in range(split.n_items)]
    data = FitData(split, HashingEncoder(32).encode(texts), progress=False)
    histories, targets = split.test()
    cold = np.flatnonzero(split.train_item_counts()[targets] == 0)
    assert len(cold) == 200
    cold_items = np.unique(targets[cold])
    text_model = SASRec(SMALL_SASREC, SMALL_TRAINING).fit(data)
    got = evaluate(text_model, [histories[i] for i in cold], targets[cold], split.n_items)
    assert got["MRR@10"] > 0.9, got
    # without text every cold item has the same representation: the right one cannot be told apart
    id_only = SASRec(SMALL_SASREC, SMALL_TRAINING, ItemEmbeddingConfig(use_text=False)).fit(data)
    scores = id_only.score([histories[i] for i in cold])[:, cold_items]
    np.testing.assert_allclose(scores, scores[:, :1].repeat(len(cold_items), axis=1), atol=1e-6)
    got = evaluate(id_only, [histories[i] for i in cold], targets[cold], split.n_items)
    assert got["MRR@10"] < 0.5, got


@pytest.mark.parametrize(
    "make",
    [
        lambda: SASRec(replace(SMALL_SASREC, n_layers=2), SHORT),
        lambda: BERT4Rec(replace(SMALL_SASREC, objective="masked", n_layers=2), SHORT),
        lambda: GRU4Rec(GRU4RecConfig(dim=16, max_len=20), SHORT_GRU),
    ],
    ids=["sasrec", "bert4rec", "gru4rec"],
)
def test_scoring_computes_only_the_last_position_and_gets_the_full_forward_passes_answer(make) -> None:  # type: ignore[no-untyped-def]
    split = make_split(markov_sequences(n_users=40, n_items=15, length=10, noise=0.2))
    model = make().fit(fit_data(split))
    histories = split.test()[0][:6]
    net = model.net
    assert net is not None
    with torch.inference_mode():
        x = model._inputs(histories)
        table = net.items.table()
        last = net(x, table, last_only=True)
        assert last.shape == (len(histories), 1, net(x, table).shape[2])
        np.testing.assert_allclose(last[:, -1].numpy(), net(x, table)[:, -1].numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("causal", [True, False])
def test_a_transformer_layer_at_inference_computes_what_it_trains(causal: bool) -> None:
    """Inference runs torch's fused attention; training writes attention out (for its dropout).
    Without dropout both are one function: checked with a left-padded batch, for every position
    and for the last alone."""
    from whyrec.models.nets import Block

    torch.manual_seed(0)
    block = Block(dim=16, n_heads=2, dropout=0.0)
    h = torch.randn(3, 7, 16)
    pad = torch.zeros(3, 7, dtype=torch.bool)
    pad[1, :4] = pad[2, :6] = True  # left padding; the last key is never masked
    blocked = torch.triu(torch.ones(7, 7, dtype=torch.bool), 1) if causal else pad[:, None, None, :]
    for last_only in (False, True):
        block.train()
        written_out = block(h, blocked, last_only)
        block.eval()
        with torch.inference_mode():
            fused = block(h, blocked, last_only)
        assert fused.shape == written_out.shape == (3, 1 if last_only else 7, 16)
        torch.testing.assert_close(fused, written_out.detach(), rtol=1e-5, atol=1e-5)


def test_rows_that_begin_alike_share_their_states_and_score_as_in_the_plain_pass(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SASRecNet.last_states computes a reference row once and the others from where they
    differ from it: the batch of a history and its occluded variants (long and short histories,
    by removal and in place), and a batch with nothing in common (the plain pass)."""
    from whyrec.explain.context import occluded
    from whyrec.models.nets import Block, ItemEmbedding, SASRecNet

    extend = Block.extend
    torch.manual_seed(0)
    n_items, max_len = 30, 12
    items = ItemEmbedding(n_items, 16, None, torch.cat([torch.zeros(1), torch.ones(n_items), torch.zeros(1)]))
    net = SASRecNet(items, dim=16, max_len=max_len, n_layers=2, n_heads=2, dropout=0.2, causal=True).eval()
    model = SASRec(replace(SMALL_SASREC, max_len=max_len), SHORT)
    rng = np.random.default_rng(0)
    batches = []
    for length in (20, 9):  # longer than the window (variants read one older item) and shorter
        history = rng.integers(1, n_items + 1, length)
        start = max(0, length - max_len)
        for how in ("remove", "mask"):
            batches.append([history] + [occluded(history, [p], how, True) for p in range(start, length)])
    batches.append([rng.integers(1, n_items + 1, max_len) for _ in range(10)])
    extended = []  # the layers' calls that share states
    monkeypatch.setattr(Block, "extend", lambda self, *a, **k: extended.append(1) or extend(self, *a, **k))
    with torch.inference_mode():
        table = items.table()
        for batch, shares in zip(batches, [True, True, True, True, False], strict=True):
            x, extended[:] = model._inputs(batch), []
            plain = net(x, table, last_only=True)[:, -1]
            torch.testing.assert_close(net.last_states(x, table), plain, rtol=1e-5, atol=1e-5)
            assert bool(extended) == shares


@pytest.mark.parametrize("budget", [1, 2**24])  # one row at a time, all at once
@pytest.mark.parametrize("sort_above", [0.0, np.inf])  # rows sorted, candidates compared
def test_rank_fusion_of_a_few_items_is_the_full_rank_fusion_of_those_items(
    budget: int, sort_above: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    from whyrec.models import hybrid
    from whyrec.models.hybrid import rank_scores, rank_scores_at

    monkeypatch.setattr(hybrid, "_COMPARE_BUDGET", budget)
    monkeypatch.setattr(hybrid, "_SORT_ABOVE", sort_above)

    # ties (the zeros, and 0.5 twice), a seen item, and columns among the tied ones
    scores = np.array([[0.5, 0.0, 0.9, 0.0, 0.5, 0.0], [0.0, 0.0, 0.0, 0.3, 0.3, 0.1]])
    histories = [np.array([2]), np.array([3, 0])]
    columns = [1, 3, 4, 5, 0]
    # by hand, row 0: 2 is seen (last); order 0, 4, 1, 3, 5, 2 -> item 1 has rank 2, 3 rank 3, 4 rank 1
    assert (
        np.expm1(-rank_scores_at(scores, histories, columns)[0]).round().astype(int) == [2, 3, 1, 4, 0]
    ).all()
    np.testing.assert_allclose(
        rank_scores_at(scores, histories, columns), rank_scores(scores, histories)[:, columns]
    )
    # many ties, NaN, seen items among the columns, scores of either precision
    rng = np.random.default_rng(budget)
    for dtype in (np.float32, np.float64):
        scores = rng.integers(0, 4, (9, 40)).astype(dtype)
        scores[rng.random(scores.shape) < 0.1] = np.nan
        scores[0, :3] = -np.inf  # scores as low as a seen item's
        histories = [rng.choice(40, size=rng.integers(0, 6), replace=False) for _ in range(9)]
        columns = [0, *rng.choice(np.arange(1, 40), size=12, replace=False)]
        np.testing.assert_array_equal(
            rank_scores_at(scores, histories, columns), rank_scores(scores, histories)[:, columns]
        )


@pytest.mark.parametrize("normalise", ["rank", "zscore"])
def test_the_hybrids_scores_read_per_item_or_per_history_are_its_scores(normalise: str) -> None:
    split = make_split(markov_sequences(n_users=40, n_items=15, length=10, noise=0.2))
    hybrid = Hybrid(
        HybridConfig(sequence_models=("sasrec",), seeds=1, normalise=normalise),  # type: ignore[arg-type]
        prototypes=[SASRec(SMALL_SASREC, SHORT)],
    ).fit(fit_data(split))
    hybrid.weights = replace(hybrid.weights, cf=0.5, content=0.3)  # every part takes part
    histories = split.test()[0][:5]
    full = hybrid.score(histories)
    parts = hybrid.score_parts(histories)
    columns = [0, 7, 3, 14]
    np.testing.assert_allclose(parts.at(columns), full[:, columns], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(parts.row(2), full[2], rtol=1e-5, atol=1e-5)


def test_early_stopping_reads_the_asked_sample_of_validation_users() -> None:
    split = make_split(markov_sequences(n_users=40, n_items=30, length=8))
    config = SASRecConfig(dim=8, n_layers=1, n_heads=1, max_len=6)
    sampled = SASRec(config, TrainingConfig(max_epochs=2, valid_users=7)).fit(fit_data(split))
    everyone = SASRec(config, TrainingConfig(max_epochs=1)).fit(fit_data(split))
    assert sampled.fit_info.extra["valid_users"] == 7
    assert everyone.fit_info.extra["valid_users"] == len(split.valid()[1]) > 7
    assert (
        len(sampled.fit_info.extra["epoch_train_seconds"])
        == len(sampled.fit_info.extra["epoch_valid_seconds"])
        == 2
    )


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="parts run side by side only with 2+ cores")
def test_the_hybrids_parts_scored_side_by_side_give_the_same_scores() -> None:
    """With torch on one thread (as a service runs it) the parts are scored on the free cores; the
    scores must be exactly those scored one after the other."""
    import threading

    from whyrec.models.hybrid import run_parts

    split = make_split(markov_sequences(n_users=40, n_items=15, length=10, noise=0.2))
    hybrid = Hybrid(
        HybridConfig(sequence_models=("sasrec", "gru4rec"), seeds=1),
        prototypes=[SASRec(SMALL_SASREC, SHORT), GRU4Rec(GRU4RecConfig(dim=16, max_len=20), SHORT_GRU)],
    ).fit(fit_data(split))
    hybrid.weights = replace(hybrid.weights, cf=0.5, content=0.3)
    histories = split.test()[0][:6]
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(os.cpu_count() or 1)
        one_after_another = hybrid.score(histories), hybrid.score_parts(histories).at([0, 4, 9])
        torch.set_num_threads(1)
        names = run_parts([lambda: threading.current_thread().name] * 4)  # type: ignore[list-item]
        side_by_side = hybrid.score(histories), hybrid.score_parts(histories).at([0, 4, 9])
    finally:
        torch.set_num_threads(threads)
    assert all(str(name).startswith("whyrec-parts") for name in names)
    np.testing.assert_array_equal(side_by_side[0], one_after_another[0])
    np.testing.assert_array_equal(side_by_side[1], one_after_another[1])
