"""Hostile inputs: archives that try to write outside their target, pickles and custom code in model dirs.

Each attack goes through the CLI as a user would run it and must end with exit
code 2, a one-line error naming the file, and nothing written anywhere: the
test snapshots the whole temporary tree (and the temp dir extraction uses)
before and after. Pickle payloads write a marker file when unpickled, so "no
code ran" is checked, not assumed.
"""

from __future__ import annotations

import ast
import io
import json
import pickle
import shutil
import tarfile
import tempfile
from pathlib import Path

import pytest
import torch

from augment import Augmenter
from augment.cli import main
from augment.errors import AugmentError
from augment.models import load_model, load_tokenizer, resolve_model
from tests.reliability.helpers import error_line, tree_digest

REPO = Path(__file__).resolve().parents[2]



def _file(name: str, data: bytes = b"x") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _link(name: str, kind: bytes, target: str) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


def _pax_path(name: str) -> tuple[tarfile.TarInfo, bytes]:
    """A harmless header name overridden by a PAX ``path`` record (which tarfile applies)."""
    info, data = _file("checkpoint/run1/innocent.txt")
    info.pax_headers = {"path": name}
    return info, data


HPARAMS = _file("checkpoint/run1/hparams.json", b'{"n_vocab": 50257}')


def _attacks(tmp: Path) -> dict[str, tuple[list, str, str]]:
    """name -> (members, archive suffix, expected message)."""
    outside, secret = tmp / "outside", tmp / "secret.txt"
    return {
        "dotdot": ([_file("../../escaped.txt")], ".tar", "contains '..'"),
        "dotdot-in-middle": ([_file("checkpoint/run1/../../../escaped.txt")], ".tar", "contains '..'"),
        "dotdot-backslash": ([_file("checkpoint\\..\\..\\escaped.txt")], ".tar", "contains '..'"),
        "dotdot-pax-header": ([_pax_path("../../pax-escaped.txt")], ".tar", "contains '..'"),
        "absolute": ([_file(str(tmp / "abs-escaped.txt"))], ".tar", "has an absolute path"),
        "windows-drive": ([_file("C:/escaped.txt")], ".tar", "has an absolute path"),
        "symlink-outside": ([_link("checkpoint/run1/out", tarfile.SYMTYPE, str(outside)),
                             _file("checkpoint/run1/out/escaped.txt")], ".tar.gz", "is a symlink"),
        "symlink-relative-up": ([_link("checkpoint/run1/up", tarfile.SYMTYPE, "../../..")], ".tar", "is a symlink"),
        "hardlink-outside": ([_link("checkpoint/run1/hard", tarfile.LNKTYPE, str(secret)),
                              _file("checkpoint/run1/hard", b"overwritten")], ".tar", "is a hardlink"),
        "chardev": ([_link("checkpoint/run1/tty", tarfile.CHRTYPE, "")], ".tar", "device, FIFO"),
        "blockdev": ([_link("checkpoint/run1/sda", tarfile.BLKTYPE, "")], ".tar", "device, FIFO"),
        "fifo": ([_link("checkpoint/run1/pipe", tarfile.FIFOTYPE, "")], ".tar", "device, FIFO"),
    }


