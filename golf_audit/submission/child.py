"""The sandboxed child: imports a submission script under CPU shims and runs its eval functions.

Run as ``python -m golf_audit.submission.child`` by ``runner.ChildProcess``; never imported by
the parent. Protocol: one JSON object per line. The first line on stdin is the setup (script
path, model-build code, eval targets, seed); the child answers it, then answers one line per
``{"op": "run", ...}`` request until ``{"op": "exit"}`` or EOF. Answers go to a private copy of
the original stdout; the script's own prints are redirected to stderr, which the parent keeps
as evidence.
"""

from __future__ import annotations

import copy
import json
import os
import random
import sys
import traceback
from typing import Any

PROTOCOL_OUT = None  # set in main(): the only channel to the parent


def reply(obj: dict[str, Any]) -> None:
    PROTOCOL_OUT.write(json.dumps(obj) + "\n")
    PROTOCOL_OUT.flush()


def failure(stage: str, exc: BaseException) -> dict[str, Any]:
    tail = traceback.format_exception(type(exc), exc, exc.__traceback__)[-3:]
    return {"ok": False, "error": f"{stage}: {type(exc).__name__}: {exc}", "trace": "".join(tail)[-1500:]}


class Session:
    """State kept between requests: the script's namespace, its built model and LUTs."""

    def __init__(self, setup: dict[str, Any]) -> None:
        import numpy as np
        import torch

        from . import shims

        shims.install()
        torch.set_num_threads(int(setup.get("threads", 1)))
        self.torch, self.np = torch, np
        self.setup = setup
        self.seed = int(setup.get("seed", 1234))
        self.row_len = int(setup.get("row_len", 0))
        self.targets = {t["name"]: t for t in setup["targets"]}
        self.rules: dict[str, Any] = {}
        path = setup["script"]
        self.ns: dict[str, Any] = {"__name__": "__ga_submission__", "__file__": path, "__builtins__": __builtins__}
        sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
        code = compile(open(path, encoding="utf-8").read(), path, "exec")
        exec(code, self.ns)  # noqa: S102 - sandboxed child; the point is to run the script
        self._reseed()
        self.adapter: dict[str, Any] | None = None
        if setup.get("adapter_source"):
            # An adapter file says how to build the model and run the eval (see adapter.py).
            self.adapter = {"__name__": "__ga_adapter__", "__builtins__": __builtins__}
            exec(compile(setup["adapter_source"], setup.get("adapter_path", "<adapter>"), "exec"), self.adapter)  # noqa: S102
            hp = self.ns.get("Hyperparameters")
            self.ns["args"] = hp() if callable(hp) else None
            self.ns["__ga_model__"] = self.adapter["build_model"](ScriptView(self.ns), self.ns["args"])
        else:
            exec(compile(setup["build"], "<golf-audit model build>", "exec"), self.ns)  # noqa: S102
        model = self.ns["__ga_model__"].float()
        self._noise_zero_matrices(model)
        self.vocab = self._vocab_size(model)
        self.luts = self._luts(self.vocab)
        self.plain_forward = self._plain_forward(model)
        self.model = model

    def _reseed(self) -> None:
        random.seed(self.seed)
        self.np.random.seed(self.seed)
        self.torch.manual_seed(self.seed)

    def _noise_zero_matrices(self, model: Any) -> None:
        # Zero-initialised projections (and zero slices of stacked per-layer banks) would make
        # attention contribute nothing, and the flip test would lose its power.
        gen = self.torch.Generator().manual_seed(self.seed)
        with self.torch.no_grad():
            for p in model.parameters():
                if p.dim() < 2:
                    continue
                slices = p.data.reshape(-1, p.shape[-2], p.shape[-1])
                for k in range(slices.shape[0]):
                    if not slices[k].any():
                        slices[k].copy_(self.torch.randn(slices[k].shape, generator=gen) * 0.02)

    def _vocab_size(self, model: Any) -> int:
        args = self.ns.get("args")
        if args is not None and hasattr(args, "vocab_size"):
            return int(args.vocab_size)
        emb = [m for m in model.modules() if isinstance(m, self.torch.nn.Embedding)]
        return int(emb[0].num_embeddings) if emb else 1024

    def _luts(self, vocab: int) -> tuple[Any, Any, Any]:
        # Synthetic but realistic: control ids 0-3 are zero-byte boundaries, others 1-4 bytes,
        # a third of them with a leading space.
        torch = self.torch
        ids = torch.arange(vocab)
        base = torch.where(ids < 4, 0, 1 + (ids * 7) % 4).to(torch.int16)
        space = (ids % 3 == 0) & (ids >= 4)
        boundary = ids < 4
        return base, space, boundary

    def _plain_forward(self, model: Any) -> str:
        # One ordinary forward first, so lazily built caches are not created under inference_mode.
        torch = self.torch
        n = max(self.row_len, 8)
        x = torch.randint(4, self.vocab, (1, n), generator=torch.Generator().manual_seed(self.seed))
        with torch.no_grad():
            for call in (lambda: model(x, x), lambda: model(x)):
                try:
                    call()
                    return "ok"
                except Exception as exc:  # noqa: BLE001 - signatures vary; the eval run decides
                    last = f"{type(exc).__name__}: {exc}"
        return f"plain forward failed ({last})"

    def run(self, request: dict[str, Any]) -> dict[str, Any]:
        from . import capture as cap

        torch, np = self.torch, self.np
        target = self.targets[request["target"]]
        tokens = np.asarray(request["tokens"], dtype=np.int64)
        ns = dict(self.ns)
        ns.update(__ga_model__=copy.deepcopy(self.model), __ga_tokens__=torch.from_numpy(tokens.copy()),
                  __ga_luts__=self.luts, __ga_device__=torch.device("cpu"),
                  __ga_log__=lambda *a, **k: print(*a, file=sys.stderr))
        self._reseed()
        if target.get("prelude"):
            exec(compile(target["prelude"], "<golf-audit prelude>", "exec"), ns)  # noqa: S102
        if target.get("define"):
            exec(compile(target["define"], "<golf-audit inline block>", "exec"), ns)  # noqa: S102
        inputs, targets = tokens[:-1], tokens[1:]
        if target.get("adapter"):
            hook = ScoreHook(targets.size)
            returned = self.adapter["evaluate"](ScriptView(self.ns), ns["__ga_model__"], self.ns.get("args"),
                                                ns["__ga_tokens__"], self.luts, hook)
            if hook.error:
                return {"ok": False, "error": hook.error}
            if not hook.rows:
                return {"ok": False, "error": "the adapter's evaluate() never called score(...)"}
            rows, unmatched = hook.rows, 0
        else:
            kwargs = {p: eval(expr, ns) for p, expr in target["bindings"].items()}  # noqa: S307
            fn = ns[target["name"]]
            with cap.CrossEntropyCapture(self.row_len) as capture:
                returned = fn(**kwargs)
            rows, unmatched = cap.match_rows(capture.calls, targets)
            if not capture.calls:
                return {"ok": False, "error": "no per-token NLL was captured (no cross_entropy call without grad)"}
            if unmatched:
                return {"ok": False, "error": f"{unmatched} captured row(s) match no place in the audit stream"}
        loss, bpb = returned_metrics(returned)
        luts = tuple(t.numpy().astype(np.int64 if i == 0 else bool) for i, t in enumerate(self.luts))
        strides = []
        for expr in target.get("stride_exprs", []):
            try:
                strides.append(int(eval(expr, ns)))  # noqa: S307
            except Exception:  # noqa: BLE001 - a candidate only
                pass
        rule = self.rules.get(target["name"])
        candidates = [rule] if rule is not None else cap.candidate_rules(rows, strides)
        calls = [] if target.get("adapter") else capture.calls
        for cand in candidates:
            scored_by: dict[int, Any] = {}
            nll, count, scorings = cap.apply_rule(cand, rows, targets.size, scored_by)
            nll_sum, ntok, nbytes = cap.totals(scorings, inputs, targets, luts)
            rebuilt_loss = nll_sum / ntok if ntok else float("nan")
            rebuilt_bpb = nll_sum / np.log(2.0) / nbytes if nbytes else float("nan")
            if (loss is None or cap.close(loss, rebuilt_loss)) and (bpb is None or cap.close(bpb, rebuilt_bpb)) \
                    and (loss is not None or bpb is not None):
                self.rules[target["name"]] = cand
                units = np.full(targets.size, -1, dtype=np.int64)
                for k, (start, vals) in enumerate(scorings):
                    units[start:start + vals.size] = k
                logprobs = {}
                for pos in request.get("logprob_positions", []):
                    if int(pos) in scored_by:
                        row, j = scored_by[int(pos)]
                        lp = row.logprobs(calls, j)
                        if lp is not None:
                            logprobs[str(int(pos))] = lp.tolist()
                return {"ok": True, "nll": nll.tolist(), "count": count.tolist(), "nll_sum": nll_sum,
                        "units": units.tolist(), "logprobs": logprobs,
                        "tokens": ntok, "bytes": nbytes,
                        "info": {"rule": cand.describe(), "function_val_loss": loss, "function_val_bpb": bpb,
                                 "rebuilt_val_loss": rebuilt_loss, "rebuilt_val_bpb": rebuilt_bpb,
                                 "rows": len(rows), "sites": sorted({r.site.rsplit(':', 1)[-1] for r in rows}),
                                 "plain_forward": self.plain_forward}}
        what = f"the fixed rule {rule.describe()}" if rule is not None else f"any of {len(candidates)} scored-set rules"
        return {"ok": False, "error": f"captured NLLs do not reproduce the function's val_loss={loss} val_bpb={bpb} "
                                      f"under {what}"}


