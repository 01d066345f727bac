"""``golf-audit bpb-proof``: prove a script's bpb byte count against its tokenizer.

Examples::

    golf-audit bpb-proof records/track_10min_16mb/2026-04-19_X/ > bpb-proof.md
    golf-audit bpb-proof train_gpt.py --tokenizer fineweb_1024_bpe.model --text sample.txt

Exit codes: 0 the byte count is exact, 1 it is wrong (the report names the bug class and the
bpb inflation), 2 bad input or cannot conclude (no tokenizer, a builder that cannot run, no
sandbox without --unsafe-no-sandbox).
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import EXIT_BAD_INPUT, EXIT_PASS, EXIT_VIOLATION, BadInput
from ..findings import Status
from ..output import emit, stderr_console
from .common import guarded


def register(app: typer.Typer) -> None:
    @app.command("bpb-proof")
    @guarded
    def bpb_proof_command(
        script: Annotated[Path, typer.Argument(help="A submission's train_gpt.py or records folder.", show_default=False)],
        *,
        tokenizer: Annotated[Optional[Path], typer.Option(help="The tokenizer the script uses (SentencePiece .model or TokenMonster .vocab). Default: the one the folder ships, or the script's TOKENIZER_PATH found in $GOLF_AUDIT_TOKENIZERS.")] = None,
        text: Annotated[Optional[Path], typer.Option(help="A UTF-8 text to count the bytes of (documents separated by blank lines). Default: CPython's pydoc_data.topics.")] = None,
        unsafe_no_sandbox: Annotated[bool, typer.Option("--unsafe-no-sandbox", help="Run the script's byte-table builder without the OS sandbox when none is available. Unsafe.")] = False,
        output: Annotated[Optional[Path], typer.Option(help="Write the Markdown here (atomically) instead of stdout.")] = None,
    ) -> None:
        """The script's per-token byte tables (built by its own code in the sandbox, or shipped) against the tokenizer: per-token disagreements by bug class, the bytes counted on a real text and the bpb inflation, the tokens decoded back, and the bpb denominator. Prints a Markdown section a tokenizer PR can paste."""
        from ..bpb.audit import audit_bpb
        from ..bpb.proof import text_file
        from ..bpb.report import markdown, verdict

        docs, name = text_file(text) if text is not None else (None, None)
        say = lambda msg: stderr_console.print(f"bpb-proof: {msg}", markup=False)  # noqa: E731
        say(f"auditing the byte accounting of {script}")
        audit = audit_bpb(script, tokenizer=tokenizer, docs=docs, text_name=name, dynamic=True,
                          unsafe_no_sandbox=unsafe_no_sandbox)
        if audit.script is None:
            raise BadInput(f"{script}: no train_gpt.py to prove")
        if audit.tokenizer is None:
            raise BadInput(f"no tokenizer: {audit.tokenizer_note}")
        command = "golf-audit bpb-proof " + " ".join(shlex.quote(a) for a in sys.argv[2:]) \
            if Path(sys.argv[0]).name == "golf-audit" else None
        emit(markdown(audit, command), output)
        result = verdict(audit)
        say(result.value)
        raise typer.Exit({Status.PASS: EXIT_PASS, Status.FAIL: EXIT_VIOLATION}.get(result, EXIT_BAD_INPUT))
