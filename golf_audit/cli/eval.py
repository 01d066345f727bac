"""``golf-audit eval``: run one evaluator on a model and a token stream; print val_loss/val_bpb.

Examples::

    golf-audit eval                                   # sliding window, demo model, embedded corpus
    golf-audit eval --evaluator slot --set mask=context
    PRESET=seed golf-audit eval --evaluator sliding --checkpoint final_model.pt \\
        --tokens fineweb_val_000000.bin --tokenizer fineweb_1024_bpe.model --format json
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from reference_model.evaluate import REGISTRY, Scored, get_evaluator

from ..errors import BadInput, one_line
from ..inputs import load_eval_inputs
from ..output import Format, dumps_json, emit, stderr_console
from .common import guarded, parse_settings

from ..output import SCHEMA_VERSION


def eval_result(scored: Scored, *, evaluator: str, settings: dict[str, Any], model_source: str,
                tokens_source: str, seconds: float) -> dict[str, Any]:
    """The JSON-shaped result of one evaluation (``exactly_once``: the same run counting each
    target once, present when the evaluator used the seed's window enumeration)."""
    result = {
        "schema_version": SCHEMA_VERSION,
        "evaluator": evaluator,
        "settings": settings,
        "val_loss": scored.val_loss,
        "val_bpb": scored.val_bpb,
        "tokens_scored": scored.tokens,
        "bytes_scored": scored.bytes,
        "targets": int(scored.count.size),
        "unscored_targets": int((scored.count == 0).sum()),
        "duplicate_scorings": scored.duplicate_scorings,
        "model": model_source,
        "tokens": tokens_source,
        "seconds": round(seconds, 3),
    }
    once = scored.info.get("once")
    if once is not None:
        result["exactly_once"] = {"val_loss": once["val_loss"], "val_bpb": once["val_bpb"], "tokens_scored": once["tokens"]}
    return result


def render(result: dict[str, Any], fmt: Format) -> str:
    if fmt is Format.json:
        return dumps_json(result)
    rows = [
        ("evaluator", result["evaluator"]),
        ("settings", ", ".join(f"{k}={v}" for k, v in result["settings"].items())),
        ("val_loss", f"{result['val_loss']:.8f}"),
        ("val_bpb", f"{result['val_bpb']:.8f}"),
        ("tokens scored", f"{result['tokens_scored']:,}"),
        ("bytes scored", f"{result['bytes_scored']:,}"),
        ("duplicate scorings", f"{result['duplicate_scorings']:,}"),
        *([("val_bpb, each target once", f"{result['exactly_once']['val_bpb']:.8f} (same run, tail re-scorings dropped)")]
          if "exactly_once" in result else []),
        ("unscored targets", f"{result['unscored_targets']:,}"),
        ("model", result["model"]),
        ("tokens", result["tokens"]),
        ("seconds", f"{result['seconds']:.2f}"),
    ]
    if fmt is Format.markdown:
        return "\n".join(["| quantity | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows])
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def register(app: typer.Typer) -> None:
    @app.command("eval")
    @guarded
    def eval_command(
        evaluator: Annotated[str, typer.Option("--evaluator", "-e", help=f"Evaluator name: {', '.join(sorted(REGISTRY))}.")] = "sliding",
        settings: Annotated[Optional[list[str]], typer.Option("--set", help="Evaluator setting key=value (repeatable), e.g. --set mask=context.")] = None,
        checkpoint: Annotated[Optional[Path], typer.Option(help="Seed-format .pt state_dict or .ptz export; shape from env vars (PRESET, NUM_LAYERS, ...). Default: the tiny demo model.")] = None,
        tokens: Annotated[Optional[Path], typer.Option(help="Challenge shard (.bin) or UTF-8 text file. Default: the embedded corpus's validation stream.")] = None,
        tokenizer: Annotated[Optional[Path], typer.Option(help="SentencePiece .model for the byte count (and to tokenize text).")] = None,
        max_tokens: Annotated[Optional[int], typer.Option(help="Keep only the first N tokens of the stream.")] = None,
        format: Annotated[Format, typer.Option("--format", help="Report format.")] = Format.table,
        output: Annotated[Optional[Path], typer.Option(help="Write the report here (atomically) instead of stdout.")] = None,
    ) -> None:
        """Score a token stream with one evaluator and print val_loss / val_bpb."""
        values = parse_settings(settings)
        try:
            ev = get_evaluator(evaluator, values)
        except (KeyError, ValueError) as exc:
            raise BadInput(one_line(exc)) from None
        inputs = load_eval_inputs(checkpoint, tokens, tokenizer, max_tokens)
        stderr_console.print(f"evaluating {ev.describe()} on {inputs.tokens.numel():,} tokens")
        t0 = time.perf_counter()
        try:
            scored = ev.score(inputs.model, inputs.tokens, inputs.luts)
        except ValueError as exc:  # settings that only fail against this model/stream (e.g. stride > seq_len)
            raise BadInput(f"{evaluator}: {one_line(exc)}") from None
        seconds = time.perf_counter() - t0
        chosen = dataclasses.asdict(ev.settings)  # every setting, defaults included: the run is reproducible
        for key, model_value in (("seq_len", inputs.hp.eval_seq_len), ("stride", inputs.hp.eval_stride)):
            if chosen.get(key) == 0:  # 0 means "the model's EVAL_SEQ_LEN / EVAL_STRIDE": say which
                chosen[key] = model_value
        result = eval_result(scored, evaluator=evaluator, settings=chosen, model_source=inputs.model_source,
                             tokens_source=inputs.tokens_source, seconds=seconds)
        emit(render(result, format), output)
        stderr_console.print(f"{evaluator}: val_bpb {scored.val_bpb:.6f} ({seconds:.1f}s)")