class ScriptView:
    """The script's namespace with attribute access (``script.GPT``) for adapter functions."""

    def __init__(self, ns: dict[str, Any]) -> None:
        self.__dict__.update({k: v for k, v in ns.items() if not k.startswith("__ga_")})


class ScoreHook:
    """The adapter's ``score(target_indices, nlls)``: every scoring, as rows of consecutive targets."""

    def __init__(self, num_targets: int) -> None:
        self.num_targets = num_targets
        self.rows: list[Any] = []
        self.error = ""

    def __call__(self, target_indices: Any, nlls: Any) -> None:
        import numpy as np

        from .capture import Row

        idx = np.atleast_1d(np.asarray(target_indices.tolist() if hasattr(target_indices, "tolist")
                                       else target_indices, dtype=np.int64))
        val = np.atleast_1d(np.asarray(nlls.detach().float().double().cpu().numpy() if hasattr(nlls, "detach")
                                       else nlls, dtype=np.float64))
        if idx.shape != val.shape:
            self.error = f"score(): {idx.size} target indices but {val.size} NLLs"
            return
        if idx.size and (idx.min() < 0 or idx.max() >= self.num_targets):
            self.error = f"score(): target index out of range 0..{self.num_targets - 1}"
            return
        breaks = np.flatnonzero(np.diff(idx) != 1) + 1
        for part_idx, part_val in zip(np.split(idx, breaks), np.split(val, breaks)):
            if not part_idx.size:
                continue
            last = self.rows[-1] if self.rows else None
            if last is not None and last.offset + last.nll.size == part_idx[0]:
                # Scored one position at a time: consecutive calls continue the same row.
                last.nll = np.concatenate([last.nll, part_val])
            else:
                self.rows.append(Row("adapter", int(part_idx[0]), part_val))


