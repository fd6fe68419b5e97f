"""Rows that cannot fit the model's context are refused in one line, before any weights load.

Before: ``-n 16 --max-new-tokens 5000`` on a GPT-2 with 128 positions ended in
``IndexError: index out of range in self`` deep inside the embedding.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from augment import Augmenter
from augment.cli import main
from augment.generate.context import check_context, context_length
from augment.errors import ConfigError
from augment.models import build_tiny_gpt2
from tests.conftest import NEG, POS, train_run
from tests.reliability.procs import cli_many

POSITIONS = 128


@pytest.fixture(scope="module")
def short_context_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = build_tiny_gpt2(tmp_path_factory.mktemp("gpt2-128"), n_positions=POSITIONS)
    frame = pd.DataFrame({"text": POS[:5] + NEG[:5], "label": ["pos"] * 5 + ["neg"] * 5})
    return train_run(model, frame, tmp_path_factory.mktemp("short") / "run", max_steps=1, batch_size=2,
                     block_size=16, save_steps=1, min_rows=1)


def test_max_new_tokens_past_the_context_is_one_line_in_a_real_process(short_context_run, tmp_path):
    out = tmp_path / "o.csv"
    log = tmp_path / "cli.log"
    code = cli_many([["generate", "--run", str(short_context_run), "-n", "16", "--batch-size", "16",
                      "--max-new-tokens", "5000", "--out", str(out), "--no-filter", "--no-progress"]], log)
    text = log.read_text()
    assert code == 2 and "Traceback" not in text and "IndexError" not in text, text
    assert (f"max_new_tokens=5000 does not fit the model's context of {POSITIONS} tokens after a 1-token "
            f"prompt; use --max-new-tokens {POSITIONS - 1} or less") in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cli.log"]  # no parts, no lock, no output


def test_prefix_longer_than_the_context_is_refused(short_context_run, tmp_path, capsys):
    prefixes = tmp_path / "long.txt"
    prefixes.write_text(" ".join(["word"] * 300) + "\n", encoding="utf-8")
    code = main(["generate", "--run", str(short_context_run), "-n", "2", "--out", str(tmp_path / "o.csv"),
                 "--prefix-file", str(prefixes), "--prefix-words", "200", "--no-progress"])
    assert code == 2
    assert f"the longest prompt is 201 tokens, the model's context is {POSITIONS} tokens" in capsys.readouterr().err


def test_api_checks_before_loading(short_context_run):
    with pytest.raises(ConfigError, match=f"context of {POSITIONS} tokens"):
        Augmenter.load(short_context_run).generate("pos", n=2, max_new_tokens=POSITIONS)
    rows = Augmenter.load(short_context_run).generate("pos", n=2, max_new_tokens=POSITIONS - 1, seed=0)
    assert len(rows) == 2  # the longest allowed job runs: the bound is exact, not a guess


def test_context_length_reads_config_json_only(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"max_position_embeddings": 8192}))
    assert context_length(tmp_path) == 8192
    assert context_length({"text_config": {"n_positions": 64}}) == 64
    assert context_length({}) is None
    check_context({"n_positions": 10}, 4, 6)  # exactly full is fine
    with pytest.raises(ConfigError, match="use --max-new-tokens 6 or less"):
        check_context({"n_positions": 10}, 4, 7)
