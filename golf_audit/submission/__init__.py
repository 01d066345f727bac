"""Audit a real submission's own ``train_gpt.py``: run its eval on CPU in a sandboxed child.

Modules: ``analyze`` (ast: env vars, tiny config, model build, eval discovery), ``inline``
(eval blocks written inside main), ``static`` (ast leak-pattern checks), ``shims`` and
``capture`` and ``child`` (inside the child only), ``runner`` (the sandbox), ``source``
(the NllSource the causality engine drives) and ``audit`` (the verdict).
"""
