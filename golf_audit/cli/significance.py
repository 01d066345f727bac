"""``golf-audit significance``: is a record's improvement over the previous leader significant?

Examples::

    golf-audit significance CANDIDATE_FOLDER --baseline BASELINE_FOLDER
    golf-audit significance CANDIDATE_FOLDER --baseline-mean 1.2243657 --rule readme
    golf-audit significance --values 1.2058,1.2062,1.2072 --ratio 0.5923 --baseline-mean 1.2243657
    golf-audit significance --all records/track_10min_16mb --format markdown

Exit codes: 0 every selected rule is met, 1 a selected rule is not met, 2 bad input or a rule
cannot be tested (too few seeds). ``--all`` is a report over history and exits 0 when it runs.
"""

from __future__ import annotations

import enum
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich import box
from rich.table import Table

from .. import __version__
from ..errors import BadInput
from ..output import SCHEMA_VERSION, Format, dumps_json, emit, plain_text, stderr_console


def format_p(p: float | None) -> str:
    from ..stats import format_p as fmt  # stats is loaded inside the command, never for --help

    return fmt(p)

from .common import guarded

if TYPE_CHECKING:  # golf_audit.stats imports scipy: loaded inside the command, never for --help
    from ..stats import Sample, SignificanceReport, TreeRow

WIDTH = 200


class Rule(str, enum.Enum):
    readme = "readme"
    leaderboard = "leaderboard"
    both = "both"


class MarginUnits(str, enum.Enum):
    nats = "nats"
    bpb = "bpb"


def parse_values(items: list[str] | None, option: str) -> list[float]:
    """``["1.2,1.3", "1.4"]`` -> floats; anything else is BadInput."""
    out: list[float] = []
    for item in items or []:
        for part in re.split(r"[,\s]+", item.strip()):
            if not part:
                continue
            try:
                value = float(part)
            except ValueError:
                raise BadInput(f"{option}: {part!r} is not a number") from None
            if not math.isfinite(value) or value <= 0:
                raise BadInput(f"{option}: {part!r} is not a bpb value (a finite number > 0)")
            out.append(value)
    return out


# ------------------------------------------------------------------------------ rendering


def _g(x: Any, digits: int = 6) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    if isinstance(x, float) and math.isinf(x):
        return "-inf" if x < 0 else "inf"
    return f"{x:.{digits}g}" if isinstance(x, float) else str(x)


TEST_HEADER = ["Rule", "Test", "H1", "n", "mean", "std", "n base", "mean base", "t", "df", "p", "CI high", "margin nats/bpb", "alpha", "Decision"]


def _test_rows(report: SignificanceReport) -> list[list[str]]:
    rows = []
    for t in report.tests:
        decision = t.decision + ("" if t.decides else " (reported only)")
        h1 = f"mean < {t.null_value:.8f}" if t.test.startswith("one-sample") else f"Δmean < {t.null_value:.6f}"
        rows.append([t.rule, t.test, h1, str(t.n), _g(t.mean, 8), _g(t.std, 4), _g(t.n_baseline),
                     _g(t.mean_baseline, 8), _g(t.statistic, 5), _g(t.df, 4), format_p(t.pvalue), _g(t.ci_high, 8),
                     f"{t.margin_nats:g}/{_g(t.margin_bpb, 4)}", f"{t.alpha:g}", decision])  # fmt: skip
    return rows


def _power_lines(report: SignificanceReport) -> list[str]:
    out = []
    for t in report.tests:
        if t.decides and t.rule == "readme":
            need = t.seeds_needed
            power = f"; {t.seeds_for_80_power} for 80% power" if t.seeds_for_80_power else ""
            if need is None:
                out.append(f"Power ({t.test}): no number of seeds reaches p < {t.alpha:g}: the observed mean does not "
                           "beat the target")
            else:
                out.append(f"Power ({t.test}): reaching p < {t.alpha:g} at the observed effect and std takes {need} seeds{power}")
    return out


def _header(report: SignificanceReport) -> str:
    c, b = report.candidate, report.baseline
    base = f"{b.label} (n={b.n}, mean {report.baseline_mean:.8f})" if b else f"baseline mean {report.baseline_mean:.8f}"
    ratio = f"{report.ratio:.6f} bpb/nat ({report.ratio_source})" if report.ratio else "unknown"
    decisions = ", ".join(f"{r}: {report.decision(r)}" for r in report.rules)
    return (f"golf-audit significance: {c.label} (n={c.n}, mean {c.mean:.8f}, seeds {', '.join(c.values)}) vs {base}\n"
            f"bpb/nats ratio: {ratio}; assumptions: {report.tests[0].assumptions if report.tests else '—'}\n"
            f"Decision: {decisions}")  # fmt: skip




