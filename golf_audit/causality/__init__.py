"""Causality audit: flip tests that tell whether an evaluator's scores depend on the tokens they score.

``engine`` runs the tests on any ``NllSource``; ``sources`` adapts a reference evaluator and a
model into one; ``zoo`` is the evaluator zoo with expected verdicts; ``render`` turns results
into table, JSON and Markdown reports.
"""

from .engine import (DEFAULT_FLIPS, DEFAULT_NORM_TOLERANCE, DEFAULT_TOLERANCE, AuditOptions, CausalityResult,
                     NllSource, audit_source, audit_sources, default_workers, worker_pool)

__all__ = ["DEFAULT_FLIPS", "DEFAULT_NORM_TOLERANCE", "DEFAULT_TOLERANCE", "AuditOptions", "CausalityResult",
           "NllSource", "audit_source", "audit_sources", "default_workers", "worker_pool"]
