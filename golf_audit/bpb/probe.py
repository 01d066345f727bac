"""golf-audit's probe tokenizer: a small SentencePiece BPE with every kind of piece.

Trained at run time (once, cached) on CPython's ``pydoc_data.topics``, with byte fallback (so
it has 256 byte pieces), an extra control symbol and a user-defined symbol besides pad, BOS,
EOS and unknown. A script's byte-table builder that is exact on it is exact in its logic for
every piece kind, even where the folder's own tokenizer is not at hand; padding ids past its
vocabulary check the handling of unused ids.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

VOCAB = 512
PADDING = 8  # table entries past the tokenizer the builder is asked for


def probe_tokenizer_path() -> Path:
    """The cached probe tokenizer's ``.model`` (trained on first use)."""
    import sentencepiece as spm

    from reference_model.data import cache_root, corpus_documents, corpus_fingerprint

    docs = corpus_documents()
    path = cache_root() / f"bpb_probe_{VOCAB}_{corpus_fingerprint(docs)}.model"
    if path.is_file():
        return path
    lines = [ln for d in docs for ln in d.splitlines() if ln.strip()]
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        prefix = os.path.join(tmp, "probe")
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(lines), model_prefix=prefix, model_type="bpe", vocab_size=VOCAB,
            byte_fallback=True, character_coverage=0.98, pad_id=0, bos_id=1, eos_id=2, unk_id=3,
            control_symbols=["<ctl>"], user_defined_symbols=["<sep>"], num_threads=1, input_sentence_size=0,
            shuffle_input_sentence=False, max_sentence_length=16384, minloglevel=2)
        os.replace(prefix + ".model", path)
    return path
