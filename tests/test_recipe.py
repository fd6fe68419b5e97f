"""``augment run``: a labelled file in, real + synthetic rows out, every stage resumable.

A tiny GPT-2 built in the test; steps and rows are cut to seconds in a YAML file,
the way a user overrides the recipe's defaults.
"""

from __future__ import annotations

import json
import math
import signal
from pathlib import Path

import pandas as pd
import pytest

from augment.cli import main

from augment.errors import ConfigError
from augment.filter import FilterConfig, filter_synthetic
from augment.recipe import RecipeRecord, recipe_config, record_path, work_dir
from augment.rundir import RunDir
from tests.conftest import NEG, POS

HAPPY = [f"{a} {b}" for a in ("so happy today", "loving this", "what a great day") for b in ("yay", "wow", "love it", "nice")][:10]
SAD = [f"{a} {b}" for a in ("awful day", "hate this", "worst service") for b in ("ugh", "no", "bad", "sad")][:10]
from tests.reliability.procs import Child


def small_recipe(path: Path, model: Path, **recipe: object) -> Path:
    path.write_text(json.dumps({  # JSON is YAML
        "recipe": {"source": "generate", "ratio": 0.5, "candidates": 2, **recipe},
        "adapt": {"model": str(model), "max_steps": 4, "batch_size": 4, "block_size": 16, "eval_steps": 2,
                  "eval_fraction": 0.1},
        "finetune": {"model": str(model), "max_steps": 4, "batch_size": 4, "block_size": 16, "eval_steps": 2},
        "generate": {"max_new_tokens": 6, "batch_size": 8},
        "filter": {"fidelity_classifier": "tfidf-lr"},
    }))
    return path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("recipe-inputs")
    data = folder / "train.csv"
    pd.DataFrame({"text": HAPPY + SAD, "label": ["pos"] * 10 + ["neg"] * 10}).to_csv(data, index=False)
    pool = folder / "pool.txt"
    pool.write_text("\n".join(f"{t} {w}" for t in HAPPY[:5] + SAD[:5] for w in ("lol", "today", "again", "now")))
    return {"data": data, "pool": pool, "config": small_recipe(folder / "recipe.yaml", tiny_model_dir)}


def run_args(inputs: dict[str, Path], out: Path, *extra: str) -> list[str]:
    return ["run", "--data", str(inputs["data"]), "--unlabelled", str(inputs["pool"]), "--out", str(out),
            "-c", str(inputs["config"]), "--no-progress", *extra]


