"""The int6+lzma container: format, roundtrip, interchangeability and bad blobs."""

from __future__ import annotations

import io
import lzma

import pytest
import torch

from reference_model import export
from reference_model.demo import tiny_hp
from reference_model.export import ArtifactError
from reference_model.model import GPT


@pytest.fixture(scope="module")
def model():
    # model_dim 256 makes the MLP matrices (256x768) int6 and tok_emb (512x256) int8,
    # while the attention matrices (256x256 = 65,536) sit exactly on the passthrough bound.
    torch.manual_seed(0)
    m = GPT(tiny_hp(model_dim=256, num_heads=4, num_kv_heads=2, num_layers=2, ve_layers="1", xsa_last_n=2)).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.02)  # zero-initialized projections would be trivial
    return m


def test_container_layout_matches_the_seed(model):
    sd = model.state_dict()
    W, M = export.quantize_state_dict(sd)
    assert M["blocks.0.mlp.fc.weight"] == {"type": "int6"}
    assert M["tok_emb.weight"] == {"type": "int8"}
    assert M["blocks.0.attn.c_q.weight"] == "passthrough"  # exactly 65,536 elements
    assert M["blocks.0.attn_scale"] == "passthrough" and W["blocks.0.attn_scale"].dtype == torch.float16
    q, s = W["blocks.0.mlp.fc.weight.q"], W["blocks.0.mlp.fc.weight.scale"]
    assert q.dtype == torch.int8 and q.abs().max() <= 31 and s.dtype == torch.float16 and s.shape == (q.shape[0],)
    assert W["tok_emb.weight.q"].abs().max() <= 127
    assert set(M) == set(sd)


def _naive_int6(w):
    """The clip search written the slow, obvious way: torch.quantile per candidate."""
    best = None
    for qtl in export.INT6_CLIP_QUANTILES:
        clip = w.abs().amax(1) if qtl == 1.0 else torch.quantile(w.abs(), qtl, dim=1)
        s = (clip / 31).clamp_min(1 / 31).half()
        q = torch.clamp(torch.round(w / s.float()[:, None]), -31, 31).to(torch.int8)
        err = float((w - q.float() * s.float()[:, None]).pow(2).mean())
        if best is None or err < best[0]:
            best = (err, q, s)
    return best[1], best[2]


def test_int6_matches_the_naive_clip_search_and_beats_absmax():
    torch.manual_seed(1)
    w = torch.randn(64, 300) * 2.0
    w[0, 0] = 40.0  # one outlier: a clipped quantile beats absmax
    q, s = export.quantize_int6(w)
    nq, ns = _naive_int6(w)
    assert torch.equal(q, nq) and torch.equal(s, ns)
    err = (w - q.float() * s.float()[:, None]).pow(2).mean()
    amax_q, amax_s = export._int6_rows(w, w.abs().amax(1))
    assert err < (w - amax_q.float() * amax_s.float()[:, None]).pow(2).mean()


def test_small_rows_share_the_seed_scale_floor():
    """Rows whose clip is below 1 get the seed's floored scale 1/31 (stored as fp16)."""
    q, s = export.quantize_int6(torch.full((2, 4), 0.1))
    assert torch.equal(s, torch.full((2,), 1 / 31).half()) and q.unique().tolist() == [3]


