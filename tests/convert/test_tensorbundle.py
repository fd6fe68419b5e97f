"""The TensorFlow-free checkpoint reader/writer: CRC32C, varints, SSTable blocks, bundle entries.

Compatibility with TensorFlow itself (TF-written files read here, files written
here restored by TF, byte-identical output) is tested in test_tf_equivalence.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from augment.convert import tensorbundle as tb


@pytest.mark.parametrize("data, expected", [
    (b"", 0x00000000),
    (b"123456789", 0xE3069283),
    (bytes(32), 0x8A9136AA),  # RFC 3720 (iSCSI) test vectors
    (b"\xff" * 32, 0x62A8AB43),
    (bytes(range(32)), 0x46DD794E),
])
def test_crc32c_known_vectors(data: bytes, expected: int) -> None:
    assert tb.crc32c(data) == expected


@pytest.mark.parametrize("size", [8191, 8192, 10_000, 65_537, 1_000_003])
def test_crc32c_vectorised_path_matches_bytewise(size: int) -> None:
    data = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()
    assert tb.crc32c(data) == tb._crc_raw_small(data, 0xFFFFFFFF) ^ 0xFFFFFFFF


def test_crc_mask_roundtrip() -> None:
    for value in (0, 1, 0xFFFFFFFF, 0xE3069283):
        assert tb.unmask_crc(tb.mask_crc(value)) == value


@pytest.mark.parametrize("value", [0, 1, 127, 128, 300, 2 ** 32, 2 ** 63 - 1])
def test_varint_roundtrip(value: int) -> None:
    encoded = tb.encode_varint(value)
    assert tb.read_varint(encoded + b"\x01", 0, "t") == (value, len(encoded))


def test_varint_truncated_and_overlong() -> None:
    with pytest.raises(tb.BundleError, match="truncated varint"):
        tb.read_varint(b"\x80\x80", 0, "t")
    with pytest.raises(tb.BundleError, match="longer than"):
        tb.read_varint(b"\xff" * 11, 0, "t")


def test_negative_int64_decodes_signed() -> None:
    assert tb._signed64(tb.read_varint(tb.encode_varint(-1), 0, "t")[0]) == -1


def test_table_roundtrip_many_blocks_prefix_compression_and_restarts() -> None:
    keys = sorted({f"model/h{i}/attn/c_attn/{p}".encode() for i in range(60) for p in "bw"} | {b""})
    entries = [(k, os.urandom(len(k) % 7 + 1)) for k in keys]
    table = tb.build_table(entries, block_size=256, restart_interval=4)
    assert list(tb.table_entries(table, "t")) == entries
    # several data blocks, and keys really are prefix-compressed (table smaller than the raw keys)
    assert len(table) < sum(len(k) + len(v) for k, v in entries)


def test_block_restart_points_must_start_entries() -> None:
    builder = tb._BlockBuilder(restart_interval=2)
    for key in (b"aa", b"ab", b"ac"):
        builder.add(key, b"v")
    block = bytearray(builder.finish())
    assert [k for k, _ in tb.block_entries(bytes(block), "t")] == [b"aa", b"ab", b"ac"]
    block[-8] += 1  # move the second restart point into the middle of an entry
    with pytest.raises(tb.BundleError, match="restart"):
        list(tb.block_entries(bytes(block), "t"))


def test_index_separators_are_leveldb_short_keys() -> None:
    assert tb.shortest_separator(b"model/h0/attn", b"model/h1/attn") == b"model/h0/attn"
    assert tb.shortest_separator(b"abc", b"abz") == b"abd"
    assert tb.short_successor(b"model/wte") == b"n"
    assert tb.short_successor(b"\xff\xff") == b"\xff\xff"


def _sample_tensors() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"model/wte": rng.standard_normal((50, 8)).astype(np.float32),
            "model/h0/attn/c_attn/w": rng.standard_normal((1, 8, 24)).astype(np.float32),
            "global_step": np.array(7, dtype=np.int64), "half": np.ones(3, dtype=np.float16),
            "empty": np.zeros((0, 4), dtype=np.float32), "ints": np.arange(5, dtype=np.int32)}


def test_bundle_roundtrip_dtypes_and_shapes(tmp_path: Path) -> None:
    tensors = _sample_tensors()
    tb.write_bundle(tmp_path / "model.ckpt", tensors)
    num_shards, entries = tb.read_index(tmp_path / "model.ckpt")
    assert num_shards == 1 and set(entries) == set(tensors)
    assert entries["model/h0/attn/c_attn/w"].shape == (1, 8, 24)
    back = tb.read_bundle(tmp_path / "model.ckpt")
    for name, array in tensors.items():
        assert back[name].dtype == array.dtype and np.array_equal(back[name], array), name


def test_corrupt_tensor_data_is_detected(tmp_path: Path) -> None:
    tb.write_bundle(tmp_path / "m", _sample_tensors())
    data = tmp_path / "m.data-00000-of-00001"
    raw = bytearray(data.read_bytes())
    raw[10] ^= 0xFF
    data.write_bytes(bytes(raw))
    with pytest.raises(tb.BundleError, match="checksum mismatch for half"):
        tb.read_bundle(tmp_path / "m")


def test_truncated_data_shard(tmp_path: Path) -> None:
    tb.write_bundle(tmp_path / "m", _sample_tensors())
    data = tmp_path / "m.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:100])
    with pytest.raises(tb.BundleError, match="truncated"):
        tb.read_bundle(tmp_path / "m")


def test_corrupt_index_block(tmp_path: Path) -> None:
    tb.write_bundle(tmp_path / "m", _sample_tensors())
    index = tmp_path / "m.index"
    raw = bytearray(index.read_bytes())
    raw[5] ^= 0x01
    index.write_bytes(bytes(raw))
    with pytest.raises(tb.BundleError, match="checksum mismatch in block"):
        tb.read_index(tmp_path / "m")


def test_not_an_index(tmp_path: Path) -> None:
    (tmp_path / "m.index").write_bytes(b"x" * 100)
    with pytest.raises(tb.BundleError, match="bad magic"):
        tb.read_index(tmp_path / "m")
    (tmp_path / "s.index").write_bytes(b"short")
    with pytest.raises(tb.BundleError, match="too short"):
        tb.read_index(tmp_path / "s")
    with pytest.raises(tb.BundleError, match="not found"):
        tb.read_index(tmp_path / "absent")


def test_missing_shard(tmp_path: Path) -> None:
    tb.write_bundle(tmp_path / "m", _sample_tensors())
    (tmp_path / "m.data-00000-of-00001").unlink()
    with pytest.raises(tb.BundleError, match="data shard not found"):
        tb.read_bundle(tmp_path / "m")


def test_entry_size_must_match_shape(tmp_path: Path) -> None:
    entry = tb.TensorEntry("x", 1, (2, 3), 0, 0, 20, None)
    with pytest.raises(tb.BundleError, match="holds 20 bytes but shape \\[2, 3\\] of float32 needs 24"):
        tb._check_entry(entry, 1, "t")
    with pytest.raises(tb.BundleError, match="dtype string"):
        tb._check_entry(tb.TensorEntry("s", 7, (), 0, 0, 3, None), 1, "t")
