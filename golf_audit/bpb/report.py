"""A ``BpbAudit`` as check outcomes (GA-BPB-001/002/003) and as the Markdown proof of ``bpb-proof``."""

from __future__ import annotations

from typing import Any

from ..checks.base import NotApplicable, NotRun, Outcome
from ..findings import Evidence, Status, worst
from .audit import BpbAudit
from .proof import BUG_CLASSES, MAX_LISTED, TableProof

SCRIPT = "train_gpt.py"


def _pct(x: float) -> str:
    return f"{x * 100:+.2f} %"


def proof_summary(p: TableProof, sidecar_used: bool) -> str:
    """One line: what the table got wrong (or that it is exact), and what it does to the bpb."""
    if p.error:
        return f"{p.source}: cannot conclude: {p.error}"
    tok = p.tokenizer.path.name
    decisive = p.decisive(sidecar_used)
    if decisive:
        classes = ", ".join(f"{bug} ({n} token(s))" for bug, n in sorted(_count(decisive).items()))
        text = f"{p.source} on {tok}: {len(decisive)} of {p.vocab_size} token(s) disagree with the canonical bytes: {classes}"
    else:
        text = f"{p.source} on {tok}: every one of {p.vocab_size} token(s) has its canonical bytes"
        if p.disagreements:
            text += (f" except {len(p.disagreements)} operator piece(s) of the transform (not the denominator: "
                     f"the bpb takes the raw-byte sidecar)")
    if p.text is not None and p.text.script_bytes != p.text.canonical_bytes:
        text += (f"; on {p.text.name} it counts {p.text.script_bytes:,} bytes for {p.text.canonical_bytes:,} "
                 f"({_pct(p.text.inflation)}): the bpb is {p.text.bpb_understated * 100:.2f} % too low")
    elif p.text is not None:
        text += f"; on {p.text.name}: {p.text.canonical_bytes:,} bytes either way"
    return text


def _count(items: list) -> dict[str, int]:
    out: dict[str, int] = {}
    for d in items:
        out[d.bug] = out.get(d.bug, 0) + 1
    return out