def test_roundtrip_equals_direct_dequantized_eval(model):
    sd = model.state_dict()
    blob = export.pack(sd)
    assert export.pack(sd) == blob  # deterministic bytes
    fresh = export.load_into(GPT(model.hp).eval(), blob)
    direct = GPT(model.hp).eval()
    direct.load_state_dict(export.dequantize(*export.quantize_state_dict(sd)))
    ids = torch.randint(0, model.hp.vocab_size, (2, 64), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(fresh.forward_logits(ids), direct.forward_logits(ids))
        # and quantization is close to, but not the same as, the original weights
        diff = (fresh.forward_logits(ids) - model.forward_logits(ids)).abs().max()
    assert 0 < diff < 0.5


def test_seed_written_container_loads(model):
    """A blob built as the seed script writes it (scalar int8 scale, fp32 ctrl) unpacks."""
    W = {"a": torch.ones(3, dtype=torch.float16), "ctrl.resid_mix": torch.ones(2, 4),
         "e.q": torch.tensor([[1, -127], [3, 4]], dtype=torch.int8), "e.scale": torch.tensor([0.5, 0.25], dtype=torch.float16),
         "v.q": torch.tensor([2, -2], dtype=torch.int8), "v.scale": torch.tensor(0.5, dtype=torch.float16)}
    M = {"a": "passthrough", "ctrl.resid_mix": "passthrough_ctrl", "e": {"type": "int8"}, "v": {"type": "int8"}}
    buf = io.BytesIO()
    torch.save({"w": W, "m": M}, buf)
    sd = export.unpack(lzma.compress(buf.getvalue(), preset=6))
    assert sd["e"].tolist() == [[0.5, -63.5], [0.75, 1.0]] and sd["v"].tolist() == [1.0, -1.0]
    assert all(t.dtype == torch.float32 for t in sd.values())


def test_our_container_loads_with_a_plain_seed_style_loader(model):
    """What the seed's own loader does: lzma, torch.load(weights_only), q * scale per row."""
    blob = export.pack(model.state_dict())
    obj = torch.load(io.BytesIO(lzma.decompress(blob)), weights_only=True)
    W, M = obj["w"], obj["m"]
    out = {}
    for name, meta in M.items():
        if isinstance(meta, dict):
            q, s = W[name + ".q"], W[name + ".scale"]
            out[name] = (q.float() * s.float().view(q.shape[0], *([1] * (q.ndim - 1)))) if s.ndim > 0 else q.float() * float(s)
        else:
            out[name] = W[name].float()
    fresh = GPT(model.hp)
    fresh.load_state_dict(out, strict=True)


def _blob(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return lzma.compress(buf.getvalue())


class Foreign:
    pass


@pytest.mark.parametrize("make, needle", [
    (lambda b: b[: len(b) // 2], "lzma"),
    (lambda b: b"", "empty"),
    (lambda b: b"PK\x03\x04 not lzma at all", "lzma"),
    (lambda b: lzma.compress(b"hello world"), "torch.save"),
    (lambda b: _blob({"w": {}, "m": {}, "x": 1}), "keys"),
    (lambda b: _blob([1, 2]), "dict"),
    (lambda b: _blob({"w": {"a.q": torch.zeros(2, 2, dtype=torch.int8)}, "m": {"a": {"type": "int6"}}}), "a.scale"),
    (lambda b: _blob({"w": {"a.q": torch.full((2, 2), 40, dtype=torch.int8), "a.scale": torch.ones(2, dtype=torch.float16)},
                      "m": {"a": {"type": "int6"}}}), "beyond"),
    (lambda b: _blob({"w": {"a": torch.ones(1), "b": torch.ones(1)}, "m": {"a": "passthrough"}}), "not described"),
    (lambda b: _blob({"w": {"a": torch.ones(1)}, "m": {"a": "int4"}}), "unknown entry"),
])
def test_bad_blobs_raise_one_line_artifact_error(model, make, needle):
    blob = make(export.pack({"x": torch.randn(4, 4)}))
    with pytest.raises(ArtifactError, match=needle) as err:
        export.unpack(blob)
    assert "\n" not in str(err.value)


def test_pickled_objects_are_refused():
    buf = io.BytesIO()
    torch.save({"w": {}, "m": {"a": Foreign()}}, buf)
    with pytest.raises(ArtifactError, match="weights-only"):
        export.read_container(lzma.compress(buf.getvalue()))


def test_load_into_rejects_mismatched_model(model):
    blob = export.pack(model.state_dict())
    with pytest.raises(ArtifactError, match="does not match"):
        export.load_into(GPT(tiny_hp()), blob)


@pytest.mark.parametrize("shape", [(7, 13), (64, 512), (3, 1)])
def test_row_quantiles_match_torch_quantile_bit_for_bit(shape):
    a = torch.randn(*shape, generator=torch.Generator().manual_seed(0)).abs()
    qs = (*export.INT6_CLIP_QUANTILES, export.INT8_CLIP_QUANTILE, 0.5)
    for q, got in zip(qs, export.row_quantiles(a, qs)):
        assert torch.equal(got, torch.quantile(a, q, dim=1)), q
