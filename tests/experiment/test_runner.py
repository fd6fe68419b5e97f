"""The grid runner: finished cells skipped, interrupts cost one cell, artefacts shared, reports written."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

import augment.experiment.runner as runner
from augment.cli import main
from augment.errors import ConfigError
from augment.experiment import expand, load_experiment, run_experiment, write_report
from augment.experiment.results import ExperimentManifest, LMInfo, PoolInfo, ResultsLog
from tests.experiment.helpers import baseline_config, cell_result, lm_spec, write_yaml

PNG = b"\x89PNG\r\n\x1a\n"


def _keys(out: Path) -> Counter:
    lines = (out / "results.jsonl").read_text().splitlines()
    return Counter(json.loads(line)["key"] for line in lines)


@pytest.fixture
def baseline(tmp_path: Path, data_csv: Path) -> Path:
    return write_yaml(tmp_path / "exp.yaml", baseline_config(data_csv))


def test_grid_collapses_axes_that_do_not_apply(baseline: Path):
    config = load_experiment(baseline)
    cells = expand(config)
    # per (epc, seed): none 1 + oversample 2 ratios + eda 2 ratios
    assert len(cells) == 2 * 2 * 5
    assert len({c.key for c in cells}) == len(cells)
    assert {(c.ratio, c.filtered) for c in cells if c.augmenter.type == "none"} == {(None, False)}
    assert [c.key for c in expand(load_experiment(baseline))] == [c.key for c in cells]   # stable


def test_label_name_cells_add_the_label_in_words(tmp_path: Path, data_csv: Path):
    spec = {"type": "label-name", "templates": ["It is {label}.", "So {label}!"], "descriptions": {"neg": "bad"}}
    config = load_experiment(write_yaml(tmp_path / "l.yaml", baseline_config(
        data_csv, augmenters=[{"type": "none"}, spec], examples_per_class=[5], ratios=[1])))
    out = tmp_path / "out"
    assert run_experiment(config, out).ran == 2 * 2
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    added = [r["rows"] for r in rows if r["type"] == "label-name"]
    assert added and all(r["synthetic_by_label"] == {"neg": 5, "pos": 5} for r in added)
    assert "label-name" in write_report(config, out)[0].read_text()


def test_weighted_rows_reach_the_classifier_with_their_weight(tmp_path: Path, data_csv: Path, monkeypatch):
    from classifiers.tfidf import TfidfLogReg

    seen = []
    fit = TfidfLogReg.fit
    monkeypatch.setattr(TfidfLogReg, "fit", lambda self, X, y, sample_weight=None: seen.append(sample_weight)
                        or fit(self, X, y, sample_weight))
    specs = [{"type": "none"}, {"type": "label-name", "name": "soft", "weight": 0.25}, {"type": "label-name"}]
    config = load_experiment(write_yaml(tmp_path / "w.yaml", baseline_config(
        data_csv, augmenters=specs, examples_per_class=[5], ratios=[1], seeds=[0], classifiers=["tfidf-lr"])))
    run_experiment(config, tmp_path / "out")
    rows = {r.augmenter: r for r in ResultsLog(tmp_path / "out" / "results.jsonl").read()}
    weighted = [w for w in seen if w is not None]
    assert len(weighted) == 1 and weighted[0] == [1.0] * 10 + [0.25] * 10   # 5 real + 5 synthetic rows per label
    assert rows["soft"].config["augmenter"]["weight"] == 0.25 and "weight" not in rows["label-name"].config["augmenter"]


def test_grid_runs_seeds_outermost_across_datasets(tmp_path: Path, data_csv: Path):
    config = load_experiment(write_yaml(tmp_path / "d.yaml", {
        **{k: v for k, v in baseline_config(data_csv).items() if k != "data"},
        "datasets": {"a": {"path": str(data_csv)}, "b": {"path": str(data_csv)}}}))
    order = [(c.seed, c.dataset) for c in expand(config)]
    assert list(dict.fromkeys(order)) == [(0, "a"), (0, "b"), (1, "a"), (1, "b")]


def test_rerun_skips_finished_cells(baseline: Path, tmp_path: Path):
    out = tmp_path / "out"
    first = run_experiment(load_experiment(baseline), out)
    assert first.ran == first.cells == 20
    before = (out / "results.jsonl").read_bytes()
    second = run_experiment(load_experiment(baseline), out)
    assert second.ran == 0 and second.skipped == 20
    assert (out / "results.jsonl").read_bytes() == before


def test_only_runs_the_named_augmenters_and_a_later_run_does_the_rest(baseline: Path, tmp_path: Path, capsys):
    out = tmp_path / "out"
    first = run_experiment(load_experiment(baseline), out, only=["none", "eda"])
    assert first.ran == 2 * 2 * (1 + 2)   # per (epc, seed): none, and eda at 2 ratios
    assert {json.loads(line)["augmenter"] for line in (out / "results.jsonl").read_text().splitlines()} == {
        "none", "eda"}
    assert run_experiment(load_experiment(baseline), out).ran == 2 * 2 * 2   # the oversampling cells
    assert sum(_keys(out).values()) == len(_keys(out)) == 20
    assert main(["experiment", "run", str(baseline), "--out", str(tmp_path / "x"), "--only", "eda-typo",
                 "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "--only eda-typo: no such augmenter (augmenters: none, oversample, eda)" in err
    assert not (tmp_path / "x").exists()


def test_an_augmenter_with_its_own_ratios_runs_at_those_and_the_others_keep_their_keys(tmp_path: Path,
                                                                                     data_csv: Path):
    specs = [{"type": "none"}, {"type": "oversample"}, {"type": "eda"}]
    plain = load_experiment(write_yaml(tmp_path / "a.yaml", baseline_config(data_csv, augmenters=specs)))
    own = load_experiment(write_yaml(tmp_path / "b.yaml", baseline_config(
        data_csv, augmenters=[specs[0], {"type": "oversample", "ratios": [0.5, 3]}, specs[2]])))
    ratios = {(c.augmenter.name, c.ratio) for c in expand(own)}
    assert {r for a, r in ratios if a == "oversample"} == {0.5, 3}
    assert {r for a, r in ratios if a == "eda"} == set(plain.ratios)
    before = {c.key for c in expand(plain) if c.augmenter.name != "oversample"}
    assert before == {c.key for c in expand(own) if c.augmenter.name != "oversample"}
    with pytest.raises(ConfigError, match="every ratio must be positive"):
        load_experiment(write_yaml(tmp_path / "c.yaml", baseline_config(
            data_csv, augmenters=[specs[0], {"type": "oversample", "ratios": [0]}])))


def test_adding_a_seed_runs_only_its_cells(tmp_path: Path, data_csv: Path):
    out = tmp_path / "out"
    run_experiment(load_experiment(write_yaml(tmp_path / "a.yaml", baseline_config(data_csv, seeds=[0, 1]))), out)
    more = load_experiment(write_yaml(tmp_path / "a.yaml", baseline_config(data_csv, seeds=[0, 1, 2])))
    assert run_experiment(more, out).ran == 10
    fewer = load_experiment(write_yaml(tmp_path / "a.yaml", baseline_config(data_csv, seeds=[0])))
    report, _ = write_report(fewer, out)
    assert "20 rows in results.jsonl belong to other configurations" in report.read_text()


def test_interrupt_loses_at_most_the_cell_in_flight(baseline: Path, tmp_path: Path, monkeypatch):
    out = tmp_path / "out"
    calls = []
    real = runner.run_cell

    def flaky(*args):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(runner, "run_cell", flaky)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(load_experiment(baseline), out)
    assert sum(_keys(out).values()) == 4
    monkeypatch.setattr(runner, "run_cell", real)
    assert run_experiment(load_experiment(baseline), out).ran == 16
    keys = _keys(out)
    assert set(keys) == {c.key for c in expand(load_experiment(baseline))} and set(keys.values()) == {1}


SLOW_RUN = """
import sys, time
import augment.experiment.runner as r
real = r.run_cell
def slow(*args):
    time.sleep(0.15)
    return real(*args)
