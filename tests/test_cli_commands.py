"""The ``augment`` command end to end, through the same entry point as the console script."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from augment.cli import main

TINY_TRAIN = ["--max-steps", "4", "--batch-size", "4", "--block-size", "32", "--save-steps", "2", "--no-progress"]


def run_cli(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, " ".join(err.split())


@pytest.fixture(scope="module")
def cli_run(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One run made through the CLI from a CSV with its own column names and numeric labels."""
    root = tmp_path_factory.mktemp("cli")
    data = root / "reviews.csv"
    pd.DataFrame({"body": [f"great product number {i}" for i in range(12)] + [f"broke after {i} days" for i in range(12)],
                  "stars": [5] * 12 + [1] * 12}).to_csv(data, index=False)
    code = main(["finetune", "--data", str(data), "--text-col", "body", "--label-col", "stars",
                 "--label-map", "5=good,1=bad", "--model", str(tiny_model_dir), "--out", str(root / "run"),
                 *TINY_TRAIN])
    assert code == 0
    return root / "run"


def test_finetune_writes_plain_hf_model_dirs(cli_run: Path) -> None:
    from transformers import AutoModelForCausalLM

    manifest = json.loads((cli_run / "run.json").read_text())
    assert sorted(manifest["labels"]) == ["bad", "good"]
    assert all(m["status"] == "done" for m in manifest["models"].values())
    model = AutoModelForCausalLM.from_pretrained(cli_run / "good")
    assert model.config.n_layer == 2


def test_info_shows_labels(cli_run: Path, capsys: pytest.CaptureFixture) -> None:
    code, out, _ = run_cli(capsys, "info", cli_run)
    assert code == 0 and "good" in out and "bad" in out and "done" in out
    assert "trained in fp32 on cpu (AUGMENT_PRECISION=fp32)" in " ".join(out.split())  # the format and why


