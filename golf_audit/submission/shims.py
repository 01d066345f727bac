"""CPU shims installed in the child process before a submission script runs.

Submissions are written for 8xH100: FlashAttention 3 with no fallback, Triton kernels,
``torch.compile``, NCCL and hard-coded CUDA. None of that changes *what* the eval computes,
only where and how fast, so the child replaces each with a plain CPU equivalent (documented
here, reported in the audit's settings):

* ``flash_attn_interface`` / ``flash_attn`` (also ``flash_attn.cute``): attention through SDPA
  in the [B, T, H, D] layout, grouped KV heads repeated, sliding ``window_size`` honoured; the
  varlen form runs each ``cu_seqlens`` segment on its own (document-packed attention).
* ``triton`` / ``triton.language``: importable; ``jit``/``autotune`` return the kernel as a
  :class:`TritonKernel` whose launch (``kernel[grid](...)``) raises :class:`KernelOnCPU`
  naming the kernel: scripts keep their torch path for CPU tensors, and one that does not
  fails with that name as the reason (the fused training-only paths are switched off by the
  tiny configuration and by eval mode, below).
* Every module stays in eval mode (``train()`` is ``eval()``): the training-only extras of the
  records (fused Triton MLP, QAT noise, MTP heads, auxiliary losses) never run. The audit needs
  the script's eval, not its training, and training then runs on the CPU paths.
* ``torch.compile`` is the identity in every call form; ``torch.cuda`` reports one device and
  its helpers (streams, events, RNG, memory stats) are CPU no-ops; ``"cuda"`` devices map to
  the CPU; ``autocast`` is disabled; mixed-dtype ``F.linear`` promotes; ``Module.bfloat16()``/
  ``half()`` keep fp32 (the audit compares exact scores, in fp32); ``inference_mode`` is
  ``no_grad`` (same values; scoring-time tensors stay usable by a later TTT step).
* ``torch.distributed``: a single-process group (rank 0 of 1): collectives are identities,
  so distributed code paths run unchanged; ``DistributedDataParallel`` is a pass-through.
* ``sentencepiece.SentencePieceProcessor`` is :class:`fakedata.FakeSentencePiece`; a glob of the
  challenge's shard names returns the synthetic shards (see ``runtime``).
* ``brotli`` and ``zstandard`` compress with fast ``lzma`` under their own API (the artifact's
  compression ratio is not what this audit measures, and brotli-11 takes seconds);
  ``python_minifier.minify`` returns the code unchanged; ``numba.njit`` runs the Python.
* ``mamba_ssm``, ``fla`` and ``einops`` (when absent): causal stand-ins, see ``ssm_shims``.
* The command-line tools records call answer in-process (:data:`TOOLS`): ``nvidia-smi`` (logged),
  ``pyminify`` (code-size logging: the code comes back as is), ``lrzip`` (an lzma round trip).
* Sockets refuse to connect, and ``huggingface_hub``/``requests``/``wandb`` (when absent) import but
  refuse every call: the child has no business on the network.

Nothing here is imported by the parent process.
"""

from __future__ import annotations

import builtins
import contextlib
import glob as _glob
import lzma
import math
import os
import pathlib
import sys
import time
import types
from typing import Any, Callable

import torch
import torch.nn.functional as F

# Environment flags that select CUDA-only code paths; the tiny configuration switches them off.
CUDA_ONLY_FLAGS = ("FUSED_CE_ENABLED", "USE_TRITON", "TRITON_ENABLED", "USE_FA3", "CUDA_GRAPHS", "USE_CUDA_GRAPHS")


class KernelOnCPU(RuntimeError):
    """A Triton kernel was launched: there is no GPU, and the script has no torch path here."""


