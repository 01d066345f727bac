"""Reading a script statically (env vars, tiny configuration, scoring functions) and the child-side machinery
(capture rules, frozen-call copies, synthetic data, shims) without running a sandboxed child."""

from __future__ import annotations

import ast
import copy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from golf_audit.submission import analyze, capture, fakedata, runtime
from golf_audit.submission.runtime import returned_metrics
from golf_audit.submission.shims import flash_attn_func, flash_attn_varlen_func

SCRIPTS = Path(__file__).parent / "fixtures" / "scripts"


def parsed(name: str) -> ast.Module:
    return ast.parse((SCRIPTS / name).read_text())


HP = '''
import os
class Hyperparameters:
    model_dim = int(os.environ.get("MODEL_DIM", 512))
    num_heads = int(os.environ.get("NUM_HEADS", 8))
    num_kv_heads = int(os.environ.get("NUM_KV_HEADS", 4))
    rope_dims = int(os.environ.get("ROPE_DIMS", 16))
    num_layers = int(os.environ.get("NUM_LAYERS", 11))
    ve_layers = os.environ.get("VE_LAYERS", "9,10")
    train_seq_len = int(os.environ.get("TRAIN_SEQ_LEN", _td[4]))
    eval_seq_len = int(os.environ.get("EVAL_SEQ_LEN", 0))
    slot_enabled = bool(int(os.environ.get("SLOT_ENABLED", "0")))
    ttt_beta1 = float(os.environ.get("TTT_BETA1", 0))
    fused_ce_enabled = bool(int(os.environ.get("FUSED_CE_ENABLED", "1")))
    ngram_mode = os.environ.get("NGRAM_MODE", "single")
'''


def test_tiny_configuration_keeps_derived_sizes_consistent() -> None:
    env = analyze.tiny_env(analyze.env_vars(ast.parse(HP)))
    dim, heads, kv = int(env["MODEL_DIM"]), int(env["NUM_HEADS"]), int(env["NUM_KV_HEADS"])
    assert dim % heads == 0 and heads % kv == 0
    assert int(env["ROPE_DIMS"]) <= dim // heads and int(env["ROPE_DIMS"]) % 2 == 0
    assert (env["NUM_LAYERS"], env["VE_LAYERS"]) == ("4", "2,3"), "the depth shrinks, the layer list follows it"
    assert env["TRAIN_SEQ_LEN"] == "64", "a non-literal default is still shrunk"
    assert env["EVAL_SEQ_LEN"] == "0", "0 means 'the train length': kept"
    assert env["FUSED_CE_ENABLED"] == "0"
    assert "TTT_BETA1" not in env, "a number defaulting to 0 is not a flag"
    assert "SLOT_ENABLED" not in env, "a flag nobody set keeps its default"


DEEP = HP.replace('    ve_layers = os.environ.get("VE_LAYERS", "9,10")\n', "")


