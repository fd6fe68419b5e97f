"""The gpt-2-simple back-end: base model resolution, token file, and real fine-tuning in a child process."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest

from augment.finetune.packing import TrainingRow
from augment.config import FinetuneConfig
from augment.convert.gpt2_tf import HParams
from augment.errors import AugmentError
from augment.finetune import TrainResult, get_backend
from augment.finetune.gpt2simple import (GPT2SimpleBackend, OPENAI_SIZES, finetune_spec, read_counter,
                                         resolve_base, token_file)

HAVE_TF = all(importlib.util.find_spec(m) is not None for m in ("tensorflow", "gpt_2_simple"))
HP = HParams(n_vocab=50257, n_ctx=1024, n_embd=64, n_head=2, n_layer=2)
ROWS = [TrainingRow(f"review {i}: the food was great and the service friendly") for i in range(30)]


def test_registered_under_its_name() -> None:
    assert get_backend("gpt-2-simple").name == "gpt-2-simple"


def test_hf_dir_is_reverse_converted_into_work_dir(tiny_model_dir: Path, tmp_path: Path) -> None:
    base = resolve_base(str(tiny_model_dir), tmp_path, tmp_path / "log")
    assert base.parent == tmp_path / "base" and (base / "model.ckpt.index").is_file()
    assert resolve_base(str(base), tmp_path / "other", tmp_path / "log") == base  # a gpt-2-simple dir is used as is


def test_unknown_model_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(AugmentError, match="augment convert --to gpt-2-simple HF_DIR"):
        resolve_base("someone/some-model", tmp_path, tmp_path / "log")
    (tmp_path / "empty").mkdir()
    with pytest.raises(AugmentError, match="neither a gpt-2-simple model dir"):
        resolve_base(str(tmp_path / "empty"), tmp_path, tmp_path / "log")


def test_hub_sizes_still_download(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls = []
    monkeypatch.setattr("augment.finetune.gpt2simple._download", lambda size, log: calls.append(size) or tmp_path)
    for name in ("124M", "355M", "gpt2", "gpt2-medium"):
        resolve_base(name, tmp_path, tmp_path / "log")
    assert calls == ["124M", "355M", "124M", "355M"] and "1558M" in OPENAI_SIZES


def test_failed_download_says_what_to_do(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def offline(task: str, spec: dict, **kwargs: object) -> dict:
        raise AugmentError("gpt-2-simple download failed: ConnectionError: no network")

    monkeypatch.setattr("augment.finetune.gpt2simple.run_task", offline)
    with pytest.raises(AugmentError, match="cannot download GPT-2 124M .*offline, give `model:` a local"):
        resolve_base("124M", tmp_path, tmp_path / "log")
    assert not list((Path(os.environ["AUGMENT_CACHE"]) / "gpt-2-simple").glob("*124M*"))


def test_token_file_ends_rows_with_real_eos_and_fills_a_window(g2s_model: Path, tmp_path: Path) -> None:
    count = token_file(["Hello world", "Hello, my dog is cute"], g2s_model, HP, tmp_path / "t.npz")
    with np.load(tmp_path / "t.npz", allow_pickle=False) as npz:
        tokens = npz["tokens"]
    assert tokens[:10].tolist() == [15496, 995, 50256, 15496, 11, 616, 3290, 318, 13779, 50256]
    assert count == len(tokens) >= HP.n_ctx + 2 and tokens.dtype == np.int32


def test_config_maps_to_gpt2simple_arguments(tmp_path: Path) -> None:
    config = FinetuneConfig(backend="gpt-2-simple", batch_size=2, grad_accum=3, learning_rate=1e-4, save_steps=7,
                            save_total_limit=2, seed=5)
    spec = finetune_spec(config, tmp_path / "models" / "124M", tmp_path, tmp_path / "t.npz", 10, False)
    assert spec["model_name"] == "124M" and spec["model_dir"] == str(tmp_path / "models")
    assert (spec["batch_size"], spec["accumulate_gradients"], spec["learning_rate"]) == (2, 3, 1e-4)
    assert (spec["save_every"], spec["max_checkpoints"], spec["seed"], spec["steps"]) == (7, 2, 5, 10)


@pytest.fixture
def g2s_model(tiny_model_dir: Path, tmp_path: Path) -> Path:
    return resolve_base(str(tiny_model_dir), tmp_path / "work", tmp_path / "log")


def _train(work: Path, out: Path, model: Path, steps: int, resume: bool) -> TrainResult:
    out.mkdir()
    config = FinetuneConfig(model=str(model), backend="gpt-2-simple", max_steps=steps, batch_size=1,
                            grad_accum=1, learning_rate=1e-3, seed=0)
    return GPT2SimpleBackend().train(ROWS, work, out, config, resume=resume, progress=False)


@pytest.mark.tf
@pytest.mark.slow
@pytest.mark.skipif(not HAVE_TF, reason="needs the tf extra (pip install 'augment[tf]')")
def test_train_resume_and_convert(tiny_model_dir: Path, tmp_path: Path) -> None:
    """Fresh 3 steps, then resume to 4: each ends in a loadable HF dir (one TF child per run)."""
    from transformers import AutoTokenizer, GPT2LMHeadModel

    work = tmp_path / "work"
    first = _train(work, tmp_path / "out1", tiny_model_dir, steps=3, resume=False)
    assert first.steps == 3 and [s for s, _ in first.losses] == [1, 2, 3] and first.resumed_from_step is None
    assert read_counter(work / "checkpoint" / "run1") == 3
    second = _train(work, tmp_path / "out2", tiny_model_dir, steps=4, resume=True)
    assert second.steps == 4 and second.resumed_from_step == 3 and [s for s, _ in second.losses] == [4]
    model = GPT2LMHeadModel.from_pretrained(tmp_path / "out2")
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "out2")
    out = model.generate(**tokenizer("review 3:", return_tensors="pt"), max_new_tokens=5, do_sample=False,
                         pad_token_id=50256)
    assert out.shape[1] == 3 + 5


def _fake_finetune(task: str, spec: dict, **kwargs: object) -> dict:
    """Stands in for the TF child: saves the base weights as checkpoint model-N, as gpt2.finetune would."""
    import shutil

    from augment.convert import tensorbundle as tb

    base = Path(spec["model_dir"]) / spec["model_name"]
    run = Path(spec["checkpoint_dir"]) / spec["run_name"]
    run.mkdir(parents=True, exist_ok=True)
    step = (read_counter(run) or 0) + spec["steps"]
    for name in ("hparams.json", "encoder.json", "vocab.bpe"):
        shutil.copyfile(base / name, run / name)
    tb.write_bundle(run / f"model-{step}", tb.read_bundle(base / "model.ckpt"))
    (run / "checkpoint").write_text(f'model_checkpoint_path: "model-{step}"\n')
    (run / "counter").write_text(f"{step}\n")
    return {"losses": [[s, 1.0] for s in range(step - spec["steps"] + 1, step + 1)]}


def test_resume_false_starts_again_and_finished_runs_only_convert(
        monkeypatch: pytest.MonkeyPatch, tiny_model_dir: Path, tmp_path: Path) -> None:
    monkeypatch.setattr("augment.finetune.gpt2simple.run_task", _fake_finetune)
    monkeypatch.setattr("augment.finetune.gpt2simple.require_tf", lambda: None)
    work = tmp_path / "work"
    assert _train(work, tmp_path / "a", tiny_model_dir, steps=5, resume=False).steps == 5
    done = _train(work, tmp_path / "b", tiny_model_dir, steps=5, resume=True)
    assert (done.steps, done.losses, done.resumed_from_step) == (5, [], 5)
    fresh = _train(work, tmp_path / "c", tiny_model_dir, steps=2, resume=False)
    assert fresh.steps == 2 and not (work / "checkpoint" / "run1" / "model-5.index").exists()
    assert (tmp_path / "c" / "model.safetensors").is_file()


def test_conditioned_mode_markers_are_refused(tmp_path: Path) -> None:
    config = FinetuneConfig(model="tiny-gpt2", backend="gpt-2-simple")
    with pytest.raises(AugmentError, match="cannot add tokens .*use mode per-label or backend torch"):
        GPT2SimpleBackend().train(ROWS, tmp_path, tmp_path, config, False, False, special_tokens=("<|pos|>",))
