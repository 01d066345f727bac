"""The reference stack against the seed PR's own numbers (``../shared/fidelity``, see its README).

Every vector there is checked here, each within the tolerance its README states: forward
(logits, hidden states, the T = 2048 window with the NTK-scaled RoPE base), byte LUTs, the val
stream, sliding (strides 32 and 64: the scored events, their multiplicity and order, totals),
standard, SLOT (1 process and 2 gloo processes), export (bytes, tensors, dequantized weights in
fp32 and in the bf16 layout, roundtrip evals) and three training steps (both Newton-Schulz
precisions, EMA, the optimizer groups and the per-step schedule). Skipped when ../shared is
absent. The whole module runs in well under a minute on one core.
"""

from __future__ import annotations

import hashlib
import io
import json
import lzma
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from reference_model import export
from reference_model.config import Hyperparameters
from reference_model.data import BOS_ID, DistributedTokenLoader, load_val_tokens
from reference_model.evaluate import Scored, get_evaluator, record_events
from reference_model.metric import ByteLUTs, build_luts, load_tokenizer
from reference_model.model import BF16_TABLES, GPT, rope_inv_freq
from reference_model.optim import build_optimizers, group_parameters
from reference_model.train import train_steps

# Tolerances, as the vectors' README states them.
TOL_FORWARD = 1e-5  # logits, hidden states, long-window NLL (fp32)
TOL_EVENT = 1e-5  # sliding per-event NLL
TOL_SLIDING_TOTAL = 1e-7  # sliding val_loss / val_bpb
TOL_TOTAL = 1e-6  # standard, SLOT (1 and 2 ranks), roundtrip standard
TOL_SLOT_EVENT = 1e-4  # SLOT per-event NLL
TOL_TRAIN_LOSS = 1e-5
TOL_TRAIN_WEIGHTS = 2e-5  # every tensor but the three AdamW tables
TOL_TRAIN_TABLES = 5e-4  # tok_emb, bigram.embed, ve_shared.embed
TOL_EMA = 1e-5
TORCH_213 = torch.__version__.startswith("2.13")
SEQ = 128


@pytest.fixture(scope="module")
def vec(shared_dir) -> Path:
    path = shared_dir / "fidelity"
    if not (path / "manifest.json").is_file():
        pytest.skip("../shared/fidelity is absent")
    return path


@pytest.fixture(scope="module")
def manifest(vec) -> dict:
    return json.loads((vec / "manifest.json").read_text())


@pytest.fixture(scope="module")
def results(manifest) -> dict:
    return manifest["results"]


@pytest.fixture(scope="module")
def hp(manifest) -> Hyperparameters:
    # Every variable the vectors were made with is one of ours (unknown names would raise).
    return Hyperparameters.from_mapping(manifest["env"])