@pytest.fixture(scope="module")
def finished(inputs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("recipe-out") / "train_augmented.csv"
    assert main(run_args(inputs, out)) == 0
    return out


def test_output_holds_the_real_rows_then_the_synthetic_ones(finished: Path, inputs: dict[str, Path]):
    real = pd.read_csv(inputs["data"])
    out = pd.read_csv(finished, keep_default_na=False)
    assert list(out.columns) == ["text", "label", "synthetic"]
    assert out[~out["synthetic"]][["text", "label"]].reset_index(drop=True).equals(real)
    synthetic = out[out["synthetic"]]
    want = math.ceil(10 * 0.5)
    assert synthetic["label"].value_counts().to_dict() == {"pos": want, "neg": want}
    assert not set(synthetic["text"]) & set(real["text"]), "copies of training rows are filtered out"
    assert synthetic["text"].is_unique


def test_provenance_names_every_stage(finished: Path, inputs: dict[str, Path]):
    record = RecipeRecord(**json.loads(record_path(finished).read_text()))
    assert record.real_rows == {"neg": 10, "pos": 10} and record.synthetic_rows == {"neg": 5, "pos": 5}
    assert record.candidates == {"neg": 10, "pos": 10}
    assert record.prompts == "pool-by-label" and record.unlabelled["texts"] == 40
    assert [s.stage for s in record.stages] == ["adapt", "finetune", "generate neg", "generate pos", "elapsed"]
    assert not any(s.cached for s in record.stages)
    steps = {s.filter: s for s in record.filter.steps}
    assert steps["label-fidelity"].kept == 10 and record.filter.rows_in == 20
    manifest = RunDir(Path(record.run_dir)).read_manifest()
    assert manifest.adapted_from is not None, "the per-label models start from the adapted model"
    assert Path(record.adapted["dir"]) == work_dir(finished) / "adapted"
    assert not (Path(record.run_dir) / ".work").exists(), "optimizer checkpoints are removed once trained"


def test_the_work_folder_is_a_run_that_generates_more(finished: Path, tmp_path: Path):
    more = tmp_path / "more.csv"
    assert main(["generate", "--run", str(work_dir(finished) / "run"), "--out", str(more), "-n", "3",
                 "--max-new-tokens", "4", "--no-progress"]) == 0
    assert len(pd.read_csv(more)) <= 6


def test_a_second_run_is_refused_then_reuses_every_stage(finished: Path, inputs: dict[str, Path], capsys):
    before = finished.read_bytes()
    assert main(run_args(inputs, finished)) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(run_args(inputs, finished, "--overwrite", "--resume")) == 0
    assert finished.read_bytes() == before
    record = RecipeRecord(**json.loads(record_path(finished).read_text()))
    assert all(s.cached for s in record.stages if s.stage != "elapsed")
    assert all(s.wall_s > 0 for s in record.stages), "a reused stage reports what it cost when it ran"


def test_the_api_runs_the_same_recipe(finished: Path, inputs: dict[str, Path]):
    from augment import augment_rows
    from augment.config import load_yaml
    from augment.recipe import recipe_config

    config = recipe_config(load_yaml(inputs["config"], ("data", "adapt", "finetune", "generate", "filter", "recipe")),
                           lambda s: s)
    pool = inputs["pool"].read_text().splitlines()
    rows = augment_rows(str(inputs["data"]), finished, unlabelled=pool, config=config, resume=True, overwrite=True)
    assert rows.equals(pd.read_csv(finished, keep_default_na=False))


def test_resume_with_other_settings_is_refused(finished: Path, inputs: dict[str, Path], capsys):
    assert main(run_args(inputs, finished, "--overwrite", "--resume", "--ratio", "1")) == 2
    err = capsys.readouterr().err
    assert "the interrupted `augment run` used different settings (config.ratio: 0.5 -> 1.0); cannot resume" in err, err


@pytest.mark.slow
def test_interrupted_while_generating_resumes_to_the_same_rows(inputs: dict[str, Path], finished: Path,
                                                               tmp_path: Path):
    out = tmp_path / "aug.csv"
    child = Child(run_args(inputs, out), tmp_path / "child.log")
    assert child.wait_for(lambda: (work_dir(out) / "candidates").is_dir(), interval=0.01), child.output()
    child.proc.send_signal(signal.SIGINT)
    assert child.finish() == 130, child.output()
    assert "--resume" in child.output() and not out.exists()
    assert main(run_args(inputs, out, "--resume")) == 0
    assert out.read_bytes() == finished.read_bytes()


def test_pool_prompts_without_unlabelled_texts_fail_before_training(inputs: dict[str, Path], tmp_path: Path,
                                                                     capsys):
    out = tmp_path / "aug.csv"
    args = ["run", "--data", str(inputs["data"]), "--out", str(out), "-c", str(inputs["config"]),
            "--prompts", "pool-by-label", "--no-progress"]
    assert main(args) == 2
    assert "needs unlabelled texts (--unlabelled FILE)" in capsys.readouterr().err
    assert not work_dir(out).exists() and not out.exists()


def test_rows_past_the_context_fail_before_training(inputs: dict[str, Path], tmp_path: Path, tiny_model_dir: Path,
                                                    capsys):
    config = tmp_path / "long.yaml"
    raw = json.loads(inputs["config"].read_text())
    raw["generate"]["max_new_tokens"] = 5000
    config.write_text(json.dumps(raw))
    out = tmp_path / "aug.csv"
    args = ["run", "--data", str(inputs["data"]), "--unlabelled", str(inputs["pool"]), "--out", str(out),
            "-c", str(config), "--no-progress"]
    assert main(args) == 2
    assert "does not fit the model's context of 1024 tokens" in capsys.readouterr().err
    assert not work_dir(out).exists()


def test_yaml_sections_override_single_keys_of_the_recipe():
    config = recipe_config({"finetune": {"max_steps": 40}, "recipe": {"ratio": 5}}, lambda s: s)
    assert config.finetune.max_steps == 40 and config.ratio == 5
    assert config.finetune.model == "smollm2-135m" and config.finetune.eval_fraction == 0.2  # the recipe's
    with pytest.raises(ConfigError, match="recipe: .*'ratio'"):
        recipe_config({"recipe": {"ratio": 0}}, lambda s: s)
    with pytest.raises(ConfigError, match="unknown key 'max_stpes'"):
        recipe_config({"finetune": {"max_stpes": 1}}, lambda s: s)
    drawn = recipe_config({}, lambda s: s, filter={"fidelity": "sample"})
    assert drawn.filter.fidelity == "sample" and drawn.filter.fidelity_classifier == "minilm-lr"
    with pytest.raises(ConfigError, match="filter: .*'fidelity'.*'top-k'"):
        recipe_config({}, lambda s: s, filter={"fidelity": "surest"})
    moved = recipe_config({}, lambda s: s, filter={"fidelity_relabel": 0.9, "fidelity": None})
    assert moved.filter.fidelity == "top-k" and moved.filter.fidelity_relabel == 0.9
    assert "fidelity_relabel" not in recipe_config({}, lambda s: s).model_dump()["filter"]   # work keys unchanged


def test_top_k_per_label_keeps_each_labels_own_count():
    train = pd.DataFrame({"text": POS + NEG, "label": ["pos"] * len(POS) + ["neg"] * len(NEG)})
    synthetic = pd.DataFrame({"text": [f"so happy {i}" for i in range(6)] + [f"awful {i}" for i in range(6)],
                              "label": ["pos"] * 6 + ["neg"] * 6})
    kept = filter_synthetic(synthetic, train, FilterConfig(fidelity="top-k", fidelity_top_k={"pos": 4, "neg": 1},
                                                           near_dup_threshold=None)).kept
    assert kept["label"].value_counts().to_dict() == {"pos": 4, "neg": 1}
    with pytest.raises(Exception, match="no count for label 'neg'"):
        filter_synthetic(synthetic, train, FilterConfig(fidelity="top-k", fidelity_top_k={"pos": 4}))
    with pytest.raises(Exception, match="positive count"):
        FilterConfig(fidelity="top-k", fidelity_top_k={"pos": 0})


def test_a_run_folder_killed_before_its_manifest_is_trained_again(tiny_model_dir: Path, tmp_path: Path):
    """``finetuned_once`` (the recipe's and the experiment cache's fine-tune): nothing to resume
    starts again, a finished run is reused untouched, and resume checkpoints go."""
    from augment.config import FinetuneConfig
    from augment.finetune import finetuned_once

    frame = pd.DataFrame({"text": HAPPY + SAD, "label": ["pos"] * 10 + ["neg"] * 10})
    run = tmp_path / "run"
    (run / ".work" / "pos").mkdir(parents=True)   # what a kill before run.json leaves
    config = FinetuneConfig(model=str(tiny_model_dir), max_steps=1, batch_size=2, block_size=16)
    manifest, cached = finetuned_once(frame, run, config, data_info={"path": "t"})
    assert not cached and RunDir(run).all_finished(manifest) and not (run / ".work").exists()
    before = (run / "run.json").read_bytes()
    again, cached = finetuned_once(frame, run, config, data_info={"path": "t"})
    assert cached and again == manifest and (run / "run.json").read_bytes() == before


def test_check_keeps_rows_only_when_they_raise_macro_f1_on_held_out_rows():
    from augment.recipe import RecipeConfig, _check

    config = RecipeConfig(check=2, filter=FilterConfig(fidelity="top-k", fidelity_top_k=1,
                                                       fidelity_classifier="tfidf-lr"))
    labels = ["pos", "pos", "neg", "neg"]
    train = pd.DataFrame({"text": ["qq", "qq qq", "zz", "zz zz"], "label": labels})   # shares no n-gram with:
    held = pd.DataFrame({"text": ["yes", "yes yes", "nah", "nah nah"], "label": labels})
    helpful = pd.DataFrame({"text": ["yes yes yes", "yes", "nah nah nah", "nah"], "label": labels})
    flipped = helpful.assign(label=["neg", "neg", "pos", "pos"])
    from classifiers import fitted_classifier

    fidelity = fitted_classifier("tfidf-lr", train["text"].tolist(), train["label"].tolist(), 0)
    good = _check(train, helpful, held, config, fidelity)
    assert good.kept and good.classifier == "tfidf-lr" and good.macro_f1_with == 1.0 > good.macro_f1_without
    bad = _check(train, flipped, held, config, fidelity)
    assert not bad.kept and bad.macro_f1_with < bad.macro_f1_without == good.macro_f1_without
    assert not _check(train, helpful.iloc[:0], held, config, "tfidf-lr").kept, "ties keep no synthetic rows"


def test_check_holds_rows_out_of_training_and_writes_every_real_row(inputs: dict[str, Path], tmp_path: Path,
                                                                     capsys):
    out = tmp_path / "checked.csv"
    assert main(run_args(inputs, out, "--check", "3")) == 0
    assert "check (tfidf-lr, 3 held-out rows per label)" in capsys.readouterr().out
    record = RecipeRecord(**json.loads(record_path(out).read_text()))
    assert record.check is not None and record.check.rows_per_label == 3
    assert record.real_rows == {"neg": 10, "pos": 10} and record.candidates == {"neg": 8, "pos": 8}  # 7 x 0.5 x 2
    manifest = RunDir(Path(record.run_dir)).read_manifest()
    assert sum(m.rows + m.eval_rows for m in manifest.models.values()) == 14, "the LM never saw the held-out rows"
    rows = pd.read_csv(out, keep_default_na=False)
    assert rows[~rows["synthetic"]][["text", "label"]].reset_index(drop=True).equals(pd.read_csv(inputs["data"]))
    assert (rows["synthetic"].sum() > 0) == record.check.kept
    assert sum(record.synthetic_rows.values()) == rows["synthetic"].sum()


def test_a_check_that_leaves_no_training_rows_fails_before_training(inputs: dict[str, Path], tmp_path: Path,
                                                                     capsys):
    out = tmp_path / "aug.csv"
    assert main(run_args(inputs, out, "--check", "10")) == 2
    err = capsys.readouterr().err
    assert "--check 10: holding out 10 rows per label leaves none to train on: 'neg' has 10, 'pos' has 10" in err
    assert len(err.strip().splitlines()) == 1 and not work_dir(out).exists() and not out.exists()
    assert main(run_args(inputs, out, "--check", "3", "--check-classifier", "bogus")) == 2
    assert "'check_classifier': unknown classifier 'bogus'" in capsys.readouterr().err


def test_a_base_lm_as_the_check_judge_fails_before_training(inputs: dict[str, Path], tiny_model_dir: Path,
                                                            tmp_path: Path, capsys):
    """The tiny GPT-2 has no chat template: the judge refuses it before the LM trains, not at the check."""
    out = tmp_path / "aug.csv"
    assert main(run_args(inputs, out, "--check", "3", "--check-classifier", f"llm-judge:{tiny_model_dir}")) == 2
    err = capsys.readouterr().err
    assert f"llm-judge:{tiny_model_dir}: not an instruct model (its tokenizer has no chat template)" in err
    assert len(err.strip().splitlines()) == 1 and not work_dir(out).exists() and not out.exists()


def test_pseudo_label_source_writes_the_unlabelled_texts_the_teacher_is_surest_of(inputs: dict[str, Path],
                                                                                   tmp_path: Path):
    """No LM trains: each label gets the pool texts TF-IDF-LR (the teacher) is surest of, never a labelled row."""
    pool = tmp_path / "pool.txt"
    extra = [HAPPY[0], SAD[0], HAPPY[0] + " lol"]   # two labelled rows and a repeat: neither may be added
    pool.write_text("\n".join([*inputs["pool"].read_text().splitlines(), *extra]))
    out = tmp_path / "aug.csv"
    args = ["run", "--data", str(inputs["data"]), "--unlabelled", str(pool), "--out", str(out), "-c",
            str(inputs["config"]), "--no-progress", "--source", "pseudo-label", "--teacher", "tfidf-lr"]
    assert main(args) == 0
    rows = pd.read_csv(out, keep_default_na=False)
    added = rows[rows["synthetic"]]
    assert added["label"].value_counts().to_dict() == {"neg": 5, "pos": 5}   # ratio 0.5 of 10 rows per label
    assert set(added["text"]) <= set(pool.read_text().splitlines()) - {HAPPY[0], SAD[0]}
    assert added["text"].is_unique
    happy = {f"{t} {w}" for t in HAPPY[:5] for w in ("lol", "today", "again", "now")}
    assert all((text in happy) == (label == "pos") for text, label in zip(added["text"], added["label"]))
    record = RecipeRecord.model_validate_json(record_path(out).read_text())
    assert (record.source, record.run_dir, record.prompts, record.adapted) == ("pseudo-label", None, None, None)
    assert sum(record.candidates.values()) == len(set(pool.read_text().splitlines()) - {HAPPY[0], SAD[0]})
    assert [s.stage for s in record.stages] == ["pseudo-label", "elapsed"]
    assert not (work_dir(out) / "run").exists()


def test_source_auto_pseudo_labels_given_unlabelled_texts_and_names_the_missing_judge(
        inputs: dict[str, Path], tiny_model_dir: Path, tmp_path: Path, capsys):
    """The test cache has no Qwen-1.5B: the default fidelity classifier (MiniLM-LR) labels the texts, with a
    one-line notice that says how to fetch the recommended judge."""
    config = tmp_path / "recipe.yaml"
    config.write_text(json.dumps({"recipe": {"ratio": 0.5, "source": "auto"}}))
    out = tmp_path / "aug.csv"
    assert main(["run", "--data", str(inputs["data"]), "--unlabelled", str(inputs["pool"]), "--out", str(out),
                 "-c", str(config), "--no-progress"]) == 0
    record = RecipeRecord.model_validate_json(record_path(out).read_text())
    assert (record.source, record.config["source"], record.config["teacher"]) == ("pseudo-label", "pseudo-label",
                                                                                  "minilm-lr")
    assert record.synthetic_rows == {"neg": 5, "pos": 5} and not (work_dir(out) / "run").exists()
    err = " ".join(capsys.readouterr().err.split())
    assert ("qwen2.5-coder-1.5b-instruct is not fetched (`augment fetch qwen2.5-coder-1.5b-instruct` (1.1 GB "
            "download)): minilm-lr labels the unlabelled texts instead") in err, err


def test_pseudo_label_source_without_unlabelled_texts_fails_before_any_work(inputs: dict[str, Path],
                                                                           tmp_path: Path, capsys):
    out = tmp_path / "aug.csv"
    args = ["run", "--data", str(inputs["data"]), "--out", str(out), "-c", str(inputs["config"]), "--no-progress",
            "--source", "pseudo-label"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "source 'pseudo-label' needs unlabelled texts (--unlabelled FILE)" in err
    assert len(err.strip().splitlines()) == 1 and not work_dir(out).exists() and not out.exists()
    assert main([*args, "--unlabelled", str(inputs["pool"]), "--fidelity-classifier", "llm-judge:tiny-gpt2"]) == 2
    assert "llm-judge:tiny-gpt2: not an instruct model" in capsys.readouterr().err
    assert main([*args, "--unlabelled", str(inputs["pool"]), "--teacher", "setfit"]) == 2
    assert "teacher 'setfit' and fidelity_classifier 'tfidf-lr' name the same role" in capsys.readouterr().err
    assert not work_dir(out).exists()


def test_instruct_mode_through_augment_run(inputs: dict[str, Path], tmp_path: Path):
    """`augment run --mode instruct`: no adaptation and no training; the chat model writes the rows."""
    from tests.tiny_models import build_tiny_chat_qwen2

    chat = build_tiny_chat_qwen2(tmp_path / "chat", hidden=32, positions=512)
    config = small_recipe(tmp_path / "recipe.yaml", chat)
    out = tmp_path / "aug.csv"
    assert main(["run", "--data", str(inputs["data"]), "--unlabelled", str(inputs["pool"]), "--out", str(out),
                 "-c", str(config), "--no-progress", "--mode", "instruct", "--fidelity", "off"]) == 0
    record = RecipeRecord.model_validate_json(record_path(out).read_text())
    assert record.adapted is None and [s.stage for s in record.stages][0] == "finetune"
    assert RunDir(work_dir(out) / "run").read_manifest().finetune["mode"] == "instruct"
    assert sum(record.candidates.values()) == 2 * math.ceil(5 * 2)   # ratio 0.5 of 10, candidates 2, per label
