"""A faithful, readable reimplementation of the Parameter Golf seed PR's stack.

Runs on CPU (fp32) for tests and demos and on CUDA (bf16) for real runs. ``golf_audit``
depends on this package; this package never imports ``golf_audit``.

The top-level names load on first use (PEP 562), so a torch-free part of the package (the
configuration, the canonical byte count in ``bytecount``) can be imported without torch.
"""

from __future__ import annotations

from typing import Any

__all__ = ["GPT", "Hyperparameters", "PRESETS", "TINY"]


def __getattr__(name: str) -> Any:
    if name in ("Hyperparameters", "PRESETS", "TINY"):
        from . import config

        return getattr(config, name)
    if name == "GPT":
        from .model import GPT

        return GPT
    raise AttributeError(f"module 'reference_model' has no attribute {name!r}")