def _table(header: list[str], rows: list[list[str]]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for name in header:
        table.add_column(name, overflow="fold")
    for row in rows:
        table.add_row(*row)
    return table


def _md(header: list[str], rows: list[list[str]]) -> list[str]:
    line = lambda cells: "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"  # noqa: E731
    return [line(header), line(["---"] * len(header))] + [line(r) for r in rows]


def _report_dict(report: SignificanceReport) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "golf-audit", "version": __version__},
        "candidate": report.candidate,
        "baseline": report.baseline,
        "baseline_mean": report.baseline_mean,
        "bpb_per_nat": report.ratio,
        "bpb_per_nat_source": report.ratio_source,
        "margin_units": report.margin_units,
        "rules": report.rules,
        "decisions": {r: report.decision(r) for r in report.rules},
        "tests": [dict(t.__dict__, confidence_interval=[t.ci_low, t.ci_high]) for t in report.tests],
        "warnings": report.warnings,
        "checks": report.checks,
    }


def render_report(report: SignificanceReport, fmt: Format) -> str:
    if fmt == Format.json:
        return dumps_json(_report_dict(report))
    extra = _power_lines(report) + [f"Warning: {w}" for w in report.warnings]
    if fmt == Format.markdown:
        lines = [f"### {_header(report).splitlines()[0]}", "", *_header(report).splitlines()[1:], ""]
        lines += _md(TEST_HEADER, _test_rows(report)) + [""] + [f"- {e}" for e in extra]
        return "\n".join(lines) + "\n"
    return plain_text([_header(report), _table(TEST_HEADER, _test_rows(report)), *extra], WIDTH)


TREE_HEADER = ["PR", "Folder", "n", "mean bpb", "Previous leader", "leader bpb", "README rule", "p", "Leaderboard rule", "p", "New best", "Warnings"]


def _tree_rows(rows: list[TreeRow]) -> list[list[str]]:
    return [[("launch" if r.pr == 0 else f"#{r.pr}") if r.pr is not None else "?", r.folder, str(r.n), _g(r.mean, 8),
             r.leader or "—", _g(r.leader_mean, 8), r.readme, format_p(r.readme_p),
             r.leaderboard, format_p(r.leaderboard_p), "yes" if r.new_leader else "", str(len(r.warnings))] for r in rows]  # fmt: skip


def render_tree(rows: list[TreeRow], tree: Path, fmt: Format) -> str:
    if fmt == Format.json:
        return dumps_json({"schema_version": SCHEMA_VERSION, "tool": {"name": "golf-audit", "version": __version__},
                           "tree": str(tree), "rows": rows})  # fmt: skip
    if fmt == Format.markdown:
        return "\n".join([f"### Significance of each record vs the previous leader (`{tree}`)", ""] + _md(TREE_HEADER, _tree_rows(rows))) + "\n"
    return plain_text([f"Significance of each record vs the best mean before it ({tree})", _table(TREE_HEADER, _tree_rows(rows))], WIDTH)


# ------------------------------------------------------------------------------ command


def _exit_code(report: SignificanceReport) -> int:
    decisions = [report.decision(r) for r in report.rules]
    if "not significant" in decisions:
        return 1
    if any(d != "significant" for d in decisions):
        return 2
    return 0


