"""Rows are data: special-token strings stay text, the separator is measured, recorded and used."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from augment.config import FinetuneConfig
from augment.finetune import finetune_run
from augment.finetune.packing import TrainingRow, pack, tokenize_rows
from augment.finetune.separator import candidates, choose_separator
from augment.generate import LabelGenerator
from augment.models import load_model, load_tokenizer
from augment.prompts import label_token, prompt_ids
from augment.rundir import RunDir

EOT = 50256


def test_endoftext_inside_a_row_stays_text(tiny_model_dir: Path):
    tok = load_tokenizer(str(tiny_model_dir))
    text = "before <|endoftext|> after"
    [ids] = tokenize_rows(tok, [TrainingRow(text)])
    assert EOT not in ids
    assert tok.decode(ids) == text
    blocks = pack([ids], EOT, 64)
    assert blocks[0].count(EOT) == 2 and blocks[0][0] == EOT and blocks[0][-1] == EOT


def test_a_label_marker_in_the_text_never_trains_a_label(tiny_model_dir: Path):
    tok = load_tokenizer(str(tiny_model_dir))
    tok.add_tokens([label_token("pos"), label_token("neg")], special_tokens=True)
    pos, neg = tok.convert_tokens_to_ids(label_token("pos")), tok.convert_tokens_to_ids(label_token("neg"))
    text = "<|label=neg|> is what this pos row says"
    [ids] = tokenize_rows(tok, [TrainingRow(text, "pos")])
    assert ids[0] == pos and neg not in ids[1:] and pos not in ids[1:]
    assert tok.decode(ids[1:]) == text


def test_prompts_encode_prefixes_as_text(tiny_model_dir: Path):
    tok = load_tokenizer(str(tiny_model_dir))
    ids = prompt_ids(tok, EOT, None, "<|endoftext|> hello")
    assert ids[0] == EOT and EOT not in ids[1:]


def test_gpt2simple_token_file_keeps_endoftext_as_text(tmp_path: Path):
    import numpy as np

    from augment.convert.gpt2_tf import HParams
    from augment.finetune.gpt2simple import token_file
    from augment.models import gpt2_tokenizer_files

    base = tmp_path / "base"
    base.mkdir()
    src = gpt2_tokenizer_files()
    (base / "encoder.json").write_bytes((src / "vocab.json").read_bytes())
    (base / "vocab.bpe").write_bytes((src / "merges.txt").read_bytes())
    hp = HParams(n_vocab=50257, n_ctx=16, n_embd=8, n_head=2, n_layer=1)
    token_file(["a <|endoftext|> b", "c"], base, hp, tmp_path / "t.npz")
    tokens = np.load(tmp_path / "t.npz")["tokens"].tolist()
    first = tokens[:tokens.index(EOT) + 1]
    assert len(first) > 3, "the literal text must not end the row"


@pytest.fixture(scope="module")
def two_separator_model(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model whose EOS is a chat-turn token (as SmolLM2-Instruct's) but whose rows follow <|endoftext|>."""
    out = tmp_path_factory.mktemp("two-sep")
    tok = load_tokenizer(str(tiny_model_dir))
    tok.add_special_tokens({"eos_token": "<|im_end|>"})
    model = load_model(str(tiny_model_dir))
    model.resize_token_embeddings(len(tok))
    rows = [f"Great day number {i} with the crew" for i in range(40)]
    blocks = torch.tensor(pack(tokenize_rows(tok, [TrainingRow(r) for r in rows]), EOT, 32)[:-1])
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    torch.manual_seed(0)
    for _ in range(30):
        loss = model(input_ids=blocks, labels=blocks).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.config.eos_token_id = tok.eos_token_id
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def test_separator_is_measured_on_the_base_model(two_separator_model: Path):
    tok = load_tokenizer(str(two_separator_model))
    assert tok.eos_token == "<|im_end|>"
    assert set(candidates(tok)) == {"<|im_end|>", "<|endoftext|>"}
    model = load_model(str(two_separator_model)).eval()
    chosen = choose_separator(model, tok, [f"Great day number {i} with the crew" for i in range(50, 60)])
    assert chosen.token == "<|endoftext|>" and chosen.id == EOT
    assert chosen.nll["<|endoftext|>"] < chosen.nll["<|im_end|>"]


def test_separator_is_recorded_and_used_for_training_and_generation(two_separator_model: Path, tmp_path: Path):
    frame = pd.DataFrame({"text": [f"Great day number {i} with the crew" for i in range(8)], "label": "pos"})
    run = tmp_path / "run"
    finetune_run(frame, run, FinetuneConfig(model=str(two_separator_model), max_steps=2, batch_size=2,
                                            block_size=16), data_info={"path": "rows"})
    manifest = RunDir(run).read_manifest()
    assert manifest.separator.token == "<|endoftext|>" and manifest.separator.source == "measured"
    gen = LabelGenerator.load(RunDir(run), "pos")
    assert gen.separator_id == EOT != gen.tokenizer.eos_token_id
    assert gen.prompt("") == [EOT]


def test_held_out_loss_picks_the_checkpoint_kept(tiny_model_dir: Path, tweets, tmp_path: Path):
    run = tmp_path / "run"
    finetune_run(tweets[tweets.label == "pos"], run, FinetuneConfig(
        model=str(tiny_model_dir), max_steps=12, batch_size=4, block_size=16, learning_rate=2e-2,
        eval_fraction=0.25, eval_steps=3), data_info={"path": "tweets"})
    entry = RunDir(run).read_manifest().models["pos"]
    evals = dict(entry.eval_losses)
    assert sorted(evals) == [3, 6, 9, 12] and entry.eval_rows == 5
    assert entry.best_step == min(evals, key=evals.get) and entry.eval_loss == min(evals.values())
    logged = [json.loads(l) for l in open(run / ".work" / "pos" / "train_log.jsonl")]
    assert [l["step"] for l in logged if "eval_loss" in l] == [3, 6, 9, 12]
    # the saved model is the best checkpoint: its held-out loss is the recorded minimum
    from augment.finetune import model_rows
    from augment.finetune.packing import PadCollator

    _, _, held = model_rows(tweets[tweets.label == "pos"], "per-label", 0.25, 42)["pos"]
    tok = load_tokenizer(str(run / "pos"))
    batch = PadCollator(tok.pad_token_id)([{"input_ids": b} for b in pack(tokenize_rows(tok, held), EOT, 16)])
    with torch.no_grad():
        loss = load_model(str(run / "pos"))(**batch).loss.item()
    # Trainer divides the summed NLL by the unshifted label count (one more per block than predicted)
    labels = int((batch["labels"] != -100).sum())
    assert loss * (labels - len(batch["labels"])) / labels == pytest.approx(entry.eval_loss, rel=1e-4)


def test_a_run_written_by_0_1_0_still_reads_and_generates_after_eos(trained_run: Path, tmp_path: Path):
    import shutil

    old = tmp_path / "old-run"
    shutil.copytree(trained_run, old)
    raw = json.loads((old / "run.json").read_text())
    for key in ("separator", "adapted_from"):
        raw.pop(key, None)
    for entry in raw["models"].values():
        for key in ("eval_rows", "eval_loss", "best_step", "eval_losses"):
            entry.pop(key, None)
    (old / "run.json").write_text(json.dumps(raw))
    manifest = RunDir(old).read_manifest()
    assert manifest.separator is None and manifest.models["pos"].eval_rows == 0
    assert RunDir(old).is_finished(manifest, "pos")
    gen = LabelGenerator.load(RunDir(old), "pos")
    assert gen.separator_id == gen.tokenizer.eos_token_id == EOT
