"""Audit a real submission's own ``train_gpt.py``: run its own entry point on CPU in a sandboxed child.

Parent side: ``audit`` (the pipeline and the per-concern verdict), ``analyze`` (env vars, the
tiny configuration of the submitted run, scoring functions, validation-data consumers),
``inline`` (inline eval blocks made replayable), ``static`` (ast leak-pattern checks
GA-STATIC-001..009, on the script and the helper modules it imports), ``cover`` (GA-COVER-001), ``doccheck`` (GA-DOC-001), ``pipeline`` (the
whole entry point on flipped streams), ``adapter`` (the adapter file format), ``runner`` (the
sandbox), ``twin`` (a second child sharing the flip replays), ``script_source`` (a replayed call as the causality engine's NllSource), ``report``
(a CausalityReport) and ``sweep`` (a whole tree of scripts). Child side only: ``child`` (the
protocol loop), ``runtime`` (the script run by its entry point, its scoring calls frozen and
replayed), ``shims``/``ssm_shims`` (CPU stand-ins for CUDA-only code), ``fakedata`` (synthetic
shards and tokenizer) and ``capture`` (per-token NLLs and the scored-set inference).
"""