@pytest.mark.parametrize("extra,submitted,expect", [
    ("", {}, {"NUM_LAYERS": "4"}),  # NUM_LAYERS is the only layer variable: shrunk to TINY_LAYERS
    ('    eggroll_layers = int(os.environ.get("EGGROLL_LAYERS", 0))\n', {}, {"NUM_LAYERS": "4"}),  # 0: none
    ('    parallel_residual = os.environ.get("PARALLEL_RESIDUAL", "0")\n', {}, {"NUM_LAYERS": "4"}),
    ('    eval_depth_recurrence = int(os.environ.get("EVAL_DEPTH_RECURRENCE", 1))\n', {}, {"NUM_LAYERS": "4"}),
    ('    parallel_final_lane = os.environ.get("PARALLEL_FINAL_LANE", "mean")\n', {}, {"NUM_LAYERS": "4"}),  # a mode
    ('    recur_start_step = int(os.environ.get("RECUR_START_STEP", 3000))\n', {}, {"NUM_LAYERS": "4"}),  # a step
    # the frontier's layout: loop over 3..5 (twice more), parallel lanes from 8, XSA on all 11
    ('    num_loops = int(os.environ.get("NUM_LOOPS", 2))\n    loop_start = int(os.environ.get("LOOP_START", 3))\n'
     '    loop_end = int(os.environ.get("LOOP_END", 5))\n'
     '    parallel_start_layer = int(os.environ.get("PARALLEL_START_LAYER", 8))\n'
     '    xsa_last_n = int(os.environ.get("XSA_LAST_N", 11))\n', {},
     {"NUM_LAYERS": "4", "LOOP_START": "1", "LOOP_END": "2", "PARALLEL_START_LAYER": "3", "XSA_LAST_N": "4"}),
    ('    xsa_last_n = int(os.environ.get("XSA_LAST_N", 4))\n    ve_layers = os.environ.get("VE_LAYERS", "9,10")\n'
     '    ttt_freeze_blocks = int(os.environ.get("TTT_FREEZE_BLOCKS", 2))\n', {},
     {"NUM_LAYERS": "5", "XSA_LAST_N": "3", "VE_LAYERS": "3,4", "TTT_FREEZE_BLOCKS": "1"}),
    # a list the submitted run set (the child gets it): its layers stay distinct
    ('    int4_layers = os.environ.get("INT4_LAYERS", "")\n', {"INT4_LAYERS": ("3,4,5,6", "train.log")},
     {"NUM_LAYERS": "6", "INT4_LAYERS": "1,2,3,4"}),
    ('    loop_start = int(os.environ.get("LOOP_START", 0))\n', {}, {"NUM_LAYERS": "4", "LOOP_START": "0"}),
    # what is not a layer position keeps the depth
    ('    n_int6_layers = int(os.environ.get("N_INT6_LAYERS", 10))\n', {}, {}),  # a count of some layers
    ('    int6_layer_start = int(os.environ.get("INT6_LAYER_START", -1))\n', {}, {}),
    ('    recur_layers = os.environ.get("RECUR_LAYERS", "4-5")\n', {}, {}),
    ('    num_unique_blocks = int(os.environ.get("NUM_UNIQUE_BLOCKS", 3))\n', {}, {}),
    ('    ve_layers = os.environ["VE_LAYERS"]\n', {}, {}),  # required: set by the run script, unknown
    ('    gdn_layers = os.environ.get("GDN_LAYERS", "0,1,2,4,5,6,8,9,10")\n', {}, {}),  # nothing to merge
])
def test_the_depth_shrinks_with_every_layer_position_mapped(extra, submitted, expect) -> None:
    env = analyze.tiny_env(analyze.env_vars(ast.parse(DEEP + extra)), submitted)
    assert {k: env.get(k) for k in expect} == expect, env
    assert ("NUM_LAYERS" in env) is bool(expect), "the depth is kept where a layer variable is not understood"
    shallow_already = analyze.tiny_env(analyze.env_vars(ast.parse(DEEP.replace('"NUM_LAYERS", 11', '"NUM_LAYERS", 3'))))
    assert "NUM_LAYERS" not in shallow_already  # never deepened


def test_a_layer_variable_the_user_sets_keeps_the_depth() -> None:
    tree = ast.parse(DEEP + '    loop_start = int(os.environ.get("LOOP_START", 3))\n')
    assert analyze.tiny_env(analyze.env_vars(tree))["LOOP_START"] == "1"
    env = analyze.tiny_env(analyze.env_vars(tree), overrides={"LOOP_START": "6"})
    assert env["LOOP_START"] == "6" and "NUM_LAYERS" not in env


def test_the_submitted_runs_flags_and_modes_are_kept_and_overrides_win() -> None:
    variables = analyze.env_vars(ast.parse(HP))
    submitted = {"SLOT_ENABLED": ("True", "train.log"), "NGRAM_MODE": ("two_pass", "README.md"),
                 "MODEL_DIM": ("512", "train.log")}
    env = analyze.tiny_env(variables, submitted, {"NUM_HEADS": "1"})
    assert env["SLOT_ENABLED"] == "1" and env["NGRAM_MODE"] == "two_pass"
    assert env["MODEL_DIM"] == "64", "sizes stay tiny whatever the run used"
    assert env["NUM_HEADS"] == "1"
    assert analyze.flag_values(variables, env)["slot_enabled"] is True


