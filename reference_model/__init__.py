"""A faithful, readable reimplementation of the Parameter Golf seed PR's stack.

Runs on CPU (fp32) for tests and demos and on CUDA (bf16) for real runs. ``golf_audit``
depends on this package; this package never imports ``golf_audit``.
"""

from .config import PRESETS, TINY, Hyperparameters
from .model import GPT

__all__ = ["GPT", "Hyperparameters", "PRESETS", "TINY"]