@pytest.fixture
def arena(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """tmp_path with a dir and a file an attack would like to reach; temp files go to arena/tmp."""
    (tmp_path / "outside").mkdir()
    (tmp_path / "secret.txt").write_text("do not overwrite\n")
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    return tmp_path


def _convert_refused(arena: Path, archive: Path, expected: str, capsys) -> str:
    before = tree_digest(arena)
    out = arena / "converted"
    assert main(["convert", str(archive), "--out", str(out)]) == 2
    line = error_line(capsys)
    assert str(archive) in line and expected in line, line
    assert tree_digest(arena) == before, "something was written"
    assert not out.exists() and not any((arena / "tmp").iterdir())
    return line


@pytest.mark.parametrize("attack", sorted(_attacks(Path("/x"))))
def test_malicious_archive_refused_by_convert(attack: str, arena: Path, capsys) -> None:
    members, suffix, expected = _attacks(arena)[attack]
    archive = arena / f"run1{suffix}"
    with tarfile.open(archive, "w:gz" if suffix == ".tar.gz" else "w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in [HPARAMS, *members]:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    line = _convert_refused(arena, archive, expected, capsys)
    assert "refusing to extract" in line


def test_huge_declared_member_refused(arena: Path, capsys) -> None:
    """A header claiming 9 GiB with no data behind it: refused on the header (limit 8 GiB)."""
    info = tarfile.TarInfo("checkpoint/run1/model-1.data-00000-of-00001")
    info.size = 9 * 1024 ** 3
    archive = arena / "huge.tar"
    archive.write_bytes(info.tobuf(format=tarfile.GNU_FORMAT) + bytes(1024))
    _convert_refused(arena, archive, "over the 8589934592-byte limit", capsys)


def test_decompression_bomb_refused(arena: Path, capsys) -> None:
    """65 MiB of zeros in a ~65 KB .tar.gz: over the 50x ratio once past the 64 MiB floor."""
    archive = arena / "bomb.tar.gz"
    with tarfile.open(archive, "w:gz", compresslevel=1) as tar:
        info = tarfile.TarInfo("checkpoint/run1/model.ckpt.data-00000-of-00001")
        info.size = 65 * 1024 ** 2
        tar.addfile(info, io.BytesIO(bytes(info.size)))
    assert archive.stat().st_size < 1024 ** 2
    _convert_refused(arena, archive, "likely decompression bomb", capsys)


# --- pickles -------------------------------------------------------------------------------------------


class _Payload:
    """Unpickling this writes a marker file: proof that code from the file ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


def _evil_model_dir(tiny_model_dir: Path, dest: Path, weights_name: str, marker: Path) -> Path:
    shutil.copytree(tiny_model_dir, dest)
    (dest / "model.safetensors").unlink()
    with open(dest / weights_name, "wb") as fh:
        pickle.dump({"transformer.wte.weight": _Payload(marker)}, fh)
    return dest


def _finetune(model: Path, data: Path, out: Path, *extra: str) -> list[str]:
    return ["finetune", "--data", str(data), "--model", str(model), "--labels", "pos", "--out", str(out),
            "--max-steps", "1", "--save-steps", "1", "--batch-size", "2", "--block-size", "16", "--no-progress",
            *extra]


@pytest.mark.parametrize("weights_name", ["pytorch_model.bin", "model.pt", "model.pth", "model.pkl",
                                          "weights.pickle", "last.ckpt"])
def test_pickled_weights_refused_without_trust_pickle(weights_name, tiny_model_dir, fault_csv, tmp_path, capsys):
    marker = tmp_path / "PWNED"
    model = _evil_model_dir(tiny_model_dir, tmp_path / "model", weights_name, marker)
    assert main(_finetune(model, fault_csv, tmp_path / "run")) == 2
    line = error_line(capsys)
    assert f"{model}: weights are pickled ({weights_name})" in line and "--trust-pickle" in line
    assert not marker.exists()
    assert not (tmp_path / "run").exists()  # refused before the run directory is created


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_trust_pickle_loads_real_weights_but_never_runs_code(tiny_model_dir, fault_csv, tmp_path, capsys):
    """``--trust-pickle`` lets a plain state dict through; transformers still unpickles with
    ``weights_only=True``, so a payload is refused (exit 2) and never runs."""
    from safetensors.torch import load_file

    plain = tmp_path / "plain"
    shutil.copytree(tiny_model_dir, plain)
    torch.save(load_file(plain / "model.safetensors"), plain / "pytorch_model.bin")
    (plain / "model.safetensors").unlink()
    assert main(_finetune(plain, fault_csv, tmp_path / "run-plain")) == 2
    assert "pass --trust-pickle" in error_line(capsys)
    assert main(_finetune(plain, fault_csv, tmp_path / "run-plain", "--trust-pickle", "--overwrite")) == 0
    assert (tmp_path / "run-plain" / "pos" / "model.safetensors").is_file()
    capsys.readouterr()
    marker = tmp_path / "PWNED"
    evil = _evil_model_dir(tiny_model_dir, tmp_path / "evil", "pytorch_model.bin", marker)
    assert main(_finetune(evil, fault_csv, tmp_path / "run-evil", "--trust-pickle")) == 2
    assert f"{evil}: cannot load model (Weights only load failed" in error_line(capsys)
    assert not marker.exists()


def test_generation_never_unpickles_a_swapped_model(small_run, tmp_path):
    """A finished run whose weights were replaced by a pickle: the API refuses to load it."""
    run = tmp_path / "run"
    run.mkdir()
    for name in ("run.json", "train.jsonl", "neg", "pos"):
        (shutil.copytree if (small_run / name).is_dir() else shutil.copyfile)(small_run / name, run / name)
    marker = tmp_path / "PWNED"
    (run / "pos" / "model.safetensors").unlink()
    with open(run / "pos" / "pytorch_model.bin", "wb") as fh:
        pickle.dump({"w": _Payload(marker)}, fh)
    aug = Augmenter.load(run)
    with pytest.raises(AugmentError, match=f"{run / 'pos'}: cannot load model"):
        aug.generate("pos", n=2, max_new_tokens=2)
    assert not marker.exists()
    assert len(aug.generate("neg", n=2, max_new_tokens=2, batch_size=2)) == 2


# --- custom code ---------------------------------------------------------------------------------------


def test_no_trust_remote_code_anywhere_in_the_package():
    """Every ``trust_remote_code=`` in augment/ and classifiers/ is the literal False."""
    offenders = []
    for path in sorted([*(REPO / "augment").rglob("*.py"), *(REPO / "classifiers").rglob("*.py")]):
        source = path.read_text(encoding="utf-8")
        assert "trust_remote_code=True" not in source.replace(" ", ""), path
        for node in ast.walk(ast.parse(source)):
            for kw in getattr(node, "keywords", []) if isinstance(node, ast.Call) else []:
                literal_false = isinstance(kw.value, ast.Constant) and kw.value.value is False
                if kw.arg == "trust_remote_code" and not literal_false:
                    offenders.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert offenders == []


def _auto_map_dir(tiny_model_dir: Path, dest: Path, marker: Path, model_type: str) -> Path:
    shutil.copytree(tiny_model_dir, dest)
    code = f"open({str(marker)!r}, 'w').write('pwned')\n"
    (dest / "evil.py").write_text(code)
    config = json.loads((dest / "config.json").read_text())
    config.update(model_type=model_type, auto_map={"AutoConfig": "evil.EvilConfig",
                                                   "AutoModelForCausalLM": "evil.EvilModel"})
    (dest / "config.json").write_text(json.dumps(config))
    tok = json.loads((dest / "tokenizer_config.json").read_text())
    tok["auto_map"] = {"AutoTokenizer": ["evil.EvilTokenizer", None]}
    (dest / "tokenizer_config.json").write_text(json.dumps(tok))
    return dest


def test_auto_map_with_a_known_architecture_loads_the_builtin_code(tiny_model_dir, tmp_path):
    marker = tmp_path / "PWNED"
    path = resolve_model(str(_auto_map_dir(tiny_model_dir, tmp_path / "m", marker, "gpt2")))
    assert type(load_model(path)).__name__ == "GPT2LMHeadModel"
    assert load_tokenizer(path).eos_token == "<|endoftext|>"
    assert not marker.exists()


def test_auto_map_with_an_unknown_architecture_is_refused(tiny_model_dir, fault_csv, tmp_path, capsys):
    marker = tmp_path / "PWNED"
    model = _auto_map_dir(tiny_model_dir, tmp_path / "m", marker, "evil-gpt")
    assert main(_finetune(model, fault_csv, tmp_path / "run")) == 2
    line = error_line(capsys)
    assert f"{model}: cannot load model" in line and "custom code" in line
    assert not marker.exists()