def test_submitted_config_reads_logged_values_over_readme_commands(tmp_path: Path) -> None:
    variables = analyze.env_vars(ast.parse(HP))
    (tmp_path / "README.md").write_text("```\nSLOT_ENABLED=0 NGRAM_MODE=online torchrun train_gpt.py\n```\n")
    (tmp_path / "train_seed42.log").write_text("Hyperparameters:\n  slot_enabled: True\n"
                                                "    slot_enabled = bool(int(os.environ.get('SLOT_ENABLED', '0')))\n")
    got = analyze.submitted_config(tmp_path, variables)
    assert got["SLOT_ENABLED"] == ("True", "train_seed42.log")
    assert got["NGRAM_MODE"] == ("online", "README.md")


SCORING = '''
import math
def _loss_bpb(loss_sum, tokens, nbytes):
    val_loss = loss_sum / tokens
    return val_loss, val_loss / math.log(2.0) * tokens / nbytes
def timed_eval(label, fn, *args):
    val_loss, val_bpb = fn(*args)
    return val_loss, val_bpb
def score_ngram_blend(model, tokens):
    total = 0.0
    for t in tokens:
        total += model(t)
    return _loss_bpb(total, len(tokens), 1)
def train_model(h):
    val_bpb = 0.0
    for _ in range(3):
        pass
    return val_bpb
def main():
    timed_eval("x", score_ngram_blend, None, [])
if __name__ == "__main__":
    main()
'''


def test_scoring_functions_are_found_by_what_they_do_not_by_name() -> None:
    tree = ast.parse(SCORING)
    assert [f.name for f in analyze.scoring_functions(tree)] == ["score_ngram_blend"]
    assert analyze.bpb_helpers(tree) == {"_loss_bpb"}
    with pytest.raises(analyze.AnalysisError):
        analyze.scoring_functions(tree, ["nothing"])


def test_validation_data_into_training_is_a_consumer_a_training_loops_eval_is_not() -> None:
    text = (SCRIPTS / "static" / "pre_eval_ttt.py").read_text() + '''
def train_model(model, val_tokens):
    opt = torch.optim.SGD(model.parameters())
    loss = model(val_tokens).sum()
    loss.backward()
    return eval_val(model, val_tokens)
'''
    consumers = analyze.val_consumers(ast.parse(text), ["eval_val"])
    assert [c.callee for c in consumers] == ["ttt_adapt"]


# ----------------------------------------------------------------------------- capture


def stream(n: int = 400) -> np.ndarray:
    return fakedata.documents(256, n, 0)


def _call(targets: np.ndarray, nll: np.ndarray, grad: bool = False) -> capture.Call:
    return capture.Call("x.py:1", targets.reshape(1, -1), nll.reshape(1, -1), None, grad)


def test_rows_of_a_flattened_batch_and_padded_windows_map_back() -> None:
    s = stream()
    t = s[1:]
    a, b = t[10:42], t[200:232]
    flat = np.concatenate([a, b, np.zeros(16, dtype=np.int64)])  # two windows and a padded tail in one call
    rows, unmatched = capture.match_rows([_call(flat, np.arange(flat.size, dtype=float))], t)
    assert [(r.offset, r.nll.size) for r in rows] == [(10, 32), (200, 32)] and unmatched == 0


def test_first_scoring_rule_handles_documents_in_any_order() -> None:
    rows = [capture.Row("s", 100, np.ones(32)), capture.Row("s", 0, np.ones(32)),  # doc B scored before doc A
            capture.Row("s", 84, np.ones(64)), capture.Row("s", 0, np.ones(64))]   # windows with context
    _, count, _ = capture.apply_rule(capture.Rule("first"), rows, 200)
    covered = np.zeros(200, dtype=bool)
    for r in rows:
        covered[r.offset:r.offset + r.nll.size] = True
    assert count.max() == 1 and (count[covered] == 1).all() and (count[~covered] == 0).all()


def test_tail_rule_scores_only_the_last_stride_of_every_window() -> None:
    rows = [capture.Row("s", o, np.ones(64)) for o in (0, 16, 32)]
    _, count, _ = capture.apply_rule(capture.Rule("tail", 16), rows, 200)
    assert count[:48].sum() == 0 and count[48:96].sum() == 48
    _, count, _ = capture.apply_rule(capture.Rule("sliding", 16), rows, 200)
    assert count[:96].min() == 1, "the records' rule scores the whole first window"


