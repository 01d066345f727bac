"""Synthetic challenge data for a submission's own script: token shards, a byte sidecar, a tokenizer.

A script audited in the sandbox runs its own ``main()``: it opens the tokenizer, globs the
train and validation shards and builds its byte LUTs itself. The child gives it synthetic
stand-ins with the real formats, so the script's own loaders, LUT builders and sidecar
readers run unchanged:

* shards in the challenge format (256 ``int32`` header: magic 20240520, version 1, token
  count; then ``uint16`` tokens): the validation shard holds the audit stream, the training
  shard random documents; the CaseOps-style byte sidecar holds each token's byte count;
* :class:`FakeSentencePiece`, standing in for ``sentencepiece.SentencePieceProcessor``: ids
  0-2 are control pieces (``<pad>``, ``<s>``, ``</s>``), 3 is ``<unk>``, 4 is ``▁``, 5-12 are
  byte pieces, the rest are unique pieces of 1-4 characters (some with ``▁``, some multi-byte
  UTF-8), so every byte-accounting rule (boundary, byte piece, leading space) is exercised.

:func:`canonical_luts` gives the byte LUTs the challenge's rule derives from that tokenizer;
the audit's rebuilt bpb uses them. :func:`audit_stream` builds the audit stream: documents
that start with BOS (id 1), with random non-control tokens in which every 4-gram is unique
(so each captured row maps back to one place in the stream).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SHARD_MAGIC = 20240520
SHARD_VERSION = 1
BOS_ID = 1
EOS_ID = 2
UNK_ID = 3
SPACE_ID = 4
BYTE_IDS = range(5, 13)
FIRST_NORMAL = 13  # the first id of an ordinary piece (audit streams use ids >= this one)
_ALPHABET = "etaoinshrdlucmfwypvbgkqjxz"
_WIDE = "éßñ中"  # multi-byte UTF-8 characters


def piece(token_id: int) -> str:
    """The piece of ``token_id`` in the synthetic vocabulary."""
    if token_id < FIRST_NORMAL:
        return {0: "<pad>", BOS_ID: "<s>", EOS_ID: "</s>", UNK_ID: "<unk>", SPACE_ID: "▁"}.get(
            token_id, f"<0x{0x41 + token_id - BYTE_IDS.start:02X}>")
    k = token_id - FIRST_NORMAL
    chars, n = [], k
    while True:  # a unique base-26 spelling of k: 1-3 letters for any challenge vocabulary
        chars.append(_ALPHABET[n % 26])
        n //= 26
        if n == 0:
            break
    if k % 5 == 2:
        chars.append(_WIDE[k % len(_WIDE)])  # not in the alphabet: still unique
    text = "".join(chars)
    return ("▁" if k % 3 == 0 else "") + text


class FakeSentencePiece:
    """The subset of ``sentencepiece.SentencePieceProcessor`` that training scripts use."""

    vocab: int = 1024  # set by the child before the script runs

    def __init__(self, *args: object, **kwargs: object) -> None:
        self._pieces = [piece(i) for i in range(self.vocab)]
        self._ids = {p: i for i, p in enumerate(self._pieces)}

    # loading: the file is never read
    def Load(self, *args: object, **kwargs: object) -> bool:  # noqa: N802 - sentencepiece's API
        return True

    load = LoadFromFile = Load  # noqa: N815

    def vocab_size(self) -> int:
        return self.vocab

    GetPieceSize = get_piece_size = piece_size = __len__ = vocab_size  # noqa: N815

    def id_to_piece(self, token_id: int) -> str:
        return self._pieces[int(token_id)]

    IdToPiece = id_to_piece  # noqa: N815

    def piece_to_id(self, text: str) -> int:
        return self._ids.get(text, UNK_ID)

    PieceToId = piece_to_id  # noqa: N815

    def is_control(self, token_id: int) -> bool:
        return int(token_id) in (0, BOS_ID, EOS_ID)

    def is_unknown(self, token_id: int) -> bool:
        return int(token_id) == UNK_ID

    def is_unused(self, token_id: int) -> bool:
        return False

    def is_byte(self, token_id: int) -> bool:
        return int(token_id) in BYTE_IDS

    IsControl, IsUnknown, IsUnused, IsByte = is_control, is_unknown, is_unused, is_byte  # noqa: N815

    def bos_id(self) -> int:
        return BOS_ID

    def eos_id(self) -> int:
        return EOS_ID

    def unk_id(self) -> int:
        return UNK_ID

    def pad_id(self) -> int:
        return 0

    def decode(self, ids: object) -> str:
        seq = ids.tolist() if hasattr(ids, "tolist") else list(ids)  # type: ignore[call-overload]
        if seq and isinstance(seq[0], list):
            return [self.decode(s) for s in seq]  # type: ignore[return-value]
        out = []
        for i in seq:
            if int(i) in BYTE_IDS:
                out.append(chr(0x41 + int(i) - BYTE_IDS.start))
            elif int(i) >= SPACE_ID:
                out.append(self._pieces[int(i)].replace("▁", " "))
        return "".join(out)

    DecodeIds = decode_ids = Decode = decode  # noqa: N815

    def encode(self, text: object, out_type: object = int, **kwargs: object) -> list:
        if isinstance(text, list):
            return [self.encode(t, out_type) for t in text]
        s, ids, i = str(text).replace(" ", "▁"), [], 0
        longest = max(len(p) for p in self._pieces)
        while i < len(s):
            for n in range(min(longest, len(s) - i), 0, -1):
                tid = self._ids.get(s[i:i + n])
                if tid is not None and tid >= SPACE_ID and tid not in BYTE_IDS:
                    ids.append(tid)
                    i += n
                    break
            else:
                ids.append(UNK_ID)
                i += 1
        return [self._pieces[t] for t in ids] if out_type is str else ids

    EncodeAsIds = encode_as_ids = Encode = encode  # noqa: N815


def canonical_luts(vocab: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(base bytes, has leading space, is boundary) per id: the challenge's byte rule on this tokenizer."""
    from reference_model.metric import build_luts

    luts = build_luts(type("_SP", (FakeSentencePiece,), {"vocab": vocab})(), vocab)
    return luts.base_bytes.numpy(), luts.has_leading_space.numpy(), luts.is_boundary.numpy()


