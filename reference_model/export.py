"""The seed PR's artifact container: int6/int8 per-row quantization, torch.save, lzma.

Container (DOMAIN.md §5 "Exact container"): ``lzma(torch.save({"w": W, "m": M}))``, preset 6.
For each state_dict name:
  * float tensors of <= 65,536 elements (and any non-float tensor) pass through:
    ``W[name]`` (floats as fp16), ``M[name] = "passthrough"``;
  * larger control tensors (names in CONTROL_PATTERNS) pass through in fp32 as
    ``"passthrough_ctrl"`` (never reached at the seed's shapes, kept for fidelity);
  * attention and MLP matrices: int6 per row, ``W[name+".q"]`` int8 in [-31, 31],
    ``W[name+".scale"]`` fp16 per row, ``M[name] = {"type": "int6"}``; each row's clip is
    a quantile of its |w|, the quantile (among INT6_CLIP_QUANTILES) picked per matrix by
    reconstruction MSE, as the seed script does;
  * everything else (embeddings): int8 per row in [-127, 127], row clip at the
    99.99984th percentile, ``M[name] = {"type": "int8"}``.
Dequantize as ``q * scale`` (per row for 2-D) in fp32, then, as the seed's dequantizer does,
cast to the dtype of the template tensor it is loaded into: bf16 tables (the seed's CUDA
layout) get ``q * scale`` rounded to bf16. Everything loads with ``weights_only=True``.
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


def _int6_rows(t32: torch.Tensor, clip: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """int6 with row clips ``clip``: fp16 scale floored at 1/31, values saturate at ±31."""
    scale = (clip / INT6_MAX).clamp_min(1.0 / INT6_MAX).to(torch.float16)
    q = torch.clamp(torch.round(t32 / scale.float()[:, None]), -INT6_MAX, INT6_MAX).to(torch.int8)
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
    """int6 per row; one clip quantile per matrix, the one with the smallest reconstruction MSE.

    Same arithmetic as the seed: the row scale is fp16, floored at 1/31 (so rows whose clip
    is below 1 share the grid 1/31), and ties keep the earlier (lower) quantile.
    """
    t32 = t.float()
    if t32.ndim != 2:
        amax = float(t32.abs().max()) if t32.numel() else 0.0
        scale = torch.tensor(amax / INT6_MAX if amax > 0 else 1.0, dtype=torch.float16)
        return torch.clamp(torch.round(t32 / scale.float()), -INT6_MAX, INT6_MAX).to(torch.int8), scale
    best: tuple[torch.Tensor, torch.Tensor] | None = None
    best_err = float("inf")
    for clip in row_quantiles(t32.abs(), INT6_CLIP_QUANTILES):
        q, s = _int6_rows(t32, clip)
        err = float((t32 - q.float() * s.float()[:, None]).pow(2).mean())
        if err < best_err:
            best, best_err = (q, s), err
    assert best is not None
    return best[0].contiguous(), best[1].contiguous()


def quantize_int8(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """int8 with the clip at the 99.99984th percentile of |w| (per row for 2-D).

    As the seed: values are clipped, divided by the fp32 scale (floored at 1/127 for rows),
    and the scale is stored as fp16 for rows, fp32 for the single scale of other shapes.
    """
    t32 = t.float()
    if t32.ndim == 2:
        clip = row_quantiles(t32.abs(), (INT8_CLIP_QUANTILE,))[0]
        scale = (clip / INT8_MAX).clamp_min(1.0 / INT8_MAX)
        clipped = torch.maximum(torch.minimum(t32, clip[:, None]), -clip[:, None])
        q = torch.clamp(torch.round(clipped / scale[:, None]), -INT8_MAX, INT8_MAX).to(torch.int8)
        return q.contiguous(), scale.to(torch.float16).contiguous()
    clip_abs = float(torch.quantile(t32.abs().flatten(), INT8_CLIP_QUANTILE)) if t32.numel() else 0.0
    scale = torch.tensor(clip_abs / INT8_MAX if clip_abs > 0 else 1.0, dtype=torch.float32)
    q = torch.clamp(torch.round(torch.clamp(t32, -clip_abs, clip_abs) / scale), -INT8_MAX, INT8_MAX).to(torch.int8)
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


def dequantize(W: dict[str, torch.Tensor], M: dict[str, object],
               template: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """State_dict from a validated (W, M): fp32, or each float tensor in the dtype of its
    ``template`` entry (names missing from ``template`` keep fp32)."""
    out: dict[str, torch.Tensor] = {}
    for name, kind in M.items():
        if isinstance(kind, str):
            t = W[name]
            t = t.float() if t.is_floating_point() else t
        else:
            q, s = W[name + ".q"].float(), W[name + ".scale"].float()
            t = q * s[:, None] if (q.ndim == 2 and s.ndim == 1) else q * s
        ref = template.get(name) if template is not None else None
        if ref is not None and t.is_floating_point() and ref.is_floating_point():
            t = t.to(ref.dtype)
        out[name] = t
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


def unpack(blob: bytes, template: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """Dequantized state_dict from container bytes (validated; ArtifactError if bad): fp32,
    or in ``template``'s dtypes."""
    return dequantize(*read_container(blob), template)


def load_into(model: torch.nn.Module, blob: bytes) -> torch.nn.Module:
    """Load container bytes into ``model`` (strict); mismatched names/shapes are ArtifactError."""
    own = model.state_dict()
    sd = unpack(blob, own)
    missing, unexpected = sorted(set(own) - set(sd)), sorted(set(sd) - set(own))
    if missing or unexpected:
        raise ArtifactError(f"artifact does not match the model: {len(missing)} missing (e.g. {missing[:1]}), "
                            f"{len(unexpected)} unexpected (e.g. {unexpected[:1]})")
    for k, v in sd.items():
        if v.shape != own[k].shape:
            raise ArtifactError(f"{k}: artifact shape {tuple(v.shape)} != model shape {tuple(own[k].shape)}")
    model.load_state_dict(sd, strict=True)
    return model