def _chunked_doc_epochs(epochs: int, pred_len: int = 80, chunk: int = 32, win: int = 64
                       ) -> tuple[list[capture.Row], list[float]]:
    """Rows of per-document chunked TTT (windows ending at each chunk's end), ``epochs`` passes;
    the mean NLL of each pass's scored chunks."""
    rows, means = [], []
    for epoch in range(epochs):
        scored = []
        for c0 in range(0, pred_len, chunk):
            c1 = min(c0 + chunk, pred_len)
            w0 = max(0, c1 - win)
            vals = 1.0 + epoch + 0.01 * np.arange(w0, c1) + 0.1 * c0 / chunk  # every pass and window differ
            rows.append(capture.Row("s", w0, vals, grad=True))
            scored.append(vals[c0 - w0:])
        means.append(float(np.concatenate(scored).mean()))
    return rows, means


def test_final_pass_rule_keeps_the_last_epochs_scores_only_when_nothing_else_reproduces() -> None:
    s = stream(200)
    inputs, targets = s[:-1], s[1:]
    luts = fakedata.canonical_luts(256)
    rows, means = _chunked_doc_epochs(3)
    got, why = capture.infer(rows, (means[-1], None), targets.size, inputs, targets, luts, [])
    assert got is not None and got.rule.kind == "final", why
    assert (got.count[:80] == 1).all() and got.count[80:].sum() == 0
    assert capture.close(got.rebuilt_loss, means[-1]) and "final pass" in got.rule.describe()
    first, _ = capture.infer(rows, (means[0], None), targets.size, inputs, targets, luts, [])
    assert first is not None and first.rule.kind == "first", "an earlier rule wins where it reproduces the loss"
    single, _ = _chunked_doc_epochs(1)
    got, _ = capture.infer(single, (means[0], None), targets.size, inputs, targets, luts, [])
    assert got is not None and got.rule.kind != "final"
    assert capture.infer(rows, (means[1], None), targets.size, inputs, targets, luts, [])[0] is None, \
        "a middle pass is no rule: never a guess"


def test_a_window_that_adds_no_new_position_starts_a_new_pass() -> None:
    rows = [capture.Row("s", 0, np.full(32, 1.0)), capture.Row("s", 0, np.full(32, 2.0)),  # the same doc twice
            capture.Row("s", 0, np.full(48, 3.0))]  # a longer window: scores only 32..47
    nll, count, _ = capture.apply_rule(capture.Rule("final"), rows, 100)
    assert (nll[:32] == 2.0).all() and (nll[32:48] == 3.0).all() and count[:48].max() == 1


def test_the_fused_cross_entropy_form_is_captured_too() -> None:
    logits = torch.randn(6, 11)
    targets = torch.randint(0, 11, (6,))
    with torch.no_grad(), capture.CrossEntropyCapture(6) as cap:
        lse = torch.logsumexp(logits, dim=-1)
        nll = lse - logits.gather(1, targets.unsqueeze(1)).squeeze(1)
    assert len(cap.calls) == 1
    np.testing.assert_allclose(cap.calls[0].nll.reshape(-1), F.cross_entropy(logits, targets, reduction="none"),
                               rtol=1e-6)
    np.testing.assert_allclose(cap.calls[0].nll.reshape(-1), nll.numpy(), rtol=1e-6)


def test_a_capture_reproducing_only_the_loss_is_accepted_and_says_so() -> None:
    s = stream()
    inputs, targets = s[:-1], s[1:]
    rows = [capture.Row("s", 0, np.full(targets.size, 2.0))]
    luts = fakedata.canonical_luts(256)
    got, why = capture.infer(rows, (2.0, 999.0), targets.size, inputs, targets, luts, [])
    assert got is not None and not got.bpb_matches and why == ""
    assert capture.infer(rows, (3.0, None), targets.size, inputs, targets, luts, [])[0] is None


def test_returned_metrics_accepts_tuples_dicts_and_a_lone_bpb() -> None:
    assert returned_metrics((2.0, 1.5)) == (2.0, 1.5)
    assert returned_metrics({"val_loss": 2.0, "val_bpb": 1.5}) == (2.0, 1.5)
    assert returned_metrics(torch.tensor(1.25)) == (None, 1.25)


# ----------------------------------------------------------------------------- frozen calls, data


