"""The canonical byte count of every token id, without torch (DOMAIN.md §2).

Control, unknown and unused ids count 0 bytes and are boundaries; byte pieces count 1; any
other piece counts the UTF-8 length of its text with a leading "▁" stripped, and that "▁"
sets the leading-space flag (one more byte unless the previous token is a boundary).
``reference_model.metric.build_luts`` wraps these tables in tensors; golf-audit's byte
accounting checks read them directly (they run where torch is not loaded).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def load_tokenizer(path: str | Path) -> Any:
    """Load a SentencePiece model, with a one-line error for a missing or corrupt file."""
    import sentencepiece as spm

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"tokenizer not found: {path}")
    sp = spm.SentencePieceProcessor()
    try:
        sp.load(str(path))
    except Exception as exc:  # sentencepiece raises OSError/RuntimeError with C++ text
        raise ValueError(f"{path}: not a SentencePiece model ({str(exc).splitlines()[0][:120]})") from None
    return sp


def canonical_tables(sp: Any, vocab_size: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(base_bytes int64, has_leading_space bool, is_boundary bool), each of length max(pieces, vocab_size).

    ``sp`` is a SentencePiece processor or a path to a ``.model`` file. Ids past the
    tokenizer's size (a padded embedding) are unused: 0 bytes, boundaries.
    """
    if isinstance(sp, (str, Path)):
        sp = load_tokenizer(sp)
    n = sp.get_piece_size()
    size = max(n, vocab_size or 0)
    base = np.zeros(size, dtype=np.int64)
    space = np.zeros(size, dtype=bool)
    boundary = np.ones(size, dtype=bool)
    for i in range(n):
        if sp.is_control(i) or sp.is_unknown(i) or sp.is_unused(i):
            continue
        boundary[i] = False
        if sp.is_byte(i):
            base[i] = 1
            continue
        piece = sp.id_to_piece(i)
        if piece.startswith("\u2581"):
            space[i] = True
            piece = piece[1:]
        base[i] = len(piece.encode("utf-8"))
    return base, space, boundary
