"""Shards, loaders, the embedded corpus and ``load_tokens``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reference_model import data
from reference_model.data import ShardError


def test_shard_roundtrip(tmp_path):
    tokens = np.array([1, 5, 65535, 0, 7], dtype=np.uint16)
    path = data.write_shard(tmp_path / "fineweb_val_000000.bin", tokens)
    assert path.stat().st_size == 1024 + 2 * tokens.size
    assert np.array_equal(data.read_shard(path), tokens)
    assert data.is_shard(path)


@pytest.mark.parametrize(
    "patch, needle",
    [((0, 12345), "bad magic"), ((1, 2), "version 2"), ((2, 6), "does not match")],
)
def test_bad_header_is_rejected_naming_the_file(tmp_path, patch, needle):
    path = data.write_shard(tmp_path / "bad.bin", [1, 2, 3, 4, 5])
    header = np.fromfile(path, dtype="<i4", count=256)
    header[patch[0]] = patch[1]
    raw = path.read_bytes()
    path.write_bytes(header.tobytes() + raw[1024:])
    with pytest.raises(ShardError, match=needle) as err:
        data.read_shard(path)
    assert str(path) in str(err.value)


def test_truncated_and_short_files_are_rejected(tmp_path):
    path = data.write_shard(tmp_path / "t.bin", list(range(10)))
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(ShardError, match="does not match"):
        data.read_shard(path)
    path.write_bytes(b"\x00" * 10)
    with pytest.raises(ShardError, match="too short"):
        data.read_shard(path)


def test_val_tokens_concatenate_and_truncate(tmp_path):
    data.write_shard(tmp_path / "fineweb_val_000001.bin", np.arange(10, 20))
    data.write_shard(tmp_path / "fineweb_val_000000.bin", np.arange(0, 10))
    val = data.load_val_tokens(str(tmp_path / "fineweb_val_*.bin"), seq_len=4)
    # 20 tokens -> ((20-1)//4)*4 + 1 = 17, in sorted shard order
    assert val.tolist() == list(range(17)) and val.dtype == torch.int64


def test_distributed_loader_slices_match_grad_accumulation():
    stream = torch.arange(1000)
    one = data.DistributedTokenLoader(stream)
    a = [one.next_batch(16, 4, grad_accum_steps=2) for _ in range(2)]
    r0 = data.DistributedTokenLoader(stream, rank=0, world_size=2).next_batch(16, 4, 1)
    r1 = data.DistributedTokenLoader(stream, rank=1, world_size=2).next_batch(16, 4, 1)
    assert torch.equal(a[0][0], r0[0]) and torch.equal(a[1][0], r1[0])
    assert torch.equal(a[0][1], r0[1]) and torch.equal(a[1][1], r1[1])
    x, y = a[0]
    assert torch.equal(x.reshape(-1)[1:], y.reshape(-1)[:-1])
    with pytest.raises(ValueError, match="not a positive multiple of seq_len=4"):
        one.next_batch(18, 4, grad_accum_steps=1)  # the seed cannot reshape 18 tokens into rows of 4 either


def test_token_stream_wraps_over_shards(tmp_path):
    data.write_shard(tmp_path / "fineweb_train_000000.bin", [1, 2, 3])
    data.write_shard(tmp_path / "fineweb_train_000001.bin", [4, 5])
    s = data.TokenStream(str(tmp_path / "fineweb_train_*.bin"))
    assert s.take(7).tolist() == [1, 2, 3, 4, 5, 1, 2]


def test_split_is_by_document_and_deterministic():
    docs = data.corpus_documents()
    train, val = data.split_documents(docs)
    assert len(train) + len(val) == len(docs) and not set(train) & set(val)
    assert data.split_documents(docs) == (train, val)


def test_embedded_corpus_tokenizer_and_shards(tmp_path):
    sp = data.default_tokenizer(512, cache_dir=tmp_path)
    assert sp.get_piece_size() == 512
    assert (sp.pad_id(), sp.bos_id(), sp.eos_id(), sp.unk_id()) == (0, 1, 2, 3)
    again = data.default_tokenizer(512, cache_dir=tmp_path)  # from the cache
    assert again.serialized_model_proto() == sp.serialized_model_proto()
    written = data.build_shards(data.corpus_documents()[:12], sp, tmp_path / "shards")
    val = data.load_val_tokens(str(tmp_path / "shards" / "fineweb_val_*.bin"), 16)
    assert val[0] == data.BOS_ID and written["train"]
    train = data.read_shard(written["train"][0])
    assert train[0] == data.BOS_ID and (train == data.BOS_ID).sum() == 9


def test_load_tokens_accepts_shard_and_text(tmp_path):
    sp = data.default_tokenizer(512, cache_dir=tmp_path)
    shard = data.write_shard(tmp_path / "x.bin", [1, 9, 8])
    assert data.load_tokens(shard).tolist() == [1, 9, 8]
    text = tmp_path / "x.txt"
    text.write_text("def f(x):\n    return x\n", encoding="utf-8")
    toks = data.load_tokens(text, sp)
    assert toks[0] == 1 and toks[1:].tolist() == sp.encode(text.read_text(encoding="utf-8"))
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ShardError, match="bad.txt"):
        data.load_tokens(bad, sp)
    with pytest.raises(ValueError, match="needs a tokenizer"):
        data.load_tokens(text)
    with pytest.raises(FileNotFoundError):
        data.load_tokens(tmp_path / "missing.bin")


def test_load_tokens_rejects_a_bin_with_a_wrong_header_and_binary_text(tmp_path):
    import numpy as np
    import pytest

    from reference_model.data import ShardError, load_tokens

    header = np.zeros(256, dtype="<i4")
    header[:3] = (1, 1, 4)  # wrong magic
    body = header.tobytes() + np.arange(4, dtype="<u2").tobytes()
    (tmp_path / "x.bin").write_bytes(body)
    (tmp_path / "x.dat").write_bytes(body)
    with pytest.raises(ShardError, match="x.bin"):
        load_tokens(tmp_path / "x.bin")
    with pytest.raises(ShardError, match="NUL byte"):
        load_tokens(tmp_path / "x.dat", tokenizer="unused")