class TritonKernel:
    """What ``@triton.jit`` returns: the Python function, launchable only by name."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.__name__ = getattr(fn, "__name__", "kernel")
        self.__doc__ = getattr(fn, "__doc__", None)

    def __getitem__(self, grid: Any) -> Callable[..., Any]:
        def launch(*args: Any, **kwargs: Any) -> Any:
            raise KernelOnCPU(f"Triton kernel {self.__name__} launched on CPU: the script has no torch path "
                              f"for it here (pass --env to select the non-fused path, or an --adapter)")

        return launch

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)


def _kernel_decorator(fn: Any = None, *args: Any, **kwargs: Any) -> Any:
    """``triton.jit``, ``triton.jit(...)``, ``triton.autotune(...)``, ``triton.heuristics(...)``."""
    if callable(fn) and not isinstance(fn, (list, dict)):
        return fn if isinstance(fn, TritonKernel) else TritonKernel(fn)
    return _kernel_decorator


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
        if len(args) == 1 and callable(args[0]) and not kwargs:
            return args[0]
        return _Dummy(self._name + "()")

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return _Dummy(f"{self._name}.{name}")

    def __getitem__(self, item: Any) -> "_Dummy":
        return self

    def __mro_entries__(self, bases: tuple) -> tuple:
        return (object,)


# ----------------------------------------------------------------------------- attention


def _window_mask(tq: int, tk: int, causal: bool, window: Any, device: Any) -> torch.Tensor | None:
    left, right = (window if isinstance(window, (tuple, list)) else (-1, -1))
    if not causal and left < 0 and right < 0:
        return None
    qi = torch.arange(tq, device=device)[:, None] + (tk - tq)
    kj = torch.arange(tk, device=device)[None, :]
    ok = torch.ones(tq, tk, dtype=torch.bool, device=device)
    if causal:
        ok &= kj <= qi
    if left >= 0:
        ok &= kj >= qi - left
    if right >= 0:
        ok &= kj <= qi + right
    return ok


def flash_attn_func(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *args: Any, causal: bool = False,
                    softmax_scale: float | None = None, window_size: Any = (-1, -1), **kwargs: Any) -> torch.Tensor:
    """FlashAttention's [B, T, H, D] interface on SDPA; KV heads are repeated for GQA."""
    if args:  # positional dropout_p, softmax_scale, causal as in flash_attn 2
        rest = list(args)
        if rest:
            rest.pop(0)
        if rest:
            softmax_scale = rest.pop(0)
        if rest:
            causal = rest.pop(0)
    hq, hk = q.shape[-2], k.shape[-2]
    if hk != hq:
        k = k.repeat_interleave(hq // hk, dim=-2)
        v = v.repeat_interleave(hq // hk, dim=-2)
    mask = _window_mask(q.shape[1], k.shape[1], causal, window_size, q.device)
    dt = torch.promote_types(q.dtype, torch.float32) if q.dtype in (torch.float16, torch.bfloat16) else q.dtype
    out = F.scaled_dot_product_attention(q.transpose(1, 2).to(dt), k.transpose(1, 2).to(dt), v.transpose(1, 2).to(dt),
                                         attn_mask=mask, scale=softmax_scale)
    out = out.transpose(1, 2).to(q.dtype)
    return (out, None) if kwargs.get("return_lse") or kwargs.get("return_attn_probs") else out


def flash_attn_varlen_func(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu_seqlens_q: torch.Tensor,
                           cu_seqlens_k: torch.Tensor, *args: Any, causal: bool = False,
                           softmax_scale: float | None = None, window_size: Any = (-1, -1),
                           **kwargs: Any) -> torch.Tensor:
    """Packed sequences [total, H, D]: attention run separately on each ``cu_seqlens`` segment."""
    outs = []
    bounds_q, bounds_k = cu_seqlens_q.tolist(), cu_seqlens_k.tolist()
    for i in range(len(bounds_q) - 1):
        qs, qe, ks, ke = bounds_q[i], bounds_q[i + 1], bounds_k[i], bounds_k[i + 1]
        if qe <= qs:
            continue
        outs.append(flash_attn_func(q[None, qs:qe], k[None, ks:ke], v[None, ks:ke], causal=causal,
                                    softmax_scale=softmax_scale, window_size=window_size)[0])
    out = torch.cat(outs, dim=0) if outs else q.new_zeros(q.shape)
    if out.shape[0] < q.shape[0]:  # padding past the last segment
        out = torch.cat([out, q.new_zeros((q.shape[0] - out.shape[0],) + tuple(q.shape[1:]))], dim=0)
    return out


# ----------------------------------------------------------------------------- modules


def _module(name: str, cls: type = types.ModuleType, **attrs: Any) -> types.ModuleType:
    mod = cls(name)
    mod.__dict__.update(attrs)
    mod.__spec__ = None
    mod.__path__ = []  # a package: its stubbed submodules import
    sys.modules[name] = mod
    parent, _, child = name.rpartition(".")
    if parent and parent in sys.modules:
        setattr(sys.modules[parent], child, mod)
    return mod


class _LzmaCodec:
    """A compressor object with the ``compress``/``decompress`` methods the script calls."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def compress(self, data: bytes, *args: Any, **kwargs: Any) -> bytes:
        return lzma.compress(bytes(data), preset=1)

    def decompress(self, data: bytes, *args: Any, **kwargs: Any) -> bytes:
        return lzma.decompress(bytes(data))

    def flush(self, *args: Any, **kwargs: Any) -> bytes:
        return b""


class _OfflineModule(types.ModuleType):
    """A network library that imports but refuses every use: the sandbox has no network."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)

        def refuse(*args: Any, **kwargs: Any) -> Any:
            raise OSError(f"{self.__name__}.{name}: network access is disabled in the golf-audit sandbox")

        return refuse


class _StubFinder:
    """Serves any submodule of the stubbed GPU packages (``triton.compiler.errors``...) as a stub."""

    ROOTS = ("triton", "flash_attn", "flash_attn_3", "flash_attn_interface")

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        import importlib.machinery

        if name.split(".")[0] in self.ROOTS and name not in sys.modules:
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec: Any) -> types.ModuleType:
        mod = _AnyAttr(spec.name)
        mod.__path__ = []  # type: ignore[attr-defined]
        return mod

    def exec_module(self, module: types.ModuleType) -> None:
        pass


def _install_stub_modules() -> None:
    sys.meta_path.insert(0, _StubFinder())
    fa = dict(flash_attn_func=flash_attn_func, flash_attn_varlen_func=flash_attn_varlen_func)
    for name in ("flash_attn_interface", "flash_attn", "flash_attn.flash_attn_interface", "flash_attn.cute",
                 "flash_attn_3", "flash_attn_3.flash_attn_interface", "hopper", "hopper.flash_attn_interface"):
        _module(name, **fa)
    triton = _module("triton", _AnyAttr, jit=_kernel_decorator, autotune=_kernel_decorator,
                     heuristics=_kernel_decorator, cdiv=lambda a, b: -(-a // b),
                     next_power_of_2=lambda n: 1 << max(0, math.ceil(math.log2(max(n, 1)))),
                     Config=lambda *a, **k: (a, k))
    tl = _module("triton.language", _AnyAttr, constexpr=Any)
    triton.language = tl
    for sub in ("triton.tools", "triton.tools.tensor_descriptor", "triton.runtime", "triton.testing"):
        _module(sub, _AnyAttr)
    # Always the stand-ins: brotli at quality 11 takes seconds even on a tiny model, and the
    # artifact's compression ratio is not what this audit measures.
    codec = _LzmaCodec()
    _module("brotli", compress=codec.compress, decompress=codec.decompress, MODE_GENERIC=0, MODE_TEXT=1,
            MODE_FONT=2, Compressor=_LzmaCodec, Decompressor=_LzmaCodec)
    _module("zstandard", ZstdCompressor=_LzmaCodec, ZstdDecompressor=_LzmaCodec,
            compress=codec.compress, decompress=codec.decompress)
    for name in ("huggingface_hub", "requests", "wandb"):  # network libraries: importable, refuse to be used
        if not _importable(name):
            _module(name, _OfflineModule)
    if not _importable("python_minifier"):
        _module("python_minifier", minify=lambda code, *a, **k: code)
    if not _importable("numba"):
        numba = _module("numba", _AnyAttr, njit=_numba_jit, jit=_numba_jit, prange=range, vectorize=_numba_jit)
        numba.types = _module("numba.types", _AnyAttr)
        numba.typed = _module("numba.typed", _AnyAttr, List=list, Dict=dict)


def _importable(name: str) -> bool:
    try:
        __import__(name)
    except Exception:  # noqa: BLE001
        return False
    return True


def _numba_jit(fn: Any = None, *args: Any, **kwargs: Any) -> Any:
    if callable(fn):
        return fn
    return lambda f: f


# ----------------------------------------------------------------------------- torch


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
        if kwargs.get("type") == "cuda":
            return _REAL_DEVICE("cpu")
        return _REAL_DEVICE(*args, **kwargs)


class _Device(metaclass=_DeviceMeta):
    """``torch.device`` stand-in: ``torch.device("cuda", rank)`` is the CPU."""


def _device_kwarg(fn: Any) -> Any:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if "device" in kwargs:
            kwargs["device"] = _cpu_device(kwargs["device"])
        kwargs.pop("pin_memory", None)
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


class _Event:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.t = 0.0

    def record(self, *args: Any) -> None:
        self.t = time.perf_counter()

    def elapsed_time(self, other: "_Event") -> float:
        return (other.t - self.t) * 1000.0

    def synchronize(self) -> None:
        pass

    def wait(self, *args: Any) -> None:
        pass

    def query(self) -> bool:
        return True


class _Stream:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def wait_stream(self, *args: Any) -> None:
        pass

    def wait_event(self, *args: Any) -> None:
        pass

    def synchronize(self) -> None:
        pass

    def record_event(self, *args: Any) -> _Event:
        return _Event()

    def __enter__(self) -> "_Stream":
        return self

    def __exit__(self, *exc: Any) -> bool:
        return False


class _Props:
    name = "cpu-shim"
    total_memory = 80 * 1024**3
    multi_processor_count = 132
    major, minor = 9, 0


def _install_cuda() -> None:
    cuda = torch.cuda
    for name in ("synchronize", "empty_cache", "manual_seed_all", "manual_seed", "set_device", "init",
                 "reset_peak_memory_stats", "reset_max_memory_allocated", "ipc_collect", "set_sync_debug_mode"):
        setattr(cuda, name, lambda *a, **k: None)
    for name in ("max_memory_allocated", "max_memory_reserved", "memory_allocated", "memory_reserved"):
        setattr(cuda, name, lambda *a, **k: 0)
    cuda.is_available = lambda: True
    cuda.is_initialized = lambda: True
    cuda.device_count = lambda: 1
    cuda.current_device = lambda: 0
    cuda.get_device_name = lambda *a, **k: "cpu-shim"
    cuda.get_device_capability = lambda *a, **k: (9, 0)
    cuda.get_device_properties = lambda *a, **k: _Props()
    cuda.is_bf16_supported = lambda *a, **k: True
    cuda.get_rng_state = lambda *a, **k: torch.get_rng_state()
    cuda.set_rng_state = lambda state, *a, **k: None
    cuda.Event = _Event
    cuda.Stream = _Stream
    cuda.current_stream = lambda *a, **k: _Stream()
    cuda.default_stream = lambda *a, **k: _Stream()
    cuda.stream = lambda *a, **k: _Stream()
    cuda.device = lambda *a, **k: contextlib.nullcontext()
    cuda.mem_get_info = lambda *a, **k: (64 * 1024**3, 80 * 1024**3)
    torch.Tensor.record_stream = lambda self, *a, **k: None  # type: ignore[method-assign]
    torch.compiler.cudagraph_mark_step_begin = lambda *a, **k: None  # type: ignore[attr-defined]


class _InferenceMode:
    """``torch.inference_mode`` as ``no_grad``: the same values, and tensors made while scoring stay
    usable by a later adaptation step (on CUDA the records' compiled graphs hide that difference)."""

    def __init__(self, mode: Any = True) -> None:
        self.fn = mode if callable(mode) else None
        self.ctx = torch.no_grad() if (mode is True or self.fn is not None) else contextlib.nullcontext()

    def __enter__(self) -> None:
        self.ctx.__enter__()

    def __exit__(self, *exc: Any) -> Any:
        return self.ctx.__exit__(*exc)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.fn is not None:  # @torch.inference_mode without parentheses: a decorated call
            with torch.no_grad():
                return self.fn(*args, **kwargs)
        fn = args[0]

        def wrapped(*a: Any, **k: Any) -> Any:
            with torch.no_grad():
                return fn(*a, **k)

        return wrapped


def _install_torch_patches() -> None:
    torch.compile = _compile
    torch.inference_mode = _InferenceMode  # type: ignore[assignment,misc]
    torch._dynamo.reset = lambda *a, **k: None  # nothing is compiled; its reset probes the (stub) triton
    _install_cuda()
    torch.device = _Device  # type: ignore[misc]
    torch.autocast = _NoAutocast  # type: ignore[misc]
    torch.amp.autocast = _NoAutocast  # type: ignore[misc]
    torch.cuda.amp.autocast = _NoAutocast  # type: ignore[misc]
    for name in ("zeros", "ones", "empty", "full", "arange", "tensor", "randn", "rand", "randint",
                 "zeros_like", "ones_like", "empty_like", "full_like", "randn_like", "rand_like", "randint_like",
                 "as_tensor", "linspace", "eye", "randperm", "empty_strided", "from_numpy", "frombuffer", "logspace"):
        if hasattr(torch, name):
            setattr(torch, name, _device_kwarg(getattr(torch, name)))
    real_generator = torch.Generator

    def generator(device: Any = "cpu") -> torch.Generator:
        return real_generator(device=_cpu_device(device))

    torch.Generator = generator  # type: ignore[assignment,misc]
    torch.Tensor.cuda = lambda self, *a, **k: self  # type: ignore[method-assign]
    torch.nn.Module.cuda = lambda self, *a, **k: self  # type: ignore[method-assign]
    torch.Tensor.pin_memory = lambda self, *a, **k: self  # type: ignore[method-assign]
    torch.nn.Module.bfloat16 = lambda self: self  # type: ignore[method-assign]
    real_train, real_init = torch.nn.Module.train, torch.nn.Module.__init__

    def train(self: torch.nn.Module, mode: bool = True) -> torch.nn.Module:
        return real_train(self, False)

    def init(self: torch.nn.Module, *args: Any, **kwargs: Any) -> None:
        real_init(self, *args, **kwargs)
        object.__setattr__(self, "training", False)

    torch.nn.Module.train = train  # type: ignore[method-assign]
    torch.nn.Module.__init__ = init  # type: ignore[method-assign]
    torch.nn.Module.half = lambda self: self  # type: ignore[method-assign]
    real_tensor_to = torch.Tensor.to
    real_module_to = torch.nn.Module.to

    def tensor_to(self: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        args = tuple(_cpu_device(a) if isinstance(a, (str, _REAL_DEVICE)) else a for a in args)
        kwargs.pop("non_blocking", None)
        if "device" in kwargs:
            kwargs["device"] = _cpu_device(kwargs["device"])
        return real_tensor_to(self, *args, **kwargs)

    def module_to(self: torch.nn.Module, *args: Any, **kwargs: Any) -> torch.nn.Module:
        # The model stays fp32 (exact comparisons); device moves are CPU moves.
        args = tuple(_cpu_device(a) for a in args if not isinstance(a, torch.dtype) or not a.is_floating_point)
        kwargs.pop("non_blocking", None)
        if isinstance(kwargs.get("dtype"), torch.dtype) and kwargs["dtype"].is_floating_point:
            kwargs.pop("dtype")
        if "device" in kwargs:
            kwargs["device"] = _cpu_device(kwargs["device"])
        return real_module_to(self, *args, **kwargs) if (args or kwargs) else self

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
    _install_dist()


# ----------------------------------------------------------------------------- distributed


class _Work:
    def wait(self, *args: Any, **kwargs: Any) -> bool:
        return True

    def is_completed(self) -> bool:
        return True

    def get_future(self) -> Any:
        fut = torch.futures.Future()
        fut.set_result(None)
        return fut


class _DDP(torch.nn.Module):
    """``DistributedDataParallel`` for one process: the module itself, under ``.module``."""

    def __init__(self, module: torch.nn.Module, *args: Any, **kwargs: Any) -> None:
        super().__init__()
        self.module = module

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.module(*args, **kwargs)

    @contextlib.contextmanager
    def no_sync(self) -> Any:
        yield

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self._modules["module"], name)


def _install_dist() -> None:
    """A process group of one: every collective leaves its tensors as they are."""
    import torch.distributed as dist
    import torch.nn.parallel

    state = {"up": False}

    def init_process_group(*args: Any, **kwargs: Any) -> None:
        state["up"] = True

    def done(*args: Any, async_op: bool = False, **kwargs: Any) -> Any:
        return _Work() if async_op else None

    def all_gather(tensor_list: list, tensor: torch.Tensor, *args: Any, async_op: bool = False, **kwargs: Any) -> Any:
        for t in tensor_list:
            t.copy_(tensor)
        return _Work() if async_op else None

    def into(output: torch.Tensor, input: torch.Tensor, *args: Any, async_op: bool = False, **kwargs: Any) -> Any:
        output.copy_(input.reshape(output.shape))
        return _Work() if async_op else None

    def all_gather_object(object_list: list, obj: Any, *args: Any, **kwargs: Any) -> None:
        for i in range(len(object_list)):
            object_list[i] = obj

    def gather(tensor: torch.Tensor, gather_list: list | None = None, *args: Any, async_op: bool = False,
               **kwargs: Any) -> Any:
        if gather_list:
            gather_list[0].copy_(tensor)
        return _Work() if async_op else None

    def scatter(tensor: torch.Tensor, scatter_list: list | None = None, *args: Any, async_op: bool = False,
                **kwargs: Any) -> Any:
        if scatter_list:
            tensor.copy_(scatter_list[0])
        return _Work() if async_op else None

    dist.init_process_group = init_process_group
    dist.is_initialized = lambda: state["up"]
    dist.is_available = lambda: True
    dist.get_rank = lambda *a, **k: 0
    dist.get_world_size = lambda *a, **k: 1
    dist.get_backend = lambda *a, **k: "gloo"
    dist.destroy_process_group = lambda *a, **k: state.update(up=False)
    dist.new_group = lambda *a, **k: None
    for name in ("all_reduce", "broadcast", "barrier", "reduce", "all_reduce_coalesced", "monitored_barrier"):
        setattr(dist, name, done)
    dist.broadcast_object_list = lambda *a, **k: None
    dist.all_gather = all_gather
    dist.all_gather_object = all_gather_object
    dist.gather, dist.scatter = gather, scatter
    dist.gather_object = lambda obj, object_gather_list=None, *a, **k: (
        object_gather_list.__setitem__(0, obj) if object_gather_list else None)
    dist.all_to_all_single = into
    dist.all_gather_into_tensor = into
    dist.reduce_scatter_tensor = into
    dist._all_gather_base = into
    dist._reduce_scatter_base = into
    torch.nn.parallel.DistributedDataParallel = _DDP  # type: ignore[misc]


# ----------------------------------------------------------------------------- data and files


def install_data(vocab: int, data_file: Callable[[str], list[str] | None]) -> None:
    """The fake tokenizer, and globs of shard names answered with the synthetic shards."""
    from . import fakedata

    fakedata.FakeSentencePiece.vocab = vocab
    try:
        import sentencepiece
    except ImportError:
        sentencepiece = _module("sentencepiece")
    sentencepiece.SentencePieceProcessor = fakedata.FakeSentencePiece
    real_glob, real_iglob, real_path_glob = _glob.glob, _glob.iglob, pathlib.Path.glob

    def glob(pattern: Any, *args: Any, **kwargs: Any) -> list[str]:
        ours = data_file(str(pattern))
        return ours if ours is not None else real_glob(pattern, *args, **kwargs)

    def iglob(pattern: Any, *args: Any, **kwargs: Any) -> Any:  # glob.glob calls glob.iglob: no recursion
        ours = data_file(str(pattern))
        return iter(ours) if ours is not None else real_iglob(pattern, *args, **kwargs)

    def path_glob(self: pathlib.Path, pattern: str, *args: Any, **kwargs: Any) -> Any:
        ours = data_file(str(self / pattern))
        return iter(pathlib.Path(p) for p in ours) if ours is not None else real_path_glob(self, pattern, *args, **kwargs)

    _glob.glob, _glob.iglob = glob, iglob
    pathlib.Path.glob = path_glob  # type: ignore[method-assign]
    _redirect_paths(data_file)


def _redirect_paths(data_file: Callable[[str], list[str] | None]) -> None:
    """Opening a challenge shard by its own path (no glob) opens the synthetic one."""
    import io

    import numpy as np

    real_open, real_exists, real_isfile, real_getsize, real_stat = builtins.open, os.path.exists, os.path.isfile, \
        os.path.getsize, os.stat
    real_fromfile, real_memmap = np.fromfile, np.memmap

    def present(path: Any) -> bool:  # os.path.exists calls os.stat: use the real one directly
        try:
            real_stat(path)
        except (OSError, ValueError):
            return False
        return True

    def mapped(path: Any) -> Any:
        if isinstance(path, (str, pathlib.PurePath)):
            name = os.path.basename(str(path)).lower()
            if name.endswith(".bin") and ("val" in name or "train" in name) and not present(path):
                ours = data_file(str(path))
                if ours:
                    return ours[0]
        return path

    def opener(file: Any, *args: Any, **kwargs: Any) -> Any:
        return real_open(mapped(file), *args, **kwargs)

    builtins.open = opener
    io.open = opener
    os.path.exists = lambda p: real_exists(mapped(p))
    os.path.isfile = lambda p: real_isfile(mapped(p))
    os.path.getsize = lambda p: real_getsize(mapped(p))
    os.stat = lambda p, *a, **k: real_stat(mapped(p), *a, **k)
    np.fromfile = lambda file, *a, **k: real_fromfile(mapped(file), *a, **k)

    class memmap(real_memmap):  # noqa: N801 - numpy's name
        def __new__(cls, filename: Any, *args: Any, **kwargs: Any) -> Any:
            return real_memmap.__new__(cls, mapped(filename), *args, **kwargs)

    np.memmap = memmap


def _tool_lrzip(argv: list[str], stdin: bytes) -> tuple[int, bytes]:
    """``lrzip -z|-d ... -o OUT IN``: the same round trip, with lzma."""
    out, inp = argv[argv.index("-o") + 1], argv[-1]
    data = open(inp, "rb").read()
    with open(out, "wb") as f:
        f.write(lzma.decompress(data) if "-d" in argv else lzma.compress(data, preset=1))
    return 0, b""


# Command-line tools the records call, answered in-process (the sandbox runs no other programs).
TOOLS: dict[str, Callable[[list[str], bytes], tuple[int, bytes]]] = {
    "nvidia-smi": lambda argv, stdin: (0, b"NVIDIA-SMI (golf-audit CPU shim)\n"),
    "pyminify": lambda argv, stdin: (0, stdin),  # code-size logging only: the code itself is the output
    "lrzip": _tool_lrzip,
}


def _fake_tools() -> None:
    import subprocess

    real_run, real_check_output = subprocess.run, subprocess.check_output

    def tool(args: Any) -> Callable[[list[str], bytes], tuple[int, bytes]] | None:
        argv = args.split() if isinstance(args, str) else list(args) if isinstance(args, (list, tuple)) else []
        return TOOLS.get(os.path.basename(str(argv[0]))) if argv else None

    def run(args: Any, *a: Any, **k: Any) -> Any:
        handler = tool(args)
        if handler is None:
            return real_run(args, *a, **k)
        argv = args.split() if isinstance(args, str) else [str(x) for x in args]
        data = k.get("input") or b""
        text = bool(k.get("text") or k.get("universal_newlines") or k.get("encoding"))
        code, out = handler(argv, data.encode() if isinstance(data, str) else data)
        if k.get("check") and code:
            raise subprocess.CalledProcessError(code, argv)
        return subprocess.CompletedProcess(argv, code, out.decode() if text else out, "" if text else b"")

    def check_output(args: Any, *a: Any, **k: Any) -> Any:
        if tool(args) is None:
            return real_check_output(args, *a, **k)
        return run(args, *a, check=True, **{kk: v for kk, v in k.items() if kk != "check"}).stdout

    subprocess.run, subprocess.check_output = run, check_output


def install() -> None:
    """Install every shim; call once, before the submission script runs."""
    # The compiler stacks first: they probe for triton, and must see the real (absent) one;
    # a script's `torch._dynamo.config.x = ...` then works.
    import torch._dynamo  # noqa: F401
    import torch._inductor.config  # noqa: F401

    from . import ssm_shims

    _fake_tools()
    _install_stub_modules()
    ssm_shims.install()
    _install_torch_patches()
    builtins.__dict__.setdefault("__ga_shimmed__", True)
