"""LoRA adapters: a run stores one small adapter per label over a named, hashed base; generation loads the
base once and switches adapters; rows equal a merged model's and do not depend on the batch size."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from augment.api import Augmenter
from augment.cli import main
from augment.config import FinetuneConfig, GenerateConfig
from augment.errors import ConfigError, RunDirError
from augment.export import export_label
from augment.files import hash_dir
from augment.finetune import finetune_run
from augment.finetune.adapt import AdaptConfig, adapt_model
from augment.generate import COLUMNS, LabelGenerator, collect_rows, generate_to_file
from augment.distributed import LocalComm
from augment.models import load_tokenizer, placement
from augment.rundir import RunDir
from tests.conftest import NEG, POS
from tests.tiny_models import build_tiny

LORA = dict(adapter="lora", lora_rank=8, max_steps=8, batch_size=8, block_size=32, learning_rate=2e-2, save_steps=4)
SAMPLING = dict(n=8, max_new_tokens=8, seed=5)


@pytest.fixture(scope="module")
def tiny_qwen2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny(tmp_path_factory.mktemp("tiny-qwen2"), "qwen2", layers=2, tied=True, positions=256)


@pytest.fixture(scope="module", params=["gpt2", "qwen2"])
def lora_run(request, tiny_model_dir: Path, tiny_qwen2_dir: Path, tweets, tmp_path_factory) -> Path:
    base = tiny_model_dir if request.param == "gpt2" else tiny_qwen2_dir
    out = tmp_path_factory.mktemp(f"lora-{request.param}") / "run"
    finetune_run(tweets, out, FinetuneConfig(model=str(base), **LORA), data_info={"path": "tweets"})
    return out


def _files(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in folder.iterdir()}


def test_a_run_holds_adapters_and_names_its_hashed_base(lora_run: Path):
    manifest = RunDir(lora_run).read_manifest()
    adapter = manifest.adapter
    base = Path(manifest.finetune["model"])
    assert adapter is not None and adapter.rank == 8 and adapter.base.hash == hash_dir(base)
    expected = ["c_attn", "c_fc", "c_proj"] if "gpt2" in base.name else \
        ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"]
    assert adapter.target_modules == expected
    base_bytes = (base / "model.safetensors").stat().st_size
    for label in ("neg", "pos"):
        files = _files(lora_run / label)
        assert "config.json" not in files and "model.safetensors" not in files
        assert {"adapter_config.json", "adapter_model.safetensors"} <= set(files) and "README.md" not in files
        weights = load_file(str(lora_run / label / "adapter_model.safetensors"))
        assert weights and all("lora_" in k for k in weights)  # adapter matrices only, no embeddings
        assert files["adapter_model.safetensors"] < base_bytes / 10
        entry = manifest.models[label]
        assert entry.status == "done" and entry.steps == 8 and entry.final_loss < entry.first_loss
        assert entry.hash == hash_dir(lora_run / label)


def test_rows_do_not_depend_on_the_batch_size(lora_run: Path, tmp_path: Path):
    one = generate_to_file(RunDir(lora_run), ["neg", "pos"], GenerateConfig(batch_size=1, **SAMPLING),
                           tmp_path / "one.csv")
    eight = Augmenter.load(lora_run).generate(batch_size=8, **SAMPLING)
    assert one.rows["text"].tolist() == eight["text"].tolist()
    assert one.rows["label"].value_counts().to_dict() == {"neg": 8, "pos": 8}
    record = json.loads((tmp_path / "one.csv.provenance.json").read_text())
    assert record["adapter"]["rank"] == 8 and record["models"]["pos"] == hash_dir(lora_run / "pos")


def test_the_merged_export_gives_the_same_logits_and_rows(lora_run: Path, tmp_path: Path):
    out = tmp_path / "pos-merged"
    export_label(RunDir(lora_run), "pos", out)
    assert not (out / "adapter_config.json").exists()
    assert json.loads((out / "export.json").read_text())["label"] == "pos"
    merged = AutoModelForCausalLM.from_pretrained(out).eval()
    augmenter = Augmenter.load(lora_run)
    augmenter.generate("pos", n=1, max_new_tokens=2)
    augmenter.generate("neg", n=1, max_new_tokens=2)  # the other adapter is the active one now
    served = augmenter._generators.generator("pos")
    served.activate()
    tokenizer = load_tokenizer(str(out))
    ids = torch.tensor([tokenizer.encode("so happy today")])
    with torch.inference_mode():
        torch.testing.assert_close(merged(ids).logits, served.model(ids).logits, rtol=0, atol=1e-5)
    plain = LabelGenerator(merged, tokenizer, placement("fp32"), "pos", False, ["neg", "pos"], served.model_name,
                           served.separator_id)
    rows = collect_rows(plain, GenerateConfig(batch_size=4, **SAMPLING), [], LocalComm())
    expected = augmenter.generate("pos", **SAMPLING)
    assert pd.DataFrame(rows, columns=COLUMNS)["text"].tolist() == expected["text"].tolist()


def test_info_shows_the_adapter(lora_run: Path, capsys: pytest.CaptureFixture):
    assert main(["info", str(lora_run)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "LoRA r=8" in out and "hash" in out and "MB" in out


def test_a_changed_base_is_refused(tiny_model_dir: Path, tweets, tmp_path: Path):
    base = tmp_path / "base"
    shutil.copytree(tiny_model_dir, base)
    run = tmp_path / "run"
    finetune_run(tweets[tweets.label == "pos"], run, FinetuneConfig(model=str(base), **{**LORA, "max_steps": 1}),
                 data_info={})
    (base / "generation_config.json").write_text("{}")
    with pytest.raises(RunDirError, match=r"base .* changed since they were trained \(hash [0-9a-f]{12}… recorded"):
        Augmenter.load(run).generate("pos", n=1)


def test_resume_gives_the_uninterrupted_adapter(tiny_model_dir: Path, tweets, tmp_path: Path):
    """Killed after checkpoint-4 of 8 (the final checkpoint and model dir gone): the resumed adapter is the
    uninterrupted one exactly (Trainer restores adapter, optimizer, scheduler and RNG states)."""
    frame = tweets[tweets.label == "pos"]
    config = FinetuneConfig(model=str(tiny_model_dir), **LORA)
    reference = tmp_path / "reference"
    finetune_run(frame, reference, config, data_info={})
    run = tmp_path / "run"
    finetune_run(frame, run, config, data_info={})
    shutil.rmtree(run / ".work" / "pos" / "checkpoints" / "checkpoint-8")
    shutil.rmtree(run / "pos")
    manifest = RunDir(run).read_manifest()
    manifest.models["pos"].status = "pending"
    RunDir(run).write_manifest(manifest)
    entry = finetune_run(frame, run, config, data_info={}, resume=True).models["pos"]
    assert entry.resumed_from_step == 4 and entry.steps == 8
    resumed, uninterrupted = (load_file(str(r / "pos" / "adapter_model.safetensors")) for r in (run, reference))
    assert resumed.keys() == uninterrupted.keys()
    assert all(torch.equal(resumed[k], uninterrupted[k]) for k in resumed)
    assert entry.hash == RunDir(reference).read_manifest().models["pos"].hash


def test_a_run_stopped_after_its_last_checkpoint_keeps_that_adapter(tiny_model_dir: Path, tweets, tmp_path: Path):
    frame = tweets[tweets.label == "pos"]
    config = FinetuneConfig(model=str(tiny_model_dir), **LORA)
    run = tmp_path / "run"
    finetune_run(frame, run, config, data_info={})
    before = RunDir(run).read_manifest().models["pos"].hash
    shutil.rmtree(run / "pos")
    manifest = RunDir(run).read_manifest()
    manifest.models["pos"].status = "pending"
    RunDir(run).write_manifest(manifest)
    assert finetune_run(frame, run, config, data_info={}, resume=True).models["pos"].hash == before


def test_resume_refuses_another_base(tiny_model_dir: Path, tweets, tmp_path: Path):
    base = tmp_path / "base"
    shutil.copytree(tiny_model_dir, base)
    frame = tweets[tweets.label == "pos"]
    config = FinetuneConfig(model=str(base), **{**LORA, "max_steps": 1})
    finetune_run(frame, tmp_path / "run", config, data_info={})
    (base / "generation_config.json").write_text("{}")
    with pytest.raises(RunDirError, match=r"base_hash: '[0-9a-f]{12}…' -> '[0-9a-f]{12}…'"):
        finetune_run(frame, tmp_path / "run", config.model_copy(update={"max_steps": 2}), data_info={}, resume=True)


def test_held_out_loss_chooses_the_adapter(tiny_model_dir: Path, tweets, tmp_path: Path):
    config = FinetuneConfig(model=str(tiny_model_dir), **{**LORA, "eval_fraction": 0.2, "eval_steps": 2,
                                                          "early_stopping": 1})
    manifest = finetune_run(tweets, tmp_path / "run", config, data_info={})
    for entry in manifest.models.values():
        assert entry.best_step is not None and entry.eval_loss == min(l for _, l in entry.eval_losses)


def test_conditioned_lora_trains_only_the_marker_rows(tiny_model_dir: Path, tweets, tmp_path: Path):
    run = tmp_path / "run"
    finetune_run(tweets, run, FinetuneConfig(model=str(tiny_model_dir), mode="conditioned", **LORA), data_info={})
    weights = load_file(str(run / "_conditioned" / "adapter_model.safetensors"))
    tokens = [v for k, v in weights.items() if "trainable_tokens" in k]
    assert len(tokens) == 1 and tokens[0].shape == (2, 64)   # two label markers, width 64; no full matrix
    augmenter = Augmenter.load(run)
    rows = augmenter.generate(n=6, max_new_tokens=8, seed=1)
    assert rows.label.value_counts().to_dict() == {"neg": 6, "pos": 6}
    assert not rows.text.str.contains("<|label=", regex=False).any()
    out = tmp_path / "merged"
    export_label(RunDir(run), None, out)
    merged = AutoModelForCausalLM.from_pretrained(out).eval()
    assert merged.get_input_embeddings().weight.shape[0] == 50259
    served = augmenter._generators.generator("pos")
    ids = torch.tensor([[50257, 50258, *load_tokenizer(str(out)).encode(" so happy")]])  # both markers
    with torch.inference_mode():
        torch.testing.assert_close(merged(ids).logits, served.model(ids).logits, rtol=0, atol=1e-5)


def test_adapt_with_lora_then_per_label_lora(tiny_qwen2_dir: Path, tweets, tmp_path: Path):
    """The adaptation is merged once into a plain folder; per-label adapters record that folder's hash."""
    adapted = tmp_path / "adapted"
    record = adapt_model(POS + NEG, adapted, AdaptConfig(model=str(tiny_qwen2_dir), adapter="lora", max_steps=4,
                                                          batch_size=4, block_size=16, eval_steps=2), source="texts")
    assert record.adapter is not None and record.adapter.base.hash == hash_dir(tiny_qwen2_dir)
    assert (adapted / "model.safetensors").exists() and not (adapted / "adapter_config.json").exists()
    before = load_file(str(tiny_qwen2_dir / "model.safetensors"))
    after = load_file(str(adapted / "model.safetensors"))
    assert not torch.equal(before["model.layers.0.self_attn.q_proj.weight"],
                           after["model.layers.0.self_attn.q_proj.weight"])
    run = tmp_path / "run"
    manifest = finetune_run(tweets, run, FinetuneConfig(model=str(adapted), **LORA), data_info={})
    assert manifest.adapted_from["base_model"] == str(tiny_qwen2_dir)
    assert manifest.adapter.base.hash == hash_dir(adapted)
    assert Augmenter.load(run).generate(n=3, max_new_tokens=6).shape[0] == 6


