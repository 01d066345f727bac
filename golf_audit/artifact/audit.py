"""The artifact audit: is code + compressed model ≤ 16,000,000 bytes, counted honestly?

Stages, as in the rest of golf-audit: collect (records reader, code dependencies, artifact
files), then findings (per-seed byte rows, mismatches), then one CheckResult per check id:

* GA-SIZE-001 cap: any seed's logged total, the JSON's claimed total, or the total recomputed
  from the real files is > 16,000,000 (decimal) → fail;
* GA-SIZE-002 hidden code: files the script loads at run time that the logged code size does
  not count → warn (and the recomputed total of GA-SIZE-001 counts them);
* GA-SIZE-003 logs vs files: logged sizes that disagree with the files, with each other or with
  submission.json → warn, with file:line;
* GA-SIZE-004 container: a shipped .ptz/.pt that does not load (weights_only) as the declared
  container → fail; per-tensor byte breakdown otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import BadInput
from ..findings import CheckResult, Evidence, Severity, Status
from ..records import RecordFolder, TrainLog, read_folder
from ..records.scripts import attribute, candidate_scripts, main_script
from ..source import CodeFile, DependencyScan, scan_dependencies
from .container import ArtifactFile, find_artifacts, inspect_artifact

CAP_BYTES = 16_000_000  # decimal bytes, not MiB
SCRIPT_NAME = "train_gpt.py"
RULE_CAP = "Artifact = code bytes + compressed model bytes ≤ 16,000,000 (decimal)"


@dataclass
class SeedBytes:
    """What one seed's log says about sizes, and the total recomputed from files."""

    seed: int | None
    log: str  # file name relative to the folder
    code: int | None = None
    code_line: int | None = None
    code_compressed: bool = False  # "Code size (compressed)"
    model: int | None = None
    model_line: int | None = None
    model_tag: str | None = None
    total: int | None = None
    total_line: int | None = None
    recomputed: int | None = None  # counted code of the committed files + (artifact file or this log's model bytes)
    code_uncompressed: int | None = None  # "Code size (uncompressed)": the source the run counted from
    code_uncompressed_line: int | None = None
    script: str | None = None  # the script this log came from
    script_how: str = ""  # how that was decided (embedded source, logged size, named, assumed)
    script_evidence: str = ""


@dataclass
class ArtifactReport:
    """Everything the artifact audit measured, and its checks."""

    folder: Path
    record: RecordFolder
    script: Path | None = None
    code: DependencyScan | None = None
    code_error: str | None = None
    artifacts: list[ArtifactFile] = field(default_factory=list)
    seeds: list[SeedBytes] = field(default_factory=list)
    claimed_total: int | None = None  # submission.json bytes_total
    checks: list[CheckResult] = field(default_factory=list)
    counting: str = "raw"  # how the script counts its code: raw, compressed (self-extractor figure), wrapper
    counted_entry: int | None = None  # bytes counted for the entry script under that counting
    counted_how: str = ""  # where counted_entry comes from (file size / rebuilt / taken from a log)
    rebuilt: Any = None  # codesize.Rebuilt when the script counts a compressed figure

    @property
    def helper_bytes(self) -> int:
        """Raw bytes of the files the entry loads at run time (they count as code, uncompressed)."""
        return sum(f.size for f in self.code.files[1:]) if self.code else 0

    @property
    def code_bytes(self) -> int | None:
        """The counted code of the committed files: the entry as the records count it + helpers."""
        if self.code is None or self.counted_entry is None:
            return None
        return self.counted_entry + self.helper_bytes

    @property
    def recomputed_total(self) -> int | None:
        values = [s.recomputed for s in self.seeds if s.recomputed is not None]
        if values:
            return max(values)
        if self.code_bytes is not None and self.artifacts:
            return self.code_bytes + self.artifacts[0].size
        return None

    @property
    def status(self) -> Status:
        from ..findings import worst

        return worst([c.status for c in self.checks])


def _rel(folder: Path, path: Path) -> str:
    try:
        return str(path.resolve().relative_to(folder.resolve()))
    except ValueError:
        return str(path)


def _runs_logs(record: RecordFolder) -> list[tuple[int | None, TrainLog]]:
    """The logs the audit speaks about: the training runs behind the claim, else every log."""
    if record.size_time:
        return [(r.seed, r.log) for r in record.size_time]
    return [(log.seed, log) for log in record.logs]


