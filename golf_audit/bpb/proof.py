"""The byte-accounting proof: a script's per-token byte table against the tokenizer, on real text.

Three independent pieces of evidence, each a number a reviewer can check:

1. **Per token**: the script's table (built by its own code in the sandbox, or read from the
   byte-table file it ships) against the canonical bytes of every token; each disagreement
   is named by its bug class (``BUG_CLASSES``).
2. **On a real text**: the bytes the script's table counts for the text's tokens, against the
   canonical count, and the bpb inflation that follows (bpb ∝ 1 / bytes).
3. **Decoded back**: the canonical count must equal the UTF-8 bytes of the tokens decoded by
   the tokenizer's own detokenizer — a check of the rule itself on this tokenizer, by code
   that shares nothing with it.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..findings import Status
from .tokenizers import ByteTable, Tokenizer

BUG_CLASSES = {
    "byte-token size": "byte pieces are counted as more than 1 byte (e.g. the 3 bytes of len('\\ufffd'.encode()))",
    "leading-space double count": "the leading space is counted twice: in the piece's bytes and again by the space flag",
    "missing ▁": "the '▁' is not handled: counted as its 3 UTF-8 bytes, or the space it stands for is never counted",
    "spurious space": "a space is added to pieces that have no leading '▁'",
    "unused ids": "control/unknown/unused or padding ids count bytes or are not boundaries",
    "transformed bytes": "operator pieces of the text transform count bytes: the table counts the transformed text",
    "boundary flags": "is_boundary differs for ordinary pieces (changes when a leading space counts)",
    "other": "the piece's byte count differs for another reason",
}
MAX_LISTED = 20


@dataclass
class Disagreement:
    token: int
    piece: str
    kind: str
    canonical: tuple[int, bool, bool]
    script: tuple[int, bool | None, bool | None]
    bug: str


@dataclass
class TextAccount:
    """The bytes of one text, counted five ways."""

    name: str
    documents: int
    tokens: int
    raw_bytes: int
    normalized_bytes: int
    decoded_bytes: int | None
    canonical_bytes: int
    script_bytes: int
    unknown_tokens: int

    @property
    def inflation(self) -> float:
        """Bytes the script counts over the canonical bytes, minus 1."""
        return self.script_bytes / self.canonical_bytes - 1 if self.canonical_bytes else 0.0

    @property
    def bpb_understated(self) -> float:
        """How much lower the script's bpb is than the true one (fraction)."""
        return 1 - self.canonical_bytes / self.script_bytes if self.script_bytes else 0.0


@dataclass
class TableProof:
    """One table (a builder's output or a shipped file) against one tokenizer."""

    source: str  # "build_sentencepiece_luts (line 180, run in the sandbox)" / "candidate.meta.npz (shipped)"
    tokenizer: Tokenizer
    vocab_size: int
    disagreements: list[Disagreement] = field(default_factory=list)
    text: TextAccount | None = None
    text_note: str = ""
    error: str = ""
    space_rule: bool = True  # False: the table has no leading-space flags (bytes per piece only)
    probe: bool = False  # True: golf-audit's probe tokenizer (checks the builder's logic)

    @property
    def classes(self) -> Counter:
        return Counter(d.bug for d in self.disagreements)

    def decisive(self, sidecar_used: bool) -> list[Disagreement]:
        """Disagreements that change the bpb (transformed bytes do not when a sidecar is the denominator)."""
        return [d for d in self.disagreements if not (sidecar_used and d.bug == "transformed bytes")]

    def status(self, sidecar_used: bool = False) -> Status:
        if self.error:
            return Status.ERROR
        if self.decisive(sidecar_used):
            return Status.FAIL
        if self.text is not None and self.text.decoded_bytes is not None \
                and self.text.decoded_bytes != self.text.canonical_bytes and not self.tokenizer.transformed:
            return Status.ERROR  # the rule itself does not hold on this tokenizer: cannot conclude
        return Status.PASS


@dataclass
class SidecarProof:
    """A transformed tokenizer's raw-byte sidecar, built by the folder's own code on a real text."""

    transform: str  # "lossless_caps.py:encode_lossless_caps_v2"
    builder: str  # "prepare_caseops_data.py:_token_original_byte_counts"
    documents: int = 0
    tokens: int = 0
    raw_bytes: int = 0  # UTF-8 bytes of the original documents
    sidecar_bytes: int = 0  # Σ of the sidecar's per-token counts
    canonical_bytes: int = 0  # golf-audit's per-token raw bytes (operators 0) over the same tokens
    table_bytes: int | None = None  # the script's per-token table over the same tokens (transformed bytes)
    documents_off: int = 0  # documents whose sidecar sum differs from their raw bytes
    error: str = ""
    streams: list = field(default_factory=list, repr=False)  # the transformed documents' tokens

    @property
    def table_inflation(self) -> float | None:
        """Transformed bytes over raw bytes, minus 1: what dividing by the table would do."""
        return None if self.table_bytes is None or not self.raw_bytes else self.table_bytes / self.raw_bytes - 1

    @property
    def status(self) -> Status:
        if self.error:
            return Status.ERROR
        return Status.PASS if self.sidecar_bytes == self.raw_bytes and not self.documents_off else Status.FAIL