r.run_cell = slow
from augment.cli import main
sys.exit(main(["experiment", "run", sys.argv[1], "--out", sys.argv[2], "--no-progress"]))
"""


@pytest.mark.slow
def test_sigkilled_run_resumes_with_every_cell_once(baseline: Path, tmp_path: Path):
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen([sys.executable, "-c", SLOW_RUN, str(baseline), str(out)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            path = out / "results.jsonl"
            if path.exists() and path.read_bytes().count(b"\n") >= 3:
                break
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    done = sum(_keys(out).values())
    assert 3 <= done < 20, "the kill must land mid-way"
    with open(out / "results.jsonl", "ab") as fh:   # and a torn last line, as a kill mid-write leaves
        fh.write(b'{"key": "torn", "metrics": {"accu')
    assert main(["experiment", "run", str(baseline), "--out", str(out), "--no-progress"]) == 0
    keys = _keys(out)
    assert set(keys) == {c.key for c in expand(load_experiment(baseline))} and set(keys.values()) == {1}


def test_overwrite_starts_over(baseline: Path, tmp_path: Path):
    out = tmp_path / "out"
    run_experiment(load_experiment(baseline), out)
    ResultsLog(out / "results.jsonl").append(cell_result(key="stale"))
    summary = run_experiment(load_experiment(baseline), out, overwrite=True)
    assert summary.ran == 20 and "stale" not in _keys(out)


def test_report_files_and_cli(baseline: Path, tmp_path: Path, capsys):
    assert main(["experiment", "run", str(baseline), "--no-progress"]) == 0
    out = tmp_path / "results" / "exp"
    captured = capsys.readouterr()
    assert "lift in macro-F1" in captured.out and "eda x2" in captured.out
    report = (out / "report.md").read_text()
    for heading in ("## Lift in macro-F1", "## All cells", "## Quality of the synthetic rows", "## Cost"):
        assert heading in report
    assert "cells finished: 20 of 20" in report and "| 5/class | 10/class |" in report
    pngs = sorted(out.glob("*.png"))
    assert [p.name for p in pngs] == ["lift-tiny-tfidf-lr.png", "scores-tiny-tfidf-lr.png"]
    import matplotlib.image

    for png in pngs:
        assert png.read_bytes()[:8] == PNG
        image = matplotlib.image.imread(png)
        assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert (out / ".gitignore").read_text().splitlines()[-2:] == ["cache/", ".lock"]
    assert ExperimentManifest.read(out / "experiment.json").datasets["tiny"].test_total == 20
    (out / "report.md").unlink()
    assert main(["experiment", "report", str(out)]) == 0          # from the directory
    assert (out / "report.md").read_text() == report
    assert main(["experiment", "report", str(baseline)]) == 0     # from the YAML
    assert not list(out.glob(".*partial*"))


def test_report_needs_results(baseline: Path, tmp_path: Path):
    with pytest.raises(ConfigError, match="no finished cells"):
        write_report(load_experiment(baseline), tmp_path / "empty")
    with pytest.raises(ConfigError, match="not an experiment results directory"):
        from augment.experiment import load_target

        load_target(tmp_path)


def test_lm_cells_share_one_lm_and_one_pool_per_sample(tmp_path: Path, data_csv: Path, tiny_model_dir: Path,
                                                        monkeypatch):
    import augment.finetune
    import augment.generate

    trained, generated = [], []
    real_ft, real_gen = augment.finetune.finetune_run, augment.generate.generate_rows
    monkeypatch.setattr(augment.finetune, "finetune_run", lambda *a, **k: trained.append(1) or real_ft(*a, **k))
    monkeypatch.setattr(augment.generate, "generate_rows",
                        lambda gens, labels, config, **k: generated.append((list(labels), config.n))
                        or real_gen(gens, labels, config, **k))
    config = baseline_config(data_csv, examples_per_class=[5], seeds=[0, 1], filters=[False, True],
                             classifiers=["tfidf-lr"],
                             augmenters=[{"type": "none"}, lm_spec(tiny_model_dir, mode="conditioned")])
    path = write_yaml(tmp_path / "lm.yaml", config)
    out = tmp_path / "out"
    summary = run_experiment(load_experiment(path), out)
    assert summary.ran == 2 * (1 + 2 * 2)
    assert len(trained) == 2 and generated == [(["neg", "pos"], 12)] * 2   # 2 samples, pool = 2 x 5 x 1.2 per label
    assert len(list((out / "cache" / "lm").iterdir())) == 2 and len(list((out / "cache" / "pool").glob("*.jsonl"))) == 2
    assert not list((out / "cache" / "lm").glob("*/.work")), "finished LMs keep no resume checkpoints"
    rows = ResultsLog(out / "results.jsonl").read()
    lm = [r for r in rows if r.type == "lm"]
    for r in lm:
        assert r.mode == "conditioned" and r.pool_rows == {"neg": 12, "pos": 12}
        assert r.quality.rows == r.rows.synthetic
        if r.filter:
            assert r.filter_report.rows_in == 24
            assert max(r.rows.synthetic_by_label.values()) <= r.rows.requested_per_label
        else:
            assert r.rows.synthetic_by_label == {"neg": 5 * r.ratio, "pos": 5 * r.ratio}
    built = {r.lm.key: r.lm.cached for r in lm}
    assert len(built) == 2 and not any(built.values())
    # starting over reuses the cached LMs and pools: nothing is trained or generated again
    run_experiment(load_experiment(path), out, overwrite=True)
    assert len(trained) == 2 and len(generated) == 2
    report, _ = write_report(load_experiment(path), out)
    text = report.read_text()
    assert "## Filter: rows dropped per pool" in text and "| lm x2 +filter | conditioned |" in text


def test_configs_sharing_a_cache_train_each_lm_once(tmp_path: Path, data_csv: Path, tiny_model_dir: Path,
                                                    monkeypatch):
    import augment.finetune

    trained = []
    real_ft = augment.finetune.finetune_run
    monkeypatch.setattr(augment.finetune, "finetune_run", lambda *a, **k: trained.append(1) or real_ft(*a, **k))
    lm = lm_spec(tiny_model_dir, mode="conditioned")
    first = baseline_config(data_csv, examples_per_class=[5], seeds=[0], classifiers=["tfidf-lr"],
                            augmenters=[{"type": "none"}, lm])
    second = {**first, "augmenters": [{"type": "none"}, {"type": "eda"}, lm], "filters": [False, True]}
    cache = tmp_path / "shared"
    run_experiment(load_experiment(write_yaml(tmp_path / "a.yaml", first)), tmp_path / "a", cache=cache)
    run_experiment(load_experiment(write_yaml(tmp_path / "b.yaml", second)), tmp_path / "b", cache=cache)
    assert len(trained) == 1
    assert not (tmp_path / "a" / "cache").exists() and len(list((cache / "lm").iterdir())) == 1
    reused = [r.lm.cached for r in ResultsLog(tmp_path / "b" / "results.jsonl").read() if r.type == "lm"]
    assert reused and all(reused)

    assert main(["experiment", "run", str(tmp_path / "b.yaml"), "--out", str(tmp_path / "c"), "--cache", str(cache),
                 "--no-progress"]) == 0
    assert len(trained) == 1 and not (tmp_path / "c" / "cache").exists()


def test_augmenters_with_their_own_filters_share_one_lm_and_pool(tmp_path: Path, data_csv: Path, tiny_model_dir,
                                                                  monkeypatch):
    import augment.finetune

    trained = []
    real_ft = augment.finetune.finetune_run
    monkeypatch.setattr(augment.finetune, "finetune_run", lambda *a, **k: trained.append(1) or real_ft(*a, **k))
    surest = {"fidelity": "top-k", "fidelity_top_k": 1000, "near_dup_threshold": None, "train_copy_threshold": None}
    drawn = {**surest, "fidelity": "sample"}
    spec = lm_spec(tiny_model_dir, mode="conditioned")
    config = baseline_config(data_csv, examples_per_class=[5], seeds=[0], classifiers=["tfidf-lr"], ratios=[1],
                             filters=[True], filter=surest,
                             augmenters=[{"type": "none"}, spec, {**spec, "name": "lm-drawn", "filter": drawn}])
    path = write_yaml(tmp_path / "own.yaml", config)
    cells = {c.augmenter.name: c for c in expand(load_experiment(path))}
    out = tmp_path / "out"
    run_experiment(load_experiment(path), out)
    assert len(trained) == 1 and len(list((out / "cache" / "pool").glob("*.jsonl"))) == 1
    rows = {r.augmenter: r for r in ResultsLog(out / "results.jsonl").read()}
    assert rows["lm"].pool.key == rows["lm-drawn"].pool.key
    assert cells["lm"].key != cells["lm-drawn"].key
    assert {r.augmenter: r.filter_report.config.fidelity for r in rows.values() if r.type == "lm"} \
        == {"lm": "top-k", "lm-drawn": "sample"}
    text = write_report(load_experiment(path), out)[0].read_text()
    assert "- filter: exact dedup; min words 1; fidelity: the rows per label tfidf-lr is surest of (top-k)" in text
    assert "- `lm-drawn` filter: exact dedup; min words 1; fidelity: a seeded random draw per label" in text
    # the experiment's filter given to an augmenter as its own changes nothing: same cells, same results
    same = {**config, "augmenters": [{"type": "none"}, {**spec, "filter": surest}]}
    assert {c.key for c in expand(load_experiment(write_yaml(tmp_path / "same.yaml", same)))} \
        == {cells["none"].key, cells["lm"].key}


def test_validation_split_scores_every_cell_without_touching_samples_or_test(tmp_path: Path, data_csv: Path):
    plain = load_experiment(write_yaml(tmp_path / "a.yaml", baseline_config(data_csv, seeds=[0])))
    validated = load_experiment(write_yaml(tmp_path / "b.yaml", baseline_config(
        data_csv, seeds=[0], validation={"size": 30, "seed": 4})))
    assert [c.sample_key for c in expand(plain)] == [c.sample_key for c in expand(validated)]
    assert not {c.key for c in expand(plain)} & {c.key for c in expand(validated)}  # scores differ: new cells

    out = tmp_path / "out"
    run_experiment(validated, out)
    rows = ResultsLog(out / "results.jsonl").read()
    data = next(iter(runner.prepare(validated).values()))
    test_texts = set(data.test["text"])
    for examples in (5, 10):
        train = data.sample(examples, 0)
        val = data.validation(train)
        assert 0 < len(val) <= 30
        assert not set(val["text"]) & (set(train["text"]) | test_texts)
    for row in rows:
        assert 0 <= row.validation_metrics.macro_f1 <= 1
        assert row.validation_metrics != row.metrics
    report, _ = write_report(validated, out)
    text = report.read_text()
    assert "## Lift in macro-F1 on the validation split" in text and "30 pool rows" in text
    run_experiment(plain, tmp_path / "plain")
    assert "validation split" not in write_report(plain, tmp_path / "plain")[0].read_text()


def test_top_k_cells_take_the_rows_the_classifier_is_surest_of(tmp_path: Path, data_csv: Path, tiny_model_dir,
                                                               monkeypatch):
    import pandas as pd

    from augment.filter import filter_synthetic

    config = load_experiment(write_yaml(tmp_path / "a.yaml", baseline_config(
        data_csv, seeds=[0], examples_per_class=[5], augmenters=[{"type": "none"}, lm_spec(tiny_model_dir)],
        ratios=[1, 3], filters=[True],
        filter={"fidelity": "top-k", "fidelity_top_k": 1000, "near_dup_threshold": None,
                "train_copy_threshold": None})))
    data = next(iter(runner.prepare(config).values()))
    pos = [f"love great happy thanks {i}" if i % 2 else f"hate awful worst delay {i}" for i in range(40)]
    neg = [f"hate awful worst delay {i}" if i % 2 else f"love great happy thanks {i}" for i in range(40)]
    pool = pd.DataFrame({"text": pos + neg, "label": ["pos"] * 40 + ["neg"] * 40})
    cells = [c for c in expand(config) if c.augmenter.type == "lm"]
    work = runner.SampleWork(config, data, 5, 0, cells[0].sample_key, tmp_path / "cache")
    made = runner.PoolMade(LMInfo(key="lm", cached=True, wall_s=0.0), PoolInfo(key="pool", cached=True, wall_s=0.0), None)
    monkeypatch.setattr(work, "pool", lambda spec: (pool, made))
    for cell in cells:
        rows, extra = work.synthetic(cell)
        need = cell.rows_per_label()
        assert rows.groupby("label").size().to_dict() == {"neg": need, "pos": need}
        own = filter_synthetic(pool, work.train, config.filter.model_copy(update={"fidelity_top_k": need}),
                               seed=0).kept
        assert sorted(rows["text"]) == sorted(own["text"])
        words = {"pos": "love", "neg": "hate"}
        assert all(words[label] in text for text, label in zip(rows["text"], rows["label"]))


def test_pool_prompts_come_from_unlabelled_pool_rows_only(tmp_path: Path, data_csv: Path, tiny_model_dir):
    import pandas as pd

    spec = {**lm_spec(tiny_model_dir), "prompts": "pool"}
    spec["generate"]["prefix_words"] = 0
    with pytest.raises(ConfigError, match="prefix_words"):
        load_experiment(write_yaml(tmp_path / "bad.yaml", baseline_config(data_csv, augmenters=[spec])))
    spec["generate"]["prefix_words"] = 2
    config = load_experiment(write_yaml(tmp_path / "a.yaml", baseline_config(
        data_csv, seeds=[0], examples_per_class=[5], augmenters=[{"type": "none"}, spec], ratios=[1],
        validation={"size": 15, "seed": 2})))
    data = next(iter(runner.prepare(config).values()))
    prompts = data.unlabelled()
    held_out = set(data.test["text"]) | set(data.validation(data.pool.iloc[:0])["text"])
    assert prompts and not set(prompts) & held_out
    assert len(prompts) == len(data.pool) - 15

    out = tmp_path / "out"
    run_experiment(config, out)
    pools = list((out / "cache" / "pool").glob("*.jsonl"))
    assert len(pools) == 1
    starts = tuple({" ".join(t.split()[:2]) for t in prompts})
    rows = pd.read_json(pools[0], lines=True)
    assert len(rows) and all(t.startswith(starts) for t in rows["text"])  # the LM may glue on to the last word
    labelled = load_experiment(write_yaml(tmp_path / "b.yaml", baseline_config(
        data_csv, seeds=[0], examples_per_class=[5], augmenters=[{"type": "none"}, {**spec, "prompts": "labelled"}],
        ratios=[1], validation={"size": 15, "seed": 2})))
    assert {c.key for c in expand(labelled)} != {c.key for c in expand(config)}


EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"
COMMITTED = sorted(p.parent.name for p in (EXPERIMENTS / "results").glob("*/results.jsonl"))
COMPLETE = {"tweets-lowdata", "tweets-lowdata-v2", "tweets-lowdata-v3", "tweets-lowdata-v4", "tweets-setfit",
            "tweets-honest", "tweets-50", "tweets-3class", "tweets-3class-honest",
            "tweets-3class-setfit", "tweets-filter",
            "tweets-3class-filter", "tweets-ratio"}
KNOWN_STALE = {"tweets-adapt": 2}   # seed 0's pseudo-label cells from before `candidates: 4000`


@pytest.mark.parametrize("name", sorted(set(COMMITTED) | COMPLETE))
def test_committed_results_stay_valid(name: str):
    """A new setting (with its old behaviour as default) must not orphan finished cells, partial runs
    included: a changed YAML must not silently orphan what a later session resumes."""
    committed = {json.loads(line)["key"] for line in (EXPERIMENTS / "results" / name / "results.jsonl").open()}
    grid = {c.key for c in expand(load_experiment(EXPERIMENTS / f"{name}.yaml"))}
    assert committed and len(committed - grid) == KNOWN_STALE.get(name, 0)
    if name in COMPLETE:
        assert committed == grid


def test_explicit_default_prompts_keep_the_cell_keys(tmp_path: Path, data_csv: Path, tiny_model_dir):
    def keys(**extra) -> set[str]:
        spec = {**lm_spec(tiny_model_dir), **extra}
        config = baseline_config(data_csv, augmenters=[{"type": "none"}, spec])
        return {c.key for c in expand(load_experiment(write_yaml(tmp_path / "a.yaml", config)))}

    assert keys() == keys(prompts="labelled") != keys(prompts="pool")
