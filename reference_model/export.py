"""The seed PR's artifact container: int6/int8 per-row quantization, torch.save, lzma.

Container (DOMAIN.md §5 "Exact container"): ``lzma(torch.save({"w": W, "m": M}))``, preset 6.
For each state_dict name:
  * float tensors of <= 65,536 elements (and any non-float tensor) pass through:
    ``W[name]`` (floats as fp16), ``M[name] = "passthrough"``;
  * larger control tensors (names in CONTROL_PATTERNS) pass through in fp32 as
    ``"passthrough_ctrl"`` (never reached at the seed's shapes, kept for fidelity);
  * attention and MLP matrices: int6 per row, ``W[name+".q"]`` int8 in [-31, 31],
    ``W[name+".scale"]`` fp16 per row, ``M[name] = {"type": "int6"}``; the row clip is
    chosen per row by reconstruction MSE among the quantiles INT6_CLIP_QUANTILES;
  * everything else (embeddings): int8 per row in [-127, 127], row clip at the
    99.99984th percentile, ``M[name] = {"type": "int8"}``.
Dequantize as ``q * scale`` (per row for 2-D). Everything loads with ``weights_only=True``.
"""

from __future__ import annotations

import io
import lzma
import pickle
import zipfile

import torch

PASSTHROUGH_MAX_NUMEL = 65_536
INT6_MAX, INT8_MAX = 31, 127
INT6_CLIP_QUANTILES = (0.999, 0.9995, 0.9999, 0.99999, 1.0)
INT8_CLIP_QUANTILE = 0.9999984
LZMA_PRESET = 6
CONTROL_PATTERNS = ("attn_scale", "mlp_scale", "resid_mix", "q_gain", "skip_weight", "smear",
                    "ve_layer_scales", "ve_shared.scale")
_SCALE_FLOOR = 1e-12  # keeps all-zero rows finite (their q is 0 anyway)


class ArtifactError(ValueError):
    """A blob that is not a valid int6+lzma container; the message is one clear line."""


def is_control(name: str) -> bool:
    return any(p in name for p in CONTROL_PATTERNS)


def quant_category(name: str) -> str:
    """"int6" for attention/MLP matrices, "int8" for the rest (embeddings), as the seed classifies."""
    if "tok_emb" in name or "lm_head" in name:
        return "int8"
    if ".mlp." in name or ".attn." in name or ".proj." in name:
        return "int6"
    return "int8"


