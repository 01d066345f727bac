"""Reading a script statically (env vars, model build, eval bindings, inline blocks) and the NLL capture."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from golf_audit.submission import analyze, capture, inline
from golf_audit.submission.child import returned_metrics
from golf_audit.submission.shims import flash_attn_func, flash_attn_varlen_func

SCRIPTS = Path(__file__).parent / "fixtures" / "scripts"


def parsed(name: str) -> tuple[ast.Module, str]:
    text = (SCRIPTS / name).read_text()
    return ast.parse(text), text


def test_env_vars_and_tiny_env_use_the_scripts_own_names() -> None:
    tree, _ = parsed("slot_scored_mask.py")
    names = {v.name: v for v in analyze.env_vars(tree)}
    assert names["NUM_LAYERS"].attr == "num_layers" and names["NUM_LAYERS"].default == "11"
    env = analyze.tiny_env(list(names.values()), {"SLOT_STEPS": "2"})
    assert env["NUM_LAYERS"] == "2" and env["MODEL_DIM"] == "64" and env["SLOT_ENABLED"] == "1"
    assert env["SLOT_STEPS"] == "2", "explicit overrides win"
    assert "DATA_PATH" not in env, "only shape/eval knobs are changed"


def test_cuda_only_flags_are_switched_off() -> None:
    tree = ast.parse('import os\nclass Hyperparameters:\n    fused = bool(int(os.environ.get("FUSED_CE_ENABLED", "1")))\n')
    assert analyze.tiny_env(analyze.env_vars(tree)) == {"FUSED_CE_ENABLED": "0"}


def test_model_build_uses_the_gpt_call_from_main_with_its_assignments() -> None:
    tree, text = parsed("sliding_legal.py")
    code, line = analyze.model_build(tree, text)
    assert code.splitlines()[0] == "args = Hyperparameters()"
    assert "__ga_model__ = GPT(vocab_size=args.vocab_size" in code and ".bfloat16()" not in code
    assert text.splitlines()[line - 1].strip().startswith("base_model = GPT(")


def test_model_build_without_gpt_call_is_an_analysis_error() -> None:
    with pytest.raises(analyze.AnalysisError, match="adapter"):
        analyze.model_build(ast.parse("def main():\n    m = Net()\n"), "")


def test_eval_functions_are_bound_by_name() -> None:
    tree, text = parsed("slot_scored_mask.py")
    targets = {t.name: t for t in analyze.eval_targets(tree, text)}
    assert set(targets) == {"eval_val", "eval_val_sliding", "eval_val_slot"}
    b = targets["eval_val_slot"].bindings
    assert b["base_model"] == "__ga_model__" and b["val_tokens"] == "__ga_tokens__"
    assert b["stride"] == "args.eval_stride" and b["rank"] == "0" and b["world_size"] == "1"
    assert b["is_boundary_token_lut"] == "__ga_luts__[2]" and "batch_seqs" not in b  # default kept


def test_unbindable_parameter_is_reported_not_raised() -> None:
    text = "def eval_val_x(mystery):\n    pass\ndef main():\n    pass\n"
    (t,) = analyze.eval_targets(ast.parse(text), text)
    assert "mystery" in t.error


def test_inline_slot_block_is_found_and_extracted() -> None:
    tree, text = parsed("inline_slot.py")
    (t,) = inline.inline_targets(tree, text)
    assert t.define.startswith(f"def {t.name}(") and "return (slot_loss, slot_bpb)" in t.define
    assert t.bindings["base_model"] == "__ga_model__" and t.bindings["device"] == "__ga_device__"
    compile(t.define, "<inline>", "exec")
    (same,) = inline.inline_targets(tree, text, "if args.slot_enabled:")
    assert same.define == t.define
    with pytest.raises(analyze.AnalysisError):
        inline.inline_targets(tree, text, "if args.nothing")


def test_prequant_block_is_not_an_automatic_eval_candidate() -> None:
    tree, text = parsed("prequant_ttt.py")
    assert all(t.error for t in inline.inline_targets(tree, text))  # no loss/bpb pair: not an eval


# ----------------------------------------------------------------------------- capture


def test_capture_maps_padded_and_suffix_rows_back_to_the_stream() -> None:
    stream = torch.randint(4, 100, (200,), generator=torch.Generator().manual_seed(0))
    targets = stream[1:].numpy()
    logits = torch.randn(3, 64, 100)
    y = torch.zeros(3, 64, dtype=torch.long)
    y[0] = stream[1:65]
    y[1] = stream[101:165]
    y[2, :35] = stream[165:200]  # tail window: padded with zeros past the stream end
    with torch.no_grad(), capture.CrossEntropyCapture(64) as cap:
        F.cross_entropy(logits.reshape(-1, 100), y.reshape(-1), reduction="none")
        F.cross_entropy(logits[0, 10:20], stream[150:160], reduction="none")  # a suffix-only row
    rows, unmatched = capture.match_rows(cap.calls, targets)
    assert unmatched == 0
    assert [(r.offset, r.nll.size) for r in rows] == [(0, 64), (100, 64), (164, 35), (149, 10)]


def test_capture_ignores_grad_calls_and_reports_unmatched_rows() -> None:
    logits = torch.randn(8, 50, requires_grad=True)
    with capture.CrossEntropyCapture(8) as cap:
        F.cross_entropy(logits, torch.arange(8), reduction="none")  # with grad: an optimisation step
        with torch.no_grad():
            F.cross_entropy(logits, torch.arange(8) + 40)
    assert len(cap.calls) == 1
    _, unmatched = capture.match_rows(cap.calls, np.arange(1000, 1100))
    assert unmatched == 1


def test_sliding_rule_is_the_records_rule() -> None:
    rows = [capture.Row("a", 0, np.ones(8)), capture.Row("a", 4, np.ones(8)), capture.Row("a", 8, np.ones(6))]
    nll, count, scorings = capture.apply_rule(capture.Rule("sliding", 4), rows, 14)
    # The tail window re-scores targets 10 and 11, exactly as the records do.
    assert [s for s, _ in scorings] == [0, 8, 10] and count.tolist() == [1] * 10 + [2, 2, 1, 1]
    _, count_all, _ = capture.apply_rule(capture.Rule("all"), rows, 14)
    assert count_all.max() == 2  # every captured token, overlaps counted


def test_returned_metrics_accepts_tuples_dicts_and_a_lone_bpb() -> None:
    assert returned_metrics((2.0, 1.0)) == (2.0, 1.0)
    assert returned_metrics({"val_loss": 2.0, "val_bpb": 1.0}) == (2.0, 1.0)
    assert returned_metrics(1.5) == (None, 1.5)


# ----------------------------------------------------------------------------- shims


def test_flash_attn_shim_matches_grouped_causal_attention() -> None:
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 6, h, 8, generator=g) for h in (4, 2, 2))
    out = flash_attn_func(q, k, v, causal=True)
    kk, vv = k.repeat_interleave(2, dim=2), v.repeat_interleave(2, dim=2)
    scores = torch.einsum("bthd,bshd->bhts", q, kk) / 8**0.5
    scores = scores.masked_fill(torch.ones(6, 6, dtype=torch.bool).triu(1), float("-inf"))
    ref = torch.einsum("bhts,bshd->bthd", scores.softmax(-1), vv)
    assert out.shape == (2, 6, 4, 8) and torch.allclose(out, ref, atol=1e-5)
    cu = torch.tensor([0, 6, 12])
    packed = flash_attn_varlen_func(q.reshape(12, 4, 8), k.reshape(12, 2, 8), v.reshape(12, 2, 8), cu, cu, 6, 6,
                                    causal=True)
    assert torch.allclose(packed.reshape(2, 6, 4, 8), out, atol=1e-6)


def test_shims_in_a_fresh_interpreter() -> None:
    code = """
