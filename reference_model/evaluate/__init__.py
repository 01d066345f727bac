"""Evaluators: ways of turning a model and a token stream into scored NLLs.

``get_evaluator(name, settings)`` looks one up by name (unknown names get "did you mean");
``REGISTRY`` lists them all. See ``base.py`` for the interface and the indexing convention.

The seed's own evaluators (standard, sliding, slot) default to the seed's behaviour,
window enumeration included (``tail=records``); ``tail=once`` is the exact variant.

Legal:  standard, sliding, slot (mask=context, delta=window), ttt (order=score_first).
Leaky:  slot (mask=scored: the seed PR's default; or delta=batch), ttt (order=train_first),
        ngram_target, two_pass, unnormalized.
"""

from .base import REGISTRY, Evaluator, Scored, ScoreAccumulator, UnknownEvaluator, Window, enumerate_windows, get_evaluator, record_events
from .memo import reuse_unchanged_batches

# Importing the modules registers their evaluators.
from . import standard, sliding, slot, ttt, leaky  # noqa: E402,F401  isort: skip

__all__ = ["REGISTRY", "Evaluator", "Scored", "ScoreAccumulator", "UnknownEvaluator", "Window", "enumerate_windows", "get_evaluator", "record_events",
           "reuse_unchanged_batches"]
