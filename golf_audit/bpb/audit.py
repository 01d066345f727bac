"""Byte accounting of one submission: tokenizer, tables, denominator — the data behind GA-BPB-*.

``audit_bpb`` gathers, for a records folder or a script:

* the tokenizer: ``--tokenizer``, else a tokenizer file the folder ships, else the script's
  default ``TOKENIZER_PATH`` looked up by file name in ``$GOLF_AUDIT_TOKENIZERS`` (directories,
  ``os.pathsep``-separated); golf-audit's probe tokenizer is always added for the builders;
* shipped byte tables (``.npz`` with ``base_bytes``), compared statically (``np.load`` without
  pickles) — GA-BPB-001;
* the bpb denominator, read by ast — GA-BPB-002;
* with ``dynamic``: the script's own byte-table builders, extracted by ast and run in the OS
  sandbox on each tokenizer — GA-BPB-003.
"""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BadInput
from .. import astmemo
from ..source import parse_shared
from . import script as script_ast
from . import tokenizers
from .probe import PADDING, probe_tokenizer_path
from .proof import SidecarProof, TableProof, default_text, prove, table_from_arrays, with_space_rule

ENV_TOKENIZERS = "GOLF_AUDIT_TOKENIZERS"
BUILDER_TIMEOUT_S = 120.0


@dataclass
class BpbAudit:
    folder: Path
    script: Path | None
    source: str = ""
    parse_error: str = ""
    tokenizer: tokenizers.Tokenizer | None = None
    tokenizer_note: str = ""  # why the folder's tokenizer is missing, or where it came from
    transformed: bool = False
    builders: list[script_ast.Builder] = field(default_factory=list)
    shipped: list[TableProof] = field(default_factory=list)
    built: list[TableProof] = field(default_factory=list)
    findings: list[script_ast.Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # denominator notes (sidecar use)
    dynamic: bool = False
    isolation: str = ""
    attempts: list[dict[str, Any]] = field(default_factory=list)
    text_name: str = ""
    sidecar: SidecarProof | None = None  # transformed tokenizers: the folder's sidecar builder on the text

    @property
    def sidecar_used(self) -> bool:
        return self.transformed and bool(self.notes) and not any(f.kind == "transformed-bytes" for f in self.findings)


def _script_of(target: Path) -> tuple[Path, Path | None]:
    if target.is_dir():
        path = target / "train_gpt.py"
        return target, path if path.is_file() else None
    if not target.is_file():
        raise BadInput(f"{target}: no such script or folder")
    return target.parent, target


def _load(script: Path) -> tuple[str, str]:
    from ..source import load_source

    loaded = load_source(script)
    if loaded.min_python is not None:
        return loaded.effective, f"needs Python ≥ {loaded.min_python[0]}.{loaded.min_python[1]} to parse"
    return loaded.effective, ""


def find_tokenizer(folder: Path, tree: ast.Module | None, explicit: Path | None) -> tuple[tokenizers.Tokenizer | None, str]:
    """The tokenizer the submission uses, and a note saying where it was found (or why not)."""
    if explicit is not None:
        return tokenizers.load(explicit), f"given: {explicit}"
    shipped = sorted(p for p in folder.rglob("*") if p.is_file() and tokenizers.is_tokenizer_file(p))
    if shipped:
        return tokenizers.load(shipped[0]), f"shipped in the folder: {shipped[0].relative_to(folder)}"
    default = script_ast.env_default(tree, "TOKENIZER_PATH") if tree is not None else None
    if not default:
        return None, "the folder ships no tokenizer and the script names no default TOKENIZER_PATH"
    name = Path(default).name
    for directory in filter(None, os.environ.get(ENV_TOKENIZERS, "").split(os.pathsep)):
        candidate = Path(directory) / name
        if candidate.is_file():
            return tokenizers.load(candidate), f"{name} (the script's default) found in ${ENV_TOKENIZERS}"
    return None, (f"the script's tokenizer {name} is not in the folder; set ${ENV_TOKENIZERS} to a directory "
                  f"holding it, or pass --tokenizer")


def shipped_tables(folder: Path, tok: tokenizers.Tokenizer | None, docs: list[str], text_name: str) -> list[TableProof]:
    """Every byte-table file the folder ships, compared with the tokenizer."""
    out = []
    for path in sorted(folder.rglob("*.npz")):
        try:
            with np.load(path, allow_pickle=False) as data:
                if "base_bytes" not in data.files:
                    continue
                base = np.asarray(data["base_bytes"], dtype=np.int64)
                space = np.asarray(data["has_leading_space"], dtype=bool) if "has_leading_space" in data.files else None
                key = "is_boundary_token" if "is_boundary_token" in data.files else "is_boundary"
                boundary = np.asarray(data[key], dtype=bool) if key in data.files else None
        except (OSError, ValueError) as exc:
            proof = TableProof(f"{path.name} (shipped)", tok, 0, error=f"unreadable byte table: {exc}")
            out.append(proof)
            continue
        source = f"{path.relative_to(folder)} (a byte table the folder ships)"
        if tok is None:
            out.append(TableProof(source, tok, base.size, error="no tokenizer to compare it with"))
            continue
        out.append(prove(tok, table_from_arrays(base, space, boundary), source, base.size, docs, text_name))
    return out


def find_sidecar_builder(folder: Path) -> tuple[Path, str, Path, str] | None:
    """(file, function) of the folder's raw-byte sidecar builder and (file, function) of the text
    transform it is fed: a function taking the original and the transformed text, and the call
    whose result the data-prep code names ``transformed``."""
    for path in sorted(folder.glob("*.py")):
        if path.name.startswith("train_gpt"):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, OSError):
            continue
        builder = next((f.name for f in tree.body if isinstance(f, ast.FunctionDef)
                        and any("original" in a.arg for a in f.args.args)
                        and any("transformed" in a.arg for a in f.args.args)), None)
        if builder is None:
            continue
        for node in astmemo.walk(tree):
            if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "transformed" for t in node.targets) \
                    and isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Name):
                name = node.value.func.id
                home = path if any(isinstance(f, ast.FunctionDef) and f.name == name for f in tree.body) else None
                for imp in (n for n in astmemo.walk(tree) if isinstance(n, ast.ImportFrom) and n.module):
                    if any((a.asname or a.name) == name for a in imp.names) and (folder / f"{imp.module}.py").is_file():
                        home = folder / f"{imp.module}.py"
                if home is not None:
                    return path, builder, home, name
    return None