def test_a_frozen_call_copies_closures_with_the_model_they_share() -> None:
    runtime.install_copy_rules()
    model = torch.nn.Linear(2, 2)

    def forward(x):
        return model(x)

    args, _ = copy.deepcopy(((model, forward), {}), {})
    copied_model, copied_forward = args
    cell = copied_forward.__closure__[0].cell_contents
    assert cell is copied_model and cell is not model


def test_stream_tensors_are_found_by_content_and_refilled() -> None:
    s = stream()
    index = runtime.StreamIndex(s)
    holder = {"val": torch.from_numpy(s[:257].copy()), "other": torch.arange(300)}
    found = runtime.find_arrays(holder, lambda a: (v := runtime._as_numpy(a)) is not None and index.offset(v) is not None)
    assert len(found) == 1 and found[0] is holder["val"]


def test_synthetic_tokenizer_and_luts_follow_the_challenge_byte_rule() -> None:
    sp = type("SP", (fakedata.FakeSentencePiece,), {"vocab": 300})()
    base, space, boundary = fakedata.canonical_luts(300)
    assert sp.piece_to_id("▁") != sp.unk_id() and boundary[:3].all() and boundary[fakedata.UNK_ID]
    assert base[fakedata.BYTE_IDS.start] == 1 and len({sp.id_to_piece(i) for i in range(300)}) == 300
    i = next(i for i in range(fakedata.FIRST_NORMAL, 300) if space[i])
    assert base[i] == len(sp.id_to_piece(i)[1:].encode())
    s = fakedata.documents(256, 2000, 3)
    grams = {tuple(s[i:i + 4]) for i in range(s.size - 3)}
    assert len(grams) == s.size - 3 and s[0] == fakedata.BOS_ID


# ----------------------------------------------------------------------------- shims


def test_flash_attn_shim_matches_grouped_causal_attention() -> None:
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 7, 4, 8), torch.randn(2, 7, 2, 8), torch.randn(2, 7, 2, 8)
    out = flash_attn_func(q, k, v, causal=True)
    ref = F.scaled_dot_product_attention(q.transpose(1, 2), k.repeat_interleave(2, 2).transpose(1, 2),
                                         v.repeat_interleave(2, 2).transpose(1, 2), is_causal=True).transpose(1, 2)
    torch.testing.assert_close(out, ref)
    cu = torch.tensor([0, 3, 7])
    packed = flash_attn_varlen_func(q[0], k[0], v[0], cu, cu, causal=True)
    torch.testing.assert_close(packed[3:], flash_attn_func(q[:1, 3:], k[:1, 3:], v[:1, 3:], causal=True)[0])


def test_shims_in_a_fresh_interpreter() -> None:
    code = '''
from golf_audit.submission import shims
shims.install()
import torch, triton, triton.language as tl
from triton.compiler.errors import CompilationError
@triton.jit
def kernel(x): return x
try:
    kernel[(1,)](torch.zeros(1))
except shims.KernelOnCPU as exc:
    assert "kernel" in str(exc)
assert torch.cuda.is_available() and torch.device("cuda", 3).type == "cpu"
import brotli, zstandard
assert brotli.decompress(brotli.compress(b"abc")) == b"abc"
import torch.distributed as dist
dist.init_process_group("nccl"); t = torch.ones(2); dist.all_reduce(t); assert t.tolist() == [1.0, 1.0]
m = torch.nn.Linear(2, 2); m.train(); assert not m.training
with torch.inference_mode():
    y = m(torch.ones(1, 2))
(y.sum() * 0).requires_grad
from mamba_ssm import Mamba2
from fla.ops.gated_delta_rule import chunk_gated_delta_rule
import subprocess
assert "NVIDIA" in subprocess.run(["nvidia-smi"], capture_output=True, text=True).stdout
print("ok")
'''
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "ok", done.stderr[-2000:]


def test_required_path_variables_get_the_challenge_layout() -> None:
    """``os.environ["DATA_PATH"]`` with no default (a run script sets it) gets a path the data shims answer."""
    import ast as _ast

    from golf_audit.submission import analyze as _analyze

    tree = _ast.parse('import os\nd = os.environ["DATA_PATH"]\nt = os.environ["TOKENIZER_PATH"]\n'
                      'k = os.environ["SECRET_KEY"]\n')
    env = _analyze.tiny_env(_analyze.env_vars(tree))
    assert env["DATA_PATH"] == _analyze.REQUIRED_PATHS["DATA"]
    assert env["TOKENIZER_PATH"].endswith(".model")
    assert "SECRET_KEY" not in env  # not a path: the script's own error says it is required