def _quantize_rows(t: torch.Tensor, clip: torch.Tensor, qmax: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row symmetric quantization of 2-D ``t`` with row clip values ``clip``."""
    scale = (clip / qmax).clamp_min(_SCALE_FLOOR).to(torch.float16)
    s = scale.float()[:, None]
    q = torch.clamp(torch.round(t.clamp(-clip[:, None], clip[:, None]) / s), -qmax, qmax).to(torch.int8)
    return q, scale


def row_quantiles(a: torch.Tensor, qs: tuple[float, ...]) -> list[torch.Tensor]:
    """Per-row quantiles of 2-D ``a`` (torch.quantile's linear rule) from one sort, not one per q."""
    s, _ = torch.sort(a, dim=1)
    n = s.size(1)
    out = []
    for q in qs:
        # Same float32 arithmetic as torch.quantile, so the clips (and artifacts) match it bit for bit.
        rank = torch.tensor(q, dtype=a.dtype) * (n - 1)
        lo, hi = int(rank.floor()), int(rank.ceil())
        out.append(torch.lerp(s[:, lo], s[:, hi], rank - lo))
    return out


def quantize_int6(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """int6 per row; each row keeps the clip quantile with the smallest reconstruction MSE."""
    t32 = t.float()
    if t32.ndim != 2:
        return _quantize_scalar(t32, INT6_MAX, 1.0)
    clips = row_quantiles(t32.abs(), INT6_CLIP_QUANTILES)
    best_q = best_s = best_err = None
    for clip in clips:
        q, s = _quantize_rows(t32, clip, INT6_MAX)
        err = (t32 - q.float() * s.float()[:, None]).pow(2).mean(dim=1)
        if best_err is None:
            best_q, best_s, best_err = q, s, err
        else:
            better = err < best_err
            best_q = torch.where(better[:, None], q, best_q)
            best_s = torch.where(better, s, best_s)
            best_err = torch.minimum(err, best_err)
    return best_q.contiguous(), best_s.contiguous()


def quantize_int8(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """int8 per row with the row clip at the 99.99984th percentile of |w|."""
    t32 = t.float()
    if t32.ndim != 2:
        return _quantize_scalar(t32, INT8_MAX, INT8_CLIP_QUANTILE)
    q, s = _quantize_rows(t32, row_quantiles(t32.abs(), (INT8_CLIP_QUANTILE,))[0], INT8_MAX)
    return q.contiguous(), s.contiguous()


def _quantize_scalar(t32: torch.Tensor, qmax: int, qtl: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Non-2-D tensors share one scale (a 0-d fp16 tensor)."""
    flat = t32.abs().flatten()
    clip = float(flat.max() if qtl >= 1.0 else torch.quantile(flat, qtl)) if flat.numel() else 0.0
    scale = torch.tensor(clip / qmax if clip > 0 else 1.0, dtype=torch.float16)
    q = torch.clamp(torch.round(t32.clamp(-clip, clip) / scale.float()), -qmax, qmax).to(torch.int8)
    return q.contiguous(), scale


def quantize_state_dict(sd: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, object]]:
    """(W, M) of the seed container for a state_dict (see the module docstring)."""
    W: dict[str, torch.Tensor] = {}
    M: dict[str, object] = {}
    for name, t in sd.items():
        t = t.detach().cpu()
        if not t.is_floating_point() or t.numel() <= PASSTHROUGH_MAX_NUMEL:
            W[name] = t.to(torch.float16).contiguous() if t.is_floating_point() else t.contiguous()
            M[name] = "passthrough"
        elif is_control(name):
            W[name] = t.float().contiguous()
            M[name] = "passthrough_ctrl"
        else:
            kind = quant_category(name)
            q, s = quantize_int6(t) if kind == "int6" else quantize_int8(t)
            W[name + ".q"], W[name + ".scale"] = q, s
            M[name] = {"type": kind}
    return W, M


def dequantize(W: dict[str, torch.Tensor], M: dict[str, object]) -> dict[str, torch.Tensor]:
    """float32 state_dict from a validated (W, M)."""
    out: dict[str, torch.Tensor] = {}
    for name, kind in M.items():
        if isinstance(kind, str):
            t = W[name]
            out[name] = t.float() if t.is_floating_point() else t
        else:
            q, s = W[name + ".q"].float(), W[name + ".scale"].float()
            out[name] = q * s[:, None] if (q.ndim == 2 and s.ndim == 1) else q * s
    return out


def pack(sd: dict[str, torch.Tensor]) -> bytes:
    """The ``final_model.int6.ptz`` bytes for a state_dict."""
    W, M = quantize_state_dict(sd)
    buf = io.BytesIO()
    torch.save({"w": W, "m": M}, buf)
    return lzma.compress(buf.getvalue(), preset=LZMA_PRESET)


def read_container(blob: bytes) -> tuple[dict[str, torch.Tensor], dict[str, object]]:
    """Decompress, load with ``weights_only=True`` and validate the structure; (W, M).

    Raises ArtifactError (one line) for anything that is not a well-formed container.
    """
    if not isinstance(blob, (bytes, bytearray, memoryview)) or len(blob) == 0:
        raise ArtifactError("artifact is empty")
    try:
        raw = lzma.decompress(bytes(blob))
    except lzma.LZMAError as exc:
        raise ArtifactError(f"not a complete lzma stream (corrupt or truncated artifact: {exc})") from None
    except EOFError:
        raise ArtifactError("truncated lzma stream (artifact cut short)") from None
    try:
        obj = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, zipfile.BadZipFile, EOFError, ValueError, KeyError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise ArtifactError(f"decompressed payload is not a weights-only torch.save archive ({first})") from None
    if not isinstance(obj, dict) or set(obj) != {"w", "m"}:
        keys = sorted(map(str, obj)) if isinstance(obj, dict) else type(obj).__name__
        raise ArtifactError(f"container must be a dict with keys 'w' and 'm', got {keys}")
    W, M = obj["w"], obj["m"]
    if not isinstance(W, dict) or not isinstance(M, dict):
        raise ArtifactError("container 'w' and 'm' must both be dicts")
    _validate(W, M)
    return W, M


def _validate(W: dict, M: dict) -> None:
    expected: set[str] = set()
    for name, kind in M.items():
        if not isinstance(name, str):
            raise ArtifactError(f"non-string tensor name {name!r} in 'm'")
        if kind in ("passthrough", "passthrough_ctrl"):
            _need_tensor(W, name)
            expected.add(name)
            continue
        if not (isinstance(kind, dict) and kind.get("type") in ("int6", "int8")):
            raise ArtifactError(f"{name}: unknown entry {kind!r} in 'm' (expected passthrough, passthrough_ctrl, int6 or int8)")
        q, s = _need_tensor(W, name + ".q"), _need_tensor(W, name + ".scale")
        expected.update((name + ".q", name + ".scale"))
        if q.dtype != torch.int8:
            raise ArtifactError(f"{name}.q has dtype {q.dtype}, expected torch.int8")
        if s.dtype not in (torch.float16, torch.float32, torch.bfloat16):
            raise ArtifactError(f"{name}.scale has dtype {s.dtype}, expected a float (fp16)")
        rows_ok = s.ndim == 1 and q.ndim == 2 and s.shape[0] == q.shape[0]
        if not (rows_ok or s.numel() == 1):
            raise ArtifactError(f"{name}.scale shape {tuple(s.shape)} does not fit {name}.q shape {tuple(q.shape)}")
        qmax = INT6_MAX if kind["type"] == "int6" else INT8_MAX
        if q.numel() and int(q.abs().max()) > qmax:
            raise ArtifactError(f"{name}.q holds values beyond ±{qmax} for {kind['type']}")
        if not torch.isfinite(s.float()).all():
            raise ArtifactError(f"{name}.scale holds non-finite values")
    extra = set(W) - expected
    if extra:
        raise ArtifactError(f"'w' holds {len(extra)} tensor(s) not described in 'm', e.g. {sorted(extra)[0]!r}")


def _need_tensor(W: dict, key: str) -> torch.Tensor:
    t = W.get(key)
    if not isinstance(t, torch.Tensor):
        raise ArtifactError(f"'w' lacks tensor {key!r}" if t is None else f"'w'[{key!r}] is not a tensor")
    return t


def unpack(blob: bytes) -> dict[str, torch.Tensor]:
    """Dequantized float32 state_dict from container bytes (validated; ArtifactError if bad)."""
    return dequantize(*read_container(blob))


def load_into(model: torch.nn.Module, blob: bytes) -> torch.nn.Module:
    """Load container bytes into ``model`` (strict); mismatched names/shapes are ArtifactError."""
    sd = unpack(blob)
    own = model.state_dict()
    missing, unexpected = sorted(set(own) - set(sd)), sorted(set(sd) - set(own))
    if missing or unexpected:
        raise ArtifactError(f"artifact does not match the model: {len(missing)} missing (e.g. {missing[:1]}), "
                            f"{len(unexpected)} unexpected (e.g. {unexpected[:1]})")
    for k, v in sd.items():
        if v.shape != own[k].shape:
            raise ArtifactError(f"{k}: artifact shape {tuple(v.shape)} != model shape {tuple(own[k].shape)}")
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in sd.items()}, strict=True)
    return model
