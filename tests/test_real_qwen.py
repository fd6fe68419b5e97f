"""The real Qwen2.5-Coder-0.5B-Instruct through the product, where `augment fetch` has cached it (CI skips:
its clone fetches nothing). The tiny models of the other tests share its shapes, not its knowledge."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from augment.cli import main
from augment.rundir import RunDir

NAME = "qwen2.5-coder-0.5b-instruct"
POS = ["Thank you so much, the crew was wonderful!", "Great flight, friendly staff, landed early.",
       "Loved the service today, best airline ever.", "Smooth boarding and a lovely crew, thanks!",
       "What a pleasant trip, everything on time."]
NEG = ["My bag is lost and nobody answers the phone.", "Delayed three hours again, this is terrible.",
       "Worst customer service I have ever had.", "Cancelled flight and no refund, awful.",
       "Stuck on the tarmac for hours with no updates."]


@pytest.fixture(scope="module")
def qwen() -> Path:
    folder = Path(os.environ.get("AUGMENT_TEST_REAL_CACHE") or Path.home() / ".cache" / "augment") / "models" / NAME
    if not (folder / "config.json").exists():
        pytest.skip(f"{NAME} not fetched (augment fetch {NAME})")
    return folder


@pytest.mark.slow
def test_lora_fine_tune_and_generate_with_the_real_model(qwen: Path, tmp_path: Path) -> None:
    data = tmp_path / "tweets.csv"
    pd.DataFrame({"text": POS + NEG, "label": ["pos"] * 5 + ["neg"] * 5}).to_csv(data, index=False)
    run = tmp_path / "run"
    assert main(["finetune", "--data", str(data), "--model", str(qwen), "--adapter", "lora", "--max-steps", "1",
                 "--batch-size", "2", "--block-size", "32", "--eval-fraction", "0", "--precision", "auto",
                 "--out", str(run), "--no-progress"]) == 0
    for label in ("pos", "neg"):
        size = sum(f.stat().st_size for f in (run / label).iterdir())
        assert not (run / label / "model.safetensors").exists() and size < 60e6, size   # adapter + tokenizer
    assert RunDir(run).read_manifest().adapter is not None
    out = tmp_path / "rows.csv"
    assert main(["generate", "--run", str(run), "-n", "2", "--max-new-tokens", "8", "--precision", "auto",
                 "--no-filter", "--out", str(out), "--no-progress"]) == 0
    rows = pd.read_csv(out, keep_default_na=False)
    assert rows["label"].value_counts().to_dict() == {"neg": 2, "pos": 2}
    assert rows["text"].str.strip().str.len().gt(0).all()


@pytest.mark.slow
def test_the_real_judge_reads_plain_sentiment(qwen: Path) -> None:
    from classifiers import LLMJudge

    judge = LLMJudge(str(qwen), verbalizers={"pos": "positive", "neg": "negative"}, precision="fp32",
                     disk_cache=False, instruction="Classify the sentiment of this tweet about a US airline. "
                                                   "Answer with exactly one of: {labels}.")
    judge.fit(POS[:2] + NEG[:2], ["pos", "pos", "neg", "neg"])
    assert list(judge.predict(POS[2:] + NEG[2:])) == ["pos"] * 3 + ["neg"] * 3


@pytest.mark.slow
def test_augment_run_labels_unlabelled_texts_with_the_real_recommended_judge(tmp_path: Path, monkeypatch) -> None:
    """`augment run --source auto` given unlabelled texts: the Qwen-1.5B judge (where fetched) labels them,
    and each label gets the texts it is surest of."""
    from augment.recipe import RECOMMENDED_TEACHER, RecipeRecord, record_path

    cache = Path(os.environ.get("AUGMENT_TEST_REAL_CACHE") or Path.home() / ".cache" / "augment")
    judge = RECOMMENDED_TEACHER.removeprefix("llm-judge:")
    if not (cache / "models" / judge / "config.json").exists():
        pytest.skip(f"{judge} not fetched (augment fetch {judge})")
    monkeypatch.setenv("AUGMENT_CACHE", str(cache))
    data, pool, out = tmp_path / "tweets.csv", tmp_path / "pool.txt", tmp_path / "aug.csv"
    pd.DataFrame({"text": POS + NEG, "label": ["pos"] * 5 + ["neg"] * 5}).to_csv(data, index=False)
    happy = ["The flight attendants were amazing, thank you!", "On time and comfortable, will fly again.",
             "Upgraded for free, what a lovely surprise!"]
    angry = ["Two hours on hold and still no answer, unacceptable.", "They lost my luggage and refuse to help.",
             "Missed my connection because of your delay, furious."]
    pool.write_text("\n".join(happy + angry))
    assert main(["run", "--data", str(data), "--unlabelled", str(pool), "--out", str(out), "--ratio", "0.4",
                 "--source", "auto", "--no-progress"]) == 0
    record = RecipeRecord.model_validate_json(record_path(out).read_text())
    assert (record.source, record.config["teacher"]) == ("pseudo-label", RECOMMENDED_TEACHER)
    added = pd.read_csv(out, keep_default_na=False).query("synthetic")
    assert added["label"].value_counts().to_dict() == {"neg": 2, "pos": 2}
    assert all((text in happy) == (label == "pos") for text, label in zip(added["text"], added["label"]))