def returned_metrics(value: Any) -> tuple[float | None, float | None]:
    """(val_loss, val_bpb) from what an eval function returned (tuple, dict or a lone bpb)."""
    def num(x: Any) -> float | None:
        try:
            return float(x)
        except (TypeError, ValueError):
            return None

    if isinstance(value, dict):
        loss = next((num(v) for k, v in value.items() if "loss" in str(k)), None)
        bpb = next((num(v) for k, v in value.items() if "bpb" in str(k)), None)
        return loss, bpb
    if isinstance(value, (tuple, list)) and len(value) >= 2:
        return num(value[0]), num(value[1])
    return None, num(value)


def main() -> None:
    from . import guard; guard.install(main=True)  # noqa: E702 - limits and attempt recording, before anything else
    global PROTOCOL_OUT
    PROTOCOL_OUT = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # the script's prints go to stderr, never into the protocol
    line = sys.stdin.readline()
    if not line:
        return
    try:
        session = Session(json.loads(line))
        reply({"ok": True, "vocab_size": session.vocab, "plain_forward": session.plain_forward})
    except BaseException as exc:  # noqa: BLE001 - report anything (SystemExit included) to the parent
        reply(failure("setup", exc))
        return
    for line in sys.stdin:
        request = json.loads(line)
        if request.get("op") == "exit":
            break
        try:
            reply(session.run(request))
        except BaseException as exc:  # noqa: BLE001
            reply(failure(f"running {request.get('target')}", exc))


if __name__ == "__main__":
    main()