def test_generate_all_labels(cli_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "synthetic.jsonl"
    code, stdout, _ = run_cli(capsys, "generate", "--run", cli_run, "--label", "all", "-n", 5, "--out", out,
                              "--batch-size", 5, "--max-new-tokens", 12, "--seed", 1, "--no-filter", "--no-progress")
    assert code == 0
    frame = pd.read_json(out, lines=True)
    assert frame["label"].value_counts().to_dict() == {"bad": 5, "good": 5}
    assert "generated" in stdout and "kept" in stdout
    assert out.with_name("synthetic.jsonl.provenance.json").exists()


def test_generate_with_filters_reports_them(cli_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "synthetic.csv"
    code, stdout, _ = run_cli(capsys, "generate", "--run", cli_run, "--label", "good", "-n", 6, "--out", out,
                              "--batch-size", 6, "--max-new-tokens", 12, "--no-progress")
    assert code == 0
    assert "exact-dedup" in stdout and "train-copy" in stdout
    assert len(pd.read_csv(out)) + len(pd.read_csv(tmp_path / "synthetic.dropped.csv")) == 6


def test_yaml_config_with_cli_override(cli_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    config = tmp_path / "gen.yaml"
    config.write_text("generate:\n  n: 3\n  max_new_tokens: 8\n  batch_size: 3\nfilter:\n  min_words: 1\n")
    out = tmp_path / "rows.csv"
    code, _, _ = run_cli(capsys, "generate", "-c", config, "--run", cli_run, "--label", "bad", "-n", 4, "--out", out,
                         "--no-filter", "--no-progress")
    assert code == 0
    prov = json.loads((tmp_path / "rows.csv.provenance.json").read_text())
    assert prov["config"]["n"] == 4 and prov["config"]["max_new_tokens"] == 8


@pytest.mark.parametrize("args, message", [
    (["-n", "0"], "'n' input should be greater than 0 (got 0)"),
    (["-n", "-3"], "'n' input should be greater than 0 (got -3)"),
    (["--label", "neutral"], "no label 'neutral'; labels are"),
    (["--batch-size", "many"], "'batch_size': must be a positive integer or 'auto' (got 'many')"),
    (["--temperature", "0"], "'temperature'"),
])
def test_generate_bad_options(cli_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture, args: list[str],
                              message: str) -> None:
    out = tmp_path / "rows.csv"
    code, _, err = run_cli(capsys, "generate", "--run", cli_run, "--out", out, "--no-progress", *args)
    assert code == 2 and message in err
    assert not out.exists()


def test_unknown_label_lists_known_labels(cli_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code, _, err = run_cli(capsys, "generate", "--run", cli_run, "--label", "neutral", "--out", tmp_path / "x.csv")
    assert code == 2 and "no label 'neutral'; labels are bad, good" in err


def test_existing_output_needs_overwrite(cli_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "rows.csv"
    out.write_text("keep me\n")
    code, _, err = run_cli(capsys, "generate", "--run", cli_run, "-n", 2, "--out", out, "--no-progress")
    assert code == 2 and "already exists; pass --overwrite" in err
    assert out.read_text() == "keep me\n"
    code, _, _ = run_cli(capsys, "generate", "--run", cli_run, "-n", 2, "--out", out, "--overwrite",
                         "--max-new-tokens", 8, "--no-progress")
    assert code == 0 and out.read_text() != "keep me\n"


def test_not_a_run_dir(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code, _, err = run_cli(capsys, "generate", "--run", tmp_path, "--out", tmp_path / "x.csv")
    assert code == 2 and "not an augment run directory (no run.json)" in err
    code, _, err = run_cli(capsys, "info", tmp_path / "missing")
    assert code == 2 and "run directory not found" in err


def test_unknown_yaml_key_names_file_and_section(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("finetune:\n  max_step: 10\n")
    code, _, err = run_cli(capsys, "finetune", "-c", config, "--data", tmp_path / "x.csv", "--out", tmp_path / "run")
    assert code == 2 and f"{config} [finetune]: unknown key 'max_step'" in err
    config.write_text("generation:\n  n: 3\n")
    code, _, err = run_cli(capsys, "finetune", "-c", config, "--out", tmp_path / "run")
    assert code == 2 and "unknown section(s) generation" in err


def test_finetune_bad_inputs(tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    missing = tmp_path / "nope.csv"
    code, _, err = run_cli(capsys, "finetune", "--data", missing, "--model", tiny_model_dir, "--out", tmp_path / "r")
    assert code == 2 and str(missing) in err
    data = tmp_path / "few.csv"
    pd.DataFrame({"text": [f"row {i}" for i in range(8)], "label": ["x"] * 6 + ["y"] * 2}).to_csv(data, index=False)
    code, _, err = run_cli(capsys, "finetune", "--data", data, "--model", tiny_model_dir, "--out", tmp_path / "r")
    assert code == 2 and "too few rows to train ('y' has 2; need at least 5" in err
    code, _, err = run_cli(capsys, "finetune", "--data", data, "--text-col", "body", "--out", tmp_path / "r")
    assert code == 2 and "body" in err and "text, label" in err
    code, _, err = run_cli(capsys, "finetune", "--data", data, "--label-map", "x:pos", "--out", tmp_path / "r")
    assert code == 2 and "'x:pos' is not VALUE=NAME" in err
    assert not (tmp_path / "r").exists()


def test_existing_run_dir_needs_overwrite_or_resume(cli_run: Path, tiny_model_dir: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture) -> None:
    data = tmp_path / "d.csv"
    pd.DataFrame({"text": [f"row {i}" for i in range(12)], "label": ["x"] * 6 + ["y"] * 6}).to_csv(data, index=False)
    code, _, err = run_cli(capsys, "finetune", "--data", data, "--model", tiny_model_dir, "--out", cli_run)
    assert code == 2 and "--overwrite" in err and "--resume" in err
    assert json.loads((cli_run / "run.json").read_text())["labels"].keys() == {"good", "bad"}


def test_sentiment140_file_is_recognised(tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rows = [f'"{p}","{i}","Mon Apr 06 22:19:45 PDT 2009","NO_QUERY","user{i}","{t} caf\xe9 #{i}"'
            for i, (p, t) in enumerate([(0, "so sad today"), (4, "lovely day")] * 6)]
    data = tmp_path / "training.1600000.processed.noemoticon.csv"
    data.write_bytes(("\n".join(rows) + "\n").encode("latin-1"))
    code, _, err = run_cli(capsys, "finetune", "--data", data, "--model", tiny_model_dir, "--out",
                           tmp_path / "run", *TINY_TRAIN)
    assert code == 0, err
    manifest = json.loads((tmp_path / "run" / "run.json").read_text())
    assert sorted(manifest["labels"]) == ["neg", "pos"]
    train = pd.read_json(tmp_path / "run" / "train.jsonl", lines=True)
    assert train["text"].str.contains("café").all()


def test_help_lists_every_command(capsys: pytest.CaptureFixture) -> None:
    code, out, _ = run_cli(capsys, "--help")
    assert code == 0
    for command in ("finetune", "generate", "convert", "info", "fetch"):
        assert command in out


def test_fetch_unknown_asset(capsys: pytest.CaptureFixture) -> None:
    code, _, err = run_cli(capsys, "fetch", "gpt5")
    assert code == 2 and "unknown asset 'gpt5'" in err


def test_prompts_from_an_unlabelled_file(cli_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    texts = tmp_path / "unlabelled.txt"
    texts.write_text("zebra quartz one\nzebra quartz two\n\nwalrus fjord three\n", encoding="utf-8")
    out = tmp_path / "rows.jsonl"
    code, _, err = run_cli(capsys, "generate", "--run", cli_run, "--out", out, "-n", "6", "--batch-size", "3",
                           "--max-new-tokens", "4", "--prefix-file", texts, "--prefix-words", "2", "--no-filter",
                           "--no-progress")
    assert code == 0, err
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 12
    assert all(r["text"].startswith(("zebra quartz", "walrus fjord")) for r in rows)
    prov = json.loads((tmp_path / "rows.jsonl.provenance.json").read_text())
    assert prov["prefixes"]["texts"] == 3

    code, _, err = run_cli(capsys, "generate", "--run", cli_run, "--out", tmp_path / "x.csv", "--prefix-file", texts,
                           "--no-progress")
    assert code == 2 and "--prefix-words" in err
    table = tmp_path / "unlabelled.csv"
    pd.DataFrame({"body": ["a b"], "id": [1]}).to_csv(table, index=False)
    code, _, err = run_cli(capsys, "generate", "--run", cli_run, "--out", tmp_path / "y.csv", "--prefix-file", table,
                           "--prefix-words", "1", "--no-progress")
    assert code == 2 and "unlabelled.csv" in err and "--prefix-col" in err
    code, _, err = run_cli(capsys, "generate", "--run", cli_run, "--out", tmp_path / "y.csv", "--prefix-file", table,
                           "--prefix-col", "body", "--prefix-words", "1", "-n", "2", "--max-new-tokens", "2",
                           "--no-filter", "--no-progress")
    assert code == 0, err
