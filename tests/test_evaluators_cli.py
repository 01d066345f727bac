"""`golf-audit eval` and golf_audit.inputs: good inputs give numbers, bad ones one line and exit 2."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from golf_audit.cli import app
from golf_audit.errors import BadInput
from golf_audit.inputs import describe_mismatch, load_model, load_stream
from reference_model.config import TINY
from reference_model.data import write_shard

runner = CliRunner()
TINY_ENV = {"PRESET": "tiny"}


@pytest.fixture(scope="module")
def demo():
    from reference_model.demo import load_demo

    return load_demo()


@pytest.fixture(scope="module")
def files(demo, tmp_path_factory):
    """A demo checkpoint, a shard and a text file of the demo stream, and the demo tokenizer."""
    root = tmp_path_factory.mktemp("eval_inputs")
    ckpt = root / "model.pt"
    torch.save(demo.model.state_dict(), ckpt)
    tok = root / "tok.model"
    tok.write_bytes(demo.tokenizer.serialized_model_proto())
    shard = write_shard(root / "val.bin", demo.val_tokens[:513])
    text = root / "doc.txt"
    text.write_text("The quick brown fox jumps over the lazy dog. " * 20, encoding="utf-8")
    return {"ckpt": ckpt, "tok": tok, "shard": shard, "text": text, "root": root}


def _run(args, env=None):
    result = runner.invoke(app, ["eval", *args], env=env)
    return result, result.stdout, result.stderr


def test_eval_demo_json(demo):
    res, out, err = _run(["--evaluator", "sliding", "--max-tokens", "513", "--format", "json"])
    assert res.exit_code == 0, err
    data = json.loads(out)
    assert data["schema_version"] == "1.0" and data["evaluator"] == "sliding"
    # The seed's window enumeration by default: tail windows re-score; the exactly-once number comes along.
    assert data["tokens_scored"] > 512 and data["duplicate_scorings"] == data["tokens_scored"] - 512
    assert data["exactly_once"]["tokens_scored"] == 512 and data["exactly_once"]["val_bpb"] != data["val_bpb"]
    assert 0.3 < data["val_bpb"] < 4.0 and data["model"] == "demo"


def test_eval_table_with_settings_and_output(tmp_path):
    out_file = tmp_path / "report.txt"
    res, out, err = _run(["-e", "slot", "--set", "mask=context", "--set", "tail=records", "--max-tokens", "385",
                          "--output", str(out_file)])
    assert res.exit_code == 0, err
    text = out_file.read_text()
    assert "val_bpb" in text and "mask=context" in text and out == ""
    dup_line = next(line for line in text.splitlines() if line.startswith("duplicate scorings"))
    assert dup_line.split()[-1] != "0", "records tail must report its duplicates"


def test_eval_checkpoint_and_shard_reproduce_the_demo(files):
    args = ["--max-tokens", "513", "--format", "json"]
    _, demo_out, _ = _run(args)
    res, out, err = _run(["--checkpoint", str(files["ckpt"]), "--tokens", str(files["shard"]),
                          "--tokenizer", str(files["tok"]), *args], env=TINY_ENV)
    assert res.exit_code == 0, err
    assert json.loads(out)["val_bpb"] == json.loads(demo_out)["val_bpb"]


def test_eval_text_file(files):
    res, out, err = _run(["--tokens", str(files["text"]), "--format", "markdown"])
    assert res.exit_code == 0, err
    assert out.startswith("| quantity | value |")


@pytest.mark.parametrize("args,needle", [
    (["-e", "slott"], "did you mean 'slot'"),
    (["-e", "slot", "--set", "steps=many"], "not a valid int"),
    (["-e", "slot", "--set", "stepz=3"], "did you mean 'steps'"),
    (["-e", "slot", "--set", "noequals"], "key=value"),
    (["-e", "sliding", "--set", "stride=999", "--max-tokens", "300"], "stride"),
    (["--checkpoint", "/nonexistent/model.pt"], "--checkpoint: /nonexistent/model.pt: not found"),
    (["--tokens", "/nonexistent/val.bin"], "not found"),
])
def test_eval_bad_input_is_one_line_exit_2(args, needle):
    res, out, err = _run(args)
    assert res.exit_code == 2, (out, err)
    lines = [ln for ln in err.splitlines() if ln.startswith("golf-audit:")]
    assert len(lines) == 1 and needle in lines[0], err
    assert "Traceback" not in err and out == ""


def test_eval_bad_checkpoints(files):
    corrupt = files["root"] / "corrupt.pt"
    corrupt.write_bytes(b"not a zip file at all")
    truncated = files["root"] / "truncated.pt"
    truncated.write_bytes(files["ckpt"].read_bytes()[:1000])
    for path, needle in [(corrupt, "not a readable torch checkpoint"), (truncated, "not a readable torch checkpoint")]:
        res, _, err = _run(["--checkpoint", str(path)], env=TINY_ENV)
        assert res.exit_code == 2 and needle in err, err
    # A TINY checkpoint read with the seed shape (no PRESET) is a shape mismatch, not a crash.
    res, _, err = _run(["--checkpoint", str(files["ckpt"])], env={"PRESET": ""})
    assert res.exit_code == 2 and "shape mismatch" in err, err


def test_inputs_library(files, demo):
    model, hp = load_model(files["ckpt"], TINY_ENV)
    assert hp.model_dim == int(TINY["MODEL_DIM"]) and not model.training
    stream, luts = load_stream(files["shard"], str(files["tok"]), hp.vocab_size)
    assert torch.equal(stream, demo.val_tokens[:513]) and luts.vocab_size == hp.vocab_size
    with pytest.raises(BadInput, match="outside the model's vocab"):
        load_stream(write_shard(files["root"] / "big.bin", [1, 5000, 7]), str(files["tok"]), hp.vocab_size)
    with pytest.raises(BadInput, match="pieces but the model's vocab"):
        load_stream(files["shard"], str(files["tok"]), 100)
    with pytest.raises(BadInput, match="needs --tokenizer"):
        load_stream(files["shard"], None, hp.vocab_size)
    truncated = files["root"] / "cut.bin"
    truncated.write_bytes(files["shard"].read_bytes()[:-3])
    with pytest.raises(BadInput, match="does not match header"):
        load_stream(truncated, str(files["tok"]), hp.vocab_size)
    binary = files["root"] / "junk.txt"
    binary.write_bytes(b"\xff\xfe\x00junk")
    with pytest.raises(BadInput, match="neither a challenge shard nor UTF-8"):
        load_stream(binary, str(files["tok"]), hp.vocab_size)


def test_describe_mismatch():
    a = {"w": torch.zeros(2, 3), "b": torch.zeros(3)}
    assert describe_mismatch(a, dict(a)) is None
    msg = describe_mismatch(a, {"w": torch.zeros(3, 3), "extra": torch.zeros(1)})
    assert "1 shape mismatch" in msg and "missing, e.g. b" in msg and "unexpected, e.g. extra" in msg


def test_eval_ptz_checkpoint(files, demo):
    from reference_model.export import pack

    ptz = files["root"] / "model.int6.ptz"
    ptz.write_bytes(pack(demo.model.state_dict()))
    args = ["--max-tokens", "513", "--format", "json"]
    _, demo_out, _ = _run(args)
    res, out, err = _run(["--checkpoint", str(ptz), *args], env=TINY_ENV)
    assert res.exit_code == 0, err
    roundtrip, original = json.loads(out)["val_bpb"], json.loads(demo_out)["val_bpb"]
    assert roundtrip != original and abs(roundtrip - original) < 0.1, "int6/int8 roundtrip: close, not equal"
    bad = files["root"] / "bad.ptz"
    bad.write_bytes(b"\xfd7zXZ\x00 truncated lzma")
    res, out, err = _run(["--checkpoint", str(bad)], env=TINY_ENV)
    assert res.exit_code == 2 and "not a readable .ptz export" in err, err


@pytest.mark.parametrize("name,settings", [("sliding", {}), ("standard", {}), ("slot", {"steps": "1"}),
                                           ("sliding", {"stride": "32", "batch": "5"})])
def test_progress_total_is_the_number_of_model_passes(demo, name, settings):
    """The eval heartbeat's total (its ETA) equals the passes the evaluator really makes."""
    from golf_audit.cli.eval import expected_passes
    from golf_audit.inputs import evaluator_settings
    from reference_model.metric import build_luts

    ev = evaluator_settings(name, settings)
    tokens = demo.val_tokens[:1500]
    passes = []
    hook = demo.model.blocks[0].register_forward_hook(lambda *_: passes.append(1))
    try:
        ev.score(demo.model, tokens, build_luts(demo.tokenizer, demo.hp.vocab_size))
    finally:
        hook.remove()
    assert expected_passes(ev, demo.hp, tokens.numel() - 1) == len(passes) > 0


def test_progress_total_unknown_for_adapting_evaluators(demo):
    from golf_audit.cli.eval import expected_passes
    from golf_audit.inputs import evaluator_settings

    assert expected_passes(evaluator_settings("ttt", {}), demo.hp, 1000) is None
