"""Inspect a model artifact file (.ptz / .pt): does it match the declared container, and what
takes the space.

The seed container (DOMAIN.md §5) is validated by ``reference_model.export.read_container``;
this module adds the per-tensor byte breakdown and handles files that are not that container
(raw ``torch.save`` state dicts, other compressors) without ever unpickling arbitrary objects.
"""

from __future__ import annotations

import io
import lzma
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch is imported only when an artifact file is actually opened (fast start-up)
    import torch

ARTIFACT_SUFFIXES = (".ptz", ".pt")
# Magic numbers of the compressors seen in records; used only to name what we cannot open.
_MAGIC = {
    b"\xfd7zXZ\x00": "xz/lzma",
    b"\x5d\x00\x00": "lzma (alone)",
    b"\x28\xb5\x2f\xfd": "zstd",
    b"PK\x03\x04": "zip (raw torch.save)",
    b"\x78\x9c": "zlib",
    b"\x78\xda": "zlib",
    b"\x78\x01": "zlib",
}


@dataclass
class TensorBytes:
    """The stored bytes of one state_dict entry (all of its stored tensors)."""

    name: str
    kind: str  # int6, int8, passthrough, passthrough_ctrl, raw
    shape: list[int]
    dtype: str
    stored_bytes: int  # uncompressed bytes of the stored tensors (q + scale, or the tensor)
    share: float = 0.0  # fraction of all stored bytes
    est_compressed_bytes: int = 0  # share × file size (compression is not per tensor; an estimate)


@dataclass
class ArtifactFile:
    """One artifact file in a records folder and what its inspection found."""

    path: Path
    size: int
    format: str  # "seed-container", "raw-state-dict", or a compressor name
    valid: bool | None  # None: could not be checked (unknown compressor)
    error: str | None = None
    tensors: list[TensorBytes] = field(default_factory=list)
    damaged: bool = False  # the bytes are damaged (truncated, corrupt stream): cannot conclude, not a violation

    @property
    def stored_bytes(self) -> int:
        return sum(t.stored_bytes for t in self.tensors)


def _sniff(blob: bytes) -> str:
    for magic, name in _MAGIC.items():
        if blob.startswith(magic):
            return name
    return "unknown"


def _nbytes(t: "torch.Tensor") -> int:
    return t.numel() * t.element_size()


def _breakdown_container(W: dict, M: dict) -> list[TensorBytes]:
    out = []
    for name, kind in M.items():
        if isinstance(kind, dict):
            q, s = W[name + ".q"], W[name + ".scale"]
            out.append(TensorBytes(name, str(kind.get("type")), list(q.shape), str(q.dtype).replace("torch.", ""), _nbytes(q) + _nbytes(s)))
        else:
            t = W[name]
            out.append(TensorBytes(name, str(kind), list(t.shape), str(t.dtype).replace("torch.", ""), _nbytes(t)))
    return out


def _finish(art: ArtifactFile) -> ArtifactFile:
    total = art.stored_bytes
    for t in art.tensors:
        t.share = t.stored_bytes / total if total else 0.0
        t.est_compressed_bytes = round(t.share * art.size)
    art.tensors.sort(key=lambda t: t.stored_bytes, reverse=True)
    return art


_GLOBAL = re.compile(r"GLOBAL\s+([\w.]+)|Unsupported global:\s*GLOBAL\s+([\w.]+)|global\s+['\"]?([\w.]+\.[\w]+)")


def _unpickle_message(exc: BaseException) -> str:
    """One line for a refused pickle: the offending global when torch names it, not its essay."""
    text = str(exc)
    m = _GLOBAL.search(text)
    if m:
        name = next(g for g in m.groups() if g)
        return f"refused by weights_only loading: the pickle references the global {name} (code, not tensors)"
    first = text.strip().splitlines()[0][:120] if text.strip() else type(exc).__name__
    return f"not a weights-only torch.save archive ({type(exc).__name__}: {first})"


def _refusal(blob: bytes, message: str) -> str:
    """read_container's message, with the offending global named when the pickle was refused."""
    if "weights-only" not in message:
        return message
    try:
        raw = lzma.decompress(blob)
        import torch

        torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - only to name the refusal
        return "decompressed payload " + _unpickle_message(exc).replace("refused by", "is refused by")
    return message


def _lzma_problem(blob: bytes, kind: str) -> str | None:
    """A real sentence for a damaged xz/lzma stream (truncated, corrupt), or None when it decodes."""
    dec = lzma.LZMADecompressor()
    try:
        out = dec.decompress(blob, max_length=64 * 1024 * 1024)
    except lzma.LZMAError as exc:
        reason = str(exc).strip()
        if not reason or reason.strip("()").isdigit():
            reason = "the decoder rejected the data"
        return (f"the file starts with the {kind} magic bytes but its compressed data is corrupt ({reason}): "
                "damaged, or not what the run saved")
    if dec.eof or dec.needs_input is False or len(out) >= 64 * 1024 * 1024:
        return None
    return f"truncated {kind} stream: the data ends after {len(blob):,} bytes, before the end of the stream"


def inspect_artifact(path: str | Path) -> ArtifactFile:
    """Open an artifact file safely (``weights_only=True``) and break its bytes down per tensor."""
    path = Path(path)
    try:
        blob = path.read_bytes()
    except OSError as exc:
        return ArtifactFile(path, 0, "unreadable", False, f"cannot read ({exc.strerror or exc})")
    import torch

    from reference_model.export import ArtifactError, read_container

    kind = _sniff(blob)
    art = ArtifactFile(path, len(blob), kind, None)
    if kind.startswith("xz") or kind.startswith("lzma"):
        try:
            W, M = read_container(blob)
        except ArtifactError as exc:
            problem = _lzma_problem(blob, kind) if "lzma" in str(exc) else None
            if problem is not None:
                art.valid, art.error, art.damaged = False, problem, True
            else:
                art.valid, art.error = False, _refusal(blob, str(exc))
            return art
        except (MemoryError, lzma.LZMAError, OSError) as exc:
            art.valid, art.error, art.damaged = False, f"cannot decompress ({type(exc).__name__}: {exc})", True
            return art
        art.format, art.valid, art.tensors = "seed-container", True, _breakdown_container(W, M)
        return _finish(art)
    if kind.startswith("zip"):  # an uncompressed torch.save: a state_dict, not the exported container
        try:
            obj = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad artifact
            art.valid, art.error = False, _unpickle_message(exc)
            art.damaged = "zip" in str(exc).lower() or isinstance(exc, (EOFError, RuntimeError)) and "GLOBAL" not in str(exc)
            return art
        if isinstance(obj, dict) and {"w", "m"} == set(obj):
            art.valid, art.error = False, "an uncompressed seed container (the declared format is lzma-compressed)"
            return art
        tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)} if isinstance(obj, dict) else {}
        if not tensors:
            art.valid, art.error = False, "torch.save archive holds no tensors"
            return art
        art.format, art.valid = "raw-state-dict", True
        art.tensors = [TensorBytes(k, "raw", list(v.shape), str(v.dtype).replace("torch.", ""), _nbytes(v)) for k, v in tensors.items()]
        return _finish(art)
    art.error = f"{kind} data: this build can only open the seed lzma container and raw torch.save files"
    return art


def find_artifacts(folder: Path) -> list[Path]:
    """Model artifacts shipped in the folder (top level): ``*.ptz`` first, then ``*.pt``."""
    found = [p for p in sorted(folder.iterdir()) if p.is_file() and p.suffix.lower() in ARTIFACT_SUFFIXES]
    return sorted(found, key=lambda p: (p.suffix.lower() != ".ptz", p.name))
