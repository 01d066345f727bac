"""``golf-audit causality``: flip tests that say whether an evaluator's scores leak the future.

Examples::

    golf-audit causality                                # the whole zoo on the demo model (self-test)
    golf-audit causality --evaluator slot --set mask=context --flips 128
    PRESET=seed golf-audit causality --evaluator slot --checkpoint final_model.int6.ptz \\
        --tokens fineweb_val_000000.bin --tokenizer fineweb_1024_bpe.model --format json --output audit.json

Exit codes: the zoo run exits 0 when every evaluator gets its expected verdict, 1 when one
deviates; one evaluator exits 0 pass / 1 fail. 2: bad input or cannot conclude.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from ..causality import DEFAULT_FLIPS, DEFAULT_NORM_TOLERANCE, DEFAULT_TOLERANCE
from ..causality.zoo import AUDIT_STREAM_TOKENS
from ..errors import BadInput, one_line
from ..output import Format, emit, stderr_console
from .common import guarded, parse_settings

if TYPE_CHECKING:  # the engine imports torch: loaded inside the command, never for --help
    from ..causality.engine import AuditOptions
    from ..causality.report import CausalityReport


def audit_target(target: Path, options: AuditOptions, workers: int, *, inline: str | None = None,
                 python: str | None = None, env: dict[str, str] | None = None,
                 functions: list[str] | None = None, adapter: Path | None = None,
                 unsafe_no_sandbox: bool = False) -> CausalityReport:
    """Audit a submission's own train_gpt.py (or records folder) in a sandboxed child process."""
    from ..submission.audit import audit_script
    from ..submission.report import to_causality_report

    say = lambda msg: stderr_console.print(f"causality: {msg}", markup=False)  # noqa: E731
    audit = audit_script(target, functions=functions, inline_selector=inline, python=python, flips=options.flips,
                         seed=options.seed, tolerance=options.tolerance, env=env, adapter=adapter, progress=say,
                         unsafe_no_sandbox=unsafe_no_sandbox)
    return to_causality_report(audit, options.flips, options.seed, options.norm_tolerance)


def min_stream_tokens(settings: object, hp: object) -> tuple[int, str]:
    """(tokens, why): the shortest stream on which an evaluator's flips can show a leak.

    Two windows: a leak across windows (a delta shared by a batch, a cache, an adaptation)
    needs a second window to land in. On a stream of one window such evaluators pass; that
    PASS would say nothing, so a shorter stream is refused.
    """
    seq = int(getattr(settings, "seq_len", 0) or getattr(hp, "eval_seq_len"))
    stride = getattr(settings, "stride", None)
    step = min(seq, int(stride or getattr(hp, "eval_stride"))) if stride is not None else seq
    return seq + step + 1, f"two windows of {seq} at stride {step}"


def check_stream_length(available: int, requested: int, evaluators: list[tuple[str, object]], hp: object,
                        tokens_source: str) -> None:
    """Refuse an audit stream too short for any of ``evaluators`` (name, settings)."""
    length = min(available, requested)
    for name, settings in evaluators:
        need, why = min_stream_tokens(settings, hp)
        if length < need:
            where = f"--stream-tokens {requested}" if requested <= available else f"{tokens_source} has {available} tokens"
            raise BadInput(f"{where}: {name} needs >= {need} ({why})")


