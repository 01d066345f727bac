"""Tokenizers as the byte accounting sees them: canonical bytes per token, and encoding real text.

Canonical bytes (DOMAIN.md §2, the challenge's metric): byte pieces count 1; control, unknown
and unused ids (and ids past the tokenizer, in a padded table) count 0 and are boundaries;
any other piece counts the UTF-8 length of its text with a leading ``▁`` stripped, and that
``▁`` is a space byte counted unless the previous token is a boundary. For SentencePiece the
rule is ``reference_model.bytecount.canonical_tables`` (the product's ground truth, torch-free), reused here.

Transformed tokenizers: the pieces of a reversible text transform's operators (CaseOps'
private-use TITLE/ALLCAPS/CAPNEXT/ESC characters; TokenMonster's capcode markers) stand for no
byte of the raw text: canonically they count 0. A table that counts them counts the bytes of
the *transformed* text, which is the CaseOps bug the maintainers ruled on.

TokenMonster ``.vocab`` files (the Scylla tokenizer) are read with a small reader of their
binary layout (header, then per token: length, bytes, flags, alternatives, id, score).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import BadInput

KINDS = ("normal", "byte", "control", "unknown", "unused", "marker", "padding")
PRIVATE_USE = (0xE000, 0xF8FF)


@dataclass
class ByteTable:
    """Per-token bytes: ``base[y] + (space[y] and not boundary[prev])``; ``space`` None: no space rule."""

    base: np.ndarray  # int64
    space: np.ndarray | None = None  # bool
    boundary: np.ndarray | None = None  # bool

    @property
    def size(self) -> int:
        return int(self.base.size)

    def count(self, stream: np.ndarray) -> int:
        """Bytes of every target of ``stream`` (documents joined, each starting with BOS)."""
        prev, target = stream[:-1], stream[1:]
        total = int(self.base[target].sum())
        if self.space is not None:
            boundary = self.boundary if self.boundary is not None else np.zeros(self.size, dtype=bool)
            total += int((self.space[target] & ~boundary[prev]).sum())
        return total


@dataclass
class Tokenizer:
    """What the proof needs of a tokenizer: pieces, kinds, the canonical table, an encoder."""

    path: Path
    family: str  # "sentencepiece" | "tokenmonster"
    pieces: list[str]
    kinds: list[str]
    canonical: ByteTable
    notes: list[str] = field(default_factory=list)
    sp: object | None = None  # the SentencePieceProcessor, when it is one
    bos_id: int = 1

    @property
    def size(self) -> int:
        return len(self.pieces)

    @property
    def markers(self) -> list[int]:
        return [i for i, k in enumerate(self.kinds) if k == "marker"]

    @property
    def transformed(self) -> bool:
        return bool(self.markers)

    def canonical_for(self, vocab_size: int) -> ByteTable:
        """The canonical table padded to ``vocab_size`` (padding ids: 0 bytes, boundaries)."""
        n = max(vocab_size, self.size)
        base = np.zeros(n, dtype=np.int64)
        space = np.zeros(n, dtype=bool)
        boundary = np.ones(n, dtype=bool)
        base[: self.size] = self.canonical.base
        space[: self.size] = self.canonical.space
        boundary[: self.size] = self.canonical.boundary
        return ByteTable(base, space, boundary)

    def kind(self, token: int) -> str:
        return self.kinds[token] if 0 <= token < self.size else "padding"

    def encode(self, docs: list[str]) -> np.ndarray | None:
        """The documents as one stream, each BOS-prefixed (None: golf-audit cannot encode with it)."""
        if self.sp is None:
            return None
        out: list[int] = []
        for doc in docs:
            out.append(self.bos_id)
            out.extend(self.sp.encode(doc))
        return np.asarray(out, dtype=np.int64)

    def decoded_bytes(self, stream: np.ndarray) -> int | None:
        """UTF-8 bytes of the stream decoded by the tokenizer's own detokenizer.

        Decoded one run of non-boundary tokens at a time: the detokenizer drops the leading
        space of each run, as the metric drops the space after a boundary. Operator pieces of a
        transformed tokenizer are decoded and then removed, to compare with raw bytes.
        """
        if self.sp is None:
            return None
        boundary = self.canonical_for(0).boundary
        markers = {chr(c) for c in range(PRIVATE_USE[0], PRIVATE_USE[1] + 1)} if self.transformed else set()
        total, run = 0, []
        for token in stream.tolist() + [self.bos_id]:
            if token >= self.size or boundary[token]:
                if run:
                    text = self.sp.decode(run)
                    if markers:
                        text = "".join(ch for ch in text if ch not in markers)
                    total += len(text.encode("utf-8"))
                run = []
            else:
                run.append(token)
        return total


def _is_marker(piece: str) -> bool:
    return bool(piece) and all(PRIVATE_USE[0] <= ord(ch) <= PRIVATE_USE[1] for ch in piece)


def _sentencepiece(path: Path) -> Tokenizer:
    from reference_model.bytecount import canonical_tables, load_tokenizer  # torch-free

    try:
        sp = load_tokenizer(path)
    except (FileNotFoundError, ValueError) as exc:
        raise BadInput(str(exc)) from None
    base, space, boundary = canonical_tables(sp)
    pieces, kinds = [], []
    for i in range(sp.get_piece_size()):
        piece = sp.id_to_piece(i)
        pieces.append(piece)
        if sp.is_control(i):
            kinds.append("control")
        elif sp.is_unknown(i):
            kinds.append("unknown")
        elif sp.is_unused(i):
            kinds.append("unused")
        elif sp.is_byte(i):
            kinds.append("byte")
        elif _is_marker(piece.lstrip("\u2581")):
            kinds.append("marker")
            base[i] = 0  # an operator of the text transform: no byte of the raw text
        else:
            kinds.append("normal")
    tok = Tokenizer(path, "sentencepiece", pieces, kinds, ByteTable(base, space, boundary), sp=sp,
                    bos_id=max(sp.bos_id(), 0))
    if tok.transformed:
        names = ", ".join(f"{i} {unicodedata.name(pieces[i][-1], hex(ord(pieces[i][-1])))}" for i in tok.markers[:6])
        tok.notes.append(f"transformed tokenizer: {len(tok.markers)} operator piece(s) of a text transform "
                         f"(private-use characters: {names}) stand for no raw byte")
    return tok


# --- TokenMonster -------------------------------------------------------------------------------

_NONE = 0xFFFFFF  # "no token" in the 24-bit fields


def _tokenmonster(path: Path) -> Tokenizer:
    data = path.read_bytes()

    def u24(at: int) -> int:
        return data[at] | data[at + 1] << 8 | data[at + 2] << 16

    try:
        capcode, charset = data[0], data[1]
        if charset > 2 or capcode > 2:
            raise ValueError("header")
        unk, size, n = u24(8), u24(11), u24(17)
        at = 24  # after the header and the max-token-length byte
        keys: dict[int, bytes] = {}
        for _ in range(n):
            length = data[at]
            key = data[at + 1: at + 1 + length]
            at += 1 + length
            token = u24(at + 8)  # after flag, word count, two alternative indices
            at += 15  # ... and the 4-byte score
            keys.setdefault(token, bytes(key))
        if at + 256 > len(data) or not keys or max(keys) >= size:
            raise ValueError("layout")
    except (IndexError, ValueError):
        raise BadInput(f"{path}: not a TokenMonster vocabulary") from None
    # capcode 2 encodes case with C (capitalize next), W (word caps), D (delete next space);
    # capcode 1 only with D. Raw uppercase letters never appear in the keys of such a vocabulary.
    marks = set(b"CWD") if capcode == 2 else set(b"D") if capcode == 1 else set()
    pieces, kinds = [], []
    base = np.zeros(size, dtype=np.int64)
    boundary = np.zeros(size, dtype=bool)
    deletes = 0
    for token in range(size):
        key = keys.get(token)
        if key is None or token == unk:
            pieces.append("<unk>" if token == unk else "<unused>")
            kinds.append("unknown" if token == unk else "unused")
            boundary[token] = True
            continue
        pieces.append(key.decode("utf-8", "backslashreplace"))
        raw, dangling = _capcode_raw(key, marks)
        deletes += dangling
        if len(key) == 1 and key[0] >= 0x80:
            kinds.append("byte")  # one byte of a multi-byte character: 1 byte, never 3
            base[token] = 1
        elif not raw:
            kinds.append("marker")
        else:
            kinds.append("normal")
            base[token] = len(raw)
    tok = Tokenizer(path, "tokenmonster", pieces, kinds, ByteTable(base, np.zeros(size, dtype=bool), boundary))
    if marks:
        tok.notes.append(f"TokenMonster capcode {capcode}: markers {', '.join(chr(m) for m in sorted(marks))} count 0 "
                         f"bytes, and D deletes the next space; {deletes} token(s) end in D, deleting the next token's space, "
                         f"which a per-token table cannot represent (it counts that space)")
    tok.notes.append("golf-audit does not encode text with TokenMonster: no real-text accounting")
    return tok


def _capcode_raw(key: bytes, marks: set[int]) -> tuple[bytes, bool]:
    """The raw bytes a capcode key stands for, and whether it ends in a D that reaches the next token.

    Markers stand for nothing; D also deletes the next space (inside the key, or at the start
    of the next token).
    """
    out = bytearray()
    delete = False
    for b in key:
        if b in marks:
            delete = delete or b == 0x44  # "D"
            continue
        if delete and b == 0x20:
            delete = False
            continue
        delete = False
        out.append(b)
    return bytes(out), delete


def load(path: str | Path) -> Tokenizer:
    """A SentencePiece ``.model`` or a TokenMonster ``.vocab``; BadInput for anything else."""
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"{path}: no such tokenizer file")
    head = path.read_bytes()[:4]
    if path.suffix == ".vocab" and head[:1] in (b"\x00", b"\x01", b"\x02") and head[1:2] in (b"\x00", b"\x01", b"\x02"):
        return _tokenmonster(path)
    return _sentencepiece(path)


def is_tokenizer_file(path: Path) -> bool:
    """A file that looks like a tokenizer golf-audit can read (SentencePiece .vocab text files are not)."""
    if path.suffix == ".model":
        return True
    if path.suffix == ".vocab":
        head = path.read_bytes()[:2]
        return len(head) == 2 and head[0] <= 2 and head[1] <= 2
    return False
