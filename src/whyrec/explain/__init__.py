"""Faithful explanations: evidence by occlusion, interests, counterfactuals, why-not, sentences."""

from whyrec.explain.explainer import ExplainConfig, Explainer
from whyrec.explain.phrasing import OpenAIPhraser, Phraser, SmolLMPhraser, make_phraser
from whyrec.explain.sentences import GroundingChecker, template_sentence
from whyrec.explain.types import (
    Counterfactual,
    Evidence,
    Explanation,
    Interest,
    InterestProfile,
    Lift,
    Sentence,
    WhyNot,
)

__all__ = [
    "Counterfactual",
    "Evidence",
    "ExplainConfig",
    "Explainer",
    "Explanation",
    "GroundingChecker",
    "Interest",
    "InterestProfile",
    "Lift",
    "OpenAIPhraser",
    "Phraser",
    "Sentence",
    "SmolLMPhraser",
    "WhyNot",
    "make_phraser",
    "template_sentence",
]
