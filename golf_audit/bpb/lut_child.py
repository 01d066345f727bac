"""Sandbox child: run a submission's own byte-table builder, extracted from its script, on tokenizers.

Run as ``python -m golf_audit.bpb.lut_child`` by ``runner.ChildProcess(module=...)``, inside
the OS sandbox; never imported by the parent. One JSON request on stdin::

    {"module": "/work/train_gpt.py",            # the extracted builder (script.extract)
     "calls": [{"function": NAME, "tokenizer": PATH, "meta": PATH or "", "vocab_size": N}, ...]}

and one JSON answer: ``{"ok": true, "tables": [...]}``, one entry per call, each either
``{"base": [...], "space": [...] | null, "boundary": [...] | null}`` or ``{"error": "..."}``.
A call ``{"op": "apply", "module": PATH, "function": NAME, "args_list": [[...], ...]}`` instead
answers ``{"values": [...]}``: a text transform on each document, or a raw-byte sidecar builder
(``"<sp>"`` in the arguments stands for the tokenizer).
Arguments are bound by parameter name (a SentencePiece processor for ``sp``/``tokenizer``,
the tokenizer or table path for ``*path``, the vocabulary size, a CPU device).
"""

from __future__ import annotations

import inspect
import json
import os
import sys
import traceback
from typing import Any

_SP_NAMES = {"sp", "tok", "tokenizer", "processor", "sp_model", "spm_model", "sentencepiece", "model", "s"}


def _is_array(x: Any) -> bool:
    return hasattr(x, "__len__") and not isinstance(x, (str, bytes, bytearray, dict)) and hasattr(x, "__getitem__") \
        and (hasattr(x, "tolist") or (len(x) > 0 and isinstance(x[0], (int, bool, float))))


def _as_list(x: Any) -> list:
    return x.tolist() if hasattr(x, "tolist") else list(x)


def tables(value: Any, depth: int = 0) -> list[list] | None:
    """(base, space, boundary) — as many as the builder returned — from what it returned."""
    if depth > 3:
        return None
    if isinstance(value, dict):
        keys = [k for k in ("base_bytes", "has_leading_space", "is_boundary_token") if k in value]
        return [_as_list(value[k]) for k in keys] or None
    if isinstance(value, (tuple, list)) and value:
        if all(isinstance(x, (bytes, bytearray)) for x in value):
            return [[len(x) for x in value]]  # bytes per token, no space rule
        arrays = [x for x in value if _is_array(x)]
        if len(arrays) >= 2 and len({len(a) for a in arrays[:3]}) == 1 and len(arrays) == len(value[:len(arrays)]):
            return [_as_list(a) for a in arrays[:3]]
        if _is_array(value) and not any(_is_array(x) for x in value):
            return [_as_list(value)]
        for item in value:
            found = tables(item, depth + 1)
            if found:
                return found
    elif _is_array(value):
        return [_as_list(value)]
    return None


def _bind(fn: Any, call: dict[str, Any], cache: dict[str, Any]) -> dict[str, Any]:
    import torch

    kwargs: dict[str, Any] = {}
    for name, param in inspect.signature(fn).parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        low, note = name.lower(), str(param.annotation)
        if "path" in low or "file" in low:
            kwargs[name] = call.get("meta", "") if "meta" in low else call["tokenizer"]
        elif "vocab" in low:
            kwargs[name] = int(call["vocab_size"])
        elif "device" in low:
            kwargs[name] = torch.device("cpu")
        elif low in _SP_NAMES or "SentencePiece" in note:
            if "sp" not in cache:
                import sentencepiece as spm

                cache["sp"] = spm.SentencePieceProcessor(model_file=call["tokenizer"])
            kwargs[name] = cache["sp"]
        elif param.default is param.empty:
            raise TypeError(f"cannot tell what to pass as {name!r}")
    return kwargs