def compare(tok: Tokenizer, table: ByteTable) -> list[Disagreement]:
    """Every token where ``table`` disagrees with the canonical bytes, with its bug class."""
    canon = tok.canonical_for(table.size)
    out = []
    for t in range(table.size):
        cb, cs, cz = int(canon.base[t]), bool(canon.space[t]), bool(canon.boundary[t])
        sb = int(table.base[t])
        ss = bool(table.space[t]) if table.space is not None else None
        sz = bool(table.boundary[t]) if table.boundary is not None else None
        kind = tok.kind(t)
        bug = None
        if kind in ("control", "unknown", "unused", "padding"):
            if sb != 0 or ss or sz is False:
                bug = "unused ids"
        elif kind == "byte":
            if sb != 1:
                bug = "byte-token size"
        elif kind == "marker":
            if sb > 0:
                bug = "transformed bytes"
        elif ss is None:  # bytes per piece only: the base must be the ▁-stripped bytes
            if sb == cb + 3 and cs:
                bug = "missing ▁"
            elif sb != cb:
                bug = "leading-space double count" if cs and sb == cb + 1 else "other"
        elif cs and ss and sb == cb + 1:
            bug = "leading-space double count"
        elif cs and (sb == cb + 3 or (not ss and sb == cb)):
            bug = "missing ▁"
        elif not cs and ss and sb == cb:
            bug = "spurious space"
        elif sb != cb or ss != cs:
            bug = "other"
        elif sz is not None and sz != cz:
            bug = "boundary flags"
        if bug:
            piece = tok.pieces[t] if t < tok.size else "<padding>"
            out.append(Disagreement(t, piece, kind, (cb, cs, cz), (sb, ss, sz), bug))
    return out


def account(tok: Tokenizer, table: ByteTable, docs: list[str], name: str) -> TextAccount | None:
    """The text's bytes: raw, normalized, decoded, canonical, and as the script's table counts them."""
    stream = tok.encode(docs)
    if stream is None:
        return None
    canon = tok.canonical_for(max(table.size, int(stream.max()) + 1))
    table = with_space_rule(table, tok)  # a bytes-per-piece table: its caller adds the spaces
    if table.size <= int(stream.max()):
        raise ValueError(f"the table has {table.size} entries but the text uses token {int(stream.max())}")
    normalized = 0
    for doc in docs:
        text = tok.sp.normalize(doc).replace("\u2581", " ")
        normalized += len(text.lstrip(" ").encode("utf-8")) if text.startswith(" ") else len(text.encode("utf-8"))
    unknown = sum(1 for t in stream.tolist() if tok.kind(t) == "unknown")
    return TextAccount(name, len(docs), int(stream.size - len(docs)), sum(len(d.encode("utf-8")) for d in docs),
                       normalized, tok.decoded_bytes(stream), canon.count(stream), table.count(stream), unknown)


def default_text() -> tuple[list[str], str]:
    """CPython's ``pydoc_data.topics`` (offline real English text), one document per topic."""
    from pydoc_data.topics import topics

    # Whitespace runs collapsed, as the tokenizers' normalizers collapse them: the raw bytes are
    # then the bytes the tokens stand for, and a raw-byte sidecar is comparable with a table.
    return [" ".join(topics[k].split()) for k in sorted(topics)], "CPython pydoc_data.topics (whitespace collapsed)"


def text_file(path: Path) -> tuple[list[str], str]:
    """A UTF-8 text file; documents separated by blank lines (a file without any is one document)."""
    from ..errors import BadInput

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path}: cannot read it as UTF-8 text ({type(exc).__name__})") from None
    docs = [d for d in text.split("\n\n") if d.strip()]
    if not docs:
        raise BadInput(f"{path}: no text")
    return docs, str(path)


def with_space_rule(table: ByteTable, tok: Tokenizer) -> ByteTable:
    """A bytes-per-piece table with the canonical space rule added (what its caller does)."""
    if table.space is not None:
        return table
    canon = tok.canonical_for(table.size)
    return ByteTable(table.base, canon.space[: table.size], canon.boundary[: table.size])


def prove(tok: Tokenizer, table: ByteTable, source: str, vocab_size: int, docs: list[str] | None, text_name: str,
          probe: bool = False) -> TableProof:
    """One table's proof against ``tok`` on ``docs`` (None: no text accounting here)."""
    result = TableProof(source, tok, vocab_size, compare(tok, table), space_rule=table.space is not None, probe=probe)
    if docs is None:
        result.text_note = ("a transformed tokenizer: its tokens stand for the transformed text; the real-text "
                            "accounting is the raw-byte sidecar's")
        return result
    try:
        result.text = account(tok, table, docs, text_name)
    except ValueError as exc:
        result.text_note = str(exc)
    if result.text is None and not result.text_note:
        result.text_note = "; ".join(n for n in tok.notes if "encode" in n) or "the text could not be encoded"
    return result


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def table_from_arrays(base: list[int] | np.ndarray, space: list[bool] | np.ndarray | None,
                      boundary: list[bool] | np.ndarray | None) -> ByteTable:
    return ByteTable(np.asarray(base, dtype=np.int64), None if space is None else np.asarray(space, dtype=bool),
                     None if boundary is None else np.asarray(boundary, dtype=bool))