def run_builders(audit: BpbAudit, docs: list[str], text_name: str, unsafe_no_sandbox: bool) -> None:
    """Run every root builder of the script in the sandbox, on the tokenizer and the probe."""
    from ..submission.runner import ChildFailed, ChildProcess

    roots = script_ast.roots(audit.builders)
    sidecar = find_sidecar_builder(audit.folder) if audit.transformed and audit.tokenizer is not None else None
    if not roots and sidecar is None:
        return
    tree = parse_shared(audit.source)
    vocab_default = script_ast.env_default(tree, "VOCAB_SIZE")
    probe = tokenizers.load(probe_tokenizer_path())
    subjects: list[tuple[tokenizers.Tokenizer, str, int, bool]] = []
    files: dict[str, bytes] = {}
    meta = next((p for p in sorted(audit.folder.rglob("*.npz"))), None)
    if audit.tokenizer is not None:
        name = f"tok/{audit.tokenizer.path.name}"
        files[name] = audit.tokenizer.path.read_bytes()
        vocab = max(audit.tokenizer.size, int(vocab_default) if (vocab_default or "").isdigit() else 0)
        subjects.append((audit.tokenizer, name, vocab, False))
        if meta is not None:
            files[f"tok/{meta.name}"] = meta.read_bytes()
    files["probe/probe.model"] = probe.path.read_bytes()
    subjects.append((probe, "probe/probe.model", probe.size + PADDING, True))
    extracted = _merge_extracts(audit.source, [b.name for b in roots]) if roots else "\n"
    calls = []
    for builder in roots:
        for tok, name, vocab, is_probe in subjects:
            meta_arg = f"/work/tok/{meta.name}" if meta is not None and not is_probe else ""
            calls.append({"function": builder.name, "tokenizer": f"/work/{name}", "meta": meta_arg, "vocab_size": vocab,
                          "_subject": (builder, tok, vocab, is_probe)})
    request = {"module": "/work/train_gpt.py", "calls": [{k: v for k, v in c.items() if k != "_subject"} for c in calls]}
    if sidecar is not None:  # the folder's helper modules travel with it; the two functions are extracted
        for helper in audit.folder.glob("*.py"):
            if not helper.name.startswith("train_gpt"):
                files.setdefault(helper.name, helper.read_bytes())
        for path, fn in ((sidecar[0], sidecar[1]), (sidecar[2], sidecar[3])):
            files[f"_ga_{path.stem}_{fn}.py"] = script_ast.extract(path.read_text(encoding="utf-8"), fn).encode()
    with ChildProcess(extracted, timeout_s=BUILDER_TIMEOUT_S, support_files=files, unsafe_no_sandbox=unsafe_no_sandbox,
                      module="golf_audit.bpb.lut_child", memory_bytes=4 * 1024**3, cpu_seconds=600) as child:
        audit.isolation = child.isolation
        try:
            results = child.request(request).get("tables", []) if calls else []
        except ChildFailed as exc:
            results = [{"error": f"the builder could not run: {exc}", "trace": exc.tail}] * len(calls)
        if sidecar is not None:
            audit.sidecar = _run_sidecar(child, sidecar, audit.tokenizer, docs)
    audit.attempts = child.attempts()
    for call, result in zip(calls, results):
        builder, tok, vocab, is_probe = call["_subject"]
        where = f"{builder.name} (line {builder.line}), run in the sandbox" + (" on golf-audit's probe tokenizer" if is_probe else "")
        if not isinstance(result, dict) or result.get("error") or not isinstance(result.get("base"), list):
            error = result.get("error") if isinstance(result, dict) else "no answer"
            audit.built.append(TableProof(where, tok, vocab, error=str(error), probe=is_probe))
            continue
        table = table_from_arrays(result["base"], result.get("space"), result.get("boundary"))
        transformed_text = audit.transformed and not is_probe
        audit.built.append(prove(tok, table, where, vocab, None if transformed_text else docs, text_name, probe=is_probe))
        streams = audit.sidecar.streams if audit.sidecar is not None and not is_probe else []
        if streams and audit.sidecar.table_bytes is None and table.size > max(int(s.max()) for s in streams):
            # What this table counts on the transformed text: the denominator the sidecar replaces.
            audit.sidecar.table_bytes = sum(with_space_rule(table, tok).count(s) for s in streams)


