"""Audit runs: the whole zoo, or one evaluator, on a model and a stream -> ``CausalityReport``.

The CLI calls these; they know nothing about options or exit codes beyond the report.
"""

from __future__ import annotations

import contextlib
import time
from typing import Callable, Iterator, Sequence

import torch

from reference_model.evaluate import get_evaluator
from reference_model.metric import ByteLUTs

from ..errors import BadInput, one_line
from .engine import AuditOptions, audit_sources, worker_pool
from .report import AuditedSubject, CausalityReport
from .sources import EvaluatorSource
from .zoo import AUDIT_STREAM_TOKENS, ZOO, ZooMember, settings_for, with_geometry


def audit_stream(tokens: torch.Tensor, length: int | None = None) -> torch.Tensor:
    """The first ``length`` tokens (default: the zoo's deliberately short audit stream)."""
    length = AUDIT_STREAM_TOKENS if length is None else length
    if length < 3:
        raise BadInput(f"the audit stream needs at least 3 tokens, got {length}")
    if tokens.numel() < 3:
        raise BadInput(f"the token stream has only {tokens.numel()} tokens; the audit needs at least 3")
    return tokens.reshape(-1)[:length].long()


def _report(mode: str, model: str, stream: str, tokens: torch.Tensor, geometry: dict[str, str],
            options: AuditOptions, workers: int) -> CausalityReport:
    return CausalityReport(mode, model, stream, int(tokens.numel()), geometry, options.flips, options.seed,
                           options.tolerance, options.norm_tolerance, workers)


def run_subjects(report: CausalityReport, entries: Sequence[tuple[ZooMember, dict[str, str]]], model: torch.nn.Module,
                 luts: ByteLUTs, tokens: torch.Tensor, options: AuditOptions, workers: int,
                 progress: Callable[[str], None] | None = None) -> CausalityReport:
    """Build a source per entry, audit them all on one worker pool, fill ``report``."""
    sources = []
    for member, settings in entries:
        try:
            evaluator = get_evaluator(member.evaluator, settings)
        except (KeyError, ValueError, TypeError) as exc:
            raise BadInput(one_line(exc)) from None
        sources.append(EvaluatorSource(evaluator, model, luts, member.label))
    t0 = time.perf_counter()
    with worker_pool(workers) as pool, run_progress(len(sources) * (2 + 2 * options.flips)) as on_runs:
        results = audit_sources(sources, tokens, options, executor=pool, progress=progress, on_runs=on_runs)
    report.wall_seconds = time.perf_counter() - t0
    for (member, settings), result in zip(entries, results):
        expected = member.expected if report.mode == "zoo" else None
        report.subjects.append(AuditedSubject(member.label, member.evaluator, dict(settings), result, expected))
    return report


@contextlib.contextmanager
def run_progress(total: int) -> Iterator[Callable[[int, int], None] | None]:
    """A rich progress bar of evaluator runs with an ETA on stderr, when stderr is a terminal.

    It shares the stderr console of the CLI's status lines, which therefore print above it.
    Elsewhere (pipes, logs, CI) nothing is drawn and the status lines alone report progress.
    """
    from ..output import stderr_console

    if not stderr_console.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    bar = Progress(TextColumn("flip runs"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("ETA"),
                   TimeRemainingColumn(), console=stderr_console, transient=True)
    task = bar.add_task("runs", total=total)
    with bar:
        yield lambda done, planned: bar.update(task, completed=done, total=planned)


def audit_zoo(model: torch.nn.Module, luts: ByteLUTs, tokens: torch.Tensor, options: AuditOptions, *, workers: int = 1,
              model_name: str = "demo", stream_name: str = "demo", members: Sequence[ZooMember] = ZOO,
              progress: Callable[[str], None] | None = None) -> CausalityReport:
    """Every zoo member on one model and stream, each against its expected verdict."""
    geometry = _geometry_note()
    report = _report("zoo", model_name, stream_name, tokens, geometry, options, workers)
    entries = [(m, settings_for(m)) for m in members]
    return run_subjects(report, entries, model, luts, tokens, options, workers, progress)


def audit_evaluator(name: str, settings: dict[str, str], model: torch.nn.Module, luts: ByteLUTs, tokens: torch.Tensor,
                    options: AuditOptions, *, workers: int = 1, model_name: str = "demo", stream_name: str = "demo",
                    progress: Callable[[str], None] | None = None) -> CausalityReport:
    """One evaluator (audit geometry unless ``settings`` overrides it); plain pass/fail verdict."""
    full = with_geometry(name, settings)
    label = name + ("(" + ", ".join(f"{k}={v}" for k, v in settings.items()) + ")" if settings else "")
    report = _report("evaluator", model_name, stream_name, tokens, full, options, workers)
    return run_subjects(report, [(ZooMember(label, name, settings), full)], model, luts, tokens, options, workers, progress)


def _geometry_note() -> dict[str, str]:
    from .zoo import AUDIT_SEQ_LEN, AUDIT_STRIDE, AUDIT_TTT_CHUNK

    return {"seq_len": str(AUDIT_SEQ_LEN), "stride": str(AUDIT_STRIDE), "slot_batch": "32",
            "ttt_chunk": str(AUDIT_TTT_CHUNK)}
