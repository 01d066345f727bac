"""Byte accounting of bits per byte: is the bpb's denominator the true byte count of the text?

``tokenizers`` (canonical bytes per token; SentencePiece and TokenMonster), ``script`` (the
script's byte-table builders and bpb denominators, read by ast), ``lut_child`` (runs an
extracted builder in the OS sandbox), ``proof`` (table vs tokenizer, real-text accounting,
decode check), ``audit`` (one folder or script: the data behind GA-BPB-*), ``report`` (check
outcomes and the Markdown proof of ``golf-audit bpb-proof``), ``probe`` (golf-audit's probe
tokenizer). Nothing here imports torch at module level, so the sandbox child stays light.
"""

RULE = ("Challenge README: bpb = bits over the UTF-8 bytes of the validation text; a tokenizer change must "
        "prove the byte count with certainty")
