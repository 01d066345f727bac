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
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from ..errors import BadInput, one_line
from ..output import SCHEMA_VERSION, Format, Heartbeat, dumps_json, emit, stderr_console
from .common import guarded, parse_settings

if TYPE_CHECKING:  # torch: imported inside the command, never for --help
    from reference_model.evaluate import Scored


# Above this many parameters a CPU eval of a whole shard runs for hours (the seed model: ~27M).
LARGE_ON_CPU = 5_000_000
# Evaluators that run the transformer exactly once per batch of windows (no adaptation passes).
ONE_PASS_PER_BATCH = ("sliding", "standard", "ngram_target", "unnormalized")


def expected_passes(evaluator: Any, hp: Any, num_targets: int) -> int | None:
    """Transformer passes ``evaluator`` will make over ``num_targets`` targets; None when unknown."""
    from reference_model.evaluate import enumerate_windows

    s = evaluator.settings
    one_pass = evaluator.name in ONE_PASS_PER_BATCH or (evaluator.name == "slot" and s.impl == "fast")
    if not one_pass:
        return None
    seq = s.seq_len or hp.eval_seq_len
    stride = seq if not hasattr(s, "stride") else (s.stride or hp.eval_stride)
    try:
        windows = enumerate_windows(num_targets, seq, stride, s.tail)
    except ValueError:
        return None  # the evaluator itself will say what is wrong
    batch = s.batch
    if evaluator.name == "standard" and batch == 0:
        from reference_model.evaluate.standard import seed_batch_seqs

        batch = seed_batch_seqs(hp.val_batch_size, seq)
    return -(-len(windows) // batch)


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
        evaluator: Annotated[str, typer.Option("--evaluator", "-e", help="Evaluator name: {evaluators}.")] = "sliding",
        settings: Annotated[Optional[list[str]], typer.Option("--set", help="Evaluator setting key=value (repeatable), e.g. --set mask=context.")] = None,
        checkpoint: Annotated[Optional[Path], typer.Option(help="Seed-format .pt state_dict or .ptz export; shape from env vars (PRESET, NUM_LAYERS, ...). Default: the tiny demo model.")] = None,
        tokens: Annotated[Optional[Path], typer.Option(help="Challenge shard (.bin) or UTF-8 text file. Default: the embedded corpus's validation stream.")] = None,
        tokenizer: Annotated[Optional[Path], typer.Option(help="SentencePiece .model for the byte count (and to tokenize text).")] = None,
        max_tokens: Annotated[Optional[int], typer.Option(help="Keep only the first N tokens of the stream.")] = None,
        format: Annotated[Format, typer.Option("--format", help="Report format.")] = Format.table,
        output: Annotated[Optional[Path], typer.Option(help="Write the report here (atomically) instead of stdout.")] = None,
    ) -> None:
        """Score a token stream with one evaluator and print val_loss / val_bpb."""
        from ..inputs import evaluator_settings, load_eval_inputs, output_file

        output_file(output)
        ev = evaluator_settings(evaluator, parse_settings(settings))
        inputs = load_eval_inputs(checkpoint, tokens, tokenizer, max_tokens)
        stderr_console.print(f"evaluating {ev.describe()} on {inputs.tokens.numel():,} tokens", markup=False)
        n_params = sum(p.numel() for p in inputs.model.parameters())
        if n_params > LARGE_ON_CPU:
            stderr_console.print(f"eval: a {n_params / 1e6:.0f}M-parameter model on CPU: a full validation shard takes "
                                 "hours (progress every 30 s; --max-tokens N scores a prefix)", markup=False)
        heartbeat = Heartbeat("eval", expected_passes(ev, inputs.hp, inputs.tokens.numel() - 1), unit="batches")
        blocks = getattr(inputs.model, "blocks", None)
        # Every pass through the transformer (scoring or adapting) runs the first block once.
        hook = blocks[0].register_forward_hook(lambda *_: heartbeat.tick()) if blocks else None
        t0 = time.perf_counter()
        try:
            with heartbeat:
                scored = ev.score(inputs.model, inputs.tokens, inputs.luts)
        except ValueError as exc:  # settings that only fail against this model/stream (e.g. stride > seq_len)
            raise BadInput(f"{evaluator}: {one_line(exc)}") from None
        finally:
            if hook is not None:
                hook.remove()
        seconds = time.perf_counter() - t0
        chosen = dataclasses.asdict(ev.settings)  # every setting, defaults included: the run is reproducible
        for key, model_value in (("seq_len", inputs.hp.eval_seq_len), ("stride", inputs.hp.eval_stride)):
            if chosen.get(key) == 0:  # 0 means "the model's EVAL_SEQ_LEN / EVAL_STRIDE": say which
                chosen[key] = model_value
        result = eval_result(scored, evaluator=evaluator, settings=chosen, model_source=inputs.model_source,
                             tokens_source=inputs.tokens_source, seconds=seconds)
        emit(render(result, format), output)
        stderr_console.print(f"{evaluator}: val_bpb {scored.val_bpb:.6f} ({seconds:.1f}s)")
