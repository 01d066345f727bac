"""``python -m golf_audit.cli``: the same as the ``golf-audit`` console script."""

from . import main

main()
