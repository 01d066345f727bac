"""Audit a real submission's own ``train_gpt.py``: run its eval on CPU in a sandboxed child.

Parent side: ``audit`` (the pipeline and the verdict), ``plan`` (everything read statically,
runnable under ``--python``), ``analyze`` (env vars, tiny config, model build, eval bindings),
``inline`` (eval blocks written inside main), ``static`` (ast leak-pattern checks
GA-STATIC-001..007), ``adapter`` (the adapter file format), ``runner`` (the sandbox),
``script_source`` (the causality engine's NllSource) and ``report`` (a CausalityReport).
Child side only: ``child`` (the protocol loop), ``shims`` (CPU stand-ins for CUDA-only code)
and ``capture`` (per-token NLLs from F.cross_entropy and the scored-set inference).
"""
