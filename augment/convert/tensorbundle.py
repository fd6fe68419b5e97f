"""Read and write TensorFlow checkpoints (the TensorBundle format) without TensorFlow.

A checkpoint ``PREFIX`` is two files. ``PREFIX.index`` is a LevelDB-style
SSTable (data blocks of prefix-compressed keys with restart points, an index
block, a 48-byte footer; every block followed by a type byte and a masked
CRC32C) mapping each tensor name to a serialized ``BundleEntryProto``; the
empty key holds a ``BundleHeaderProto``. ``PREFIX.data-00000-of-00001`` holds
the raw little-endian tensor bytes at the entry's offset and size.

The few protobuf fields needed are decoded by hand, so neither TensorFlow nor
the protobuf package is needed, and nothing is ever unpickled. The writer
produces files TensorFlow's own ``Saver.restore`` accepts (tested), which lets
``augment convert --to gpt-2-simple`` run without TensorFlow.
"""

from __future__ import annotations

import functools
import logging
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from augment.errors import AugmentError

log = logging.getLogger(__name__)

TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48
BLOCK_TRAILER = 5
CRC_MASK_DELTA = 0xA282EAD8
MAX_VARINT_BYTES = 10

# TensorFlow DataType enum values -> little-endian numpy dtypes (the ones that are raw bytes).
DTYPES: dict[int, str] = {1: "<f4", 2: "<f8", 3: "<i4", 4: "u1", 5: "<i2", 6: "i1", 9: "<i8",
                          10: "?", 17: "<u2", 19: "<f2", 22: "<u4", 23: "<u8"}
DT_NAMES = {1: "float32", 2: "float64", 3: "int32", 4: "uint8", 5: "int16", 6: "int8", 7: "string",
            9: "int64", 10: "bool", 14: "bfloat16", 17: "uint16", 19: "float16", 22: "uint32", 23: "uint64"}


class BundleError(AugmentError):
    """A checkpoint file is truncated, corrupt or uses a feature this reader does not support."""


# --------------------------------------------------------------------------- CRC32C

@functools.cache
def _crc_table() -> np.ndarray:
    """CRC32C (Castagnoli, reflected polynomial 0x82F63B78) byte table."""
    table = np.zeros(256, dtype=np.uint32)
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
        table[i] = crc
    table.flags.writeable = False
    return table


def _apply(matrix: tuple[int, ...], value: int) -> int:
    """Apply a GF(2) 32x32 matrix (given as the images of the 32 bits) to a value."""
    out, bit = 0, 0
    while value:
        if value & 1:
            out ^= matrix[bit]
        value >>= 1
        bit += 1
    return out


def _apply_many(matrix: tuple[int, ...], values: np.ndarray) -> np.ndarray:
    out = np.zeros_like(values)
    for bit, image in enumerate(matrix):
        out ^= np.where((values >> np.uint32(bit)) & np.uint32(1), np.uint32(image), np.uint32(0))
    return out