def _evidence(p: TableProof, sidecar_used: bool) -> list[Evidence]:
    ev = [Evidence(proof_summary(p, sidecar_used))]
    for d in p.decisive(sidecar_used)[:MAX_LISTED // 2]:
        ev.append(Evidence(f"token {d.token} {d.piece!r} ({d.kind}): canonical {d.canonical[0]} byte(s)"
                           f"{' + space' if d.canonical[1] else ''}, the table {d.script[0]}"
                           f"{' + space' if d.script[1] else ''} — {d.bug}", value=d.script[0], threshold=d.canonical[0],
                           unit="bytes"))
    if p.text is not None and p.text.decoded_bytes is not None and p.text.decoded_bytes != p.text.canonical_bytes:
        ev.append(Evidence(f"decoded back, the text has {p.text.decoded_bytes:,} bytes, the canonical rule counts "
                           f"{p.text.canonical_bytes:,}"))
    return ev


def _proofs_outcome(proofs: list[TableProof], audit: BpbAudit, what: str) -> Outcome:
    statuses = [p.status(audit.sidecar_used) for p in proofs]
    evidence = [e for p in proofs for e in _evidence(p, audit.sidecar_used)]
    status = worst(statuses)
    bad = [p for p, s in zip(proofs, statuses) if s is status]
    summary = proof_summary(bad[0], audit.sidecar_used) if bad else f"no {what}"
    if len(proofs) > 1:
        summary += f" (and {len(proofs) - 1} more table check(s), see evidence)"
    if status is Status.PASS and audit.tokenizer is None:
        summary += f"; the folder's own tokenizer was not checked: {audit.tokenizer_note}"
    data = {"tables": len(proofs), "isolation": audit.isolation,
            "inflation": max((p.text.inflation for p in proofs if p.text is not None), default=None)}
    return Outcome(status, summary, evidence, data)


def shipped_outcome(audit: BpbAudit) -> Outcome:
    """GA-BPB-001: every byte-table file the folder ships matches its tokenizer."""
    if not audit.shipped:
        raise NotApplicable("the folder ships no byte-table file (.npz with base_bytes)")
    if audit.tokenizer is None:
        raise NotRun(f"a byte table is shipped but no tokenizer to compare it with: {audit.tokenizer_note}")
    return _proofs_outcome(audit.shipped, audit, "shipped byte table")


def denominator_outcome(audit: BpbAudit) -> Outcome:
    """GA-BPB-002: the bpb divides by the bytes of the scored text (raw bytes, with a transform)."""
    if audit.script is None:
        raise NotRun("the folder ships no train_gpt.py")
    if audit.parse_error:
        raise NotRun(f"{SCRIPT} {audit.parse_error}")
    evidence = [Evidence(f.message, file=SCRIPT, line=f.line) for f in audit.findings]
    if audit.findings:
        kinds = sorted({f.kind for f in audit.findings})
        text = {"fixed-bytes-per-token": "a fixed bytes-per-token constant",
                "transformed-bytes": "the bytes of the transformed text (no raw-byte sidecar)"}
        return Outcome(Status.FAIL, "the bpb divides by " + " and by ".join(text[k] for k in kinds)
                       + f" ({audit.findings[0].function}, line {audit.findings[0].line})", evidence)
    if audit.transformed and not audit.notes:
        return Outcome(Status.FAIL, "the text is transformed before tokenizing (CaseOps) but no bpb takes its bytes "
                       "from a raw-byte sidecar", [Evidence(audit.tokenizer_note)])
    notes = [Evidence(n) for n in audit.notes]
    summary = "no fixed bytes-per-token constant"
    if audit.transformed:
        summary += "; the text is transformed before tokenizing and every bpb takes its bytes from the raw-byte sidecar"
    return Outcome(Status.PASS, summary, notes)


def builder_outcome(audit: BpbAudit) -> Outcome:
    """GA-BPB-003: the byte tables the script's own code builds, run in the sandbox, are exact."""
    if audit.script is None:
        raise NotRun("the folder ships no train_gpt.py")
    if audit.parse_error:
        raise NotRun(f"{SCRIPT} {audit.parse_error}")
    if not audit.builders:
        raise NotApplicable("the script builds no per-token byte table (no SentencePiece byte loop, no table loader)")
    if not audit.built:
        raise NotRun("the builders were not run")
    outcome = _proofs_outcome(audit.built, audit, "byte-table builder")
    outcome.evidence += [Evidence(f"sandbox: the builder {a['kind']}: {a['detail']}", file=SCRIPT if a.get("line") else None,
                                  line=a.get("line")) for a in audit.attempts]
    return outcome


def sidecar_summary(sc) -> str:
    if sc.error:
        return f"the sidecar builder {sc.builder} could not be checked: {sc.error}"
    ok = sc.sidecar_bytes == sc.raw_bytes
    text = (f"{sc.builder} (fed by {sc.transform}), run in the sandbox on {sc.documents} documents: the sidecar sums to "
            f"{sc.sidecar_bytes:,} bytes for {sc.raw_bytes:,} raw bytes")
    if ok:
        text += " — exact"
    else:
        text += (f" ({_pct(sc.sidecar_bytes / sc.raw_bytes - 1)}, {sc.documents_off} document(s) off): a bpb over a "
                 f"sidecar built with it is {(1 - sc.raw_bytes / sc.sidecar_bytes) * 100:.2f} % too low")
    if sc.table_inflation is not None:
        text += f"; the per-token table would count {sc.table_bytes:,} ({_pct(sc.table_inflation)}, transformed bytes)"
    return text


def sidecar_outcome(audit: BpbAudit) -> Outcome:
    """GA-BPB-004: with a transformed tokenizer, the folder's raw-byte sidecar builder is exact."""
    if not audit.transformed:
        raise NotApplicable("the text is not transformed before tokenizing: no sidecar is needed")
    if audit.script is None or audit.parse_error:
        raise NotRun(audit.parse_error or "the folder ships no train_gpt.py")
    if audit.tokenizer is None:
        raise NotRun(f"no tokenizer: {audit.tokenizer_note}")
    sc = audit.sidecar
    if sc is None:
        if audit.dynamic:
            raise NotRun("the folder ships no sidecar builder (a function of the original and the transformed text) "
                         "to check; the sidecar data itself is not in the folder")
        raise NotRun("runs the folder's sidecar builder in the sandbox: only with --dynamic")
    evidence = [Evidence(sidecar_summary(sc), value=sc.sidecar_bytes, threshold=sc.raw_bytes, unit="bytes")]
    return Outcome(sc.status, sidecar_summary(sc), evidence, {"raw_bytes": sc.raw_bytes, "sidecar_bytes": sc.sidecar_bytes})


# --- the Markdown proof ---------------------------------------------------------------------------


def verdict(audit: BpbAudit) -> Status:
    """The proof's verdict: every table, the sidecar and the denominator; error when nothing was proven."""
    statuses = [p.status(audit.sidecar_used) for p in audit.shipped + audit.built]
    statuses += [audit.sidecar.status] if audit.sidecar is not None else []
    denominator = _try(denominator_outcome, audit)
    statuses.append(denominator.status if denominator is not None else Status.ERROR)
    if not audit.shipped and not audit.built:
        statuses.append(Status.ERROR)  # no byte table at all: nothing was proven
    return worst(statuses)


def markdown(audit: BpbAudit, command: str | None = None) -> str:
    """The proof as a Markdown section a tokenizer PR can paste."""
    tok = audit.tokenizer
    lines = ["## BPB byte-accounting proof", ""]
    if command:
        lines += ["Generated with:", "", "```", command, "```", ""]
    proofs = audit.shipped + audit.built
    denominator = _try(denominator_outcome, audit)
    overall = verdict(audit)
    headline = {Status.PASS: "✔ **The bpb's byte count is exact**", Status.FAIL: "✖ **The bpb's byte count is wrong**"}
    lines += [headline.get(overall, "‼ **Cannot conclude**") + f" ({overall.value})", ""]
    if tok is not None:
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(_kinds(tok).items(), key=lambda kv: -kv[1]))
        lines.append(f"- tokenizer: `{tok.path.name}` ({tok.family}, {tok.size} pieces: {kinds}); {audit.tokenizer_note}")
        lines += [f"- note: {n}" for n in tok.notes]
    else:
        lines.append(f"- tokenizer: not available — {audit.tokenizer_note}")
    if audit.script is not None:
        names = ", ".join(f"`{b.name}` (line {b.line}, {b.kind})" for b in audit.builders) or "none"
        lines.append(f"- script: `{audit.script.name}`; byte-table builders found: {names}")
    if audit.isolation:
        from ..submission.sandbox import isolation_text

        lines.append(f"- the builders ran in the sandbox; {isolation_text(audit.isolation)}")
    lines.append("")
    for p in proofs:
        lines += _table_section(p, audit.sidecar_used)
    if audit.transformed:
        lines += ["### The raw-byte sidecar", ""]
        side = _try(sidecar_outcome, audit)
        lines += [f"{side.status.symbol} {side.summary}" if side else "– not checked: no sidecar builder in the folder", ""]
    lines += ["### The denominator", ""]
    if denominator is not None:
        lines.append(f"{denominator.status.symbol} {denominator.summary}")
        lines += [f"- {e.message}" + (f" (line {e.line})" if e.line else "") for e in denominator.evidence]
    else:
        lines.append("– not checked: " + (audit.parse_error or "no script"))
    lines += ["", "Canonical bytes per token (the challenge's metric): byte pieces 1; control, unknown, unused and "
              "padding ids 0 (and boundaries); any other piece the UTF-8 length of its text without a leading `▁`, "
              "the `▁` being one space byte counted unless the previous token is a boundary; operator pieces of a "
              "text transform 0 (they stand for no raw byte).", ""]
    if audit.attempts:
        lines += ["### What the builder's code tried in the sandbox", ""]
        lines += [f"- {a['kind']}: {a['detail']}" for a in audit.attempts]
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def _try(fn: Any, audit: BpbAudit) -> Outcome | None:
    try:
        return fn(audit)
    except (NotRun, NotApplicable):
        return None


