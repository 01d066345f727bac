"""CPU shims installed in the child process before a submission script is imported.

Submissions are written for 8xH100: FlashAttention 3 with no fallback, Triton kernels,
``torch.compile`` and hard-coded CUDA. None of that changes *what* the eval computes, only
where and how fast, so the child replaces each with a plain CPU equivalent:

* ``flash_attn_interface`` / ``flash_attn``: causal attention through SDPA in the [B, T, H, D]
  layout, grouped KV heads repeated; the varlen form loops over ``cu_seqlens``.
* ``triton`` / ``triton.language``: any attribute exists; ``jit``/``autotune`` return the function.
* ``zstandard``, ``brotli``, ``python_minifier``: empty modules (used only at export).
* ``torch.compile`` is the identity in every call form; CUDA helpers are no-ops; ``"cuda"``
  devices map to the CPU; ``autocast`` is disabled; mixed-dtype ``F.linear`` promotes.
* Sockets refuse to connect: the child has no business on the network.

Nothing here is imported by the parent process.
"""

from __future__ import annotations

import math
import socket
import sys
import types
from typing import Any

import torch
import torch.nn.functional as F

# Environment flags that select CUDA-only code paths; the child switches them off.
CUDA_ONLY_FLAGS = ("FUSED_CE_ENABLED", "USE_TRITON", "TRITON_ENABLED", "USE_FA3", "CUDA_GRAPHS", "USE_CUDA_GRAPHS")