def test_replay_budget_keeps_one_script_near_the_time_target() -> None:
    """The flip replays get what is left of TIME_TARGET_S after the entry run, the pipeline test and
    the document test."""
    import time as _time

    from golf_audit.submission import audit as _audit

    run = _audit._DynamicRun.__new__(_audit._DynamicRun)
    run.budget_s, run.pipeline_mode, run.audit_started = _audit.DEFAULT_BUDGET_S, "off", None
    run.tree, run.twin = ast.parse("x = 1\n"), None  # no document isolation: no document test to keep time for
    now = _time.perf_counter()
    assert run._replay_budget(now, 1.0, []) == _audit.DEFAULT_BUDGET_S  # a fast script: the whole budget
    slow = run._replay_budget(now - 25.0, 25.0, [])  # 25 s spent on the entry run
    assert abs(slow - (_audit.TIME_TARGET_S - 25.0)) < 0.5
    run.audit_started = now - 35.0  # a first run that stopped before scoring took 10 s more: it counts
    retried = run._replay_budget(now - 25.0, 25.0, [])
    assert abs(retried - max(_audit.MIN_REPLAY_S, _audit.TIME_TARGET_S - 35.0)) < 0.5
    run.audit_started = None
    run.pipeline_mode = "on"  # the pipeline test reruns the entry point PIPELINE_FLIPS + 1 times
    assert run._replay_budget(now - 10.0, 10.0, []) == _audit.MIN_REPLAY_S


