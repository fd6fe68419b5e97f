from __future__ import annotations

import json
import shutil

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from augment.config import FinetuneConfig
from augment.errors import DataError, OutputExistsError, RunDirError
from augment.finetune import finetune_run
from augment.finetune.packing import PadCollator, pack
from augment.rundir import RunDir
from tests.conftest import train_run


def test_pack_keeps_eos_between_rows_and_labels_them():
    blocks = pack([[1, 2], [3], [4, 5, 6]], separator=0, block_size=4)
    assert blocks == [[0, 1, 2, 0], [3, 0, 4, 5], [6, 0]]
    batch = PadCollator(pad_id=0)([{"input_ids": b} for b in blocks[1:]])
    assert batch["input_ids"].tolist() == [[3, 0, 4, 5], [6, 0, 0, 0]]
    assert batch["labels"].tolist() == [[3, 0, 4, 5], [6, 0, -100, -100]]  # the EOS label survives


def test_per_label_dirs_load_with_plain_transformers(trained_run):
    manifest = RunDir(trained_run).read_manifest()
    assert sorted(manifest.labels) == ["neg", "pos"]
    for label in ("neg", "pos"):
        entry = manifest.models[label]
        assert entry.status == "done" and entry.steps == 30
        assert entry.final_loss < entry.first_loss / 3
        model = AutoModelForCausalLM.from_pretrained(trained_run / label)
        tok = AutoTokenizer.from_pretrained(trained_run / label)
        assert (trained_run / label / "model.safetensors").exists()
        assert not list((trained_run / label).glob("*.bin"))
        logits = model(**tok("so happy", return_tensors="pt")).logits
        assert logits.shape == (1, 2, 50257)
    losses = [json.loads(l) for l in open(trained_run / ".work" / "pos" / "train_log.jsonl")]
    assert losses and all("loss" in l for l in losses)
    rows = [json.loads(l) for l in open(trained_run / "train.jsonl")]
    assert len(rows) == 40


def test_conditioned_mode_adds_one_token_per_label(conditioned_run):
    manifest = RunDir(conditioned_run).read_manifest()
    assert manifest.mode == "conditioned"
    assert {v.model for v in manifest.labels.values()} == {"_conditioned"}
    tok = AutoTokenizer.from_pretrained(conditioned_run / "_conditioned")
    assert tok.encode("<|label=pos|>", add_special_tokens=False) == [len(tok) - 1] or \
        len(tok.encode("<|label=pos|>", add_special_tokens=False)) == 1
    model = AutoModelForCausalLM.from_pretrained(conditioned_run / "_conditioned")
    assert model.get_input_embeddings().weight.shape[0] == len(tok) == 50259


def test_resume_continues_from_checkpoint(tiny_model_dir, tweets, tmp_path):
    frame = tweets[tweets.label == "pos"]
    run = train_run(tiny_model_dir, frame, tmp_path / "run", max_steps=10)
    with pytest.raises(OutputExistsError, match="pass --resume"):
        train_run(tiny_model_dir, frame, run, max_steps=20)
    manifest = RunDir(run).read_manifest()
    manifest.models["pos"].status = "pending"  # as if killed after checkpoint-10
    RunDir(run).write_manifest(manifest)
    config = FinetuneConfig(model=str(tiny_model_dir), max_steps=20, batch_size=8, block_size=32,
                            learning_rate=5e-3, save_steps=10)
    done = finetune_run(frame, run, config, data_info={"path": "tweets"}, resume=True)
    entry = done.models["pos"]
    assert entry.resumed_from_step == 10 and entry.steps == 20
    assert (run / ".work" / "pos" / "checkpoints" / "checkpoint-20").is_dir()


def test_resume_keeps_one_loss_per_step(tiny_model_dir, tweets, tmp_path):
    """Steps after the last checkpoint are trained again; the loss log must not list them twice."""
    frame = tweets[tweets.label == "pos"]
    run = train_run(tiny_model_dir, frame, tmp_path / "run", max_steps=10, save_steps=4)
    checkpoints = run / ".work" / "pos" / "checkpoints"
    shutil.rmtree(checkpoints / "checkpoint-10")  # as if killed between checkpoint-8 and the end
    manifest = RunDir(run).read_manifest()
    manifest.models["pos"].status = "pending"
    RunDir(run).write_manifest(manifest)
    config = FinetuneConfig(model=str(tiny_model_dir), max_steps=10, batch_size=8, block_size=32,
                            learning_rate=5e-3, save_steps=4)
    done = finetune_run(frame, run, config, data_info={"path": "tweets"}, resume=True)
    assert done.models["pos"].resumed_from_step == 8
    log = [json.loads(line) for line in (run / ".work" / "pos" / "train_log.jsonl").read_text().splitlines()]
    assert [entry["step"] for entry in log] == list(range(1, 11))


def test_resume_refuses_different_data(tiny_model_dir, tweets, tmp_path):
    run = train_run(tiny_model_dir, tweets, tmp_path / "run", max_steps=2)
    config = FinetuneConfig(model=str(tiny_model_dir), max_steps=2, block_size=32)
    with pytest.raises(RunDirError, match=r"settings \(data_hash: '[0-9a-f]{12}…' -> '[0-9a-f]{12}…'[;)]"):
        finetune_run(tweets.head(30), run, config, data_info={}, resume=True)
    other = FinetuneConfig(model=str(tiny_model_dir), max_steps=4, batch_size=8, block_size=32, learning_rate=1e-3,
                           save_steps=10)   # more steps alone would be a resume
    with pytest.raises(RunDirError, match=r"used different settings \(learning_rate: 0.005 -> 0.001\); cannot resume "
                                          r"\(pass --overwrite without --resume to start again\)$"):
        finetune_run(tweets, run, other, data_info={}, resume=True)


def test_too_few_rows_fails_before_loading(tmp_path, tweets):
    frame = tweets.head(22)  # 20 pos, 2 neg
    with pytest.raises(DataError, match="too few rows to train \\('neg' has 2; need at least 5"):
        finetune_run(frame, tmp_path / "r", FinetuneConfig(model="does-not-exist/x"), data_info={})
    assert not (tmp_path / "r").exists()


def test_overwrite_refuses_a_foreign_directory(tmp_path, tweets, tiny_model_dir):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(RunDirError, match="not an augment run directory; refusing"):
        finetune_run(tweets, tmp_path / "mine", FinetuneConfig(model=str(tiny_model_dir)), data_info={},
                     overwrite=True)
    assert (tmp_path / "mine" / "thesis.tex").exists()


def test_pickled_weights_refused(tmp_path, tweets):
    model_dir = tmp_path / "evil"
    model_dir.mkdir()
    (model_dir / "config.json").write_text("{}")
    torch.save({}, model_dir / "pytorch_model.bin")
    with pytest.raises(Exception, match="pickled.*--trust-pickle"):
        train_run(model_dir, tweets, tmp_path / "run", max_steps=1)