def load(vec: Path, name: str):
    return torch.load(vec / name, map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def state_dict(vec) -> dict[str, torch.Tensor]:
    return load(vec, "state_dict.pt")


@pytest.fixture(scope="module")
def model(hp, state_dict) -> GPT:
    m = GPT(hp)
    m.load_state_dict(state_dict, strict=True)
    return m.eval()


@pytest.fixture(scope="module")
def luts(vec) -> ByteLUTs:
    t = load(vec, "luts.pt")
    return ByteLUTs(t["base_bytes"].long(), t["has_leading_space"], t["is_boundary"])


@pytest.fixture(scope="module")
def val(vec, hp) -> torch.Tensor:
    return load_val_tokens(str(vec / "fineweb_val_*.bin"), max(hp.train_seq_len, hp.eval_seq_len))


def max_abs(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return float((a.double() - b.double()).abs().max()) if a.numel() else 0.0


def test_vectors_are_intact(vec, manifest):
    for name, meta in manifest["files"].items():
        data = (vec / name).read_bytes()
        assert len(data) == meta["bytes"] and hashlib.sha256(data).hexdigest() == meta["sha256"], name


# ----------------------------------------------------------------------------- model


def test_state_dict_names_order_and_init_draws(hp, state_dict, manifest):
    torch.manual_seed(manifest["weight_seed"])
    fresh = GPT(hp).state_dict()
    assert list(fresh) == list(state_dict)  # names and order: what makes the export byte-identical
    assert sum(v.numel() for v in fresh.values()) == manifest["params"]
    # c_q/c_k/c_v are the only matrices the vectors leave at the seed's init: drawing them
    # bit-identically needs the seed's construction and init order for every module.
    untouched = [k for k in state_dict if k not in manifest["perturbation"]]
    assert untouched and all(any(p in k for p in ("c_q", "c_k", "c_v")) for k in untouched)
    for k in untouched:
        assert torch.equal(fresh[k], state_dict[k]), k


def test_forward_logits_and_hidden_states(vec, model, results):
    fw = load(vec, "forward.pt")
    ids = fw["input_ids"]
    seen: dict[str, torch.Tensor] = {}
    hooks = [model.smear.register_forward_hook(lambda _m, _i, out: seen.__setitem__("x0", out))]
    hooks += [b.register_forward_hook(lambda _m, _i, out, k=k: seen.__setitem__(f"block{k}", out[0]))
              for k, b in enumerate(model.blocks)]
    try:
        with torch.no_grad():
            loss = model(ids[:, :-1], ids[:, 1:])  # the hidden-state vectors come from this call
    finally:
        for h in hooks:
            h.remove()
    with torch.no_grad():
        logits = model.forward_logits(ids)
        final = model.forward_hidden(ids)
    assert max_abs(logits, fw["logits"]) <= TOL_FORWARD
    assert max_abs(final, fw["hidden"]["final_hidden"]) <= TOL_FORWARD
    for key in ("x0", "block0", "block1", "block2"):
        assert max_abs(seen[key], fw["hidden"][key]) <= TOL_FORWARD, key
    assert abs(float(loss) - float(fw["forward_loss_ids_shifted"])) <= TOL_FORWARD
    assert abs(float(loss) - results["forward"]["forward_loss"]) <= TOL_FORWARD
    assert list(logits.shape) == results["forward"]["logits_shape"]


def test_long_window_uses_the_ntk_scaled_rope_base(vec, model, results):
    long = load(vec, "forward_long.pt")
    info = results["forward_long"]
    T, rd = info["T"], info["rope_dims"]
    base = info["ntk_base_used"]
    expected = 1.0 / (base ** (torch.arange(0, rd, 2, dtype=torch.float32) / rd))
    assert torch.allclose(rope_inv_freq(model.hp.rope_base, rd, T), expected, rtol=1e-6, atol=0)
    assert torch.equal(rope_inv_freq(model.hp.rope_base, rd, 1024), rope_inv_freq(model.hp.rope_base, rd, 16))
    with torch.no_grad():
        logits = model.forward_logits(long["input_ids"])[0]
    nll = F.cross_entropy(logits.float(), long["targets"][0], reduction="none").double()
    assert max_abs(nll, long["nll"]) <= TOL_FORWARD
    assert abs(float(nll.mean()) - info["mean_nll"]) <= TOL_FORWARD
    assert max_abs(logits[long["logit_positions"]], long["logits_at_positions"]) <= TOL_FORWARD


# ----------------------------------------------------------------------------- data


def test_byte_luts_equal(vec, shared_dir, luts):
    sp = load_tokenizer(shared_dir / "data" / "fineweb_1024_bpe.model")
    ours = build_luts(sp, 1024)
    assert torch.equal(ours.base_bytes, luts.base_bytes)
    assert torch.equal(ours.has_leading_space, luts.has_leading_space)
    assert torch.equal(ours.is_boundary, luts.is_boundary)


def test_val_stream_is_the_seeds(val, results):
    info = results["val_stream"]
    assert val.numel() == info["tokens_after_pr_truncation"] and val.numel() - 1 == info["targets"]
    assert int((val == BOS_ID).sum()) == info["bos"] and int((val == 3).sum()) == info["unk"]


# ----------------------------------------------------------------------------- evaluators


def scored_events(name: str, settings: dict, model, val, luts) -> Scored:
    with record_events():
        return get_evaluator(name, settings).score(model, val, luts)


def assert_events(scored: Scored, ref: dict, tol: float) -> None:
    ti, ws, nll = scored.events
    assert np.array_equal(ti, ref["target_index"].numpy().astype(np.int64))  # same scorings, same order
    assert np.array_equal(ws, ref["window_start"].numpy().astype(np.int64))
    assert np.abs(nll - ref["nll"].numpy()).max() <= tol


@pytest.mark.parametrize("stride", [32, 64])
def test_sliding_events_and_totals(vec, model, val, luts, results, stride):
    ref, want = load(vec, f"sliding_s{stride}_nll.pt"), results[f"sliding_s{stride}"]
    scored = scored_events("sliding", {"seq_len": SEQ, "stride": stride}, model, val, luts)  # tail=records: the seed's
    assert_events(scored, ref, TOL_EVENT)
    assert scored.info["windows"] == want["windows"]
    assert (scored.tokens, scored.duplicate_scorings) == (want["scorings"], want["duplicate_scorings"])
    assert abs(scored.val_loss - want["val_loss"]) <= TOL_SLIDING_TOTAL
    assert abs(scored.val_bpb - want["val_bpb"]) <= TOL_SLIDING_TOTAL
    # The exactly-once number of the same run: each target's first scoring (what tail=once
    # scores, tests/test_evaluators.py holds the two equal), here recomputed from the events.
    ti, _, nll = scored.events
    _, first = np.unique(ti, return_index=True)
    t = torch.from_numpy(ti[first])
    once_bytes = int(luts.target_bytes(val[:-1][t], val[1:][t]).sum())
    assert scored.info["once"]["tokens"] == val.numel() - 1 == first.size
    assert scored.info["once"]["val_bpb"] == pytest.approx(nll[first].sum() / math.log(2) / once_bytes, abs=1e-12)


def test_standard_totals(model, val, luts, results):
    scored = get_evaluator("standard", {"seq_len": SEQ}).score(model, val, luts)  # batch: the seed's VAL_BATCH_SIZE rule
    assert scored.tokens == val.numel() - 1 and (scored.count == 1).all()
    assert abs(scored.val_loss - results["standard"]["val_loss"]) <= TOL_TOTAL
    assert abs(scored.val_bpb - results["standard"]["val_bpb"]) <= TOL_TOTAL


SLOT = {"seq_len": SEQ, "stride": 32, "batch": 8, "steps": 16, "lr": 0.008, "lr_min": 0.0008}


def test_slot_events_and_totals(vec, model, val, luts, results):
    scored = scored_events("slot", SLOT, model, val, luts)  # impl=fast, the default
    assert_events(scored, load(vec, "slot_nll.pt"), TOL_SLOT_EVENT)
    assert (scored.tokens, scored.bytes) == (results["slot"]["scorings"], results["slot"]["bytes"])
    assert abs(scored.val_loss - results["slot"]["val_loss"]) <= TOL_TOTAL
    assert abs(scored.val_bpb - results["slot"]["val_bpb"]) <= TOL_TOTAL  # so fast == full-window to 1e-6 bpb


def test_slot_full_window_reference_is_the_seeds_way(vec, model, val, luts):
    """impl=reference (full-window autograd, torch AdamW) on a prefix whose first 2 batches
    are the full run's: their events are the vector's; and fast agrees with it."""
    n_windows = 2 * SLOT["batch"]
    prefix = val[: n_windows * SLOT["stride"] + SEQ + 1]
    last_start = (n_windows - 1) * SLOT["stride"]
    ref = load(vec, "slot_nll.pt")
    keep_ref = ref["window_start"].numpy() <= last_start
    runs = {impl: scored_events("slot", {**SLOT, "impl": impl}, model, prefix, luts) for impl in ("reference", "fast")}
    for impl, scored in runs.items():
        ti, ws, nll = scored.events
        keep = ws <= last_start
        assert np.array_equal(ti[keep], ref["target_index"].numpy()[keep_ref])
        tol = TOL_SLOT_EVENT if impl == "fast" else TOL_EVENT
        assert np.abs(nll[keep] - ref["nll"].numpy()[keep_ref]).max() <= tol, impl
    assert abs(runs["fast"].val_bpb - runs["reference"].val_bpb) <= 1e-6


def _slot_rank(rank: int, world: int, init_file: str, out: str, vec_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        vec = Path(vec_dir)
        hp = Hyperparameters.from_mapping(json.loads((vec / "manifest.json").read_text())["env"])
        m = GPT(hp)
        m.load_state_dict(load(vec, "state_dict.pt"))
        t = load(vec, "luts.pt")
        luts = ByteLUTs(t["base_bytes"].long(), t["has_leading_space"], t["is_boundary"])
        val = load_val_tokens(str(vec / "fineweb_val_*.bin"), SEQ)
        scored = get_evaluator("slot", SLOT).score(m.eval(), val, luts)
        mine = scored.info["rank_totals"]
        gathered: list = [None] * world
        dist.all_gather_object(gathered, mine)
        if rank == 0:
            torch.save([scored.val_loss, scored.val_bpb, scored.tokens, gathered], out)
        dist.barrier()
    finally:
        dist.destroy_process_group()


def test_slot_world_size_two_gloo(vec, results, tmp_path):
    """Rank r scores windows [r::2] (the seed's strided split), batched per rank, all-reduced."""
    out = tmp_path / "w2.pt"
    mp.spawn(_slot_rank, args=(2, str(tmp_path / "init"), str(out), str(vec)), nprocs=2, join=True)
    loss, bpb, tokens, ranks = torch.load(out, weights_only=True)
    want = results["slot_world2"]
    assert tokens == sum(r["scorings"] for r in want["per_rank"])
    assert abs(loss - want["val_loss"]) <= TOL_TOTAL and abs(bpb - want["val_bpb"]) <= TOL_TOTAL
    for got, ref in zip(ranks, want["per_rank"]):  # each rank's own windows [r::2], batched by that rank
        assert got["rank"] == ref["rank"] and (got["tokens"], got["bytes"]) == (ref["scorings"], ref["bytes"])
        assert abs(got["nll_sum"] / got["tokens"] - ref["val_loss"]) <= TOL_TOTAL
        assert abs(got["nll_sum"] / math.log(2) / got["bytes"] - ref["val_bpb"]) <= TOL_TOTAL


# ----------------------------------------------------------------------------- export


def test_export_bytes_tensors_and_dequantized_weights(vec, state_dict, results):
    blob = export.pack(state_dict)
    ref_blob = (vec / "model.int6.ptz").read_bytes()
    W, M = export.read_container(blob)
    W_ref, M_ref = export.read_container(ref_blob)
    assert M == M_ref and list(W) == list(W_ref)
    assert {k: v if isinstance(v, str) else v["type"] for k, v in M.items()} == results["export"]["meta"]
    assert {k: [str(t.dtype), list(t.shape)] for k, t in W.items()} == results["export"]["w_layout"]
    for k in W_ref:
        assert W[k].dtype == W_ref[k].dtype and torch.equal(W[k], W_ref[k]), k
    if TORCH_213:
        assert blob == ref_blob and hashlib.sha256(blob).hexdigest() == results["export"]["ptz_sha256"]
    deq, ours = load(vec, "dequantized_state_dict.pt"), export.unpack(ref_blob, state_dict)
    assert list(deq) == list(ours)
    for k in deq:
        assert ours[k].dtype == deq[k].dtype and torch.equal(ours[k], deq[k]), k


def test_export_of_the_bf16_table_layout(vec, state_dict, results, hp):
    """The seed's main() keeps the three tables in bf16: dequantized entries are rounded to bf16."""
    sd = {k: (v.bfloat16() if k in BF16_TABLES else v) for k, v in state_dict.items()}
    blob = export.pack(sd)
    ref_blob = (vec / "model_main_dtype_layout.int6.ptz").read_bytes()
    W, _ = export.read_container(blob)
    W_ref, _ = export.read_container(ref_blob)
    assert all(torch.equal(W[k], W_ref[k]) for k in W_ref) and list(W) == list(W_ref)
    if TORCH_213:
        assert hashlib.sha256(blob).hexdigest() == results["export_main_dtype_layout"]["ptz_sha256"]
    bf = load(vec, "dequantized_main_dtype_layout_bf16_entries.pt")
    m = GPT(hp)
    for k in BF16_TABLES:
        m.get_parameter(k).data = m.get_parameter(k).data.bfloat16()
    export.load_into(m, ref_blob)  # the model is the template: its bf16 tables get bf16 values
    sd_loaded = m.state_dict()
    for k in bf:
        assert sd_loaded[k].dtype == torch.bfloat16 and torch.equal(sd_loaded[k], bf[k]), k


def test_roundtrip_evals_of_the_dequantized_weights(vec, hp, val, luts, results):
    m = export.load_into(GPT(hp), (vec / "model.int6.ptz").read_bytes()).eval()
    std = get_evaluator("standard", {"seq_len": SEQ}).score(m, val, luts)
    assert abs(std.val_loss - results["roundtrip_standard"]["val_loss"]) <= TOL_TOTAL
    assert abs(std.val_bpb - results["roundtrip_standard"]["val_bpb"]) <= TOL_TOTAL
    sw = get_evaluator("sliding", {"seq_len": SEQ, "stride": 32}).score(m, val, luts)
    assert abs(sw.val_loss - results["roundtrip_sliding_s32"]["val_loss"]) <= TOL_SLIDING_TOTAL
    assert abs(sw.val_bpb - results["roundtrip_sliding_s32"]["val_bpb"]) <= TOL_SLIDING_TOTAL


# ----------------------------------------------------------------------------- training


def test_train_loader_yields_the_seeds_batches(vec, hp):
    ref = load(vec, "train3_batches.pt")
    loader = DistributedTokenLoader(str(vec / "fineweb_train_*.bin"))
    steps, micro = ref["x"].shape[:2]
    for s in range(steps):
        for k in range(micro):
            x, y = loader.next_batch(hp.train_batch_tokens, hp.train_seq_len, micro)
            assert torch.equal(x, ref["x"][s, k].long()) and torch.equal(y, ref["y"][s, k].long())


def test_optimizer_groups_are_the_seeds(model, hp, results):
    opts = build_optimizers(model, hp)
    names = {id(p): n for n, p in model.named_parameters()}
    kinds = {"AdamW": torch.optim.AdamW, "Muon": type(opts[1])}
    got = {}
    for i, opt in enumerate(opts):
        kind = next(k for k, cls in kinds.items() if type(opt) is cls)
        for j, g in enumerate(opt.param_groups):
            got[f"{i}:{kind}[{j}]"] = {"params": [names[id(p)] for p in g["params"]], "base_lr": g["base_lr"],
                                       "weight_decay": g["weight_decay"],
                                       "betas": list(g["betas"]) if "betas" in g else None, "eps": g.get("eps"),
                                       "momentum": g.get("momentum"), "nesterov": g.get("nesterov")}
    assert got == results["train3_optimizer_groups"]
    assert all(g.get("fused") for o in (opts[0], opts[2]) for g in o.param_groups)
    assert sorted(n for grp in group_parameters(model).values() for n, _ in grp) == sorted(names.values())


@pytest.mark.parametrize("variant,ns", [("fp32_newton_schulz", "fp32"), ("pr_as_is", "bf16")])
def test_three_training_steps(vec, hp, state_dict, results, variant, ns):
    if ns == "bf16" and not TORCH_213:
        pytest.skip("the bf16 Newton-Schulz vector is only reproducible with torch 2.13 on CPU")
    m = GPT(hp.replace(muon_ns_dtype=ns))
    m.load_state_dict(state_dict)
    state = train_steps(m, m.hp, str(vec / "fineweb_train_*.bin"), steps=3, apply_ema=False)
    want = results[f"train3_{variant}"]["steps"]
    assert state.qat_enabled_at == next(s["step"] for s in want if s["qat_enabled"])
    for got_loss, got_norm, s in zip(state.losses, state.grad_norms, want):
        assert abs(got_loss - s["train_loss"]) <= TOL_TRAIN_LOSS, s["step"]
        assert abs(got_norm - s["grad_norm_before_clip"]) <= TOL_TRAIN_LOSS, s["step"]
    ref = load(vec, f"train3_{variant}.pt")
    ref_sd = ref.get("state_dict", ref)
    for k, v in m.state_dict().items():
        assert max_abs(v, ref_sd[k]) <= (TOL_TRAIN_TABLES if k in BF16_TABLES else TOL_TRAIN_WEIGHTS), k
    if "ema_state" in ref:
        for k, v in state.ema.shadow.items():
            assert max_abs(v, ref["ema_state"][k]) <= TOL_EMA, k


def test_training_schedule_matches_the_logged_steps(hp, results):
    from reference_model.optim import muon_momentum_at
    from reference_model.train import lr_scale_at

    for s in results["train3_fp32_newton_schulz"]["steps"]:
        assert lr_scale_at(hp, s["step"], 0.0) == pytest.approx(s["lr_scale"], abs=1e-12)
        assert muon_momentum_at(s["step"], hp) == pytest.approx(s["muon_momentum"], abs=1e-12)
        assert (lr_scale_at(hp, s["step"], 0.0) < hp.late_qat_threshold) == s["qat_enabled"]


@pytest.mark.gpu
def test_cuda_forward_in_fp32_matches(vec, model):
    fw = load(vec, "forward.pt")
    with torch.no_grad():
        logits = model.to("cuda").forward_logits(fw["input_ids"].cuda()).cpu()
    model.to("cpu")
    assert max_abs(logits, fw["logits"]) <= 1e-3  # CUDA kernels sum in other orders than CPU BLAS


def test_raw_container_is_a_plain_torch_save(vec, results):
    raw = lzma.decompress((vec / "model.int6.ptz").read_bytes())
    assert len(raw) == results["export"]["raw_torch_save_bytes"]
    obj = torch.load(io.BytesIO(raw), weights_only=True)
    assert set(obj) == {"w", "m"}