def _shim_immutable_proto() -> None:
    """sentencepiece ≥ 0.2 without protobuf refuses ``encode_as_immutable_proto``; sidecar
    builders call it for piece surfaces. Rebuild what they read (id, piece, surface, begin,
    end) from the offset mapping, which every version has."""
    from types import SimpleNamespace

    import sentencepiece as spm

    def encode_as_immutable_proto(self: Any, text: str, **_: Any) -> Any:
        m = self.encode(text, return_type="offset_mapping")
        pieces = [SimpleNamespace(id=i, piece=p, surface=text[b:e], begin=b, end=e)
                  for i, p, (b, e) in zip(m["ids"], m["pieces"], m["offsets"])]
        return SimpleNamespace(pieces=pieces, text=text)

    try:
        spm.SentencePieceProcessor.encode_as_immutable_proto(spm.SentencePieceProcessor(), "")
    except Exception:  # noqa: BLE001 - any failure: the shim replaces it
        spm.SentencePieceProcessor.encode_as_immutable_proto = encode_as_immutable_proto


def _namespace(path: str, cache: dict[str, dict[str, Any]]) -> dict[str, Any]:
    if path not in cache:
        namespace: dict[str, Any] = {"__name__": "__ga_bpb__", "__file__": path, "__builtins__": __builtins__}
        if os.path.dirname(path) not in sys.path:
            sys.path.insert(0, os.path.dirname(path))
        exec(compile(open(path, encoding="utf-8").read(), path, "exec"), namespace)  # noqa: S102 - sandboxed
        cache[path] = namespace
    return cache[path]


def _table(fn: Any, call: dict[str, Any]) -> dict[str, Any]:
    result = fn(**_bind(fn, call, {}))
    found = tables(result)
    if not found:
        return {"error": f"{call['function']} returned no per-token table ({type(result).__name__})"}
    return {"base": [int(x) for x in found[0]], "space": [bool(x) for x in found[1]] if len(found) > 1 else None,
            "boundary": [bool(x) for x in found[2]] if len(found) > 2 else None}


def _apply(fn: Any, call: dict[str, Any]) -> dict[str, Any]:
    """``fn(*args)`` for each argument list; "<sp>" stands for the tokenizer's processor."""
    sp = None
    out = []
    for args in call["args_list"]:
        if "<sp>" in args and sp is None:
            import sentencepiece as spm

            sp = spm.SentencePieceProcessor(model_file=call["tokenizer"])
        value = fn(*[sp if a == "<sp>" else a for a in args])
        out.append(value if isinstance(value, str) else [int(x) for x in _as_list(value)])
    return {"values": out}


_MODULES: dict[str, dict[str, Any]] = {}  # executed once per child, reused by later requests


def run(request: dict[str, Any]) -> dict[str, Any]:
    _shim_immutable_proto()
    modules = _MODULES
    out = []
    for call in request["calls"]:
        try:
            fn = _namespace(call.get("module", request.get("module", "")), modules)[call["function"]]
            out.append(_apply(fn, call) if call.get("op") == "apply" else _table(fn, call))
        except BaseException as exc:  # noqa: BLE001 - one builder's failure is evidence, not our crash
            tail = traceback.format_exception(type(exc), exc, exc.__traceback__)[-2:]
            out.append({"error": f"{type(exc).__name__}: {exc}"[:400], "trace": "".join(tail)[-800:]})
    return {"ok": True, "tables": out}


def main() -> None:
    from ..submission import guard; guard.install(main=True)  # noqa: E702 - limits and attempt recording first
    protocol = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # the builder's prints go to stderr, never into the protocol
    for line in sys.stdin:  # one answer per request, until EOF or {"op": "exit"}
        request = json.loads(line)
        if request.get("op") == "exit":
            break
        try:
            answer = run(request)
        except BaseException as exc:  # noqa: BLE001
            tail = traceback.format_exception(type(exc), exc, exc.__traceback__)[-3:]
            answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}", "trace": "".join(tail)[-1500:]}
        protocol.write(json.dumps(answer) + "\n")
        protocol.flush()


if __name__ == "__main__":
    main()
