"""Challenge shards, the embedded default corpus, and token loaders (DOMAIN.md §2).

Shard layout: a header of 256 little-endian int32 (1024 bytes) holding magic 20240520,
version 1 and the token count, then the tokens as little-endian uint16. A file whose size is
not exactly ``1024 + 2 * count`` is rejected. Each document is BOS (id 1) + its tokens, no EOS.

The embedded corpus is CPython's ``pydoc_data.topics`` (one document per topic, sorted by
name), so tests and the demo need nothing outside the Python install. Without a tokenizer,
a small SentencePiece BPE is trained on its training documents and cached.
"""

from __future__ import annotations

import glob
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch

SHARD_MAGIC = 20240520
SHARD_VERSION = 1
HEADER_INTS = 256
HEADER_BYTES = HEADER_INTS * 4
BOS_ID = 1
VAL_EVERY = 4  # every 4th embedded document (sorted by topic name) is held out for validation


class ShardError(ValueError):
    """A file that is not a valid challenge shard; the message names the file."""


# ----------------------------------------------------------------------------- shards


def write_shard(path: str | Path, tokens: np.ndarray | torch.Tensor | Sequence[int]) -> Path:
    """Write ``tokens`` as a challenge shard (atomically: temp file + rename)."""
    path = Path(path)
    arr = tokens.cpu().numpy() if isinstance(tokens, torch.Tensor) else np.asarray(tokens)
    if arr.ndim != 1:
        raise ValueError(f"{path}: tokens must be 1-D, got shape {arr.shape}")
    if arr.size and (arr.min() < 0 or arr.max() > np.iinfo(np.uint16).max):
        raise ValueError(f"{path}: token ids must fit in uint16")
    header = np.zeros(HEADER_INTS, dtype="<i4")
    header[0], header[1], header[2] = SHARD_MAGIC, SHARD_VERSION, arr.size
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(header.tobytes())
            f.write(arr.astype("<u2").tobytes())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_shard_header(path: str | Path) -> int:
    """Validate a shard's header and size; return its token count."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            raw = f.read(HEADER_BYTES)
    except OSError as exc:
        raise ShardError(f"{path}: cannot read shard ({exc.strerror or exc})") from None
    if len(raw) < HEADER_BYTES:
        raise ShardError(f"{path}: too short for a shard header ({len(raw)} of {HEADER_BYTES} bytes)")
    header = np.frombuffer(raw, dtype="<i4")
    if int(header[0]) != SHARD_MAGIC:
        raise ShardError(f"{path}: bad magic {int(header[0])} (expected {SHARD_MAGIC}); not a challenge shard")
    if int(header[1]) != SHARD_VERSION:
        raise ShardError(f"{path}: unsupported shard version {int(header[1])} (expected {SHARD_VERSION})")
    count = int(header[2])
    expected = HEADER_BYTES + 2 * count
    if count < 0 or size != expected:
        raise ShardError(f"{path}: size {size} bytes does not match header token count {count} (expected {expected} bytes)")
    return count


def read_shard(path: str | Path) -> np.ndarray:
    """A shard's tokens as a uint16 array (validated: magic, version, exact size)."""
    count = read_shard_header(path)
    return np.fromfile(path, dtype="<u2", count=count, offset=HEADER_BYTES)