def _seed_rows(report: ArtifactReport) -> None:
    scripts = candidate_scripts(report.folder)
    for seed, log in _runs_logs(report.record):
        row = SeedBytes(seed, _rel(report.folder, log.path))
        if (c := log.code_bytes) is not None:
            row.code, row.code_line, row.code_compressed = c.bytes, c.line, c.compressed
        if (u := log.code_uncompressed) is not None:
            row.code_uncompressed, row.code_uncompressed_line = u.bytes, u.line
        if (m := log.model_bytes) is not None:
            row.model, row.model_line, row.model_tag = m.bytes, m.line, m.tag
        if (t := log.total_bytes) is not None:
            row.total, row.total_line = t.bytes, t.line
        who = attribute(log, _log_text(log.path), scripts)
        row.script = who.script.name if who.script else None
        row.script_how, row.script_evidence = who.how, who.evidence
        report.seeds.append(row)


def _log_text(path: Path) -> str:
    try:
        return path.read_text("utf-8", errors="replace")
    except OSError:
        return ""


def _producing_script(report: ArtifactReport) -> Path | None:
    """The script the logs came from (most logs, certain attributions first), else the main one."""
    votes: dict[str, int] = {}
    for s in report.seeds:
        if s.script:
            votes[s.script] = votes.get(s.script, 0) + (2 if s.script_how in ("embedded source", "logged size") else 1)
    if votes:
        return report.folder / max(votes, key=lambda k: (votes[k], k == SCRIPT_NAME))
    return main_script(report.folder)


def _count_code(report: ArtifactReport) -> None:
    """Decide how the script counts its code, and the counted bytes of the committed entry."""
    from ..records.codesize import find_recipe, rebuild_size
    from ..source import load_source

    assert report.script is not None and report.code is not None
    raw = report.code.files[0].size
    try:
        loaded = load_source(report.script)
    except BadInput:
        loaded = None
    compressed_logs = [s for s in report.seeds if s.code_compressed]
    recipe = find_recipe(loaded.effective) if loaded is not None else None
    if loaded is not None and loaded.is_wrapper:
        report.counting, report.counted_entry = "wrapper", raw
        report.counted_how = f"{report.script.name} is itself a self-extracting wrapper: its {raw:,} bytes count"
        return
    if recipe is None and not compressed_logs:
        report.counting, report.counted_entry = "raw", raw
        report.counted_how = f"{report.script.name}: {raw:,} bytes (the script counts its raw source)"
        return
    report.counting = "compressed"
    if recipe is not None:
        report.rebuilt = rebuild_size(recipe, report.script.read_bytes())
        if report.rebuilt.bytes is not None:
            # A log of the same source was measured in the submitter's environment: the larger counts.
            same_logged = [s.code for s in compressed_logs if s.code_uncompressed == raw and s.code is not None]
            report.counted_entry = max([report.rebuilt.bytes, *same_logged])
            report.counted_how = (f"{report.script.name}: compressed self-extractor {report.rebuilt.bytes:,} bytes, "
                                  f"{report.rebuilt.how} ({report.rebuilt.environment})")
            if report.counted_entry != report.rebuilt.bytes:
                report.counted_how += f"; the log of the same source says {report.counted_entry:,}, which is counted"
            return
    same = [s for s in compressed_logs if s.code_uncompressed == raw and s.code is not None]
    if same:
        report.counted_entry = same[0].code
        report.counted_how = (f"compressed figure taken from the log: {same[0].log}:{same[0].code_line} "
                              f"(that run's uncompressed source = the committed {raw:,} bytes)")
    elif compressed_logs:
        worst = max(compressed_logs, key=lambda s: s.code or 0)
        report.counted_entry = worst.code
        report.counted_how = (f"compressed figure taken from the log: {worst.log}:{worst.code_line}; that run "
                              f"counted a {worst.code_uncompressed or 0:,}-byte source, not the committed {raw:,}")
    else:
        report.counting, report.counted_entry = "raw", raw
        report.counted_how = (f"{report.script.name}: {raw:,} raw bytes (its compressed figure could not be "
                              f"rebuilt here: {report.rebuilt.how if report.rebuilt else 'no recipe'}; no log prints one)")
    if report.rebuilt is not None and report.rebuilt.bytes is None:
        report.counted_how += f"; not rebuilt: {report.rebuilt.how.removeprefix('not rebuilt: ')}"


