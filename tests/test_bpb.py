"""GA-BPB and bpb-proof: canonical bytes, bug classes, the denominator, sidecars, real PRs.

Fixtures of our own (tests/fixtures/bpb/make_bpb_fixtures.py): one good byte-table builder and
one per bug class, a fixed-constant denominator, a shipped table, a CaseOps-like transformed
tokenizer with a good and a bad sidecar builder; the tokenizers are trained at test time on
CPython's pydoc text. The real PRs and records run from ../shared (skipped when absent); the
full sweep over every folder is marked slow.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from golf_audit.bpb import script as script_ast
from golf_audit.bpb import tokenizers
from golf_audit.bpb.audit import audit_bpb, sidecar_sample
from golf_audit.bpb.probe import PADDING, probe_tokenizer_path
from golf_audit.bpb.proof import ByteTable, account, compare, default_text
from golf_audit.bpb.report import builder_outcome, denominator_outcome, shipped_outcome, sidecar_outcome
from golf_audit.checks.base import NotApplicable
from golf_audit.cli import app
from golf_audit.findings import Status
from golf_audit.submission import sandbox

FIXTURES = Path(__file__).parent / "fixtures" / "bpb"
runner = CliRunner()


def _fixtures_module():
    spec = importlib.util.spec_from_file_location("ga_bpb_fixtures", FIXTURES / "make_bpb_fixtures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FX = _fixtures_module()


@pytest.fixture(scope="module")
def probe() -> tokenizers.Tokenizer:
    return tokenizers.load(probe_tokenizer_path())


@pytest.fixture(scope="module")
def scripts(tmp_path_factory) -> dict[str, Path]:
    return FX.write(tmp_path_factory.mktemp("bpb_scripts"))


def needs_sandbox() -> None:
    reason = sandbox.unavailable_reason()
    if reason and not os.environ.get("GOLF_AUDIT_REQUIRE_SANDBOX"):
        pytest.skip(reason)


# --- canonical bytes and bug classes (no child) ------------------------------------------------------


def test_the_probe_tokenizer_has_every_piece_kind(probe) -> None:
    kinds = {k: probe.kinds.count(k) for k in set(probe.kinds)}
    assert kinds["byte"] == 256 and kinds["control"] >= 3 and kinds["unknown"] == 1 and kinds["normal"] > 100
    base = probe.canonical.base
    assert all(base[i] == 1 for i, k in enumerate(probe.kinds) if k == "byte")
    assert all(base[i] == 0 and probe.canonical.boundary[i] for i, k in enumerate(probe.kinds) if k in ("control", "unknown"))


def _bugged(probe, bug: str) -> ByteTable:
    canon = probe.canonical_for(probe.size + PADDING)
    base, space, boundary = canon.base.copy(), canon.space.copy(), canon.boundary.copy()
    kinds = probe.kinds + ["padding"] * PADDING
    if bug == "byte-token size":
        base[[i for i, k in enumerate(kinds) if k == "byte"]] = 3
    elif bug == "leading-space double count":
        base[space] += 1
    elif bug == "missing ▁":
        base[space] += 3
        space[:] = False
    elif bug == "unused ids":
        boundary[:4] = False
        base[1] = 3
    elif bug == "spurious space":
        space[[i for i, k in enumerate(kinds) if k == "normal" and not space[i]][:5]] = True
    return ByteTable(base, space, boundary)


@pytest.mark.parametrize("bug", ["byte-token size", "leading-space double count", "missing ▁", "unused ids",
                                 "spurious space"])
def test_each_bug_class_is_named_and_inflates_the_text(probe, bug: str) -> None:
    table = _bugged(probe, bug)
    found = compare(probe, table)
    assert found and {d.bug for d in found} == {bug}
    docs, name = default_text()
    text = account(probe, table, docs[:20], name)
    assert text.canonical_bytes == text.decoded_bytes == text.normalized_bytes  # the rule holds on the probe
    if bug != "unused ids":  # BOS never is a target: the error does not reach the text
        assert text.script_bytes != text.canonical_bytes and text.inflation != 0


def test_the_canonical_table_agrees_with_itself_and_with_the_decoded_text(probe) -> None:
    table = probe.canonical_for(probe.size)
    assert compare(probe, table) == []
    docs, name = default_text()
    text = account(probe, table, docs, name)
    assert text.script_bytes == text.canonical_bytes == text.decoded_bytes == text.raw_bytes
    assert text.inflation == 0.0


def _tokenmonster_vocab(path: Path, keys: list[bytes], capcode: int = 2) -> Path:
    """A minimal TokenMonster vocabulary in its binary layout (what golf-audit reads)."""
    u24 = lambda v: struct.pack("<I", v)[:3]  # noqa: E731
    body = bytes([capcode, 1, 0, 0, 0, 0, 0, 0]) + u24(0xFFFFFF) + u24(len(keys)) + u24(0) + u24(len(keys))
    body += u24(0xFFFFFF) + bytes([max(len(k) for k in keys)])
    for token, key in enumerate(keys):
        body += bytes([len(key)]) + key + bytes([0, 1]) + u24(0xFFFFFF) * 2 + u24(token) + b"\0" * 4
    path.write_bytes(body + bytes(256))
    return path


def test_tokenmonster_vocabularies_count_capcode_and_byte_tokens(tmp_path) -> None:
    vocab = _tokenmonster_vocab(tmp_path / "tm.vocab", [b"a", b" the", b"C", b"D", b"-D 1", b"\x80", b"\xe2", b"(D"])
    tok = tokenizers.load(vocab)
    assert tok.family == "tokenmonster" and tok.kinds == ["normal", "normal", "marker", "marker", "normal", "byte",
                                                          "byte", "normal"]
    assert tok.canonical.base.tolist() == [1, 4, 0, 0, 2, 1, 1, 1]  # D deletes the space that follows it
    scylla = ByteTable(np.array([1, 4, 0, 0, 2, 3, 3, 1]), np.zeros(8, bool), np.zeros(8, bool))
    assert {d.bug for d in compare(tok, scylla)} == {"byte-token size"}
    assert any("end in D" in n for n in tok.notes)


# --- the script, read by ast ----------------------------------------------------------------------------


def test_builders_are_found_and_extracted_with_what_they_need(scripts) -> None:
    source = scripts["good"].read_text()
    tree = ast.parse(source)
    (builder,) = script_ast.roots(script_ast.builders(tree))
    assert builder.name == "build_sentencepiece_luts" and builder.kind == "sentencepiece"
    extracted = script_ast.extract(source, builder.name)
    assert "import numpy as np" in extracted and "def eval_val" not in extracted and "class Hyperparameters" not in extracted
    lines, original = extracted.splitlines(), source.splitlines()
    assert lines[builder.line - 1] == original[builder.line - 1]  # line numbers kept for evidence
    assert script_ast.env_default(tree, "TOKENIZER_PATH") == "./data/tokenizers/probe.model"


def test_a_fixed_bytes_per_token_denominator_is_found_and_accumulators_are_not(scripts) -> None:
    bad, _ = script_ast.denominator_findings(ast.parse(scripts["fixed_constant"].read_text()), False)
    assert [f.kind for f in bad] == ["fixed-bytes-per-token"] and "BYTES_PER_TOKEN" in bad[0].message
    good, _ = script_ast.denominator_findings(ast.parse(scripts["good"].read_text()), False)
    assert good == []
    accumulate = "import math\ndef ev(xs):\n    total_bytes = 0.0\n    for x in xs:\n        total_bytes += x\n" \
                 "    val_bpb = 1.0 / math.log(2) / total_bytes\n    return val_bpb\n"
    assert script_ast.denominator_findings(ast.parse(accumulate), False)[0] == []


def test_the_denominator_check_on_the_fixtures(scripts, probe) -> None:
    bad = audit_bpb(scripts["fixed_constant"], tokenizer=probe.path, dynamic=False)
    assert denominator_outcome(bad).status is Status.FAIL
    good = audit_bpb(scripts["good"], tokenizer=probe.path, dynamic=False)
    assert denominator_outcome(good).status is Status.PASS
    with pytest.raises(NotApplicable):
        shipped_outcome(good)


def test_a_shipped_byte_table_is_compared_with_the_shipped_tokenizer(tmp_path, probe) -> None:
    for name, bug in (("good", None), ("bad", "byte-token size")):
        folder = tmp_path / name
        folder.mkdir()
        shutil.copy(probe.path, folder / "tok.model")
        table = _bugged(probe, bug) if bug else probe.canonical_for(probe.size)
        np.savez(folder / "tok.meta.npz", base_bytes=table.base.astype(np.int16), has_leading_space=table.space,
                 is_boundary_token=table.boundary)
        outcome = shipped_outcome(audit_bpb(folder, dynamic=False))
        if bug:
            assert outcome.status is Status.FAIL and "byte-token size (256 token(s))" in outcome.summary
            assert "bpb is" in outcome.summary and "too low" in outcome.summary
        else:
            assert outcome.status is Status.PASS, outcome.summary


# --- in the sandbox ------------------------------------------------------------------------------------


def test_bpb_proof_passes_the_good_builder_and_names_the_bug_of_a_bad_one(scripts, probe) -> None:
    needs_sandbox()
    good = runner.invoke(app, ["bpb-proof", str(scripts["good"]), "--tokenizer", str(probe.path)])
    assert good.exit_code == 0, good.output
    assert "✔ **The bpb's byte count is exact**" in good.stdout and "decoded bytes = canonical count" in good.stdout
    bad = runner.invoke(app, ["bpb-proof", str(scripts["double_space"]), "--tokenizer", str(probe.path)])
    assert bad.exit_code == 1, bad.output
    assert "leading-space double count" in bad.stdout and "% below the true bpb" in bad.stdout


def test_the_builder_check_runs_the_scripts_own_code_in_the_sandbox(scripts, probe) -> None:
    needs_sandbox()
    audit = audit_bpb(scripts["byte_size"], tokenizer=probe.path)
    outcome = builder_outcome(audit)
    assert outcome.status is Status.FAIL and "byte-token size" in outcome.summary
    assert audit.isolation == sandbox.LEVEL_BWRAP and all(p.source.endswith("sandbox") or "probe" in p.source
                                                          for p in audit.built)


@pytest.fixture(scope="module")
def caps_tokenizer(tmp_path_factory) -> Path:
    """A SentencePiece model trained on the case-transformed pydoc text, with the operator reserved."""
    import sentencepiece as spm

    namespace: dict = {}
    exec(FX.TRANSFORM, namespace)  # our own fixture transform
    docs, _ = default_text()
    out = tmp_path_factory.mktemp("caps_tok")
    spm.SentencePieceTrainer.train(sentence_iterator=iter([namespace["encode_caps"](d) for d in docs]),
                                   model_prefix=str(out / "caps"), model_type="bpe", vocab_size=400,
                                   user_defined_symbols=["\ue001"], pad_id=0, bos_id=1, eos_id=2, unk_id=3,
                                   num_threads=1, minloglevel=2, character_coverage=1.0)
    return out / "caps.model"


@pytest.mark.parametrize("good", [True, False])
def test_a_transformed_tokenizer_needs_the_raw_byte_sidecar_and_an_exact_builder(tmp_path, caps_tokenizer, good) -> None:
    needs_sandbox()
    folder = FX.write_transformed(tmp_path / ("good" if good else "bad"), good)
    shutil.copy(caps_tokenizer, folder / "caps.model")
    audit = audit_bpb(folder)
    assert audit.transformed
    denominator, side = denominator_outcome(audit), sidecar_outcome(audit)
    expected = Status.PASS if good else Status.FAIL
    assert denominator.status is expected, denominator.summary
    assert side.status is expected, side.summary
    sc = audit.sidecar
    assert (sc.sidecar_bytes == sc.raw_bytes) is good
    assert sc.canonical_bytes == pytest.approx(sc.raw_bytes, rel=1e-3)  # golf-audit's own per-token rule agrees
    if not good:
        assert "too low" in side.summary


def test_the_sidecar_sample_cuts_documents_at_spaces() -> None:
    docs, _ = default_text()
    sample = sidecar_sample(docs)
    assert sum(map(len, sample)) >= 40_000 and max(map(len, sample)) <= 800
    assert all(s == s.strip() for s in sample)


# --- real PRs and records (../shared) ----------------------------------------------------------------

BYTES_LABELS = {1184: "fail", 2138: "fail", 2009: "fail", 1797: "pass"}


def _pr_folder(shared: Path, pr: int) -> Path:
    labels = json.loads((shared / "prs" / "labels.json").read_text())
    entry = next(e for e in labels["prs"] if e["pr"] == pr)
    return shared / "prs" / f"pr{pr}" / entry["folders"][0]


def test_the_static_byte_checks_reproduce_the_bytes_labels(shared_dir) -> None:
    scylla = audit_bpb(_pr_folder(shared_dir, 1184), dynamic=False)
    outcome = shipped_outcome(scylla)
    assert outcome.status is Status.FAIL and "byte-token size (27 token(s))" in outcome.summary
    for pr in (2009, 2138):
        assert denominator_outcome(audit_bpb(_pr_folder(shared_dir, pr), dynamic=False)).status is Status.FAIL, pr
    ok = audit_bpb(_pr_folder(shared_dir, 1797), dynamic=False)
    assert denominator_outcome(ok).status is Status.PASS and ok.transformed
    merged = audit_bpb(shared_dir / "records" / "track_10min_16mb" / "2026-04-29_SmearGateBOSFix_3Seed_1.06141",
                       dynamic=False)
    assert merged.transformed and denominator_outcome(merged).status is Status.PASS


@pytest.mark.slow
def test_every_pr_with_a_bytes_label_and_every_merged_record(shared_dir, monkeypatch) -> None:
    """GA-BPB-* with the builders run in the sandbox: the labels, and the merged records pass.

    Exception, with its evidence in the report: the 2026-04-19 and 2026-04-23 CaseOps records ship
    a data-prep sidecar builder that counts each case operator as 3 bytes ("The cat sat" → 14
    bytes for 11); GA-BPB-004 fails them. Their scored sidecar data is not in the folder.
    """
    needs_sandbox()
    monkeypatch.setenv("GOLF_AUDIT_TOKENIZERS", str(shared_dir / "data"))
    for pr, expected in BYTES_LABELS.items():
        audit = audit_bpb(_pr_folder(shared_dir, pr))
        statuses = []
        for fn in (shipped_outcome, denominator_outcome, builder_outcome, sidecar_outcome):
            try:
                statuses.append(fn(audit).status)
            except Exception:  # noqa: BLE001 - not-run / not-applicable
                continue
        verdict = "fail" if Status.FAIL in statuses else "pass" if statuses and Status.ERROR not in statuses else "error"
        assert verdict == expected, (pr, statuses)
    approximate_sidecar = {"2026-04-19_SP8192_CaseOps_GatedAttn_QuantGate_Loop45_PhasedTTT",
                           "2026-04-23_SP8192_CaseOps_SparseGate_QuantGate_Loop45_PhasedTTT_PolarNS_MinLR_FusedCE"}
    for folder in sorted({p.parent for p in (shared_dir / "records").rglob("submission.json")}):
        audit = audit_bpb(folder)
        for fn in (shipped_outcome, denominator_outcome, builder_outcome, sidecar_outcome):
            try:
                status = fn(audit).status
            except Exception:  # noqa: BLE001
                continue
            if fn is sidecar_outcome and folder.name in approximate_sidecar:
                assert status is Status.FAIL, folder.name
            else:
                assert status is Status.PASS, (folder.name, fn.__name__, fn(audit).summary)