SIDECAR_SAMPLE_CHARS = 40_000  # sidecar builders may be quadratic in a document's length
SIDECAR_DOC_CHARS = 800


def sidecar_sample(docs: list[str]) -> list[str]:
    """Short documents (FineWeb-sized pieces of the text, cut at spaces), ~40,000 characters in all."""
    out: list[str] = []
    total = 0
    for doc in docs:
        while doc and total < SIDECAR_SAMPLE_CHARS:
            cut = doc.rfind(" ", 0, SIDECAR_DOC_CHARS) if len(doc) > SIDECAR_DOC_CHARS else len(doc)
            cut = cut if cut > 0 else min(len(doc), SIDECAR_DOC_CHARS)
            piece, doc = doc[:cut].strip(), doc[cut:].lstrip()
            if piece:
                out.append(piece)
                total += len(piece)
    return out


def _run_sidecar(child: Any, found: tuple[Path, str, Path, str], tok: tokenizers.Tokenizer,
                 docs: list[str]) -> SidecarProof:
    """Transform the documents and build their sidecar with the folder's code; check Σ = raw bytes."""
    from ..submission.runner import ChildFailed

    builder_file, builder, transform_file, transform = found
    docs = sidecar_sample(docs)
    proof = SidecarProof(f"{transform_file.name}:{transform}", f"{builder_file.name}:{builder}", len(docs))
    tok_path = f"/work/tok/{tok.path.name}"
    try:
        step = child.request({"calls": [{"op": "apply", "module": f"/work/_ga_{transform_file.stem}_{transform}.py",
                                          "function": transform, "args_list": [[d] for d in docs]}]})["tables"][0]
        if "values" not in step:
            proof.error = f"the transform {proof.transform} failed: {step.get('error')}"
            return proof
        transformed = step["values"]
        step = child.request({"calls": [{"op": "apply", "module": f"/work/_ga_{builder_file.stem}_{builder}.py",
                                          "function": builder, "tokenizer": tok_path,
                                          "args_list": [["<sp>", d, t] for d, t in zip(docs, transformed)]}]})["tables"][0]
    except ChildFailed as exc:
        proof.error = f"the sidecar could not be built: {exc}"
        return proof
    if "values" not in step:
        proof.error = f"the sidecar builder {proof.builder} failed: {step.get('error')}"
        return proof
    canon = tok.canonical_for(0)
    for doc, text, counts in zip(docs, transformed, step["values"]):
        ids = tok.sp.encode(text)
        if len(counts) != len(ids):
            proof.error = f"the sidecar has {len(counts)} counts for a document of {len(ids)} tokens"
            return proof
        raw = len(doc.encode("utf-8"))
        proof.tokens += len(ids)
        proof.raw_bytes += raw
        proof.sidecar_bytes += sum(counts)
        proof.documents_off += sum(counts) != raw
        stream = np.asarray([tok.bos_id] + ids, dtype=np.int64)
        proof.canonical_bytes += canon.count(stream)
        proof.streams.append(stream)
    return proof


