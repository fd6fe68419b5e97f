"""Domain adaptation: a real model dir with its record, resumable after a kill, and the start of every fine-tune."""

from __future__ import annotations

import logging
import random
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from augment.cli import main
from augment.config import FinetuneConfig
from augment.errors import OutputExistsError, RunDirError
from augment.finetune import finetune_run
from augment.finetune.adapt import AdaptConfig, adapt_model, work_dir
from augment.finetune.adapted import read_record
from augment.rundir import RunDir
from tests.reliability.procs import Child, complete_checkpoints

WORDS = "the flight crew seat bag delay gate late early thanks again today my trip".split()


def unlabelled(n: int = 200, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(6)) for _ in range(n)]


def weights(path: Path) -> dict[str, np.ndarray]:
    return load_file(str(path / "model.safetensors"))


def max_diff(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    return max(float(np.abs(a[k].astype(np.float64) - b[k]).max()) for k in a if k in b)


@pytest.fixture(scope="module")
def adapted(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("adapt") / "adapted"
    config = AdaptConfig(model=str(tiny_model_dir), max_steps=12, batch_size=8, block_size=32,
                         learning_rate=5e-3, eval_fraction=0.1, eval_steps=4)
    adapt_model(unlabelled(), out, config, source="test texts")
    return out


def test_adapted_dir_is_a_model_with_its_record(adapted: Path, tiny_model_dir: Path):
    record = read_record(adapted)
    assert record is not None and record.base_model == str(tiny_model_dir)
    assert record.texts == 200 and record.eval_rows == 20 and record.steps == 12
    assert record.tokens == 12 * 8 * 32
    assert record.separator.token == "<|endoftext|>" and record.separator.id == 50256
    assert record.eval_loss is not None and record.first_loss > record.final_loss
    assert max_diff(weights(adapted), weights(tiny_model_dir)) > 1e-3
    assert not work_dir(adapted).exists(), "checkpoints are removed once the model is finished"


def test_finetune_starts_from_the_adapted_weights(adapted: Path, tiny_model_dir: Path, tweets, tmp_path: Path):
    run = tmp_path / "run"
    finetune_run(tweets, run, FinetuneConfig(model=str(adapted), max_steps=1, batch_size=4, block_size=16,
                                             learning_rate=1e-9), data_info={"path": "tweets"})
    tuned = weights(run / "pos")
    assert max_diff(tuned, weights(adapted)) < 1e-6
    assert max_diff(tuned, weights(tiny_model_dir)) > 1e-3
    manifest = RunDir(run).read_manifest()
    assert manifest.adapted_from["base_model"] == str(tiny_model_dir)
    assert manifest.adapted_from["texts"] == 200
    assert manifest.separator.source == "inherited from adapted"


def test_existing_output_needs_overwrite(adapted: Path, tiny_model_dir: Path):
    config = AdaptConfig(model=str(tiny_model_dir), max_steps=2, batch_size=4, block_size=16)
    with pytest.raises(OutputExistsError, match="--overwrite"):
        adapt_model(unlabelled(), adapted, config, source="test texts")
    assert adapt_model(unlabelled(), adapted, config, source="test texts", resume=True).steps == 12


def test_a_refused_resume_names_the_changed_setting(tiny_model_dir: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch):
    from augment.finetune.torch_backend import TorchBackend

    def killed(*args, **kwargs):
        raise RuntimeError("killed")

    out = tmp_path / "adapted"
    config = AdaptConfig(model=str(tiny_model_dir), max_steps=4, batch_size=4, block_size=16, learning_rate=5e-3)
    with monkeypatch.context() as patch:
        patch.setattr(TorchBackend, "train", killed)
        with pytest.raises(RuntimeError, match="killed"):
            adapt_model(unlabelled(40), out, config, source="test texts")
    assert (work_dir(out) / "adapt-key.json").is_file() and not out.exists()
    other = config.model_copy(update={"learning_rate": 1e-3})
    with pytest.raises(RunDirError, match=r"the interrupted adaptation used different settings "
                                          r"\(config\.learning_rate: 0\.005 -> 0\.001\); cannot resume"):
        adapt_model(unlabelled(40), out, other, source="test texts", resume=True)
    with pytest.raises(RunDirError, match=r"\(texts_hash: '[0-9a-f]{12}…' -> '[0-9a-f]{12}…'\)"):
        adapt_model(unlabelled(40, seed=1), out, config, source="test texts", resume=True)


def adapt_args(texts: Path, model: Path, out: Path) -> list[str]:
    return ["adapt", "--texts", str(texts), "--model", str(model), "--out", str(out), "--max-steps", "12",
            "--save-steps", "4", "--batch-size", "4", "--block-size", "16", "--lr", "5e-3",
            "--eval-fraction", "0", "--no-progress"]


@pytest.mark.slow
def test_adapt_resumes_after_a_kill_to_the_uninterrupted_weights(tiny_model_dir: Path, tmp_path: Path):
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(unlabelled(120)), encoding="utf-8")
    reference = tmp_path / "reference"
    assert main(adapt_args(texts, tiny_model_dir, reference)) == 0
    out = tmp_path / "adapted"
    child = Child(adapt_args(texts, tiny_model_dir, out), tmp_path / "child.log")
    checkpoints = work_dir(out) / "checkpoints"
    child.wait_for(lambda: 4 in complete_checkpoints(checkpoints), timeout=900)
    child.kill()
    assert not out.exists(), "a killed adaptation must not leave a model dir that looks finished"
    assert main(adapt_args(texts, tiny_model_dir, out) + ["--resume"]) == 0
    assert max_diff(weights(out), weights(reference)) == 0.0
    assert read_record(out).steps == 12
    assert not work_dir(out).exists()


def test_info_shows_the_adapted_model(adapted: Path, capsys: pytest.CaptureFixture):
    assert main(["info", str(adapted)]) == 0
    shown = capsys.readouterr().out
    assert "adapted from" in shown and "held-out" in shown and "200" in shown
    assert "trained in fp32 on cpu (AUGMENT_PRECISION=fp32)" in " ".join(shown.split())


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_reloading_the_best_checkpoint_does_not_call_tied_weights_missing(tiny_model_dir: Path, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch):
    import contextlib

    from transformers import AutoModelForCausalLM

    import augment.finetune.torch_backend as backend

    seen = _Records()
    trainer_log = logging.getLogger("transformers.trainer")
    trainer_log.addHandler(seen)
    config = AdaptConfig(model=str(tiny_model_dir), max_steps=4, batch_size=8, block_size=32,
                         learning_rate=5e-3, eval_fraction=0.1, eval_steps=2)
    missing = "There were missing keys in the checkpoint model loaded: "
    try:
        adapt_model(unlabelled(60), tmp_path / "adapted", config, source="test texts")
        assert read_record(tmp_path / "adapted").best_step is not None   # the best checkpoint was reloaded
        assert not [m for m in seen.messages if m.startswith(missing)]
        with monkeypatch.context() as patch:   # transformers alone says the tied lm_head is missing
            patch.setattr(backend, "tied_weights_not_missing", lambda tied: contextlib.nullcontext())
            adapt_model(unlabelled(60), tmp_path / "plain", config, source="test texts")
        assert seen.messages == [missing + "['lm_head.weight']."]
        with backend.tied_weights_not_missing({"lm_head.weight"}):
            trainer_log.warning(missing + "['lm_head.weight'].")
            trainer_log.warning(missing + "['h.0.mlp.c_fc.weight'].")
        assert seen.messages[1:] == [missing + "['h.0.mlp.c_fc.weight']."]
    finally:
        trainer_log.removeHandler(seen)
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "adapted")
    assert model.lm_head.weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()
