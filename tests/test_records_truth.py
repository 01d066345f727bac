"""Regression test: `report` over all of ../shared/records against GROUND_TRUTH, per folder and family.

The comparison lives in tests/records_truth.py (runnable on its own to print the table). The
cells listed in KNOWN below are where the tool and GROUND_TRUTH disagree for a reason written
next to them (a different but documented rule, or a row believed wrong); every other cell must
agree. A new disagreement, or a known one that went away, fails the test.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from records_truth import FAMILIES, compare, order_mapping, run_tool  # noqa: E402

T, N = "track_10min_16mb/", "track_non_record_16mb/"
KNOWN: dict[tuple[str, str], str] = {
    # train_v1.txt (2xH100, MAX_WALLCLOCK_SECONDS=2400) prints its result under another metric
    # name than the other three runs; the reader keeps the 3 runs of the claimed configuration.
    (T + "2026-03-17_LoRA_TTT", "time"): "miss",
    # No log of the claimed seeds: GROUND_TRUTH takes the per-seed values from the README table;
    # the tool only trusts logs, and the only log (seed 1337, another configuration) is one run.
    (T + "2026-03-19_MLP3x_QAT_Int6_SlidingWindow", "time"): "false-pass",
    (T + "2026-03-19_MLP3x_QAT_Int6_SlidingWindow", "sig_readme"): "fp",
    (T + "2026-03-19_MLP3x_QAT_Int6_SlidingWindow", "sig_leaderboard"): "fp",
    # …and so its successor is tested against that one run, not the README's three values.
    (T + "2026-03-20_Int6_MLP3x_SmearGate_BigramHash_MuonWD_SWA", "sig_readme"): "miss",
    # Sizes printed in MB only: no byte figure to check (GROUND_TRUTH derives one from the MB).
    (N + "2026-03-26_37M_LeWM_Jepa_Mamba2_10L_UNet_INT4FP8QAT_Brotli", "cap"): "unconcluded",
    (N + "2026-03-26_37M_LeWM_Jepa_Mamba2_10L_UNet_INT4FP8QAT_Brotli", "mismatch"): "unconcluded",
    # No log prints a final result (only training-step values): no run backs the claim, so the
    # seed check has nothing to check (the claim check fails on the step value instead).
    (N + "2026-03-23_DGAttention_DavidGao", "seeds"): "unconcluded",
    # No submission.json: nothing is claimed, so the claim check does not run.
    (N + "2026-04-05_118M_XNOR-Net_FP8_1024D_10L", "claim"): "unconcluded",
    # Two logs are named for seeds 2026 and 42 but print seed 1337 (GROUND_TRUTH lists them as
    # training runs, not used for the score): the tool reports that as seed evidence.
    (N + "2026-04-30_Random_Linear_Adapter", "seeds"): "fp",
}


@pytest.fixture(scope="module")
def cells(shared_dir: Path):
    if not (shared_dir / "records" / "GROUND_TRUTH.json").is_file():
        pytest.skip("no records/GROUND_TRUTH.json in ../shared")
    return compare(shared_dir, run_tool(shared_dir, order_mapping(shared_dir)))


def test_every_folder_and_family_is_compared(cells) -> None:
    folders = {c.key for c in cells}
    assert len(folders) == 53 and {c.family for c in cells} == set(FAMILIES)
    assert not [c for c in cells if c.status == "absent"], "a folder was not audited"


def test_verdicts_agree_with_ground_truth(cells) -> None:
    wrong = {(c.key, c.family): c.outcome for c in cells if c.outcome != "ok"}
    unexpected = {k: v for k, v in wrong.items() if KNOWN.get(k) != v}
    fixed = {k: v for k, v in KNOWN.items() if wrong.get(k) != v}
    assert not unexpected, "\n".join(f"{v:12s} {k[1]:16s} {k[0]}" for k, v in sorted(unexpected.items()))
    assert not fixed, f"known disagreements that no longer occur (remove them from KNOWN): {fixed}"