@functools.cache
def _shift_matrix(nbytes: int) -> tuple[int, ...]:
    """The linear map a CRC register undergoes when ``nbytes`` zero bytes are fed in."""
    if nbytes == 1:
        table = _crc_table()
        return tuple(int(table[(1 << b) & 0xFF]) ^ ((1 << b) >> 8) for b in range(32))
    half = _shift_matrix(nbytes // 2)
    square = tuple(_apply(half, image) for image in half)
    if nbytes % 2:
        one = _shift_matrix(1)
        square = tuple(_apply(one, image) for image in square)
    return square


def _crc_raw_small(data: bytes, crc: int = 0) -> int:
    table = _crc_table()
    for byte in data:
        crc = int(table[(crc ^ byte) & 0xFF]) ^ (crc >> 8)
    return crc


def _crc_raw(data: bytes | memoryview) -> int:
    """Zero-initialised CRC register after ``data``; big inputs run as numpy columns.

    The register update is linear, so the data is cut into equal chunks whose
    registers are computed side by side, then folded pairwise with the
    "append N zero bytes" matrix. Leading zero bytes leave a zero register
    unchanged, which is how the input is padded to a power-of-two chunk count.
    """
    size = len(data)
    if size < 8192:
        return _crc_raw_small(bytes(data))
    length = 1 << max(8, (int(size ** 0.5)).bit_length() - 1)
    chunks = 1 << (-(-size // length) - 1).bit_length()
    padded = np.zeros(chunks * length, dtype=np.uint8)
    padded[chunks * length - size:] = np.frombuffer(data, dtype=np.uint8)
    columns = np.ascontiguousarray(padded.reshape(chunks, length).T)
    del padded
    table = _crc_table()
    state = np.zeros(chunks, dtype=np.uint32)
    for column in columns:
        state = table[(state ^ column) & 0xFF] ^ (state >> np.uint32(8))
    while len(state) > 1:
        state = _apply_many(_shift_matrix(length), state[0::2]) ^ state[1::2]
        length *= 2
    return int(state[0])


def crc32c(data: bytes | memoryview) -> int:
    """Standard CRC32C (init and final xor 0xFFFFFFFF), e.g. crc32c(b"123456789") == 0xE3069283."""
    register = _crc_raw(data) ^ _apply(_shift_matrix(len(data)), 0xFFFFFFFF) if len(data) else 0xFFFFFFFF
    return register ^ 0xFFFFFFFF


def mask_crc(crc: int) -> int:
    """LevelDB/TF store CRCs 'masked' so a CRC of data containing CRCs stays well-distributed."""
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + CRC_MASK_DELTA) & 0xFFFFFFFF


def unmask_crc(masked: int) -> int:
    rot = (masked - CRC_MASK_DELTA) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF


# --------------------------------------------------------------------------- varints and protobuf

def read_varint(buf: bytes, pos: int, where: str) -> tuple[int, int]:
    result, shift = 0, 0
    for i in range(MAX_VARINT_BYTES):
        if pos + i >= len(buf):
            raise BundleError(f"{where}: truncated varint at byte {pos}")
        byte = buf[pos + i]
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos + i + 1
        shift += 7
    raise BundleError(f"{where}: varint longer than {MAX_VARINT_BYTES} bytes at byte {pos}")


def encode_varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _signed64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def parse_message(buf: bytes, where: str) -> dict[int, list[int | bytes]]:
    """Protobuf wire format -> {field number: [values]}; varints/fixed as int, length-delimited as bytes."""
    fields: dict[int, list[int | bytes]] = {}
    pos = 0
    while pos < len(buf):
        key, pos = read_varint(buf, pos, where)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = read_varint(buf, pos, where)
        elif wire in (1, 5):
            width = 8 if wire == 1 else 4
            if pos + width > len(buf):
                raise BundleError(f"{where}: truncated fixed{width * 8} field {number}")
            value, pos = int.from_bytes(buf[pos:pos + width], "little"), pos + width
        elif wire == 2:
            length, pos = read_varint(buf, pos, where)
            if pos + length > len(buf):
                raise BundleError(f"{where}: field {number} runs past the end of its message")
            value, pos = bytes(buf[pos:pos + length]), pos + length
        else:
            raise BundleError(f"{where}: unsupported protobuf wire type {wire} (field {number})")
        fields.setdefault(number, []).append(value)
    return fields


def _field(fields: dict[int, list[int | bytes]], number: int, default: int | bytes = 0) -> int | bytes:
    values = fields.get(number)
    return values[-1] if values else default


# --------------------------------------------------------------------------- SSTable reading

@dataclass(frozen=True)
class BlockHandle:
    offset: int
    size: int

    def encode(self) -> bytes:
        return encode_varint(self.offset) + encode_varint(self.size)

    @staticmethod
    def decode(buf: bytes, pos: int, where: str) -> tuple[BlockHandle, int]:
        offset, pos = read_varint(buf, pos, where)
        size, pos = read_varint(buf, pos, where)
        return BlockHandle(offset, size), pos


def _read_block(table: bytes, handle: BlockHandle, where: str) -> bytes:
    end = handle.offset + handle.size
    if end + BLOCK_TRAILER > len(table) - FOOTER_SIZE:
        raise BundleError(f"{where}: block at {handle.offset} (+{handle.size}) runs past the end of the file")
    contents = table[handle.offset:end]
    kind = table[end]
    stored = int.from_bytes(table[end + 1:end + 5], "little")
    if unmask_crc(stored) != crc32c(contents + bytes([kind])):
        raise BundleError(f"{where}: checksum mismatch in block at byte {handle.offset} (file corrupt)")
    if kind != 0:
        raise BundleError(f"{where}: block at byte {handle.offset} is compressed (type {kind}); "
                          "only uncompressed tables are supported")
    return contents


def block_entries(block: bytes, where: str) -> Iterator[tuple[bytes, bytes]]:
    """Entries of one block: keys share a prefix with the previous key, except at restart points."""
    if len(block) < 4:
        raise BundleError(f"{where}: block too short ({len(block)} bytes)")
    num_restarts = int.from_bytes(block[-4:], "little")
    limit = len(block) - 4 - 4 * num_restarts
    if num_restarts < 1 or limit < 0:
        raise BundleError(f"{where}: bad restart count {num_restarts} in a {len(block)}-byte block")
    restarts = set(struct.unpack_from(f"<{num_restarts}I", block, limit))
    pos, key = 0, b""
    while pos < limit:
        start = pos
        shared, pos = read_varint(block, pos, where)
        unshared, pos = read_varint(block, pos, where)
        vlen, pos = read_varint(block, pos, where)
        if shared > len(key) or pos + unshared + vlen > limit:
            raise BundleError(f"{where}: corrupt entry at block offset {start}")
        if start in restarts and shared:
            raise BundleError(f"{where}: restart point at block offset {start} has a shared key prefix")
        restarts.discard(start)
        key = key[:shared] + block[pos:pos + unshared]
        pos += unshared
        yield key, block[pos:pos + vlen]
        pos += vlen
    if restarts and limit > 0:
        raise BundleError(f"{where}: restart offsets {sorted(restarts)} do not start entries")


def table_entries(table: bytes, where: str) -> Iterator[tuple[bytes, bytes]]:
    """All (key, value) pairs of an SSTable, in key order."""
    if len(table) < FOOTER_SIZE:
        raise BundleError(f"{where}: file too short to be a checkpoint index ({len(table)} bytes)")
    footer = table[-FOOTER_SIZE:]
    if int.from_bytes(footer[-8:], "little") != TABLE_MAGIC:
        raise BundleError(f"{where}: not a TensorFlow checkpoint index (bad magic number)")
    _meta, pos = BlockHandle.decode(footer, 0, where)
    index, _ = BlockHandle.decode(footer, pos, where)
    previous = None
    for _last_key, value in block_entries(_read_block(table, index, where), where):
        handle, _ = BlockHandle.decode(value, 0, where)
        for key, entry in block_entries(_read_block(table, handle, where), where):
            if previous is not None and key <= previous:
                raise BundleError(f"{where}: keys out of order ({key!r} after {previous!r})")
            previous = key
            yield key, entry


# --------------------------------------------------------------------------- SSTable writing

class _BlockBuilder:
    """LevelDB's ``BlockBuilder``: keys share prefixes with the previous key, except every N-th (restart)."""

    def __init__(self, restart_interval: int):
        self.interval = restart_interval
        self.buffer, self.restarts, self.count, self.last = bytearray(), [0], 0, b""

    def add(self, key: bytes, value: bytes) -> None:
        shared = 0
        if self.count and self.count % self.interval == 0:
            self.restarts.append(len(self.buffer))
        elif self.count:
            limit = min(len(key), len(self.last))
            while shared < limit and key[shared] == self.last[shared]:
                shared += 1
        self.buffer += encode_varint(shared) + encode_varint(len(key) - shared) + encode_varint(len(value))
        self.buffer += key[shared:] + value
        self.last, self.count = key, self.count + 1

    def size_estimate(self) -> int:
        return len(self.buffer) + 4 * len(self.restarts) + 4

    def finish(self) -> bytes:
        return bytes(self.buffer) + struct.pack(f"<{len(self.restarts)}I", *self.restarts) + \
            struct.pack("<I", len(self.restarts))


def _append_block(out: bytearray, block: bytes) -> BlockHandle:
    handle = BlockHandle(len(out), len(block))
    out += block + b"\x00" + struct.pack("<I", mask_crc(crc32c(block + b"\x00")))
    return handle


def shortest_separator(start: bytes, limit: bytes) -> bytes:
    """LevelDB's ``FindShortestSeparator``: a short key k with start <= k < limit, for index entries."""
    common = 0
    while common < min(len(start), len(limit)) and start[common] == limit[common]:
        common += 1
    if common < min(len(start), len(limit)) and start[common] < 0xFF and start[common] + 1 < limit[common]:
        return start[:common] + bytes([start[common] + 1])
    return start


def short_successor(key: bytes) -> bytes:
    """LevelDB's ``FindShortSuccessor``: a short key >= ``key``, for the last index entry."""
    for i, byte in enumerate(key):
        if byte != 0xFF:
            return key[:i] + bytes([byte + 1])
    return key


def build_table(entries: list[tuple[bytes, bytes]], block_size: int = 262144, restart_interval: int = 16) -> bytes:
    """An uncompressed SSTable laid out as TensorFlow's ``table::TableBuilder`` writes it (same bytes)."""
    keys = [key for key, _ in entries]
    if keys != sorted(set(keys)):
        raise ValueError("table keys must be unique and sorted")
    out, index, block, pending = bytearray(), _BlockBuilder(1), _BlockBuilder(restart_interval), None
    for key, value in entries:
        if pending is not None:
            index.add(shortest_separator(pending[0], key), pending[1].encode())
            pending = None
        block.add(key, value)
        if block.size_estimate() >= block_size:
            pending = (key, _append_block(out, block.finish()))
            block = _BlockBuilder(restart_interval)
    if block.count:
        pending = (block.last, _append_block(out, block.finish()))
    if pending is not None:
        index.add(short_successor(pending[0]), pending[1].encode())
    meta = _append_block(out, _BlockBuilder(restart_interval).finish())
    index_handle = _append_block(out, index.finish())
    footer = (meta.encode() + index_handle.encode()).ljust(FOOTER_SIZE - 8, b"\x00")
    return bytes(out + footer + struct.pack("<Q", TABLE_MAGIC))


# --------------------------------------------------------------------------- the bundle layer

@dataclass(frozen=True)
class TensorEntry:
    """Where one tensor lives: ``BundleEntryProto`` fields 1-6."""

    name: str
    dtype: int
    shape: tuple[int, ...]
    shard: int
    offset: int
    size: int
    crc32c: int | None

    @property
    def dtype_name(self) -> str:
        return DT_NAMES.get(self.dtype, f"DataType {self.dtype}")


def _parse_shape(buf: bytes, where: str) -> tuple[int, ...]:
    fields = parse_message(buf, where)
    if _field(fields, 3):
        raise BundleError(f"{where}: tensor has unknown rank")
    dims = []
    for dim in fields.get(2, []):
        dims.append(_signed64(int(_field(parse_message(dim, where), 1))))
    if any(d < 0 for d in dims):
        raise BundleError(f"{where}: tensor has an unknown dimension {dims}")
    return tuple(dims)


def parse_entry(name: str, value: bytes, where: str) -> TensorEntry:
    fields = parse_message(value, f"{where}: {name}")
    if fields.get(7):
        raise BundleError(f"{where}: {name} is a partitioned (sliced) variable; not supported")
    crc = fields.get(6)
    return TensorEntry(name, int(_field(fields, 1)), _parse_shape(_field(fields, 2, b""), f"{where}: {name}"),
                       int(_field(fields, 3)), _signed64(int(_field(fields, 4))), _signed64(int(_field(fields, 5))),
                       int(crc[-1]) if crc else None)


def _index_path(prefix: Path) -> Path:
    return Path(f"{prefix}.index")


def shard_path(prefix: Path, shard: int, num_shards: int) -> Path:
    return Path(f"{prefix}.data-{shard:05d}-of-{num_shards:05d}")


def read_index(prefix: Path) -> tuple[int, dict[str, TensorEntry]]:
    """(number of data shards, tensor entries by name) of the checkpoint ``prefix``."""
    path = _index_path(prefix)
    if not path.is_file():
        raise BundleError(f"{path}: checkpoint index not found")
    where = str(path)
    num_shards, entries = None, {}
    for key, value in table_entries(path.read_bytes(), where):
        if key == b"":
            header = parse_message(value, f"{where}: header")
            num_shards = int(_field(header, 1))
            if _field(header, 2) != 0:
                raise BundleError(f"{where}: big-endian checkpoints are not supported")
            continue
        name = key.decode("utf-8", errors="replace")
        entries[name] = parse_entry(name, value, where)
    if num_shards is None or num_shards < 1:
        raise BundleError(f"{where}: no bundle header (not a TensorFlow V2 checkpoint?)")
    return num_shards, entries


def _check_entry(entry: TensorEntry, num_shards: int, where: str) -> np.dtype:
    if entry.dtype not in DTYPES:
        raise BundleError(f"{where}: {entry.name} has dtype {entry.dtype_name}, which this reader does not read")
    dtype = np.dtype(DTYPES[entry.dtype])
    expected = int(np.prod(entry.shape, dtype=np.int64)) * dtype.itemsize
    if entry.size != expected:
        raise BundleError(f"{where}: {entry.name} holds {entry.size} bytes but shape {list(entry.shape)} "
                          f"of {entry.dtype_name} needs {expected}")
    if not 0 <= entry.shard < num_shards or entry.offset < 0:
        raise BundleError(f"{where}: {entry.name} points at shard {entry.shard} offset {entry.offset}, "
                          f"outside the {num_shards} shard(s)")
    return dtype


def read_tensor(prefix: Path, entry: TensorEntry, num_shards: int, verify: bool = True) -> np.ndarray:
    """One tensor, read from its shard at offset/size and checked against the entry's CRC32C."""
    path = shard_path(prefix, entry.shard, num_shards)
    dtype = _check_entry(entry, num_shards, str(_index_path(prefix)))
    if not path.is_file():
        raise BundleError(f"{path}: data shard not found (needed for {entry.name})")
    if entry.offset + entry.size > path.stat().st_size:
        raise BundleError(f"{path}: truncated; {entry.name} needs bytes {entry.offset}..{entry.offset + entry.size} "
                          f"but the file has {path.stat().st_size}")
    with open(path, "rb") as fh:
        fh.seek(entry.offset)
        raw = fh.read(entry.size)
    if verify and entry.crc32c is not None and unmask_crc(entry.crc32c) != crc32c(raw):
        raise BundleError(f"{path}: checksum mismatch for {entry.name} (file corrupt)")
    return np.frombuffer(raw, dtype=dtype).reshape(entry.shape).copy()


def read_bundle(prefix: Path, names: list[str] | None = None, verify: bool = True) -> dict[str, np.ndarray]:
    """The named tensors (default: all) of the checkpoint ``prefix``."""
    num_shards, entries = read_index(prefix)
    wanted = list(entries) if names is None else names
    missing = [n for n in wanted if n not in entries]
    if missing:
        raise BundleError(f"{_index_path(prefix)}: variable {missing[0]} not in checkpoint")
    return {name: read_tensor(prefix, entries[name], num_shards, verify) for name in wanted}


# --------------------------------------------------------------------------- writing a bundle

def _encode_field(number: int, wire: int, payload: bytes) -> bytes:
    return encode_varint(number << 3 | wire) + payload


def _encode_bytes(number: int, payload: bytes) -> bytes:
    return _encode_field(number, 2, encode_varint(len(payload)) + payload)


def encode_entry(dtype: int, shape: tuple[int, ...], offset: int, size: int, crc: int) -> bytes:
    dims = b"".join(_encode_bytes(2, _encode_field(1, 0, encode_varint(d)) if d else b"") for d in shape)
    out = _encode_field(1, 0, encode_varint(dtype)) + _encode_bytes(2, dims)
    if offset:
        out += _encode_field(4, 0, encode_varint(offset))
    if size:
        out += _encode_field(5, 0, encode_varint(size))
    return out + _encode_field(6, 5, struct.pack("<I", mask_crc(crc)))


def _dtype_code(array: np.ndarray, name: str) -> int:
    for code, spec in DTYPES.items():
        if np.dtype(spec) == array.dtype.newbyteorder("<") or np.dtype(spec) == array.dtype:
            return code
    raise ValueError(f"{name}: dtype {array.dtype} cannot be written to a checkpoint")


def write_bundle(prefix: Path, tensors: Mapping[str, np.ndarray]) -> None:
    """Write ``PREFIX.index`` and ``PREFIX.data-00000-of-00001`` (one shard, like a single-device Saver)."""
    header = _encode_field(1, 0, encode_varint(1)) + _encode_bytes(3, _encode_field(1, 0, encode_varint(1)))
    entries, offset = [(b"", header)], 0
    with open(shard_path(prefix, 0, 1), "wb") as data:
        for name in sorted(tensors, key=lambda n: n.encode("utf-8")):
            array = np.asarray(tensors[name])  # (ascontiguousarray would turn scalars into 1-d)
            raw = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes(order="C")
            code = _dtype_code(array, name)
            data.write(raw)
            entries.append((name.encode("utf-8"), encode_entry(code, tuple(array.shape), offset, len(raw), crc32c(raw))))
            offset += len(raw)
    _index_path(prefix).write_bytes(build_table(entries))
    log.debug("wrote %d tensors (%d bytes) to %s", len(tensors), offset, prefix)

