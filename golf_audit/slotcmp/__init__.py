"""``golf-audit slot-compare``: how much of a SLOT gain is leakage (compare, render, plot)."""

from .compare import SCHEMA_VERSION, SlotComparison, SweepRow, VariantResult, compare, parse_sweep

__all__ = ["SCHEMA_VERSION", "SlotComparison", "SweepRow", "VariantResult", "compare", "parse_sweep"]