def _recompute(report: ArtifactReport) -> None:
    model_file = report.artifacts[0].size if report.artifacts else None
    for row in report.seeds:
        model = model_file if model_file is not None else row.model
        if report.code_bytes is not None and model is not None:
            row.recomputed = report.code_bytes + model


def _refuse_tree(folder: Path) -> None:
    """A records *tree* is not one artifact: say so (exit 2) instead of auditing nothing."""
    from ..records.folder import find_logs, find_submission_json, list_record_folders

    if not folder.is_dir() or find_submission_json(folder)[0] is not None or any(p.parent == folder for p in find_logs(folder)):
        return
    inside = [p for p in list_record_folders(folder) if p != folder]
    if inside:
        raise BadInput(f"{folder} is a records tree ({len(inside)} folders), not one folder: run "
                       f"`golf-audit report {folder} --recursive`, or `artifact` on one of its folders")


def collect(folder: str | Path) -> ArtifactReport:
    """Read everything the artifact checks need, without judging it."""
    folder = Path(folder)
    _refuse_tree(folder)
    record = read_folder(folder)
    report = ArtifactReport(folder=folder, record=record)
    report.artifacts = [inspect_artifact(p) for p in find_artifacts(folder)]
    report.claimed_total = record.submission.bytes_total if record.submission else None
    _seed_rows(report)
    script = _producing_script(report)
    if script is not None and script.is_file():
        report.script = script
        try:
            report.code = scan_dependencies(script)
        except BadInput as exc:
            report.code_error = str(exc)
        if report.code is not None:
            _count_code(report)
    _recompute(report)
    return report


# ------------------------------------------------------------------------------- checks


def _check_cap(r: ArtifactReport) -> CheckResult:
    ev: list[Evidence] = []
    over = False
    for s in r.seeds:
        if s.total is not None:
            bad = s.total > CAP_BYTES
            over |= bad
            ev.append(Evidence(
                f"seed {s.seed}: logged total {'exceeds' if bad else 'within'} the cap", file=s.log, line=s.total_line,
                value=s.total, threshold=CAP_BYTES, unit="bytes",
            ))  # fmt: skip
        if s.recomputed is not None and s.recomputed > CAP_BYTES:
            over = True
            helpers = f" incl. {r.helper_bytes:,} bytes of files it loads" if r.helper_bytes else ""
            ev.append(Evidence(
                f"seed {s.seed}: committed code counted as the records count it ({r.code_bytes:,} bytes, {r.counting}{helpers}) "
                f"+ model ({s.recomputed - (r.code_bytes or 0):,} bytes) exceed the cap",
                file=s.log, line=s.model_line, value=s.recomputed, threshold=CAP_BYTES, unit="bytes",
            ))  # fmt: skip
    recomputed = r.recomputed_total
    if recomputed is not None and not r.seeds:
        over |= recomputed > CAP_BYTES
        ev.append(Evidence("code files + artifact file", value=recomputed, threshold=CAP_BYTES, unit="bytes"))
    if r.claimed_total is not None:
        bad = r.claimed_total > CAP_BYTES
        over |= bad
        ev.append(Evidence(f"submission.json bytes_total {'exceeds' if bad else 'within'} the cap", file="submission.json",
                           value=r.claimed_total, threshold=CAP_BYTES, unit="bytes"))  # fmt: skip
    if r.counted_how:
        ev.append(Evidence(f"code counted: {r.counted_how}", file=r.script.name if r.script else None,
                           value=r.code_bytes, unit="bytes"))
    known = [s.total for s in r.seeds if s.total is not None] + ([recomputed] if recomputed is not None else [])
    data = {"cap_bytes": CAP_BYTES, "max_logged_total": max((s.total for s in r.seeds if s.total is not None), default=None),
            "recomputed_total": recomputed, "claimed_total": r.claimed_total, "counting": r.counting,
            "counted_code_bytes": r.code_bytes, "script": r.script.name if r.script else None}  # fmt: skip
    if over:
        worst_total = max(v.value for v in ev if isinstance(v.value, int) and v.value > CAP_BYTES)
        return CheckResult("GA-SIZE-001", "Artifact ≤ 16,000,000 bytes", Status.FAIL,
                           f"a total of {worst_total:,} bytes exceeds the 16,000,000-byte cap by {worst_total - CAP_BYTES:,}",
                           Severity.CRITICAL, RULE_CAP, evidence=ev, data=data)  # fmt: skip
    if not known:
        return CheckResult("GA-SIZE-001", "Artifact ≤ 16,000,000 bytes", Status.NOT_RUN,
                           "no logged compressed total and no code + artifact files to recompute one",
                           Severity.CRITICAL, RULE_CAP, evidence=ev, data=data)  # fmt: skip
    return CheckResult("GA-SIZE-001", "Artifact ≤ 16,000,000 bytes", Status.PASS,
                       f"every total is ≤ 16,000,000 bytes (largest {max(known):,})", Severity.CRITICAL, RULE_CAP,
                       evidence=ev, data=data)  # fmt: skip


