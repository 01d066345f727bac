"""Training: schedule, optimizer grouping, Muon, warmup restore, DDP parity, end to end."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from reference_model.config import Hyperparameters
from reference_model.demo import tiny_hp
from reference_model.model import GPT
from reference_model.optim import build_optimizers, group_parameters, muon_momentum_at, zeropower_via_newtonschulz5
from reference_model.train import EMA, grad_accum_for, lr_scale_at

REPO = Path(__file__).resolve().parents[1]
FINAL = re.compile(r"^final_int6_roundtrip_exact val_loss:([0-9.]+) val_bpb:([0-9.]+)$", re.M)


def run_train(out: Path, nproc: int = 1, **env: str) -> str:
    """Launch the real entry point (``python -m`` or torchrun) and return its log file text."""
    # GRAD_ACCUM_STEPS=1 and EMA_WARMUP=1 (named deviations) keep these short CPU runs cheap and
    # learning; the seed's defaults themselves are held to the fidelity vectors (test_fidelity.py).
    full = {**os.environ, "PRESET": "tiny", "OUTPUT_DIR": str(out), "RUN_ID": "log", "OMP_NUM_THREADS": "1",
            "EVAL_STRIDE": "128", "WARMUP_STEPS": "0", "MAX_WALLCLOCK_SECONDS": "0", "GRAD_ACCUM_STEPS": "1",
            "EMA_WARMUP": "1", **env}
    if nproc == 1:
        cmd = [sys.executable, "-m", "reference_model.train"]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", "-m", "reference_model.train"]
    proc = subprocess.run(cmd, cwd=REPO, env=full, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return (out / "log.txt").read_text()


def test_wallclock_warmdown_covers_last_warmdown_iters_of_time():
    hp = tiny_hp(max_wallclock_seconds=100.0, warmdown_iters=10)
    assert lr_scale_at(hp, 10, 10_000) == 1.0  # 1 s/step: warmdown = last 10 s
    assert lr_scale_at(hp, 95, 95_000) == pytest.approx(0.5)
    assert lr_scale_at(hp, 100, 100_000) == 0.0
    steps = tiny_hp(max_wallclock_seconds=0.0, iterations=100, warmdown_iters=20)
    assert lr_scale_at(steps, 79, 0) == 1.0 and lr_scale_at(steps, 90, 0) == pytest.approx(0.5)


def test_momentum_warmup():
    hp = tiny_hp(muon_momentum_warmup_steps=100)
    assert muon_momentum_at(0, hp) == pytest.approx(0.92)
    assert muon_momentum_at(50, hp) == pytest.approx(0.955)
    assert muon_momentum_at(10_000, hp) == pytest.approx(0.99)


@pytest.mark.parametrize("hp", [tiny_hp(), Hyperparameters()], ids=["tiny", "seed"])
def test_parameter_groups_cover_each_parameter_once(hp):
    with torch.device("meta"):  # shapes only: the seed model needs no real memory
        model = GPT(hp)
    groups = group_parameters(model)
    names = [n for g in groups.values() for n, _ in g]
    assert sorted(names) == sorted(n for n, _ in model.named_parameters())
    kinds = {n: k for k, g in groups.items() for n, _ in g}
    assert kinds["tok_emb.weight"] == "tok" and kinds["bigram.embed.weight"] == "tok"
    assert kinds["ve_shared.embed.weight"] == "tok" and kinds["blocks.1.attn.vrl_gate"] == "scalar"
    assert kinds["blocks.0.attn.c_q.weight"] == "muon" and kinds["blocks.1.mlp.proj.weight"] == "muon"
    assert kinds["bigram.proj.weight"] == "muon" and kinds["ve_shared.proj.weight"] == "muon"
    assert kinds["blocks.0.resid_mix"] == "scalar" and kinds["skip_weights"] == "scalar"
    assert kinds["blocks.0.attn.q_gain"] == "scalar" and kinds["smear.gate"] == "scalar"
    assert all(p.ndim == 2 for _, p in groups["muon"])


def test_newton_schulz_roughly_orthogonalizes():
    torch.manual_seed(0)
    for shape, dtype in [((64, 192), torch.float32), ((192, 64), torch.float32), ((192, 64), torch.bfloat16)]:
        g = torch.randn(*shape)
        out = zeropower_via_newtonschulz5(g, dtype=dtype)
        assert out.dtype == dtype  # bf16 is the seed's precision (CUDA default), fp32 the CPU default
        sv = torch.linalg.svdvals(out.float())
        # the quintic iteration trades exactness for speed: singular values land near 1
        assert sv.min() > 0.5 and sv.max() < 1.3, sv
        assert torch.linalg.svdvals(g).max() / torch.linalg.svdvals(g).min() > 3  # it really changed


def test_optimizers_keep_base_lr_and_take_a_step():
    torch.manual_seed(0)
    model = GPT(tiny_hp())
    opts = build_optimizers(model, model.hp)
    assert all("base_lr" in g for o in opts for g in o.param_groups)
    x = torch.randint(0, 512, (2, 32))
    before = model.blocks[0].attn.c_q.weight.detach().clone()
    model(x, x).backward()
    for o in opts:
        o.step()
    assert not torch.equal(before, model.blocks[0].attn.c_q.weight)


def test_ema_is_the_seeds_constant_decay_from_init():
    m = torch.nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        m.weight.zero_()
    ema = EMA(m)
    with torch.no_grad():
        m.weight.fill_(1.0)
    ema.update(m)
    ema.update(m)
    assert torch.allclose(ema.shadow["weight"], torch.full((2, 2), 1 - 0.997**2))


def test_grad_accumulation_defaults_to_the_seeds():
    hp = tiny_hp()
    assert [grad_accum_for(hp, w) for w in (1, 2, 4, 8)] == [8, 4, 2, 1]
    with pytest.raises(ValueError, match="must divide 8"):
        grad_accum_for(hp, 3)
    assert grad_accum_for(hp.replace(grad_accum_steps=3), 3) == 3


def test_late_qat_fake_quant_is_the_seeds():
    """scale = (row amax / 31) floored at 1/31; round(w / scale) clamped to [-32, 31]."""
    from reference_model.model import CastedLinear

    lin = CastedLinear(4, 2)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[0.01, -0.02, 0.015, 0.0], [3.1, -3.2, 1.0, 0.05]]))
    lin.train()
    lin.qat = True
    x = torch.eye(4)
    w = lin(x).T.detach()  # the weights the forward saw
    assert torch.allclose(w[0], torch.round(lin.weight[0] * 31) / 31)  # small row: the 1/31 floor
    scale = 3.2 / 31
    assert torch.allclose(w[1], torch.clamp(torch.round(lin.weight[1] / scale), -32, 31) * scale)
    lin.eval()
    assert torch.equal(lin(x).T.detach(), lin.weight.detach())  # eval mode: no fake quant


def test_ema_warmup_deviation_is_opt_in():
    m = torch.nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        m.weight.zero_()
    ema = EMA(m, warmup=True)
    with torch.no_grad():
        m.weight.fill_(1.0)
    ema.update(m)  # first decay = min(0.997, 1/10) = 0.1
    assert torch.allclose(ema.shadow["weight"], torch.full((2, 2), 0.9))
    ema.updates = 10_000  # long runs: the seed's 0.997
    ema.update(m)
    assert torch.allclose(ema.shadow["weight"], torch.full((2, 2), 0.9 + 0.003 * 0.1))
    ema.apply_to(m)
    assert torch.allclose(m.weight, ema.shadow["weight"])


def test_warmup_steps_only_prime_and_restore_state(tmp_path):
    a = run_train(tmp_path / "a", ITERATIONS="3", WARMUP_STEPS="0")
    b = run_train(tmp_path / "b", ITERATIONS="3", WARMUP_STEPS="2")
    assert "warmup_step:2/2" in b
    sa = torch.load(tmp_path / "a" / "final_model.pt", weights_only=True)
    sb = torch.load(tmp_path / "b" / "final_model.pt", weights_only=True)
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert FINAL.search(a).groups() == FINAL.search(b).groups()


def test_two_gloo_processes_match_one_process(tmp_path):
    """Same global batch: 1 process x 2 micro-batches == 2 processes x 1 micro-batch."""
    common = dict(ITERATIONS="5", TRAIN_LOG_EVERY="1")
    one = run_train(tmp_path / "one", GRAD_ACCUM_STEPS="2", **common)
    two = run_train(tmp_path / "two", nproc=2, GRAD_ACCUM_STEPS="1", **common)
    assert "world_size:2" in two and "backend:gloo" in two
    loss = re.compile(r"^step:(\d+)/5 train_loss:([0-9.]+)", re.M)
    assert loss.findall(one) == loss.findall(two) and len(loss.findall(one)) == 5
    l1, l2 = (float(FINAL.search(t).group(1)) for t in (one, two))
    assert abs(l1 - l2) <= 1e-5, (l1, l2)
    s1 = torch.load(tmp_path / "one" / "final_model.pt", weights_only=True)
    s2 = torch.load(tmp_path / "two" / "final_model.pt", weights_only=True)
    assert max(float((s1[k] - s2[k]).abs().max()) for k in s1) <= 1e-5


LINE_FORMATS = [
    r"^reference_model\.train .* code_version:\S+$",
    r"^python:\S+ torch:\S+ device:cpu .*world_size:1",
    r"^model_params:\d+$",
    r"^step:\d+/\d+ train_loss:[0-9.]+ train_time:\d+ms step_avg:[0-9.]+ms$",
    r"^step:\d+/\d+ val_loss:[0-9.]+ val_bpb:[0-9.]+ train_time:\d+ms step_avg:[0-9.]+ms$",
    r"^Code files: .*reference_model/model\.py:\d+",
    r"^Code size: \d+ bytes$",
    r"^Serialized model int6\+lzma: \d+ bytes$",
    r"^Total submission size int6\+lzma: \d+ bytes$",
    r"^final_int6_roundtrip_exact val_loss:\d+\.\d{8} val_bpb:\d+\.\d{8}$",
    r"^final_int6_sliding_window_exact val_loss:\d+\.\d{8} val_bpb:\d+\.\d{8}$",
    r"^exactly_once_int6_sliding_window_exact val_loss:\d+\.\d{8} val_bpb:\d+\.\d{8} scored:\d+ ",
    r"^final_int6_slot_exact val_loss:\d+\.\d{8} val_bpb:\d+\.\d{8}$",
    r"^exactly_once_int6_slot_exact val_loss:\d+\.\d{8} val_bpb:\d+\.\d{8} scored:\d+ ",
    r"^windows:sliding_window final_int6_sliding_window\* use the seed's windows: \d+ scorings of \d+ targets",
]


def _learned(log: str) -> tuple[float, float]:
    init = float(re.search(r"^step:0/\d+ val_loss:[0-9.]+ val_bpb:([0-9.]+)", log, re.M).group(1))
    return init, float(FINAL.search(log).group(2))


def test_end_to_end_short_run_learns_and_exports(tmp_path):
    log = run_train(tmp_path, ITERATIONS="25", WARMDOWN_ITERS="10", VAL_LOSS_EVERY="1000", EVAL_STRIDE="64")
    for pattern in LINE_FORMATS:
        assert re.search(pattern, log, re.M), pattern
    init, final = _learned(log)
    assert final < init - 0.7, (init, final)
    sizes = {k: int(v) for k, v in re.findall(r"^(Code size|Serialized model int6\+lzma): (\d+) bytes$", log, re.M)}
    total = int(re.search(r"^Total submission size int6\+lzma: (\d+)", log, re.M).group(1))
    assert total == sum(sizes.values())
    assert sizes["Serialized model int6+lzma"] == (tmp_path / "final_model.int6.ptz").stat().st_size
    # Our own run is auditable by our own tool: the records reader sees its seed, sizes and finals.
    from golf_audit.artifact import audit_artifact
    from golf_audit.findings import Status
    from golf_audit.records.logs import read_log

    parsed = read_log(tmp_path / "log.txt")
    assert parsed.seed == 1337, parsed
    checks = {c.check_id: c.status for c in audit_artifact(tmp_path).checks}
    assert checks["GA-SIZE-001"] is Status.PASS and checks["GA-SIZE-003"] is Status.PASS, checks
    assert checks["GA-SIZE-004"] is Status.PASS, checks


@pytest.mark.slow
def test_end_to_end_tiny_sixty_seconds(tmp_path):
    """The issue's command: PRESET=tiny MAX_WALLCLOCK_SECONDS=60 python -m reference_model.train."""
    log = run_train(tmp_path, MAX_WALLCLOCK_SECONDS="60", VAL_LOSS_EVERY="100000", EVAL_STRIDE="16", WARMUP_STEPS="2")
    init, final = _learned(log)
    assert "stopping_early: wallclock_cap" in log or "step:300/300" in log
    # Wall-clock bound: the step count depends on the machine and its load (2 shared cores can
    # give under 20 steps), so the bar is lower than the step-based fast test's.
    assert final < init - 0.3, (init, final)


