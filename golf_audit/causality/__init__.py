"""Causality audit: flip tests that tell whether an evaluator's scores depend on the tokens they score.

``engine`` runs the tests on any ``NllSource``; ``sources`` adapts a reference evaluator and a
model into one; ``zoo`` is the evaluator zoo with expected verdicts; ``render`` turns results
into table, JSON and Markdown reports.
"""

from typing import Any

from .results import DEFAULT_FLIPS, DEFAULT_NORM_TOLERANCE, DEFAULT_TOLERANCE

# The engine imports torch; it loads on first use, so reading the defaults above (the CLI's
# option defaults) stays instant.
_FROM_ENGINE = ("AuditOptions", "CausalityResult", "NllSource", "audit_source", "audit_sources", "default_workers",
                "worker_pool")


def __getattr__(name: str) -> Any:
    if name in _FROM_ENGINE:
        from . import engine

        return getattr(engine, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["DEFAULT_FLIPS", "DEFAULT_NORM_TOLERANCE", "DEFAULT_TOLERANCE", "AuditOptions", "CausalityResult",
           "NllSource", "audit_source", "audit_sources", "default_workers", "worker_pool"]