def test_the_document_test_keeps_the_time_its_replays_take() -> None:
    """Where the script isolates documents, the replay budget leaves the document test its time:
    per tested call, the unflipped run and the flipped streams at the call's own entry-run time."""
    from golf_audit.causality.docflip import DOCS_TESTED
    from golf_audit.submission import audit as _audit

    run = _audit._DynamicRun.__new__(_audit._DynamicRun)
    run.tree, run.twin = ast.parse("def eval_val(tokens, bos_id):\n    doc_starts = (tokens == bos_id).nonzero()\n"
                                   "    return doc_starts\n"), None
    calls = [{"id": 0, "name": "eval_val", "error": None, "rule": "ce", "replayable": True, "adapted": False,
              "seconds": 4.0}]
    assert run._doc_reserve(calls) == (1 + DOCS_TESTED) * 4.0
    run.twin = object()  # a twin takes every other flipped stream
    assert run._doc_reserve(calls) == (1 + -(-DOCS_TESTED // 2)) * 4.0
    calls[0]["seconds"] = 0.01
    assert run._doc_reserve(calls) == _audit.DOC_RESERVE_S  # never below the floor
    run.tree = ast.parse("x = 1\n")
    assert run._doc_reserve(calls) == 0.0


def test_a_checkpoint_the_folder_does_not_ship_is_not_carried_into_the_audit(tmp_path: Path) -> None:
    """README/log values naming a model file that is not in the folder keep the script's default."""
    import ast as _ast

    from golf_audit.submission import analyze as _analyze

    tree = _ast.parse('import os\nLOAD = os.environ.get("EGGROLL_LOAD", "")\nMODE = os.environ.get("NGRAM_MODE", "a")\n')
    (tmp_path / "README.md").write_text("EGGROLL_LOAD=checkpoints/ckpt_step0100000.pt NGRAM_MODE=two_pass "
                                        "torchrun train_gpt.py\n", encoding="utf-8")
    got = _analyze.submitted_config(tmp_path, _analyze.env_vars(tree))
    assert "EGGROLL_LOAD" not in got and got["NGRAM_MODE"][0] == "two_pass"
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "ckpt_step0100000.pt").write_bytes(b"")
    assert _analyze.submitted_config(tmp_path, _analyze.env_vars(tree))["EGGROLL_LOAD"][0].endswith(".pt")


def _module(path: Path):
    """Import ``path`` as a module (its file name is what the capture's ``producers`` match)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(path.stem + "_fixture", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_a_hand_made_score_is_recorded_against_its_target_argument(tmp_path: Path) -> None:
    """``mix_and_score(logits, x, y)`` and ``tilt(ptl, target_ids, hint_ids)``: the targets are the
    argument named as such, not the first integer tensor of the output's shape (the inputs, the hints)."""
    helper = tmp_path / "mixer.py"
    helper.write_text(
        "import torch\n"
        "def mix_and_score(logits, x_batch, y_batch):\n"
        "    lp = torch.log_softmax(logits, -1)\n"
        "    return -lp.gather(2, y_batch.unsqueeze(2)).squeeze(2), None\n"
        "def tilt(ptl, target_ids, hint_ids):\n"
        "    return ptl - 0.5 * (target_ids == hint_ids).float()\n")
    mod = _module(helper)
    x, y = torch.randint(0, 9, (2, 5)), torch.randint(0, 9, (2, 5))
    with torch.no_grad(), capture.CrossEntropyCapture(5, producers={str(helper)}) as cap:
        nll, _ = mod.mix_and_score(torch.randn(2, 5, 9), x, y)
        mod.tilt(nll, y, x)
    sites = [c.site.split(":")[-1] for c in cap.calls]
    assert sites == ["mix_and_score", "tilt"]
    for call in cap.calls:
        assert (call.targets == y.numpy()).all(), call.site
        # the score itself is kept, never as a width-1 "row" (its log-softmax would sum to 1 whatever was scored)
        assert call.logits is None, call.site


def test_readme_prose_around_a_command_assignment_is_not_part_of_the_value(tmp_path: Path) -> None:
    tree = ast.parse("import os\nq = os.environ.get('QTTT', '0') == '1'\nn = int(os.environ.get('TTT_EPOCHS', '3'))\n")
    (tmp_path / "README.md").write_text("| Unfrozen | Q projections only (QTTT=1) |\nRun with TTT_EPOCHS=2.\n")
    got = analyze.submitted_config(tmp_path, analyze.env_vars(tree))
    assert got["QTTT"] == ("1", "README.md") and got["TTT_EPOCHS"] == ("2", "README.md")


def test_a_forward_returning_its_own_cross_entropy_is_recorded_once(tmp_path: Path) -> None:
    """``model(x, y, reduction="none")`` returns the per-token CE it computed: one scoring, not two."""
    helper = tmp_path / "fwd.py"
    helper.write_text(
        "import torch.nn.functional as F\n"
        "def forward(logits, input_ids, target_ids):\n"
        "    return F.cross_entropy(logits.flatten(0, 1), target_ids.flatten(), reduction='none').view_as(input_ids)\n")
    mod = _module(helper)
    x, y = torch.randint(0, 9, (2, 5)), torch.randint(0, 9, (2, 5))
    with torch.no_grad(), capture.CrossEntropyCapture(5, producers={str(helper)}) as cap:
        mod.forward(torch.randn(2, 5, 9), x, y)
    assert len(cap.calls) == 1 and cap.calls[0].logits is not None, [c.site for c in cap.calls]


def test_an_evolution_strategy_population_is_one_antithetic_pair() -> None:
    tree = ast.parse("import os\nclass Hyperparameters:\n    pop_size = int(os.environ.get('POP_SIZE', 256))\n"
                     "    num_layers = int(os.environ.get('NUM_LAYERS', 15))\n")
    env = analyze.tiny_env(analyze.env_vars(tree))
    assert env["POP_SIZE"] == "2" and env["NUM_LAYERS"] == str(analyze.TINY_LAYERS)


def test_hardcoded_sizes_are_module_constants_no_env_var_reaches() -> None:
    fixed = ast.parse("NUM_LAYERS = 11; MODEL_DIM = 512\nSEQ_LEN = 2048\nVOCAB = 1024\nDEBUG = True\nLR = 6e-4\n")
    assert analyze.hardcoded_sizes(fixed, analyze.env_vars(fixed)) == [
        ("NUM_LAYERS", 11, 1), ("MODEL_DIM", 512, 1), ("SEQ_LEN", 2048, 2)]
    small = ast.parse("MODEL_DIM = 32\nSEQ_LEN = 64\n")
    assert analyze.hardcoded_sizes(small, []) == []  # already tiny
    tunable = ast.parse(HP + "SEQ_LEN = 2048\n")  # MODEL_DIM comes from the environment: the tiny config reaches it
    assert analyze.hardcoded_sizes(tunable, analyze.env_vars(tunable)) == []
