"""``golf-audit slot-compare``: sliding vs SLOT(scored) vs SLOT(context) on one model: how much is leak.

Examples::

    golf-audit slot-compare                                 # demo model, first 8,193 demo tokens
    golf-audit slot-compare --sweep steps=0,1,2,4,8,16,24,32,48 --plot sweep.png --format markdown
    PRESET=seed golf-audit slot-compare --checkpoint final_model.int6.ptz \\
        --tokens fineweb_val_000000.bin --tokenizer fineweb_1024_bpe.model --set steps=16

Exit codes: 0 measured; 1 the causal variant SLOT(context, window) failed its flip test;
2 bad input or cannot conclude (e.g. a flip test could not run).
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import BadInput
from ..output import Format, emit, stderr_console
from .common import guarded, parse_settings

DEFAULT_TOKENS = 8193  # 8,192 targets: 512 windows at the demo's stride 16 (the seed's enumeration), 16 SLOT batches of 32


def register(app: typer.Typer) -> None:
    @app.command("slot-compare")
    @guarded
    def slot_compare_command(
        *,
        settings: Annotated[Optional[list[str]], typer.Option("--set", help="Shared SLOT setting key=value (repeatable): steps, lr, lr_min, betas, eps, wd, logit_bias, batch, stride, seq_len, tail.")] = None,
        checkpoint: Annotated[Optional[Path], typer.Option(help="Seed-format .pt state_dict or .ptz export (weights_only); shape from env vars. Default: the tiny demo model.")] = None,
        tokens: Annotated[Optional[Path], typer.Option(help="Challenge shard (.bin) or UTF-8 text file. Default: the demo validation stream.")] = None,
        tokenizer: Annotated[Optional[Path], typer.Option(help="SentencePiece .model (bytes, and to tokenize text).")] = None,
        max_tokens: Annotated[int, typer.Option(help="Use the first N tokens of the stream (0: all).")] = DEFAULT_TOKENS,
        batch_variant: Annotated[bool, typer.Option("--batch-variant/--no-batch-variant", help="Also run SLOT(context, batch): one delta shared by a batch of windows.")] = True,
        sweep: Annotated[Optional[str], typer.Option(help="Repeat over one setting, e.g. steps=0,1,2,4,8,16,24,32,48 or lr=0.001,0.008,0.03.")] = None,
        plot: Annotated[Optional[Path], typer.Option(help="Write the sweep as a PNG here (needs --sweep).")] = None,
        flips: Annotated[int, typer.Option(help="Flips per variant for its causality verdict (0: skip the flip test).")] = 8,
        seed: Annotated[int, typer.Option(help="Seed of the flip choice.")] = 0,
        workers: Annotated[int, typer.Option(help="Worker processes for the flip tests (default: CPU cores).")] = 0,
        threads: Annotated[int, typer.Option(help="torch threads for the comparison runs (1 suits the small demo model on a shared machine).")] = 1,
        format: Annotated[Format, typer.Option("--format", "-f", help="Report format.")] = Format.table,
        output: Annotated[Optional[Path], typer.Option(help="Write the report here (atomically) instead of stdout.")] = None,
    ) -> None:
        """How much of a SLOT gain is leakage: bpb of sliding and of SLOT with the scored vs the context mask."""
        import torch

        from ..causality.engine import default_workers
        from ..inputs import load_eval_inputs
        from ..slotcmp.compare import check_finite, compare, parse_sweep, validate_settings
        from ..slotcmp.plot import write_plot
        from ..slotcmp.render import render

        from ..inputs import evaluator_settings, number, output_file

        shared = parse_settings(settings)
        validate_settings(shared)
        evaluator_settings("slot", shared)  # ranges: no NaN, negative lr, momentum >= 1 ...
        sweep_spec = parse_sweep(sweep)
        for value in sweep_spec[1] if sweep_spec else []:
            evaluator_settings("slot", {**shared, sweep_spec[0]: value}, "--sweep")
        if plot is not None and sweep_spec is None:
            raise BadInput("--plot needs --sweep (there is nothing to plot without a sweep)")
        output_file(plot, "--plot")
        output_file(output)
        number(flips, "--flips", minimum=0)
        number(seed, "--seed", minimum=0)
        number(workers, "--workers", minimum=0)
        number(threads, "--threads", minimum=1)
        if max_tokens == 1 or max_tokens < 0:
            raise BadInput(f"--max-tokens must be 0 (all) or >= 2, got {max_tokens}")
        torch.set_num_threads(threads)
        inputs = load_eval_inputs(checkpoint, tokens, tokenizer, max_tokens=max_tokens or None)
        say = lambda msg: stderr_console.print(f"slot-compare: {msg}", markup=False)  # noqa: E731
        result = compare(inputs.model, inputs.luts, inputs.tokens, shared, include_batch=batch_variant, flips=flips,
                         seed=seed, workers=workers or default_workers(), sweep=sweep_spec,
                         model_name=inputs.model_source, stream_name=inputs.tokens_source, progress=say)
        check_finite(result)
        if plot is not None:
            write_plot(result, plot)
            say(f"wrote {plot}")
        # The exact command goes into the report (reproducibility); only when run as golf-audit itself.
        command = "golf-audit " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if Path(sys.argv[0]).name == "golf-audit" else None
        plot_ref = None if plot is None else (plot.name if output is not None and plot.parent == output.parent else str(plot))
        emit(render(result, format, command=command, plot=plot_ref), output)
        stderr_console.print(f"slot-compare: leak {result.leak_bpb:+.4f} bpb ({result.seconds:.1f} s)", markup=False)
        raise typer.Exit(result.exit_code())