def register(app: typer.Typer) -> None:
    @app.command("significance")
    @guarded
    def significance_command(
        candidate: Annotated[Optional[Path], typer.Argument(help="The candidate's records folder.", show_default=False)] = None,
        *,
        baseline: Annotated[Optional[Path], typer.Option(help="The previous leader's records folder (its per-seed values).")] = None,
        baseline_mean: Annotated[Optional[float], typer.Option(help="The previous leader's mean val_bpb, when its seeds are unknown.")] = None,
        baseline_values: Annotated[Optional[list[str]], typer.Option(help="The previous leader's per-seed val_bpb (comma-separated or repeated).")] = None,
        baseline_ratio: Annotated[Optional[float], typer.Option(help="The baseline's val_bpb/val_loss, used for the margin only if the candidate's is unknown.")] = None,
        values: Annotated[Optional[list[str]], typer.Option(help="The candidate's per-seed val_bpb instead of a folder (comma-separated or repeated).")] = None,
        ratio: Annotated[Optional[float], typer.Option(help="The candidate's val_bpb/val_loss (bpb per nat), to convert the 0.005-nat margin.")] = None,
        rule: Annotated[Rule, typer.Option(help="Which rule decides: readme (≥0.005 nats, p<0.01), leaderboard (Welch, p<0.25), or both.")] = Rule.both,
        margin_units: Annotated[MarginUnits, typer.Option(help="Apply the 0.005 margin in nats (the rule) or in bpb (to reproduce claims that did).")] = MarginUnits.nats,
        all_tree: Annotated[Optional[Path], typer.Option("--all", help="Walk a records tree in PR order, each folder vs the best earlier record of its track.")] = None,
        order: Annotated[Optional[Path], typer.Option("--order", help="PR number per folder ('N folder' lines or JSON) where git history is absent.")] = None,
        format: Annotated[Format, typer.Option("--format", "-f", help="Report format.")] = Format.table,
        output: Annotated[Optional[Path], typer.Option(help="Write the report here (atomically) instead of stdout.")] = None,
    ) -> None:
        """One-sided t-tests of per-seed val_bpb under the README and leaderboard rules (scipy.stats)."""
        from ..records import read_folder
        from ..stats import RULES, compare, folder_warnings, sample_from_folder, sample_from_values, walk_tree

        from ..inputs import FILE, FOLDER, existing, number, output_file

        existing(candidate, "CANDIDATE", FOLDER)
        existing(baseline, "--baseline", FOLDER)
        existing(all_tree, "--all", FOLDER)
        existing(order, "--order", FILE)
        output_file(output)
        for value, option in ((baseline_mean, "--baseline-mean"), (baseline_ratio, "--baseline-ratio"), (ratio, "--ratio")):
            number(value, option, above=0)
        if all_tree is not None:
            if candidate is not None or values:
                raise BadInput("--all takes no candidate")
            given = [name for name, value in (("--baseline", baseline), ("--baseline-mean", baseline_mean),
                                              ("--baseline-values", baseline_values), ("--ratio", ratio),
                                              ("--baseline-ratio", baseline_ratio)) if value]
            if given:
                raise BadInput(f"{given[0]} does not apply with --all (each folder uses the previous leader)")
            from ..records.chronology import read_order_file

            rows = walk_tree(all_tree, margin_units=margin_units.value, order=read_order_file(order) if order else None)
            if not rows:
                raise BadInput(f"{all_tree}: no records folders")
            emit(render_tree(rows, all_tree, format), output)
            failed = sum(r.failed for r in rows)
            unknown = sum(r.order_unknown for r in rows)
            stderr_console.print(f"significance: {len(rows)} folders, {failed} fail an error-severity rule"
                                 + (f", {unknown} of unknown order (not tested; see --order)" if unknown else ""))
            # 1: a rule failed; 2: nothing could be tested because the order is unknown.
            raise typer.Exit(1 if failed else 2 if unknown == len(rows) else 0)
        raw_values = parse_values(values, "--values")
        for given, option in ((values, "--values"), (baseline_values, "--baseline-values")):
            if given and not parse_values(given, option):
                raise BadInput(f"{option}: no number given")
        if (candidate is None) == (not raw_values):
            raise BadInput("give either a CANDIDATE_FOLDER or --values (not both)")
        warnings: list[str] = []
        damaged: list[str] = []  # README damaged-file policy: reported, never a pass
        if candidate is not None:
            record = read_folder(candidate)
            cand = sample_from_folder(record)
            warnings = folder_warnings(record)
            damaged += [f"{record.name}/{f}: damaged: {w}" for f, w in record.damaged]
        else:
            cand = sample_from_values(raw_values, "candidate")
        base: Sample | None = None
        base_vals = parse_values(baseline_values, "--baseline-values")
        if sum(x is not None and x != [] for x in (baseline, baseline_mean, base_vals or None)) != 1:
            raise BadInput("give exactly one of --baseline FOLDER, --baseline-mean X, --baseline-values")
        if baseline is not None:
            base_record = read_folder(baseline)
            damaged += [f"{base_record.name}/{f}: damaged: {w}" for f, w in base_record.damaged]
            base = sample_from_folder(base_record)
            if base.n == 0:
                raise BadInput(f"{baseline}: no per-seed val_bpb values")
        elif base_vals:
            base = sample_from_values(base_vals, "baseline")
        rules = list(RULES) if rule == Rule.both else [rule.value]
        report = compare(cand, base, baseline_mean=baseline_mean, rules=rules, margin_units=margin_units.value,
                         baseline_ratio=baseline_ratio if baseline_ratio is not None else (base.ratio if base else None),
                         ratio=ratio)  # fmt: skip
        if warnings or damaged:
            report.warnings.extend(damaged + warnings)
        emit(render_report(report, format), output)
        stderr_console.print("significance: " + ", ".join(f"{r} {report.decision(r)}" for r in report.rules))
        for line in damaged:
            stderr_console.print(line, markup=False)
        code = _exit_code(report)
        raise typer.Exit(2 if damaged and code == 0 else code)
