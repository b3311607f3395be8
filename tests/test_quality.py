"""The explanation metrics can fail: a deliberately wrong explainer scores low on each of them."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from whyrec.data import LoadOptions
from whyrec.explain import Explainer
from whyrec.explain.quality import explanation_metrics
from whyrec.explain.types import Counterfactual, Evidence, Explanation, Sentence
from whyrec.models import FitData, ItemKNN, ItemKNNConfig
from whyrec.training.pipeline import Prepared, prepare
from whyrec.training.recommender import Recommendation, Recommender

from .conftest import markov_sequences, write_csv


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Prepared, ItemKNN]:
    base = tmp_path_factory.mktemp("quality")
    inter, items = write_csv(
        base / "inter.csv", markov_sequences(n_users=120, n_items=30, length=12, noise=0.3)
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WHYREC_CACHE", str(base / "cache"))
        prepared = prepare(f"csv:{inter}", LoadOptions(items=str(items)), encoder="hashing", progress=False)
    # every item weighs the same: a model that ignores order
    model = ItemKNN(ItemKNNConfig(decay=1.0)).fit(
        FitData(prepared.split, prepared.item_vectors, progress=False)
    )
    return prepared, model


def recommender(prepared: Prepared, model: ItemKNN) -> Recommender:
    return Recommender(model, prepared.split.items, prepared.dataset.catalog, prepared.item_vectors, {})


class Hallucinating(Explainer):
    """Cites items the user never met, and a counterfactual that removes nothing of theirs."""

    def explain_recommendations(self, *args: Any, **kwargs: Any) -> list[tuple[Recommendation, Explanation]]:
        pairs = super().explain_recommendations(*args, **kwargs)
        shown = set(kwargs["history"]) | {r.item_id for r, _ in pairs}
        strangers = [i for i in self.rec.items.ids if i not in shown][-3:]  # never met, ranked lower
        evidence = tuple(Evidence(i, self.rec.catalog.title(i), 1.0, 0) for i in strangers)
        cf = Counterfactual(True, (strangers[0],), (self.rec.catalog.title(strangers[0]),), 99, True, 5)
        out = []
        for r, e in pairs:
            text = f"Because you liked {evidence[0].title}."
            sentence = Sentence(text, e.sentence.lang, "template")
            out.append((r, replace(e, evidence=evidence, counterfactual=cf, sentence=sentence)))
        return out


class Recent3(Explainer):
    """The obvious heuristic: the three most recent items are the evidence."""

    def explain_recommendations(self, *args: Any, **kwargs: Any) -> list[tuple[Recommendation, Explanation]]:
        pairs = super().explain_recommendations(*args, **kwargs)
        recent = list(kwargs["history"])[-3:][::-1]
        evidence = tuple(Evidence(i, self.rec.catalog.title(i), 1.0, 0) for i in recent)
        return [(r, replace(e, evidence=evidence)) for r, e in pairs]


def test_the_honest_explainer_passes_its_checks(setup: tuple[Prepared, ItemKNN]) -> None:
    prepared, model = setup
    out = explanation_metrics(prepared, model, n_users=25, progress=False)
    assert out["explained_items"] == 250
    assert out["fidelity_top3_rank_drop"] > out["fidelity_random3_rank_drop"] > 0
    assert out["fidelity_ratio"] > 1 and out["fidelity_ratio_recent"] is not None
    assert out["counterfactual_found_rate"] > 0.2 and out["counterfactual_validity"] == 1.0
    assert 1 <= out["counterfactual_mean_size"] <= 5
    assert out["grounding_rate"] == 1.0


def test_a_hallucinating_explainer_fails_fidelity_counterfactuals_and_grounding(
    setup: tuple[Prepared, ItemKNN],
) -> None:
    prepared, model = setup
    wrong = Hallucinating(recommender(prepared, model))
    out = explanation_metrics(prepared, model, n_users=25, progress=False, explainer=wrong)
    assert out["fidelity_top3_rank_drop"] == 0  # removing items the user never met changes nothing
    assert out["fidelity_ratio"] == 0
    assert out["counterfactual_found_rate"] == 1.0 and out["counterfactual_validity"] == 0.0
    assert out["grounding_rate"] == 0.0  # the sentence names an item that supports nothing


def test_the_recent3_heuristic_scores_a_ratio_of_one_against_recent3(setup: tuple[Prepared, ItemKNN]) -> None:
    prepared, model = setup
    out = explanation_metrics(
        prepared, model, n_users=25, progress=False, explainer=Recent3(recommender(prepared, model))
    )
    assert out["fidelity_ratio_recent"] == 1.0


class NamesAStranger:
    """An LLM that mentions a title outside the explanation's facts."""

    name = "stranger"

    def __init__(self, title: str) -> None:
        self.title = title

    def generate(self, messages: list[dict[str, str]], max_new_tokens: int) -> str:
        return f"You will love this, just like {self.title}, trust us."


def phrased_by_a_stranger(setup: tuple[Prepared, ItemKNN], **options: Any) -> dict[str, Any]:
    """The metrics of 6 users with every LLM phrasing naming an item outside the facts."""
    prepared, model = setup
    stranger = prepared.dataset.catalog.title(prepared.split.items.ids[-1])
    phraser = NamesAStranger(stranger)
    return explanation_metrics(prepared, model, n_users=6, progress=False, phraser=phraser, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_llm_phrasing_is_measured_as_shown_and_rejections_are_counted(
    setup: tuple[Prepared, ItemKNN], lang: str
) -> None:
    out = phrased_by_a_stranger(setup, lang=lang, llm_users=3)
    assert out["lang"] == lang and out["llm_phrased"] == 30
    assert out["llm_rejected_rate"] == 1.0
    assert all(reason.startswith("LLM phrasing rejected") for reason in out["llm_outcomes"])
    assert out["grounding_rate"] == 1.0  # the template shown instead is grounded


def test_llm_phrasing_of_each_users_top_item_only(setup: tuple[Prepared, ItemKNN]) -> None:
    out = phrased_by_a_stranger(setup, llm_users=4, llm_per_user=1)
    assert out["llm_phrased"] == 4 and out["llm_rejected_rate"] == 1.0
