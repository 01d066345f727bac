"""The sandboxed child: runs a submission script's own entry point under CPU shims, then replays its evals.

Run as ``python -m golf_audit.submission.child`` by ``runner.ChildProcess``; never imported by
the parent. Protocol: one JSON object per line. The first line on stdin is the setup (script
path, scoring function names, the audit stream, seed); the child runs the script's entry point
once (the baseline: every scoring call is recorded and frozen, see ``runtime``) and answers with
what ran. Then it answers one line per request until ``{"op": "exit"}`` or EOF:

* ``{"op": "run", "call": k, "tokens": [...]}``: replay recorded call k on a stream; the answer
  holds the per-target NLLs of its scored set (inferred on the first replay from the function's
  own returned val_loss/val_bpb, then fixed), each target's scoring row, and requested logprobs;
* ``{"op": "pipeline", "tokens": [...]}``: run the whole entry point again on that stream and
  answer the per-target NLLs of every scoring call, under each call's fixed scored-set rule.

Answers go to a private copy of the original stdout; the script's own prints are redirected to
stderr, which the parent keeps as evidence. An adapter file (``adapter.py``) replaces the
entry point with its own ``build_model``/``evaluate``.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from typing import Any

PROTOCOL_OUT = None  # set in main(): the only channel to the parent


def reply(obj: dict[str, Any]) -> None:
    PROTOCOL_OUT.write(json.dumps(obj, default=_jsonable) + "\n")
    PROTOCOL_OUT.flush()


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def failure(stage: str, exc: BaseException) -> dict[str, Any]:
    tail = traceback.format_exception(type(exc), exc, exc.__traceback__)[-3:]
    return {"ok": False, "error": f"{stage}: {type(exc).__name__}: {exc}", "trace": "".join(tail)[-1500:]}


class Session:
    """The script's runtime, the fixed scored-set rule of each call, and the replay answers."""

    def __init__(self, setup: dict[str, Any]) -> None:
        import numpy as np
        import torch

        from . import shims
        from .runtime import ScriptRuntime, install_copy_rules

        self.np, self.torch = np, torch
        torch.set_num_threads(int(setup.get("threads", 1)))
        shims.install()
        install_copy_rules()
        self.tokens = np.asarray(setup["tokens"], dtype=np.int64)
        self.vocab = int(setup["vocab"])
        sys.path.insert(0, os.path.dirname(os.path.abspath(setup["script"])))
        source = open(setup["script"], encoding="utf-8").read()
        self.rt = ScriptRuntime(setup["script"], source, list(setup.get("scoring", [])), self.tokens, self.vocab,
                                int(setup.get("seed", 0)), int(setup.get("row_len", 0)),
                                coverage=bool(setup.get("coverage", True)), inline=setup.get("inline"))
        shims.install_data(self.vocab, self.rt.data_file)
        self.rules: dict[int, Any] = {}
        self.rt.resume = dict(setup.get("resume", {}))
        if setup.get("thread_plan"):
            at, threads = setup["thread_plan"]
            self.rt.plan_threads(float(at), int(threads))
        self.rt.run_entry(resume=self.rt.resume)
        self.baseline = {rec.index: self._score(rec.calls, rec.returned) for rec in self.rt.records}
        for k, (scored, _why) in self.baseline.items():
            if scored is not None:
                self.rules[k] = scored.rule

    def _score(self, calls: list[Any], returned: tuple[Any, Any], rule: Any = None,
               tokens: Any = None) -> tuple[Any, str]:
        from . import capture as cap

        tokens = self.tokens if tokens is None else tokens
        inputs, targets = tokens[:-1], tokens[1:]
        rows, unmatched = cap.match_rows(calls, targets)
        if not calls:
            return None, "no per-token NLL was captured (no cross_entropy call without grad)"
        if unmatched and not rows:
            return None, f"none of the {unmatched} captured row(s) matches a place in the audit stream"
        scored, why = cap.infer(rows, returned, targets.size, inputs, targets, self.rt.luts, [], rule)
        if scored is not None:
            scored.unmatched = unmatched
        return scored, why

    def summary(self) -> dict[str, Any]:
        err = self.rt.entry_error
        calls = []
        for rec in self.rt.records:
            scored, why = self.baseline[rec.index]
            info: dict[str, Any] = {"id": rec.index, "name": rec.name, "def_line": rec.def_line,
                                    "call_line": rec.call_line, "ordinal": rec.ordinal, "error": rec.error,
                                    "error_line": rec.error_line, "returned": list(rec.returned),
                                    "replayable": rec.frozen is not None, "copy_error": rec.copy_error,
                                    "events": len(rec.calls), "stream_tensors": len(rec.stream_slots),
                                    "sidecar_tensors": len(rec.sidecar_slots), "seconds": rec.seconds, "adapted": rec.adapted,
                                    "capture_error": why}
            if scored is not None:
                info["rule"] = scored.rule.describe()
                info["counts"] = scored.count.tolist()
                info["bpb_matches"] = scored.bpb_matches
                info["rebuilt"] = [scored.rebuilt_loss, scored.rebuilt_bpb]
                info["unmatched_rows"] = scored.unmatched
            calls.append(info)
        return {"ok": True, "vocab_size": self.vocab, "calls": calls, "entry_seconds": self.rt.entry_seconds,
                "resumed": self.rt.resumed,
                "entry_error": None if err is None else {"error": str(err), "line": err.line, "trace": err.trace},
                "coverage": {k: sorted(v) for k, v in self.rt.coverage.items()}}

    def run(self, request: dict[str, Any]) -> dict[str, Any]:
        np = self.np
        rec = self.rt.records[int(request["call"])]
        tokens = np.asarray(request["tokens"], dtype=np.int64)
        calls, returned = self.rt.replay(rec, tokens)
        scored, why = self._score(calls, returned, self.rules.get(rec.index), tokens)
        if scored is None:
            return {"ok": False, "error": why}
        self.rules.setdefault(rec.index, scored.rule)
        units = np.full(tokens.size - 1, -1, dtype=np.int64)
        for k, (start, vals) in enumerate(scored.scorings):
            units[start:start + vals.size] = k
        logprobs = {}
        for pos in request.get("logprob_positions", []):
            if int(pos) in scored.scored_by:
                row, j = scored.scored_by[int(pos)]
                lp = row.logprobs(calls, j)
                if lp is not None:
                    logprobs[str(int(pos))] = lp.tolist()
        return {"ok": True, "nll": scored.nll.tolist(), "count": scored.count.tolist(), "nll_sum": scored.nll_sum,
                "units": units.tolist(), "times": scored.times().tolist(), "logprobs": logprobs,
                "tokens": scored.tokens, "bytes": scored.nbytes,
                "info": {"rule": scored.rule.describe(), "function_val_loss": returned[0],
                         "function_val_bpb": returned[1], "rebuilt_val_loss": scored.rebuilt_loss,
                         "rebuilt_val_bpb": scored.rebuilt_bpb, "bpb_matches": scored.bpb_matches,
                         "rows": len(scored.scorings)}}

    def pipeline(self, request: dict[str, Any]) -> dict[str, Any]:
        np = self.np
        tokens = np.asarray(request["tokens"], dtype=np.int64)
        records = self.rt.pipeline(tokens)
        out = []
        for rec in records:
            base = next((r for r in self.rt.records if r.name == rec.name and r.ordinal == rec.ordinal), None)
            rule = self.rules.get(base.index) if base is not None else None
            entry: dict[str, Any] = {"name": rec.name, "ordinal": rec.ordinal, "error": rec.error}
            if rule is not None:
                scored, why = self._score(rec.calls, rec.returned, rule, tokens)
                if scored is not None:
                    entry.update(nll=scored.nll.tolist(), count=scored.count.tolist(), times=scored.times().tolist())
                else:
                    entry["error"] = why
            out.append(entry)
        return {"ok": True, "calls": out}