def test_gpt2_simple_refuses_lora(tmp_path: Path, capsys: pytest.CaptureFixture):
    with pytest.raises(ValueError, match="lora needs the torch back-end"):
        FinetuneConfig(backend="gpt-2-simple", adapter="lora")
    code = main(["finetune", "--data", "x.csv", "--out", str(tmp_path / "r"), "--backend", "gpt-2-simple",
                 "--adapter", "lora"])
    err = capsys.readouterr().err
    assert code == 2 and [l for l in err.splitlines() if l.strip()] == [
        "error: options (finetune): 'adapter': lora needs the torch back-end (gpt-2-simple trains every weight) "
        "(got 'lora')"]
    assert not (tmp_path / "r").exists()


def test_full_fine_tuning_keeps_its_keys():
    """Settings added for adapters are absent from a full fine-tune's dump, so cache and resume keys made
    before they existed still match; a LoRA run records all of them, and its own learning rate."""
    full = FinetuneConfig().model_dump()
    assert not {"adapter", "lora_rank", "lora_alpha", "lora_dropout", "lora_target_modules"} & set(full)
    assert FinetuneConfig(lora_rank=4).model_dump() == full
    lora = FinetuneConfig(adapter="lora").model_dump()
    assert {k: lora[k] for k in ("adapter", "lora_rank", "lora_alpha", "lora_dropout", "lora_target_modules",
                                 "learning_rate")} == {"adapter": "lora", "lora_rank": 16, "lora_alpha": 32.0,
                                                       "lora_dropout": 0.05, "lora_target_modules": "auto",
                                                       "learning_rate": 2e-4}
    assert FinetuneConfig(**lora) == FinetuneConfig(adapter="lora")
    with pytest.raises(ValueError, match="at least one module"):
        FinetuneConfig(adapter="lora", lora_target_modules=[])


