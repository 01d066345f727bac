"""Readers for a records folder as PRs ship it: submission.json, train logs, and their cross-check."""

from .checks import claim_check, record_checks, seed_check
from .folder import Discrepancy, RecordFolder, SeedRun, find_logs, list_record_folders, read_folder
from .logs import FinalLine, SizeLine, StepLine, TrainLog, parse_log_text, read_log
from .submission import SeedResult, Submission, parse_submission, read_submission

__all__ = [
    "Discrepancy", "FinalLine", "RecordFolder", "SeedResult", "SeedRun", "SizeLine", "StepLine", "Submission",
    "TrainLog", "claim_check", "find_logs", "record_checks", "seed_check", "list_record_folders", "parse_log_text", "parse_submission", "read_folder",
    "read_log", "read_submission",
]  # fmt: skip