def _check_hidden_code(r: ArtifactReport) -> CheckResult:
    title, rule = "All code counted", "Every file the script loads at run time counts as code bytes"
    if r.script is None:
        return CheckResult("GA-SIZE-002", title, Status.NOT_RUN, "the folder ships no training script (train*.py)", Severity.ERROR, rule)
    if r.code is None:
        return CheckResult("GA-SIZE-002", title, Status.ERROR, f"{SCRIPT_NAME} could not be read: {r.code_error}", Severity.ERROR, rule,
                           evidence=[Evidence(r.code_error or "", file=SCRIPT_NAME)])  # fmt: skip
    files = r.code.files
    extra = [f for f in files if f.how != "entry"]
    ev = [_file_evidence(r, f) for f in files]
    ev += [Evidence(f"referenced code file is missing ({f.how})", file=_rel(r.folder, f.via) if f.via else None, line=f.line,
                    snippet=_rel(r.folder, f.path)) for f in r.code.missing]  # fmt: skip
    ev += [Evidence(note) for note in r.code.notes]
    logged = [s.code for s in r.seeds if s.code is not None]
    needed = r.code_bytes if r.code_bytes is not None else r.code.total_bytes
    data = {"code_files": len(files), "code_bytes": needed, "entry_bytes": files[0].size, "counting": r.counting,
            "wrapper": any(f.in_wrapper for f in files), "logged_code_bytes": sorted(set(logged)),
            "script": r.script.name}  # fmt: skip
    # The logs count the helpers only if their code figure reaches entry (as counted) + helpers.
    uncounted = extra and (not logged or max(logged) < needed)
    if uncounted:
        hidden = sum(f.size for f in extra)
        return CheckResult("GA-SIZE-002", title, Status.WARN,
                           f"{len(extra)} file(s) loaded at run time ({hidden:,} bytes) are not in the logged code size",
                           Severity.ERROR, rule, remediation="Count every loaded file in the code size (or inline them).",
                           evidence=ev, data=data)  # fmt: skip
    if r.code.missing:
        return CheckResult("GA-SIZE-002", title, Status.WARN, f"{len(r.code.missing)} referenced code file(s) are not in the folder",
                           Severity.ERROR, rule, evidence=ev, data=data)  # fmt: skip
    summary = (f"{r.script.name} loads no other file of the folder" if not extra
               else f"{len(files)} code file(s), {needed:,} bytes, all counted by the logs")
    return CheckResult("GA-SIZE-002", title, Status.PASS, summary, Severity.ERROR, rule, evidence=ev, data=data)


def _file_evidence(r: ArtifactReport, f: CodeFile) -> Evidence:
    via = f" via {_rel(r.folder, f.via)}:{f.line}" if f.via else ""
    return Evidence(f"{f.how}{via}{' (inside the self-extracting wrapper)' if f.in_wrapper else ''}",
                    file=_rel(r.folder, f.path), value=f.size, unit="bytes")  # fmt: skip


