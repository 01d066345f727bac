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