def _merge_extracts(source: str, names: list[str]) -> str:
    """One module holding every named builder and what each needs (line numbers kept)."""
    parts = [script_ast.extract(source, n).splitlines() for n in names]
    width = max(len(p) for p in parts)
    merged = []
    for i in range(width):
        line = next((p[i] for p in parts if i < len(p) and p[i]), "")
        merged.append(line)
    return "\n".join(merged) + "\n"


def audit_bpb(target: str | Path, *, tokenizer: str | Path | None = None, docs: list[str] | None = None,
              text_name: str | None = None, dynamic: bool = True, unsafe_no_sandbox: bool = False) -> BpbAudit:
    """Everything GA-BPB-* and ``bpb-proof`` report, for a records folder or a script."""
    folder, script = _script_of(Path(target))
    if docs is None:
        docs, text_name = default_text()
    audit = BpbAudit(folder, script, dynamic=dynamic, text_name=text_name or "")
    tree = None
    if script is not None:
        audit.source, audit.parse_error = _load(script)
        if not audit.parse_error:
            try:
                tree = parse_shared(audit.source)
            except SyntaxError as exc:
                audit.parse_error = f"does not parse: {exc.msg}, line {exc.lineno}"
    audit.tokenizer, audit.tokenizer_note = find_tokenizer(folder, tree, Path(tokenizer) if tokenizer else None)
    # A transform applied to the text before a SentencePiece tokenizer (CaseOps): its operator
    # pieces are in the tokenizer's vocabulary; a TokenMonster vocabulary's own capcode markers
    # are the tokenizer's business, and its byte table is checked token by token (GA-BPB-001).
    sp_markers = bool(audit.tokenizer and audit.tokenizer.family == "sentencepiece" and audit.tokenizer.transformed)
    audit.transformed = sp_markers or (bool(audit.source) and script_ast.mentions_transform(audit.source))
    audit.shipped = shipped_tables(folder, audit.tokenizer, docs, audit.text_name)
    if tree is not None:
        audit.builders = script_ast.builders(tree)
        audit.findings, audit.notes = script_ast.denominator_findings(tree, audit.transformed)
        if dynamic:
            run_builders(audit, docs, audit.text_name, unsafe_no_sandbox)
    return audit