def _ENV_SLACK(size: int) -> int:
    """How far a rebuilt compressed figure may differ from the log for the same source (measured:
    python-minifier 3.2 on Python 3.11 vs 3.12 differ by 5-17 bytes on the records' scripts)."""
    return max(64, size // 200)


def _check_log_mismatch(r: ArtifactReport) -> CheckResult:
    """Logged code/model/total sizes against the committed files (JSON claims are GA-CLAIM-001's)."""
    title, rule = "Logged sizes match the files", "Logged code/model/total sizes must describe the submitted files"
    ev: list[Evidence] = []
    notes: list[Evidence] = []
    compared = 0
    raw = r.code.files[0].size if r.code else None
    script = r.script.name if r.script else SCRIPT_NAME
    for s in r.seeds:
        if raw is None or s.code is None:
            pass
        elif s.code_compressed:
            compared += 1
            if s.code_uncompressed is not None and s.code_uncompressed != raw:
                ev.append(Evidence(f"seed {s.seed}: the run counted a {s.code_uncompressed:,}-byte source but {script} is "
                                   f"{raw:,} bytes: the log came from another version of the script",
                                   file=s.log, line=s.code_uncompressed_line, value=s.code_uncompressed, threshold=raw,
                                   unit="bytes"))  # fmt: skip
            elif r.rebuilt is not None and r.rebuilt.bytes is not None and s.code != r.rebuilt.bytes and (
                    abs(s.code - r.rebuilt.bytes) <= _ENV_SLACK(r.rebuilt.bytes)):
                notes.append(Evidence(f"seed {s.seed}: logged compressed code {s.code:,} bytes, rebuilt {r.rebuilt.bytes:,} from "
                                      f"the same source here ({r.rebuilt.environment}): within what minifier versions and "
                                      "Pythons change; the larger figure is counted", file=s.log, line=s.code_line))
            elif r.rebuilt is not None and r.rebuilt.bytes is not None and s.code != r.rebuilt.bytes:
                ev.append(Evidence(f"seed {s.seed}: logged compressed code {s.code:,} bytes, rebuilt {r.rebuilt.bytes:,} from "
                                   f"{script} here ({r.rebuilt.environment}); the minifier's output depends on its "
                                   "version and the Python that runs it", file=s.log, line=s.code_line, value=s.code,
                                   threshold=r.rebuilt.bytes, unit="bytes"))  # fmt: skip
            elif r.rebuilt is not None and r.rebuilt.bytes is not None:
                notes.append(Evidence(f"seed {s.seed}: logged compressed code {s.code:,} = rebuilt from {script} "
                                      f"({r.rebuilt.environment})", file=s.log, line=s.code_line))
        else:
            compared += 1
            if s.code not in (raw, r.code_bytes, r.code.total_bytes if r.code else None):
                ev.append(Evidence(f"seed {s.seed}: logged code size {s.code:,} but {script} is {raw:,} bytes"
                                   + (f" ({r.code_bytes:,} with the files it loads)" if r.code_bytes != raw else "")
                                   + ": the log came from another version of the script",
                                   file=s.log, line=s.code_line, value=s.code, threshold=raw, unit="bytes"))  # fmt: skip
        if s.total is not None and s.code is not None and s.model is not None and s.model_tag != "budget - code":
            compared += 1
            if s.total != s.code + s.model:
                ev.append(Evidence(f"seed {s.seed}: logged total {s.total:,} ≠ logged code {s.code:,} + model {s.model:,}",
                                   file=s.log, line=s.total_line, value=s.total, threshold=s.code + s.model, unit="bytes"))  # fmt: skip
    if r.artifacts and any(s.model is not None for s in r.seeds):
        compared += 1
        size = r.artifacts[0].size
        if all(s.model != size for s in r.seeds if s.model is not None):
            s = next(s for s in r.seeds if s.model is not None)
            ev.append(Evidence(f"{_rel(r.folder, r.artifacts[0].path)} is {size:,} bytes but no log's compressed model size matches it",
                               file=s.log, line=s.model_line, value=size, threshold=s.model, unit="bytes"))  # fmt: skip
    attributions = sorted({f"{s.log}: {s.script} ({s.script_how}: {s.script_evidence})" for s in r.seeds if s.script})
    data = {"mismatches": len(ev), "comparisons": compared, "script": script, "attributions": attributions}
    if len(candidate_scripts(r.folder)) > 1 or script != SCRIPT_NAME:
        # Several script variants (or another name): say which one each log came from, and how.
        notes += [Evidence(f"{s.log} came from {s.script} ({s.script_how}: {s.script_evidence})", file=s.log)
                  for s in r.seeds if s.script]
    if ev:
        return CheckResult("GA-SIZE-003", title, Status.WARN, f"{len(ev)} logged size(s) disagree with the committed files",
                           Severity.WARNING, rule, remediation="Commit the exact script that produced the logs, or re-run with the committed one.",
                           evidence=ev + notes, data=data)  # fmt: skip
    if compared == 0:
        return CheckResult("GA-SIZE-003", title, Status.NOT_RUN, "no logged sizes to compare", Severity.WARNING, rule, data=data)
    return CheckResult("GA-SIZE-003", title, Status.PASS, f"{compared} comparison(s), all consistent with {script}",
                       Severity.WARNING, rule, evidence=notes, data=data)  # fmt: skip


def _check_container(r: ArtifactReport) -> CheckResult:
    title, rule = "Artifact loads as the declared container", "DOMAIN §5: lzma(torch.save({'w','m'})), weights_only"
    if not r.artifacts:
        return CheckResult("GA-SIZE-004", title, Status.NOT_APPLICABLE,
                           "no .ptz/.pt artifact in the folder; model bytes come from the logs", Severity.ERROR, rule)  # fmt: skip
    ev, statuses, breakdown = [], [], {}
    for a in r.artifacts:
        rel = _rel(r.folder, a.path)
        if a.valid:
            statuses.append(Status.PASS)
            top = ", ".join(f"{t.name} {t.share:.0%}" for t in a.tensors[:3])
            ev.append(Evidence(f"{a.format}: {len(a.tensors)} tensors; largest: {top}", file=rel, value=a.size, unit="bytes"))
            breakdown[rel] = [{"name": t.name, "kind": t.kind, "shape": t.shape, "dtype": t.dtype,
                               "stored_bytes": t.stored_bytes, "share": round(t.share, 6),
                               "est_compressed_bytes": t.est_compressed_bytes} for t in a.tensors]  # fmt: skip
        elif a.valid is False and a.damaged:
            # Damaged bytes (truncated, corrupt stream): nothing about the artifact can be concluded.
            statuses.append(Status.ERROR)
            ev.append(Evidence(f"damaged file: {a.error}", file=rel, value=a.size, unit="bytes"))
        elif a.valid is False:
            statuses.append(Status.FAIL)
            ev.append(Evidence(f"does not load as the container: {a.error}", file=rel, value=a.size, unit="bytes"))
        elif a.format == "unknown":
            # No known magic: corrupt bytes, or brotli (which has none). Either way the bytes
            # cannot be verified, and an unverifiable artifact must not read as not-run.
            statuses.append(Status.ERROR)
            ev.append(Evidence("unrecognised data: corrupt, or a compressor without magic bytes (e.g. brotli) "
                               "that this build cannot open", file=rel, value=a.size, unit="bytes"))
        else:
            statuses.append(Status.NOT_RUN)
            ev.append(Evidence(a.error or "format not supported", file=rel, value=a.size, unit="bytes"))
    from ..findings import worst

    status = worst(statuses)
    summary = {
        Status.PASS: f"{len(r.artifacts)} artifact(s) load with weights_only=True and match the container",
        Status.FAIL: "an artifact does not load as the declared container",
        Status.NOT_RUN: "the artifact's compressor is not supported by this build",
        Status.ERROR: "cannot conclude: an artifact is damaged or unrecognised (see evidence)",
    }.get(status, "see evidence")
    return CheckResult("GA-SIZE-004", title, status, summary, Severity.ERROR, rule, evidence=ev, data={"tensors": breakdown})


def audit_artifact(folder: str | Path) -> ArtifactReport:
    """Collect and judge a records folder's artifact: ``report.checks`` holds GA-SIZE-001…004."""
    from ..records.checks import files_check

    report = collect(folder)
    # GA-FILES-001 rides along so that `artifact` follows the same damaged-file policy as `report`.
    report.checks = registered([_check_cap(report), _check_hidden_code(report), _check_log_mismatch(report),
                                _check_container(report), files_check(report.record)])
    return report


def registered(results: list[CheckResult]) -> list[CheckResult]:
    """Stamp each result with its registered title, severity and rule, so that `artifact`,
    `report` and `checks` name every check the same way."""
    from ..checks.registry import CHECKS

    for r in results:
        check = CHECKS.get(r.check_id)
        if check is not None:
            r.title, r.severity, r.rule = check.title, check.severity, check.rule
            r.remediation = r.remediation or check.remediation
    return results