def _kinds(tok: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for k in tok.kinds:
        out[k] = out.get(k, 0) + 1
    return out


def _table_section(p: TableProof, sidecar_used: bool) -> list[str]:
    status = p.status(sidecar_used)
    out = [f"### {status.symbol} {p.source}" + (f" — on `{p.tokenizer.path.name}`" if p.tokenizer else ""), ""]
    if p.error:
        return out + [f"Cannot conclude: {p.error}", ""]
    out.append(proof_summary(p, sidecar_used) + ".")
    out.append("")
    if p.disagreements:
        out += ["| token | piece | kind | canonical | table | bug class |", "|---|---|---|---|---|---|"]
        for d in p.disagreements[:MAX_LISTED]:
            canon = f"{d.canonical[0]}{' +▁' if d.canonical[1] else ''}{' (boundary)' if d.canonical[2] else ''}"
            table = f"{d.script[0]}{' +▁' if d.script[1] else ''}{' (boundary)' if d.script[2] else ''}"
            out.append(f"| {d.token} | `{d.piece!r}` | {d.kind} | {canon} | {table} | {d.bug} |")
        if len(p.disagreements) > MAX_LISTED:
            out.append(f"| … | {len(p.disagreements) - MAX_LISTED} more | | | | |")
        out.append("")
        for bug in sorted({d.bug for d in p.disagreements}):
            out.append(f"- **{bug}**: {BUG_CLASSES[bug]}")
        out.append("")
    if not p.space_rule:
        out += ["The table has bytes per piece only (no leading-space flags); the text count assumes its caller "
                "adds the standard space rule.", ""]
    t = p.text
    if t is None:
        out += [f"No real-text accounting: {p.text_note}", ""]
        return out
    decoded = "n/a" if t.decoded_bytes is None else f"{t.decoded_bytes:,}"
    ok = "✔" if t.decoded_bytes == t.canonical_bytes else "✖"
    out += [f"On {t.name} ({t.documents} documents, {t.tokens:,} tokens):", "",
            "| bytes | count |", "|---|---:|",
            f"| UTF-8 bytes of the raw text | {t.raw_bytes:,} |",
            f"| … after the tokenizer's normalization (what the tokens stand for) | {t.normalized_bytes:,} |",
            f"| decoded back from the tokens by the tokenizer's own detokenizer | {decoded} |",
            f"| counted by the canonical rule | {t.canonical_bytes:,} |",
            f"| counted by this table | {t.script_bytes:,} |", "",
            f"- {ok} decoded bytes = canonical count" + ("" if t.decoded_bytes == t.canonical_bytes else
                                                          " — MISMATCH: the rule does not hold on this tokenizer"),
            f"- {'✔' if t.script_bytes == t.canonical_bytes else '✖'} table count = canonical count"
            + ("" if t.script_bytes == t.canonical_bytes else
               f": {_pct(t.inflation)} bytes, so the reported bpb is {t.bpb_understated * 100:.2f} % below the true bpb")]
    if t.unknown_tokens:
        out.append(f"- {t.unknown_tokens:,} `<unk>` token(s): their characters count 0 bytes by the rule "
                   f"({t.normalized_bytes - t.canonical_bytes:,} bytes of the normalized text are not counted)")
    out.append("")
    return out
