"""Adapter files: how to audit a script whose scores the cross-entropy capture cannot see.

Some evals score inside a training forward (phased/LoRA TTT) or through a fused or custom loss.
For them, a small Python file tells golf-audit how to build the model and run the eval, and
hands every score to a hook. The same self-checks apply as for captured evals: the val_bpb
rebuilt from the hooked NLLs must equal the one ``evaluate`` returns, every index must be a
target of the stream, and the positive-control flip must move later positions.

Format (all names are looked up in the adapter's module)::

    # golf-audit adapter for records/.../train_gpt.py
    ENV = {"TTT_ENABLED": "1"}          # optional: environment over the tiny configuration

    def build_model(script, args):
        # script: the submission's module (script.GPT, script.eval_val_ttt, ...);
        # args: script.Hyperparameters(), already reading the tiny configuration.
        return script.GPT(vocab_size=args.vocab_size, num_layers=args.num_layers, ...)

    def evaluate(script, model, args, val_tokens, luts, score):
        # val_tokens: int64 stream; luts: (base_bytes, has_leading_space, is_boundary) tensors.
        # Call score(target_indices, nlls) for every scoring (ints/tensors, same length);
        # target index i is val_tokens[i + 1] predicted from val_tokens[: i + 1].
        # Return (val_loss, val_bpb) exactly as the submission computes them.
        ...

The adapter runs only inside the sandboxed child, like the script itself.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import BadInput

REQUIRED = ("build_model", "evaluate")


@dataclass
class AdapterFile:
    path: str
    source: str
    env: dict[str, str] = field(default_factory=dict)


def load_adapter(path: str | Path) -> AdapterFile:
    """Read and check an adapter statically (it is executed only in the child)."""
    path = Path(path)
    try:
        source = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInput(f"adapter {path}: no such file") from None
    except UnicodeDecodeError:
        raise BadInput(f"adapter {path}: not UTF-8") from None
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise BadInput(f"adapter {path}: not valid Python (line {exc.lineno}: {exc.msg})") from None
    defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    missing = [name for name in REQUIRED if name not in defined]
    if missing:
        raise BadInput(f"adapter {path}: missing {', '.join(f'def {m}(...)' for m in missing)}")
    env: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "ENV" for t in node.targets):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                raise BadInput(f"adapter {path}: ENV must be a literal dict of strings") from None
            if not isinstance(value, dict):
                raise BadInput(f"adapter {path}: ENV must be a dict")
            env = {str(k): str(v) for k, v in value.items()}
    return AdapterFile(str(path), source, env)


# ----------------------------------------------------------------------------- child side


class AdapterSession:
    """Inside the child: the script imported (not run), the adapter's model and eval with a score hook."""

    def __init__(self, setup: dict[str, object]) -> None:
        import os
        import random
        import sys

        import numpy as np
        import torch

        from . import fakedata, shims

        torch.set_num_threads(1)
        shims.install()
        self.np, self.torch, self.seed = np, torch, int(setup.get("seed", 0))  # type: ignore[arg-type]
        path = str(setup["script"])
        self.ns: dict[str, object] = {"__name__": "__ga_submission__", "__file__": path, "__builtins__": __builtins__}
        sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
        exec(compile(open(path, encoding="utf-8").read(), path, "exec"), self.ns)  # noqa: S102 - sandboxed child
        self.adapter: dict[str, object] = {"__name__": "__ga_adapter__", "__builtins__": __builtins__}
        exec(compile(str(setup["adapter_source"]), str(setup.get("adapter_path", "<adapter>")), "exec"),  # noqa: S102
             self.adapter)
        hp = self.ns.get("Hyperparameters")
        self.args = hp() if callable(hp) else None
        random.seed(self.seed)
        np.random.seed(self.seed)
        torch.manual_seed(self.seed)
        self.model = self.adapter["build_model"](ScriptView(self.ns), self.args).float()  # type: ignore[operator]
        vocab = getattr(self.args, "vocab_size", None)
        if vocab is None:
            emb = [m for m in self.model.modules() if isinstance(m, torch.nn.Embedding)]
            vocab = emb[0].num_embeddings if emb else 1024
        self.vocab = int(vocab)
        self.luts = fakedata.canonical_luts(self.vocab)
        self.rule = None

    def ready(self) -> dict[str, object]:
        return {"ok": True, "vocab_size": self.vocab}

    def run(self, request: dict[str, object]) -> dict[str, object]:
        import copy
        import random

        from . import capture as cap

        np, torch = self.np, self.torch
        tokens = np.asarray(request["tokens"], dtype=np.int64)
        random.seed(self.seed)
        np.random.seed(self.seed)
        torch.manual_seed(self.seed)
        inputs, targets = tokens[:-1], tokens[1:]
        hook = ScoreHook(targets.size)
        luts = tuple(torch.from_numpy(a) for a in self.luts)
        returned = self.adapter["evaluate"](ScriptView(self.ns), copy.deepcopy(self.model), self.args,  # type: ignore[operator]
                                            torch.from_numpy(tokens.copy()), luts, hook)
        if hook.error:
            return {"ok": False, "error": hook.error}
        if not hook.rows:
            return {"ok": False, "error": "the adapter's evaluate() never called score(...)"}
        from .runtime import returned_metrics

        scored, why = cap.infer(hook.rows, returned_metrics(returned), targets.size, inputs, targets, self.luts, [],
                                self.rule)
        if scored is None:
            return {"ok": False, "error": why}
        self.rule = scored.rule
        units = np.full(targets.size, -1, dtype=np.int64)
        for k, (start, vals) in enumerate(scored.scorings):
            units[start:start + vals.size] = k
        loss, bpb = returned_metrics(returned)
        return {"ok": True, "nll": scored.nll.tolist(), "count": scored.count.tolist(), "nll_sum": scored.nll_sum,
                "units": units.tolist(), "logprobs": {}, "tokens": scored.tokens, "bytes": scored.nbytes,
                "info": {"rule": scored.rule.describe(), "function_val_loss": loss, "function_val_bpb": bpb,
                         "rebuilt_val_loss": scored.rebuilt_loss, "rebuilt_val_bpb": scored.rebuilt_bpb,
                         "rows": len(scored.scorings)}}


class ScriptView:
    """The script's namespace with attribute access (``script.GPT``) for adapter functions."""

    def __init__(self, ns: dict[str, object]) -> None:
        self.__dict__.update({k: v for k, v in ns.items() if not k.startswith("__ga_")})


class ScoreHook:
    """The adapter's ``score(target_indices, nlls)``: every scoring, as rows of consecutive targets."""

    def __init__(self, num_targets: int) -> None:
        self.num_targets = num_targets
        self.rows: list[object] = []
        self.error = ""

    def __call__(self, target_indices: object, nlls: object) -> None:
        import numpy as np

        from .capture import Row

        idx = np.atleast_1d(np.asarray(target_indices.tolist() if hasattr(target_indices, "tolist")  # type: ignore[union-attr]
                                       else target_indices, dtype=np.int64))
        val = np.atleast_1d(np.asarray(nlls.detach().float().double().cpu().numpy() if hasattr(nlls, "detach")  # type: ignore[union-attr]
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
            if last is not None and last.offset + last.nll.size == part_idx[0]:  # type: ignore[attr-defined]
                last.nll = np.concatenate([last.nll, part_val])  # type: ignore[attr-defined]
            else:
                self.rows.append(Row("adapter", int(part_idx[0]), part_val))
