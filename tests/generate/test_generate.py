"""Generation: row counts, separator stopping, seeds, label markers, resumable output files."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from augment import Augmenter
from augment.config import GenerateConfig
from augment.errors import AugmentError, OutputExistsError
from augment.filter import FilterConfig
from augment.generate import COLUMNS, SAMPLER_VERSION, LabelGenerator, decode_rows, dropped_path, generate_to_file, parts_dir
from augment.generate.job import GenerationProvenance
from augment.prompts import label_token
from augment.rundir import RunDir

SMALL = dict(batch_size=8, max_new_tokens=24, seed=3)


def test_n_rows_per_label_with_columns(trained_run: Path) -> None:
    frame = Augmenter.load(trained_run).generate(n=11, **SMALL)
    assert list(frame.columns) == COLUMNS
    assert frame["label"].value_counts().to_dict() == {"neg": 11, "pos": 11}
    assert frame["text"].str.len().min() >= 1
    assert set(frame["seed"]) == {3}
    params = json.loads(frame["params"].iloc[0])
    assert params["sampler"] == SAMPLER_VERSION and params["max_new_tokens"] == 24 and "batch_size" not in params


def test_rows_stop_at_eos(trained_run: Path) -> None:
    """Training rows are 4-6 tokens and end with EOS; rows that ran to the token limit would be 60."""
    gen = LabelGenerator.load(RunDir(trained_run), "pos")
    rows = dict(decode_rows(gen, GenerateConfig(max_new_tokens=60), [(i, gen.prompt("")) for i in range(16)], 8))
    lengths = [len(t) for t in rows.values()]
    assert sum(n < 30 for n in lengths) >= 12, lengths
    texts = [gen.text("", t) for t in rows.values()]
    assert not any(gen.tokenizer.eos_token in t for t in texts)


def test_same_seed_same_rows_other_seed_other_rows(trained_run: Path) -> None:
    aug = Augmenter.load(trained_run)
    first = aug.generate("pos", n=10, **SMALL)
    again = Augmenter.load(trained_run).generate("pos", n=10, **SMALL)
    other = aug.generate("pos", n=10, **{**SMALL, "seed": 4})
    assert first["text"].tolist() == again["text"].tolist()
    assert first["text"].tolist() != other["text"].tolist()


def test_first_rows_do_not_depend_on_n(trained_run: Path) -> None:
    """Rows depend on (seed, label, row index) only, so asking for more rows extends the list."""
    aug = Augmenter.load(trained_run)
    short = aug.generate("neg", n=8, **SMALL)["text"].tolist()
    long = aug.generate("neg", n=20, **SMALL)["text"].tolist()
    assert long[:8] == short


def test_conditioned_rows_never_contain_markers(conditioned_run: Path) -> None:
    frame = Augmenter.load(conditioned_run).generate(n=24, **{**SMALL, "max_new_tokens": 40})
    assert frame["label"].value_counts().to_dict() == {"neg": 24, "pos": 24}
    for text in frame["text"]:
        assert "<|label" not in text and "<|endoftext|>" not in text
        assert label_token("pos") not in text and label_token("neg") not in text


def test_conditioned_prompt_carries_the_label(conditioned_run: Path) -> None:
    gen = LabelGenerator.load(RunDir(conditioned_run), "neg")
    marker = gen.tokenizer.convert_tokens_to_ids(label_token("neg"))
    assert gen.prompt("") == [gen.tokenizer.eos_token_id, marker]
    assert sorted(gen.suppressed()) == sorted(gen.tokenizer.convert_tokens_to_ids([label_token("neg"),
                                                                                   label_token("pos")]))


def test_prefix_words_start_rows_with_real_words(trained_run: Path) -> None:
    frame = Augmenter.load(trained_run).generate("pos", n=8, **{**SMALL, "prefix_words": 2})
    assert all(t.startswith("so happy") for t in frame["text"])


def test_unknown_label_lists_the_labels(trained_run: Path) -> None:
    with pytest.raises(AugmentError, match="no label 'neutral'; labels are neg, pos"):
        Augmenter.load(trained_run).generate("neutral", n=2)


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".parquet"])
def test_output_formats_and_provenance(trained_run: Path, tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"synthetic{suffix}"
    result = generate_to_file(RunDir(trained_run), ["pos", "neg"], GenerateConfig(n=6, **SMALL), out)
    reader = {".csv": pd.read_csv, ".tsv": lambda p: pd.read_csv(p, sep="\t"),
              ".jsonl": lambda p: pd.read_json(p, lines=True), ".parquet": pd.read_parquet}[suffix]
    back = reader(out)
    assert list(back.columns) == COLUMNS and len(back) == 12
    assert back["text"].tolist() == result.rows["text"].tolist()
    prov = GenerationProvenance.model_validate_json(out.with_name(out.name + ".provenance.json").read_bytes())
    assert prov.config.n == 6 and prov.rows == 12 and prov.labels == ["pos", "neg"] and prov.filter is None
    assert set(prov.models) == {"pos", "neg"} and all(len(h) == 64 for h in prov.models.values())
    assert {"torch", "transformers"} <= set(prov.versions) and prov.prefixes == "training rows"
    assert not parts_dir(out).exists()


def test_existing_output_is_refused_and_kept(trained_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "synthetic.csv"
    out.write_text("precious\n")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        generate_to_file(RunDir(trained_run), ["pos"], GenerateConfig(n=2, **SMALL), out)
    assert out.read_text() == "precious\n"


def test_unknown_output_type(trained_run: Path, tmp_path: Path) -> None:
    with pytest.raises(AugmentError, match=r"unknown output type '\.xlsx'"):
        generate_to_file(RunDir(trained_run), ["pos"], GenerateConfig(n=2), tmp_path / "rows.xlsx")


class Interrupt(Exception):
    pass


def test_interrupted_job_resumes_to_the_same_rows(trained_run: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import augment.generate.loop as loop

    sampled: list[int] = []
    real = loop.decode_rows
    monkeypatch.setattr(loop, "decode_rows", lambda gen, config, jobs, *a, **k: sampled.extend(
        i for i, _ in jobs) or real(gen, config, jobs, *a, **k))
    config = GenerateConfig(n=20, **SMALL)
    reference = tmp_path / "reference.jsonl"
    generate_to_file(RunDir(trained_run), ["pos", "neg"], config, reference)
    rows = len(sampled)

    out = tmp_path / "synthetic.jsonl"
    seen: list[int] = []

    def stop_after_twenty_rows(label: str, rows: int) -> None:
        seen.append(label)
        if seen.count("neg") == 9:  # pos done, neg's first chunk of 8 saved, its 9th row lost
            raise Interrupt

    with pytest.raises(Interrupt):
        generate_to_file(RunDir(trained_run), ["pos", "neg"], config, out, on_rows=stop_after_twenty_rows)
    assert not out.exists()
    assert len(list(parts_dir(out).glob("neg-*.jsonl"))) == 1

    with pytest.raises(OutputExistsError, match="--resume"):
        generate_to_file(RunDir(trained_run), ["pos", "neg"], config, out)
    with pytest.raises(AugmentError, match=r"different settings \(config\.seed: \d+ -> 9\); cannot resume"):
        generate_to_file(RunDir(trained_run), ["pos", "neg"], GenerateConfig(n=20, **{**SMALL, "seed": 9}), out,
                         resume=True)

    sampled.clear()
    other_size = GenerateConfig(n=20, **{**SMALL, "batch_size": 5})  # rows do not depend on it
    generate_to_file(RunDir(trained_run), ["pos", "neg"], other_size, out, resume=True)
    assert len(sampled) < rows - 16
    assert out.read_bytes() == reference.read_bytes()
    assert not parts_dir(out).exists()


def test_filter_writes_kept_and_dropped_rows(trained_run: Path, tmp_path: Path) -> None:
    """The tiny model repeats its 5 training tweets, so dedup and the copy filter must bite."""
    out = tmp_path / "synthetic.csv"
    result = generate_to_file(RunDir(trained_run), ["pos", "neg"], GenerateConfig(n=16, **SMALL), out,
                              filter_config=FilterConfig())
    kept, dropped = pd.read_csv(out), pd.read_csv(dropped_path(out))
    assert len(result.generated) == 32
    assert len(kept) + len(dropped) == 32 and len(dropped) > 0
    assert set(dropped["filter"]) <= {"length", "exact-dedup", "near-dup", "train-copy"}
    assert not kept["text"].duplicated().any()
    prov = GenerationProvenance.model_validate_json(out.with_name(out.name + ".provenance.json").read_bytes())
    assert prov.rows_generated == 32 and prov.rows == len(kept) and prov.filter == result.filter_report
    assert sum(s.dropped for s in prov.filter.steps) == len(dropped) and prov.filter.rows_kept == len(kept)


def test_rows_do_not_depend_on_the_batch_size(trained_run: Path, tmp_path: Path) -> None:
    outs = []
    for size in (1, 8, "auto"):
        out = tmp_path / f"rows-{size}.csv"
        generate_to_file(RunDir(trained_run), ["pos"], GenerateConfig(n=12, **{**SMALL, "batch_size": size}), out)
        outs.append(out.read_bytes())
    assert outs[0] == outs[1] == outs[2]


def test_every_caller_gets_the_rows_of_one_function(trained_run: Path, tmp_path: Path, monkeypatch) -> None:
    """The job file, the API and generate_rows give the same rows; a job reads run.json once, not per label."""
    from augment.generate import Generators, generate_rows

    config = GenerateConfig(n=5, **SMALL)
    direct = generate_rows(Generators.open(RunDir(trained_run), ["neg", "pos"]), ["neg", "pos"], config).rows
    reads = []
    original = RunDir.read_manifest
    monkeypatch.setattr(RunDir, "read_manifest", lambda self: reads.append(self) or original(self))
    out = tmp_path / "rows.jsonl"
    generate_to_file(RunDir(trained_run), ["neg", "pos"], config, out)
    assert len(reads) == 1
    assert pd.read_json(out, lines=True)["text"].tolist() == direct["text"].tolist()
    api = Augmenter.load(trained_run).generate(n=5, config=config)
    assert api["text"].tolist() == direct["text"].tolist()