class _AnyAttr(types.ModuleType):
    """A module where every attribute exists (a dummy that is also callable and subscriptable)."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return _Dummy(f"{self.__name__}.{name}")


class _Dummy:
    def __init__(self, name: str) -> None:
        self._name = name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # Used as a decorator (triton.jit, triton.autotune(...)): hand back the function.
        if len(args) == 1 and callable(args[0]) and not kwargs:
            return args[0]
        return _passthrough_decorator

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return _Dummy(f"{self._name}.{name}")

    def __getitem__(self, item: Any) -> "_Dummy":
        return self


def _passthrough_decorator(fn: Any = None, *args: Any, **kwargs: Any) -> Any:
    return fn if callable(fn) else _passthrough_decorator


def flash_attn_func(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *args: Any,
                    causal: bool = False, softmax_scale: float | None = None, **kwargs: Any) -> torch.Tensor:
    """FlashAttention's [B, T, H, D] interface on SDPA; KV heads are repeated for GQA."""
    hq, hk = q.shape[-2], k.shape[-2]
    if hk != hq:
        k = k.repeat_interleave(hq // hk, dim=-2)
        v = v.repeat_interleave(hq // hk, dim=-2)
    out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                         is_causal=causal, scale=softmax_scale)
    return out.transpose(1, 2)


def flash_attn_varlen_func(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu_seqlens_q: torch.Tensor,
                           cu_seqlens_k: torch.Tensor, *args: Any, causal: bool = False,
                           softmax_scale: float | None = None, **kwargs: Any) -> torch.Tensor:
    """Packed sequences [total, H, D]: attention run separately on each ``cu_seqlens`` segment."""
    outs = []
    bounds_q, bounds_k = cu_seqlens_q.tolist(), cu_seqlens_k.tolist()
    for i in range(len(bounds_q) - 1):
        qs, qe, ks, ke = bounds_q[i], bounds_q[i + 1], bounds_k[i], bounds_k[i + 1]
        outs.append(flash_attn_func(q[None, qs:qe], k[None, ks:ke], v[None, ks:ke],
                                    causal=causal, softmax_scale=softmax_scale)[0])
    return torch.cat(outs, dim=0)


def _module(name: str, **attrs: Any) -> types.ModuleType:
    mod = _AnyAttr(name) if name.startswith("triton") else types.ModuleType(name)
    mod.__dict__.update(attrs)
    mod.__spec__ = None
    sys.modules[name] = mod
    return mod


def _install_stub_modules() -> None:
    fa = dict(flash_attn_func=flash_attn_func, flash_attn_varlen_func=flash_attn_varlen_func)
    _module("flash_attn_interface", **fa)
    _module("flash_attn", **fa)
    _module("flash_attn.flash_attn_interface", **fa)
    _module("flash_attn_3", **fa)
    triton = _module("triton", jit=_passthrough_decorator, autotune=_passthrough_decorator,
                     heuristics=_passthrough_decorator, cdiv=lambda a, b: -(-a // b),
                     next_power_of_2=lambda n: 1 << max(0, math.ceil(math.log2(max(n, 1)))))
    tl = _module("triton.language", constexpr=Any)
    triton.language = tl
    for name in ("zstandard", "brotli", "python_minifier"):
        if name not in sys.modules:
            _module(name)


def _cpu_device(dev: Any) -> Any:
    if isinstance(dev, str) and dev.startswith("cuda"):
        return "cpu"
    if isinstance(dev, int):
        return "cpu"
    if isinstance(dev, _REAL_DEVICE) and dev.type == "cuda":
        return _REAL_DEVICE("cpu")
    return dev


_REAL_DEVICE = torch.device


class _DeviceMeta(type):
    def __instancecheck__(cls, obj: Any) -> bool:
        return isinstance(obj, _REAL_DEVICE)

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        if args and isinstance(args[0], str) and args[0].startswith("cuda"):
            return _REAL_DEVICE("cpu")
        return _REAL_DEVICE(*args, **kwargs)


class _Device(metaclass=_DeviceMeta):
    """``torch.device`` stand-in: ``torch.device("cuda", rank)`` is the CPU."""


def _device_kwarg(fn: Any) -> Any:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if "device" in kwargs:
            kwargs["device"] = _cpu_device(kwargs["device"])
        return fn(*args, **kwargs)

    wrapper.__wrapped__ = fn  # type: ignore[attr-defined]
    return wrapper


def _compile(model: Any = None, *args: Any, **kwargs: Any) -> Any:
    """Identity ``torch.compile``: ``compile(fn)``, ``@compile`` and ``@compile(mode=...)``."""
    if model is None:
        return lambda fn: fn
    return model


class _NoAutocast:
    """Disabled autocast: a context manager and decorator that changes nothing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> bool:
        return False

    def __call__(self, fn: Any) -> Any:
        return fn


def _install_torch_patches() -> None:
    torch.compile = _compile
    cuda = torch.cuda
    for name in ("synchronize", "empty_cache", "manual_seed_all", "manual_seed", "set_device",
                 "reset_peak_memory_stats", "reset_max_memory_allocated", "ipc_collect"):
        setattr(cuda, name, lambda *a, **k: None)
    for name in ("max_memory_allocated", "max_memory_reserved", "memory_allocated", "memory_reserved"):
        setattr(cuda, name, lambda *a, **k: 0)
    cuda.device_count = lambda: 1
    cuda.current_device = lambda: 0
    cuda.get_device_name = lambda *a, **k: "cpu-shim"
    torch.device = _Device  # type: ignore[misc]
    torch.autocast = _NoAutocast  # type: ignore[misc]
    torch.amp.autocast = _NoAutocast  # type: ignore[misc]
    torch.cuda.amp.autocast = _NoAutocast  # type: ignore[misc]
    for name in ("zeros", "ones", "empty", "full", "arange", "tensor", "randn", "rand", "randint",
                 "zeros_like", "ones_like", "empty_like", "full_like", "randn_like", "as_tensor",
                 "linspace", "eye", "randperm"):
        setattr(torch, name, _device_kwarg(getattr(torch, name)))
    torch.Tensor.cuda = lambda self, *a, **k: self  # type: ignore[method-assign]
    torch.nn.Module.cuda = lambda self, *a, **k: self  # type: ignore[method-assign]
    torch.Tensor.pin_memory = lambda self, *a, **k: self  # type: ignore[method-assign]
    real_tensor_to = torch.Tensor.to
    real_module_to = torch.nn.Module.to

    def tensor_to(self: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        args = tuple(_cpu_device(a) if isinstance(a, (str, _REAL_DEVICE)) else a for a in args)
        kwargs.pop("non_blocking", None)
        if "device" in kwargs:
            kwargs["device"] = _cpu_device(kwargs["device"])
        return real_tensor_to(self, *args, **kwargs)

    def module_to(self: torch.nn.Module, *args: Any, **kwargs: Any) -> torch.nn.Module:
        args = tuple(_cpu_device(a) if isinstance(a, (str, _REAL_DEVICE)) else a for a in args)
        if "device" in kwargs:
            kwargs["device"] = _cpu_device(kwargs["device"])
        return real_module_to(self, *args, **kwargs)

    torch.Tensor.to = tensor_to  # type: ignore[method-assign]
    torch.nn.Module.to = module_to  # type: ignore[method-assign]
    real_linear = F.linear

    def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        # Scripts cast weights to bf16 on GPU; in fp32 on CPU mixed dtypes must promote.
        if x.dtype != weight.dtype or (bias is not None and bias.dtype != x.dtype):
            dt = torch.promote_types(x.dtype, weight.dtype)
            x, weight = x.to(dt), weight.to(dt)
            bias = bias.to(dt) if bias is not None else None
        return real_linear(x, weight, bias)

    F.linear = linear
    torch.backends.cuda.matmul.allow_tf32 = False


def _refuse_network() -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise OSError("network access is disabled in the golf-audit sandbox")

    socket.socket.connect = refuse  # type: ignore[method-assign]
    socket.socket.connect_ex = refuse  # type: ignore[method-assign]
    socket.create_connection = refuse  # type: ignore[assignment]
    socket.getaddrinfo = refuse  # type: ignore[assignment]


def install() -> None:
    """Install every shim; call once, before the submission script is imported."""
    # The compiler stacks first: they probe for triton, and must see the real (absent) one;
    # a script's `torch._dynamo.config.x = ...` then works.
    import torch._dynamo  # noqa: F401
    import torch._inductor.config  # noqa: F401

    _refuse_network()
    _install_stub_modules()
    _install_torch_patches()