import socket, torch
from golf_audit.submission import shims
shims.install()
import flash_attn_interface, triton, triton.language as tl, zstandard
@torch.compile
def f(x): return x + 1
@torch.compile(mode="max-autotune")
def g(x): return x * 2
@triton.jit
def kernel(x): return x
assert f(torch.ones(1)).item() == 2 and g(torch.ones(1)).item() == 2 and kernel(3) == 3
assert torch.device("cuda", 0).type == "cpu" and isinstance(torch.device("cpu"), torch.device)
assert torch.zeros(2, device="cuda").device.type == "cpu" and torch.ones(1).cuda().device.type == "cpu"
with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
    y = torch.nn.functional.linear(torch.ones(1, 2), torch.ones(3, 2, dtype=torch.bfloat16))
assert y.dtype == torch.float32
torch.cuda.synchronize(); torch.cuda.empty_cache(); torch.cuda.manual_seed_all(0)
assert torch.cuda.max_memory_allocated() == 0
try:
    socket.create_connection(("127.0.0.1", 9))
except OSError as exc:
    print("refused:", exc)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "network access is disabled" in done.stdout


def test_plan_under_another_interpreter_equals_the_local_plan() -> None:
    from golf_audit.submission.plan import make_plan, plan_elsewhere

    text = (SCRIPTS / "slot_shared_delta.py").read_text()
    local = make_plan(text, "s.py")
    remote = plan_elsewhere(sys.executable, text, "s.py", None, None, None)
    assert remote.build == local.build and [t.name for t in remote.targets] == [t.name for t in local.targets]
    assert [(r.check_id, r.status) for r in remote.static] == [(r.check_id, r.status) for r in local.static]


def test_records_folder_resolves_to_its_train_gpt(tmp_path: Path) -> None:
    from golf_audit.errors import BadInput
    from golf_audit.submission.audit import resolve_script

    (tmp_path / "train_gpt.py").write_text("x = 1\n")
    assert resolve_script(tmp_path) == tmp_path / "train_gpt.py"
    with pytest.raises(BadInput):
        resolve_script(tmp_path / "nothing")


def test_model_build_finds_another_class_name_through_the_model_variable() -> None:
    text = "class TinyLM:\n    pass\ndef main():\n    args = 1\n    base_model = TinyLM(args).to('cuda').bfloat16()\n"
    code, _ = analyze.model_build(ast.parse(text), text)
    assert code.strip().endswith("__ga_model__ = TinyLM(args)")
