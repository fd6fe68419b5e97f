"""The benchmark runners run end to end in smoke mode (tiny model, a few rows) and write their JSON."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks import finetune, generation
from benchmarks.report import markdown


def test_generation_smoke(tmp_path: Path) -> None:
    out = tmp_path / "gen.json"
    results = generation.main(["--smoke", "--rows", "4", "--new-tokens", "4", "--out", str(out)])
    report = json.loads(out.read_text())
    assert {r.case for r in results} == {"augment", "augment no-refill", "generate/1 batch", "pipeline/row"}
    assert all(0 < r["mfu"] < 1 for r in report["results"]) and report["matmul"]["tiny"]["peak"] > 0
    assert {r["baseline"] for r in report["ratios"]} == {"generate/1 batch", "pipeline/row"}
    assert all(r["rows_per_s"] > 0 and r["peak_mb"] > 0 for r in report["results"])
    assert report["versions"]["torch"]


def test_finetune_smoke(tmp_path: Path) -> None:
    out = tmp_path / "ft.json"
    finetune.main(["--smoke", "--rows", "32", "--steps", "2", "--batch-size", "2", "--block", "32",
                   "--out", str(out)])
    report = json.loads(out.read_text())
    assert [r["case"] for r in report["results"]] == ["augment packed", "padded rows"]
    assert report["ratios"][0]["ratio"] > 0
    assert "| tiny | augment packed | padded rows |" in markdown(report)


def test_precision_smoke(tmp_path: Path) -> None:
    """Both formats, every case, each against its own measured peak; the processor is named."""
    from benchmarks import precision

    out = tmp_path / "precision.json"
    precision.main(["--smoke", "--out", str(out)])
    report = json.loads(out.read_text())
    cases = {(r["case"], r["dtype"]) for r in report["results"]}
    assert cases == {(c, d) for c in ("augment", "generate/1 batch", "full fine-tune", "LoRA r16")
                     for d in ("fp32", "bf16")}
    assert report["peaks"]["tiny-gpt2/fp32"] > 0 and report["peaks"]["tiny-gpt2/bf16"] > 0
    assert report["machine"]["processor"] and isinstance(report["machine"]["units"], list)
    assert all(r["tokens_per_s"] > 0 for r in report["results"])
    assert all(r["held_out_loss"] > 0 for r in report["results"] if r["case"] in ("full fine-tune", "LoRA r16"))
    assert {c["case"] for c in report["ratios"]} >= {"augment bf16 / fp32", "LoRA r16 bf16 / fp32",
                                                      "augment / generate (bf16)"}


def test_judge_smoke(tmp_path: Path, monkeypatch) -> None:
    """Zero- and few-shot judge, calibrated and not, beside a baseline, on the project's validation rows."""
    import pandas as pd

    from benchmarks import judge
    from tests.tiny_models import build_tiny_chat_qwen2

    monkeypatch.setenv("AUGMENT_CACHE", str(tmp_path / "cache"))
    words = {"positive": "great", "negative": "awful", "neutral": "okay"}
    rows = [(f"{w} flight number {i}", label) for label, w in words.items() for i in range(40)]
    data = tmp_path / "tweets.csv"
    pd.DataFrame(rows, columns=["text", "label"]).to_csv(data, index=False)
    model = build_tiny_chat_qwen2(tmp_path / "model", hidden=32, positions=512)
    out = tmp_path / "judge.json"
    report = judge.main(["--task", "3class", "--data", str(data), "--models", str(model), "--examples", "3",
                         "--shots", "2", "--seeds", "0,1", "--rows", "12", "--baselines", "tfidf-lr",
                         "--test-size", "30", "--validation-size", "30", "--speed", "3", "--out", str(out)])
    saved = json.loads(out.read_text())
    assert saved["summary"] == report["summary"] and saved["validation_rows"] == 12
    methods = [s["method"] for s in saved["summary"]]
    assert methods == [f"llm-judge:{model}", f"llm-judge:{model}:calibrated", f"llm-judge:{model}:2",
                       f"llm-judge:{model}:2:calibrated", "tfidf-lr"]
    assert all(s["seeds"] == 2 and 0 <= s["macro_f1"] <= 1 for s in saved["summary"])
    assert {(s["precision"], s["shots"], s["prefix_cache"]) for s in saved["speed"]} == {
        (p, k, c) for p in ("fp32", "bf16") for k in (0, 2) for c in (True, False)}
    assert "| tfidf-lr | 2 |" in judge.table(saved)


def test_generation_counts_ids_when_the_vocabulary_outgrows_the_tokenizer(tmp_path: Path) -> None:
    """The random Qwen2 shapes sample ids the shipped GPT-2 tokenizer cannot decode; every case still counts
    each row's tokens (random weights: no row meets EOS early, so each samples the cap)."""
    results = generation.main(["--smoke", "--models", "qwen2-tiny", "--no-ablation", "--out", str(tmp_path / "q.json")])
    assert {r.case for r in results} == {"augment", "generate/1 batch", "pipeline/row"}
    assert all(r.new_tokens == 8 for r in results), [(r.case, r.new_tokens) for r in results]


def test_embedding_precision_smoke(tmp_path: Path) -> None:
    from benchmarks import embedding_precision

    result = embedding_precision.main(["--smoke", "--out", str(tmp_path / "e.json")])
    rows = {r["case"]: r for r in json.loads((tmp_path / "e.json").read_text())["results"]}
    assert set(rows) == {"fp32", "bf16 autocast", "bf16 weights"} and result["threads"] >= 1
    assert rows["fp32"]["vs_fp32"] == 1.0 and rows["fp32"]["min_cosine_to_fp32"] == 1.0
    assert all(0.95 < r["min_cosine_to_fp32"] <= 1.0 and r["texts_per_s"] > 0 for r in rows.values())