def register(app: typer.Typer) -> None:
    @app.command("causality")
    @guarded
    def causality_command(
        target: Annotated[Optional[Path], typer.Argument(help="A submission's train_gpt.py or records folder: runs its own eval functions on CPU in a sandbox.", show_default=False)] = None,
        *,
        evaluator: Annotated[Optional[str], typer.Option("--evaluator", "-e", help="Audit one evaluator instead of the zoo: {evaluators}.")] = None,
        settings: Annotated[Optional[list[str]], typer.Option("--set", help="Setting of --evaluator, key=value (repeatable), e.g. --set mask=context.")] = None,
        checkpoint: Annotated[Optional[Path], typer.Option(help="Seed-format .pt state_dict or .ptz export (weights_only); shape from env vars (PRESET, NUM_LAYERS, ...). Default: the tiny demo model.")] = None,
        tokens: Annotated[Optional[Path], typer.Option(help="Challenge shard (.bin) or UTF-8 text file. Default: the demo validation stream.")] = None,
        tokenizer: Annotated[Optional[Path], typer.Option(help="SentencePiece .model (bytes, and to tokenize text).")] = None,
        stream_tokens: Annotated[int, typer.Option(help="Length of the audit stream (tokens from the start of the stream).")] = AUDIT_STREAM_TOKENS,
        flips: Annotated[int, typer.Option(help="Flips per evaluator (each is a stream flip and a target flip).")] = DEFAULT_FLIPS,
        seed: Annotated[int, typer.Option(help="Seed of the flip choice and of the wrong tokens.")] = 0,
        tolerance: Annotated[float, typer.Option(help="Largest |ΔNLL| (nats) and |Δ log p| that counts as unchanged.")] = DEFAULT_TOLERANCE,
        norm_tolerance: Annotated[float, typer.Option(help="Largest |Σp - 1| of a row that counts as normalized.")] = DEFAULT_NORM_TOLERANCE,
        workers: Annotated[int, typer.Option(help="Worker processes for the flips (default: CPU cores).")] = 0,
        inline: Annotated[Optional[str], typer.Option(help="TARGET only: audit the eval block of main() under this test, e.g. 'if args.slot_enabled'.")] = None,
        function: Annotated[Optional[list[str]], typer.Option("--function", help="TARGET only: audit just this eval function (repeatable).")] = None,
        python: Annotated[Optional[str], typer.Option(help="TARGET only: run the script under this interpreter (e.g. one that parses 3.12 syntax).")] = None,
        adapter: Annotated[Optional[Path], typer.Option(help="TARGET only: adapter file saying how to build the model and run the eval, with a score hook (see README).")] = None,
        env: Annotated[Optional[list[str]], typer.Option("--env", help="TARGET only: environment for the script, KEY=VALUE (repeatable), over the tiny configuration.")] = None,
        unsafe_no_sandbox: Annotated[bool, typer.Option("--unsafe-no-sandbox", help="TARGET only: run the script without the OS sandbox (bubblewrap) when none is available; the report says so. Unsafe: the code can reach the network and your files.")] = False,
        format: Annotated[Format, typer.Option("--format", "-f", help="Report format.")] = Format.table,
        output: Annotated[Optional[Path], typer.Option(help="Write the report here (atomically) instead of stdout.")] = None,
    ) -> None:
        """Flip tests (stream, target, distribution, normalization) with a verdict per evaluator.

        With no arguments: audit the whole reference evaluator zoo on the tiny demo model (the product's self-test; exit 0 when every verdict equals its expected verdict, 1 when one deviates).

        With TARGET (a submission's train_gpt.py or records folder): run its own eval functions on CPU in a sandboxed child process, beside static checks. With --evaluator: audit one reference evaluator. Exit 0 pass, 1 fail, 2 bad input or cannot conclude.
        """
        from ..inputs import (evaluator_settings, existing, interpreter, non_empty, number,
                              output_file)

        number(flips, "--flips", minimum=1)
        number(seed, "--seed", minimum=0)
        number(tolerance, "--tolerance", minimum=0)
        number(norm_tolerance, "--norm-tolerance", minimum=0)
        number(workers, "--workers", minimum=0)
        number(stream_tokens, "--stream-tokens", minimum=3)
        output_file(output)
        if settings and evaluator is None:
            raise BadInput("--set needs --evaluator")
        script_only = {"--inline": inline, "--function": function, "--python": python, "--adapter": adapter, "--env": env}
        model_only = {"--evaluator": evaluator, "--checkpoint": checkpoint, "--tokens": tokens, "--tokenizer": tokenizer}
        if target is None:
            given = [name for name, value in script_only.items() if value]
            if given:
                raise BadInput(f"{given[0]} needs TARGET (a submission's train_gpt.py or records folder)")
        else:
            given = [name for name, value in model_only.items() if value]
            if given:
                raise BadInput(f"{given[0]} does not apply to TARGET (the script builds its own model and stream)")
            existing(adapter, "--adapter")
            interpreter(python)
            non_empty(function, "--function")
            if inline is not None:
                non_empty([inline], "--inline")

        from ..causality.engine import AuditOptions, default_workers
        from ..causality.render import render
        from ..causality.run import audit_evaluator, audit_stream, audit_zoo
        from ..causality.zoo import ZOO, settings_for, with_geometry
        from ..inputs import load_eval_inputs

        n_workers = workers or default_workers()
        options = AuditOptions(flips=flips, seed=seed, tolerance=tolerance, norm_tolerance=norm_tolerance)
        if target is not None:
            report = audit_target(target, options, n_workers, inline=inline, python=python, env=parse_settings(env),
                                  functions=function, adapter=adapter, unsafe_no_sandbox=unsafe_no_sandbox)
        else:
            pairs = parse_settings(settings)
            # Bad names and settings fail before any loading.
            if evaluator is not None:
                audited = [(evaluator, evaluator_settings(evaluator, with_geometry(evaluator, pairs)).settings)]
            else:
                audited = [(m.label, evaluator_settings(m.evaluator, settings_for(m)).settings) for m in ZOO]
            inputs = load_eval_inputs(checkpoint, tokens, tokenizer)
            check_stream_length(inputs.tokens.numel(), stream_tokens, audited, inputs.hp, inputs.tokens_source)
            stream = audit_stream(inputs.tokens, stream_tokens)
            say = lambda msg: stderr_console.print(f"causality: {msg}", markup=False)  # noqa: E731
            common = dict(workers=n_workers, model_name=inputs.model_source, stream_name=inputs.tokens_source,
                          progress=say)
            short = f" (the stream has only {stream.numel()})" if stream.numel() < stream_tokens else ""
            say(f"auditing {'the zoo' if evaluator is None else evaluator} on {stream.numel()} tokens{short}, "
                f"{flips} flips each, {n_workers} worker(s)")
            if evaluator is None:
                report = audit_zoo(inputs.model, inputs.luts, stream, options, **common)
            else:
                report = audit_evaluator(evaluator, pairs, inputs.model, inputs.luts, stream, options, **common)
        # The exact command goes into Markdown reports; only when run as golf-audit itself (not under tests).
        command = "golf-audit " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if Path(sys.argv[0]).name == "golf-audit" else None
        emit(render(report, format, command=command), output)
        stderr_console.print(f"causality: {one_line(report.summary())} ({report.wall_seconds:.1f} s)", markup=False)
        raise typer.Exit(report.exit_code())