def test_trains_from_challenge_shards(tmp_path):
    """DATA_PATH/TOKENIZER_PATH: the records' layout, built here from the embedded corpus."""
    proc = subprocess.run([sys.executable, "-m", "reference_model.data", str(tmp_path / "data")], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    log = run_train(tmp_path / "out", ITERATIONS="3", DATA_PATH=str(tmp_path / "data"),
                    TOKENIZER_PATH=str(tmp_path / "data" / "tokenizer.model"))
    assert f"data:{tmp_path / 'data'}" in log and FINAL.search(log)


def test_bad_shard_in_data_path_fails_naming_the_file(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "fineweb_val_000000.bin").write_bytes(b"\0" * 2000)
    from reference_model.data import default_tokenizer_path

    env = {**os.environ, "PRESET": "tiny", "OUTPUT_DIR": str(tmp_path), "DATA_PATH": str(tmp_path / "data"),
           "TOKENIZER_PATH": str(default_tokenizer_path())}
    proc = subprocess.run([sys.executable, "-m", "reference_model.train"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "fineweb_val_000000.bin: bad magic" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.gpu
def test_cuda_run_uses_bf16_autocast_and_compile(tmp_path):
    """The CUDA path (bf16 autocast, torch.compile, bf16 Newton-Schulz): same recipe, same logs."""
    log = run_train(tmp_path, ITERATIONS="20", WARMUP_STEPS="2", WARMDOWN_ITERS="10", VAL_LOSS_EVERY="1000", EVAL_STRIDE="64")
    assert "device:cuda" in log and "warmup_step:2/2" in log
    init, final = _learned(log)
    assert final < init - 0.5, (init, final)
