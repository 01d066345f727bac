"""The registry of checks: every check module, in report order, looked up by stable id."""

from __future__ import annotations

import difflib

from ..errors import BadInput
from . import (
    bpb_builder,
    bpb_denominator,
    bpb_sidecar,
    bpb_table,
    causal_dynamic,
    claims_match_logs,
    cover_full,
    data_fingerprint,
    data_val_calibration,
    doc_isolation,
    files_parse,
    norm_dynamic,
    seed_consistency,
    sig_leaderboard,
    sig_readme,
    size_cap,
    size_container,
    size_hidden_code,
    size_log_mismatch,
    static_adapt_before_score,
    static_network,
    static_scored_mask,
    static_shared_delta,
    static_spread_logprob,
    static_target_gate,
    static_target_in_key,
    static_unused_env,
    static_val_in_train,
    time_eval,
    time_post_stop,
    time_train,
)
from .base import Check

# Report order: the artifact first (the cap decides everything), then time, claims,
# significance, static code checks, and the slow dynamic checks last.
_MODULES = [
    size_cap, size_hidden_code, size_log_mismatch, size_container,
    time_train, time_eval, time_post_stop,
    data_val_calibration, data_fingerprint,
    files_parse, claims_match_logs, seed_consistency,
    sig_readme, sig_leaderboard,
    static_scored_mask, static_shared_delta, static_adapt_before_score, static_target_in_key,
    static_spread_logprob, static_target_gate, static_val_in_train, static_network, static_unused_env,
    bpb_table, bpb_denominator,
    causal_dynamic, norm_dynamic, cover_full, doc_isolation, bpb_builder, bpb_sidecar,
]

CHECKS: dict[str, Check] = {m.CHECK.id: m.CHECK for m in _MODULES}


class UnknownCheck(BadInput):
    """An id that no registered check has."""


def all_checks() -> list[Check]:
    """Every registered check, in report order."""
    return list(CHECKS.values())


def get_check(check_id: str) -> Check:
    """The check with ``check_id`` (case-insensitive); unknown ids get a "did you mean"."""
    key = check_id.strip().upper()
    if key in CHECKS:
        return CHECKS[key]
    close = difflib.get_close_matches(key, list(CHECKS), n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise UnknownCheck(f"unknown check {check_id!r}{hint}")


def select(ids: list[str] | None) -> list[Check]:
    """The checks named by ``ids`` (all of them when empty), in report order."""
    if not ids:
        return all_checks()
    wanted = {get_check(i).id for i in ids}
    return [c for c in all_checks() if c.id in wanted]