def test_export_needs_a_label_when_the_run_has_several(lora_run: Path, tmp_path: Path):
    with pytest.raises(ConfigError, match=r"name the label to export with --label \(one of neg, pos\)"):
        export_label(RunDir(lora_run), None, tmp_path / "out")
    assert main(["export", str(lora_run), str(tmp_path / "out"), "--label", "pos"]) == 0
    assert main(["export", str(lora_run), str(tmp_path / "out"), "--label", "pos"]) == 2  # exists: --overwrite


@pytest.mark.parametrize("kind, expected", [
    ("gpt2", ["c_attn", "c_fc", "c_proj"]),
    ("llama", ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"]),
    ("qwen2", ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"]),
    ("gemma3_text", ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"]),
])
def test_auto_targets_every_linear_layer_but_the_head(kind: str, expected: list[str]):
    """Untied heads (Gemma3's is tied, Llama's here is not) are never adapted: they are vocabulary-sized."""
    from transformers import AutoConfig, AutoModelForCausalLM

    from augment.adapters import linear_modules

    small = dict(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                 num_key_value_heads=1, head_dim=16) if kind != "gpt2" else dict(vocab_size=128, n_embd=32, n_layer=1,
                                                                                  n_head=2)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(AutoConfig.for_model(kind, tie_word_embeddings=False, **small))
    assert linear_modules(model) == expected