def is_shard(path: str | Path) -> bool:
    """True when the file starts with the shard magic (cheap sniff, no full validation)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError:
        return False
    return len(head) == 4 and int(np.frombuffer(head, dtype="<i4")[0]) == SHARD_MAGIC


def shard_files(pattern: str) -> list[Path]:
    files = sorted(Path(p) for p in glob.glob(pattern))
    if not files:
        raise FileNotFoundError(f"no shards match {pattern}")
    return files


def truncate_for_eval(tokens: torch.Tensor, seq_len: int) -> torch.Tensor:
    """Keep ``((N-1)//seq_len)*seq_len + 1`` tokens, as the records do for val."""
    usable = ((tokens.numel() - 1) // seq_len) * seq_len
    if usable <= 0:
        raise ValueError(f"validation stream of {tokens.numel()} tokens is too short for seq_len={seq_len}")
    return tokens[: usable + 1]


def load_val_tokens(pattern: str, seq_len: int) -> torch.Tensor:
    """All val shards matching ``pattern`` concatenated (sorted), truncated for ``seq_len``; int64."""
    parts = [torch.from_numpy(read_shard(p).astype(np.int64)) for p in shard_files(pattern)]
    return truncate_for_eval(torch.cat(parts), seq_len)


# ----------------------------------------------------------------------------- train loader


class TokenStream:
    """Reads shards (or an in-memory stream) in order, wrapping around at the end."""

    def __init__(self, source: str | torch.Tensor) -> None:
        if isinstance(source, torch.Tensor):
            self.files: list[Path] = []
            self.tokens: np.ndarray = source.reshape(-1).cpu().numpy()
        else:
            self.files = shard_files(source)
            self.tokens = read_shard(self.files[0])
        self.file_idx = 0
        self.pos = 0

    def _advance(self) -> None:
        if self.files:
            self.file_idx = (self.file_idx + 1) % len(self.files)
            self.tokens = read_shard(self.files[self.file_idx])  # kept as uint16: 1/4 the memory
        self.pos = 0

    def take(self, n: int) -> torch.Tensor:
        """The next ``n`` tokens as int64 (crossing shard boundaries, wrapping at the end)."""
        chunks: list[np.ndarray] = []
        while n > 0:
            avail = self.tokens.size - self.pos
            if avail <= 0:
                self._advance()
                continue
            k = min(avail, n)
            chunks.append(self.tokens[self.pos : self.pos + k])
            self.pos += k
            n -= k
        return torch.from_numpy(np.concatenate(chunks).astype(np.int64))


class DistributedTokenLoader:
    """The records' train loader: every rank reads the same contiguous chunk, takes its slice.

    For one micro-step, the ranks together consume ``world_size * (local_tokens + 1)``
    tokens; rank r uses span r. So 1 process x 2 micro-steps and 2 processes x 1 micro-step
    see exactly the same (x, y) batches, which is what makes DDP runs comparable.
    """

    def __init__(self, source: str | torch.Tensor, rank: int = 0, world_size: int = 1) -> None:
        self.rank, self.world_size = rank, world_size
        self.stream = TokenStream(source)

    def next_batch(self, global_tokens: int, seq_len: int, grad_accum_steps: int) -> tuple[torch.Tensor, torch.Tensor]:
        local_tokens = global_tokens // (self.world_size * grad_accum_steps)
        # The seed reshapes local_tokens into rows of seq_len and fails otherwise: say so clearly
        # rather than quietly training on other batches than it would.
        if local_tokens <= 0 or local_tokens % seq_len:
            raise ValueError(f"TRAIN_BATCH_TOKENS={global_tokens} / ({self.world_size} ranks x {grad_accum_steps} micro-batches) "
                             f"= {local_tokens} tokens is not a positive multiple of seq_len={seq_len}")
        span = local_tokens + 1
        chunk = self.stream.take(span * self.world_size)
        local = chunk[self.rank * span : (self.rank + 1) * span]
        x = local[:-1].reshape(-1, seq_len)  # (B, T)
        y = local[1:].reshape(-1, seq_len)  # (B, T)
        return x, y


# ----------------------------------------------------------------------------- corpus and tokenizer


def cache_root(cache_dir: str | Path | None = None) -> Path:
    """``cache_dir``, else $GOLF_AUDIT_CACHE, else ~/.cache/golf-audit (created)."""
    root = Path(cache_dir or os.environ.get("GOLF_AUDIT_CACHE") or Path.home() / ".cache" / "golf-audit")
    root.mkdir(parents=True, exist_ok=True)
    return root


def corpus_documents() -> list[str]:
    """The embedded corpus: one document per ``pydoc_data.topics`` topic, sorted by name."""
    from pydoc_data.topics import topics

    return [topics[k] for k in sorted(topics)]


def split_documents(docs: Sequence[str], val_every: int = VAL_EVERY) -> tuple[list[str], list[str]]:
    """(train, val): every ``val_every``-th document goes to val, so the split is by document."""
    val = [d for i, d in enumerate(docs) if i % val_every == val_every - 1]
    train = [d for i, d in enumerate(docs) if i % val_every != val_every - 1]
    return train, val


def corpus_fingerprint(docs: Iterable[str]) -> str:
    h = hashlib.sha256()
    for d in docs:
        h.update(d.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()[:16]


def train_tokenizer(docs: Sequence[str], vocab_size: int, model_path: str | Path):
    """Train a SentencePiece BPE like sp1024 (no byte fallback; pad 0, bos 1, eos 2, unk 3).

    Deterministic: one thread, input in the given order, no sampling or shuffling.
    """
    import sentencepiece as spm

    model_path = Path(model_path)
    # SentencePiece treats each line as a sentence; keep lines short and non-empty.
    lines = [ln for d in docs for ln in d.splitlines() if ln.strip()]
    with tempfile.TemporaryDirectory(dir=model_path.parent) as tmp:
        prefix = os.path.join(tmp, "sp")
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(lines),
            model_prefix=prefix,
            model_type="bpe",
            vocab_size=vocab_size,
            byte_fallback=False,
            character_coverage=0.9995,
            pad_id=0, bos_id=1, eos_id=2, unk_id=3,
            num_threads=1,
            input_sentence_size=0,
            shuffle_input_sentence=False,
            max_sentence_length=16384,
            minloglevel=2,
        )
        os.replace(prefix + ".model", model_path)
    from .metric import load_tokenizer

    return load_tokenizer(model_path)


def default_tokenizer_path(vocab_size: int = 512, cache_dir: str | Path | None = None) -> Path:
    """Path of the embedded corpus's cached BPE ``.model`` (trained on first use)."""
    train_docs, _ = split_documents(corpus_documents())
    path = cache_root(cache_dir) / f"pydoc_bpe_{vocab_size}_{corpus_fingerprint(train_docs)}.model"
    if not path.is_file():
        train_tokenizer(train_docs, vocab_size, path)
    return path


def default_tokenizer(vocab_size: int = 512, cache_dir: str | Path | None = None):
    """The embedded corpus's BPE tokenizer (trained on its train documents; cached)."""
    from .metric import load_tokenizer

    return load_tokenizer(default_tokenizer_path(vocab_size, cache_dir))


def encode_documents(sp, docs: Iterable[str]) -> torch.Tensor:
    """BOS + ids for each document, concatenated into one int64 stream."""
    out: list[int] = []
    for ids in sp.encode([d for d in docs]):
        out.append(BOS_ID)
        out.extend(ids)
    return torch.tensor(out, dtype=torch.int64)


def embedded_streams(sp=None, vocab_size: int = 512, cache_dir: str | Path | None = None):
    """(train_tokens, val_tokens, tokenizer) for the embedded corpus; val is not truncated."""
    if sp is None:
        sp = default_tokenizer(vocab_size, cache_dir)
    train_docs, val_docs = split_documents(corpus_documents())
    return encode_documents(sp, train_docs), encode_documents(sp, val_docs), sp


def build_shards(docs: Sequence[str], sp, out_dir: str | Path, *, val_every: int = VAL_EVERY,
                 shard_tokens: int = 100_000_000, prefix: str = "fineweb") -> dict[str, list[Path]]:
    """Tokenize a corpus into ``{prefix}_{val,train}_NNNNNN.bin`` shards, split by document."""
    train_docs, val_docs = split_documents(docs, val_every)
    written: dict[str, list[Path]] = {}
    for split, split_docs in (("val", val_docs), ("train", train_docs)):
        stream = encode_documents(sp, split_docs)
        written[split] = [
            write_shard(Path(out_dir) / f"{prefix}_{split}_{i:06d}.bin", stream[start : start + shard_tokens])
            for i, start in enumerate(range(0, max(stream.numel(), 1), shard_tokens))
        ]
    return written


# ----------------------------------------------------------------------------- CLI input


def load_tokens(path_or_text: str | Path, tokenizer=None) -> torch.Tensor:
    """Tokens from a challenge shard, or from a UTF-8 text file (needs ``tokenizer``).

    ``tokenizer`` is a SentencePiece processor or a path to a ``.model``. A text file is one
    document: BOS + its tokens. Errors are ValueError/FileNotFoundError with one line naming
    the file.
    """
    path = Path(path_or_text)
    if not path.is_file():
        raise FileNotFoundError(f"token file not found: {path}")
    if is_shard(path) or path.suffix == ".bin":
        # A .bin is always a shard: a wrong header must be rejected, not read as text.
        return torch.from_numpy(read_shard(path).astype(np.int64))
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ShardError(f"{path}: neither a challenge shard nor UTF-8 text (bad byte at offset {exc.start})") from None
    if "\x00" in text:
        raise ShardError(f"{path}: neither a challenge shard nor text (NUL byte at offset {text.index(chr(0))})")
    if tokenizer is None:
        raise ValueError(f"{path}: a text file needs a tokenizer (SentencePiece .model) to be tokenized")
    if isinstance(tokenizer, (str, Path)):
        from .metric import load_tokenizer

        tokenizer = load_tokenizer(tokenizer)
    return encode_documents(tokenizer, [text])


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m reference_model.data OUT_DIR``: write challenge-format shards of a corpus."""
    import argparse
    import shutil

    ap = argparse.ArgumentParser(prog="python -m reference_model.data",
                                 description="Tokenize a corpus into fineweb_{val,train}_NNNNNN.bin shards (split by document).")
    ap.add_argument("out_dir", help="folder for the shards (use it as DATA_PATH)")
    ap.add_argument("--text", nargs="*", default=[], help="UTF-8 text files, one document each (default: the embedded pydoc corpus)")
    ap.add_argument("--tokenizer", help="SentencePiece .model (default: the embedded corpus's cached BPE)")
    ap.add_argument("--vocab-size", type=int, default=512, help="vocab of the default BPE (ignored with --tokenizer)")
    args = ap.parse_args(argv)
    from .metric import load_tokenizer

    tok_path = Path(args.tokenizer) if args.tokenizer else default_tokenizer_path(args.vocab_size)
    docs = [Path(t).read_text(encoding="utf-8") for t in args.text] if args.text else corpus_documents()
    written = build_shards(docs, load_tokenizer(tok_path), args.out_dir)
    if not args.tokenizer:  # keep the tokenizer next to the shards, for TOKENIZER_PATH
        shutil.copyfile(tok_path, Path(args.out_dir) / "tokenizer.model")
    for split, files in written.items():
        print(f"{split}: " + " ".join(str(f) for f in files))


if __name__ == "__main__":
    main()