def token_bytes(tokens: np.ndarray, luts: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    """Bytes each token stands for after its predecessor (the sidecar's content; 0 for the first)."""
    base, space, boundary = luts
    tokens = np.asarray(tokens, dtype=np.int64)
    out = base[tokens].copy()
    out[1:] += space[tokens[1:]] & ~boundary[tokens[:-1]]
    return out


def write_shard(path: Path, values: np.ndarray) -> None:
    """A shard in the challenge format: 256-int32 header, then uint16 values."""
    header = np.zeros(256, dtype="<i4")
    header[0], header[1], header[2] = SHARD_MAGIC, SHARD_VERSION, len(values)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(header.tobytes())
        f.write(np.asarray(values, dtype="<u2").tobytes())


def documents(vocab: int, length: int, seed: int, doc_len: tuple[int, int] = (96, 320)) -> np.ndarray:
    """``length`` tokens of BOS-led documents of random lengths; every 4-gram of the stream unique."""
    rng = np.random.default_rng(seed)
    out = np.empty(length, dtype=np.int64)
    seen: set[tuple[int, ...]] = set()
    next_bos = 0
    for i in range(length):
        if i == next_bos:
            out[i] = BOS_ID
            next_bos = i + int(rng.integers(doc_len[0], doc_len[1] + 1))
            continue
        for _ in range(64):
            out[i] = int(rng.integers(FIRST_NORMAL, vocab))
            key = tuple(out[max(0, i - 3):i + 1].tolist())
            if len(key) < 4 or key not in seen:
                break
        if i >= 3:
            seen.add(tuple(out[i - 3:i + 1].tolist()))
    return out