def main() -> None:
    from . import guard; guard.install(main=True)  # noqa: E702 - limits and attempt recording, before anything else
    global PROTOCOL_OUT
    PROTOCOL_OUT = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # the script's prints go to stderr, never into the protocol
    line = sys.stdin.readline()
    if not line:
        return
    try:
        setup = json.loads(line)
        if setup.get("adapter_source"):
            from .adapter import AdapterSession

            session: Any = AdapterSession(setup)
            reply(session.ready())
        else:
            session = Session(setup)
            reply(session.summary())
    except BaseException as exc:  # noqa: BLE001 - report anything (SystemExit included) to the parent
        reply(failure("setup", exc))
        return
    for line in sys.stdin:
        request = json.loads(line)
        op = request.get("op")
        if op == "exit":
            break
        try:
            reply(session.pipeline(request) if op == "pipeline" else session.run(request))
        except BaseException as exc:  # noqa: BLE001
            reply(failure(f"running {request.get('call', request.get('target', op))}", exc))
    # Done: leave at once. An interpreter teardown would wait for the script's non-daemon threads
    # and free every tensor, for seconds; the parent kills what is left, and the guard's evidence
    # is written as it happens.
    for stream in (PROTOCOL_OUT, sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(0)


if __name__ == "__main__":
    main()
