"""Evaluators: ways of turning a model and a token stream into scored NLLs.

``get_evaluator(name, settings)`` looks one up by name (unknown names get "did you mean");
``REGISTRY`` lists them all. See ``base.py`` for the interface and the indexing convention.
"""

from .base import REGISTRY, Evaluator, Scored, ScoreAccumulator, UnknownEvaluator, Window, enumerate_windows, get_evaluator

__all__ = ["REGISTRY", "Evaluator", "Scored", "ScoreAccumulator", "UnknownEvaluator", "Window", "enumerate_windows", "get_evaluator"]
