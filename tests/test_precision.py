"""`precision: auto` on a CPU: measured per machine, cached, recorded; bf16 stages and their row contract."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from augment import precision as prec
from augment.config import GenerateConfig
from augment.errors import AugmentError
from augment.generate import generate_to_file, parts_dir
from augment.models import placement
from augment.rundir import RunDir

SMALL = dict(max_new_tokens=12, batch_size=8, top_k=50, top_p=0.95, min_chars=0)


def rates(fp32: float, bf16: float) -> prec.MatmulRates:
    return prec.MatmulRates(shape=prec.MatmulShape(rows=32, inner=64, outer=256), fp32_gflops=fp32,
                            bf16_gflops=bf16, threads=2, processor="Test CPU", units=["avx512_bf16"])


@pytest.fixture()
def measured(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """``auto`` as a user's machine sees it: no override, an empty cache, and a chosen measurement (counted)."""
    monkeypatch.delenv(prec.ENV, raising=False)
    monkeypatch.setenv("AUGMENT_CACHE", str(tmp_path / "cache"))
    calls: list[prec.MatmulShape] = []

    def fake(gain: float):
        def measure(shape: prec.MatmulShape) -> prec.MatmulRates:
            calls.append(shape)
            return rates(100.0, 100.0 * gain).model_copy(update={"shape": shape})
        monkeypatch.setattr(prec, "measure_rates", measure)
        return calls
    return fake


def test_bf16_only_where_it_is_clearly_faster() -> None:
    assert prec.cpu_choice(rates(100, 151)).precision == "bf16"
    slow = prec.cpu_choice(rates(100, 149))
    assert slow.precision == "fp32"
    assert "bf16 149 vs fp32 100 GFLOP/s (1.49x)" in slow.reason and "Test CPU" in slow.reason
    assert slow.rates is not None and slow.rates.bf16_gain == pytest.approx(1.49)


def test_auto_measures_once_per_machine_and_shape(measured, tiny_model_dir: Path) -> None:
    calls = measured(2.0)
    first = placement("auto", "cpu", model=tiny_model_dir)
    again = placement("auto", "cpu", model=tiny_model_dir)
    assert first.dtype == again.dtype == torch.bfloat16 and first.train_bf16
    assert len(calls) == 1  # the second read the cached rates
    assert calls[0] == prec.MatmulShape(rows=prec.DECODE_ROWS, inner=64, outer=256)  # GPT-2: n_inner = 4 x n_embd
    assert first.choice.rates == again.choice.rates
    stored = list((prec.cache_root() / "precision").glob("*.json"))
    assert len(stored) == 1 and json.loads(stored[0].read_text())["bf16_gflops"] == 200.0


def test_auto_stays_fp32_where_bf16_does_not_pay(measured, tiny_model_dir: Path, tmp_path: Path) -> None:
    measured(1.1)
    place = placement("auto", "cpu", model=tiny_model_dir)
    assert place.dtype == torch.float32 and not place.train_bf16
    assert place.choice.rates is not None and "1.10x" in place.choice.reason


def test_a_torn_rates_file_is_measured_again(measured, tmp_path: Path) -> None:
    calls = measured(2.0)
    shape = prec.MatmulShape(rows=32, inner=64, outer=256)
    path = prec.rates_path(shape, tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text('{"fp32_gflops": 1')
    assert prec.cached_rates(shape, tmp_path).bf16_gflops == 200.0 and len(calls) == 1


def test_explicit_formats_and_the_override(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu = torch.device("cpu")
    assert prec.choose("bf16", cpu, None).precision == "bf16"  # asked for: runs even where it is slow
    with pytest.raises(AugmentError, match="fp16 needs a GPU"):
        prec.choose("fp16", cpu, None)
    monkeypatch.setenv(prec.ENV, "bf16")
    choice = prec.choose("auto", cpu, None)
    assert choice.precision == "bf16" and choice.reason == "AUGMENT_PRECISION=bf16"
    monkeypatch.setenv(prec.ENV, "half")
    with pytest.raises(AugmentError, match="AUGMENT_PRECISION=half: expected fp32, bf16 or auto"):
        prec.choose("auto", cpu, None)


def test_model_shape_reads_each_family() -> None:
    assert prec.model_shape({"n_embd": 64}) == prec.MatmulShape(rows=32, inner=64, outer=256)
    qwen = {"hidden_size": 896, "intermediate_size": 4864}
    assert prec.model_shape(qwen).outer == 4864


def test_the_processor_and_its_units_are_named() -> None:
    assert prec.processor_name()
    assert set(prec.cpu_units()) <= set(prec.UNIT_FLAGS)


def test_bf16_fine_tuning_keeps_fp32_weights_and_learns_like_fp32(tiny_model_dir: Path, tweets, tmp_path: Path) -> None:
    """Autocast over fp32 master weights: the saved model is fp32 and the loss curve follows fp32's."""
    from tests.conftest import train_run

    losses = {}
    for name in ("fp32", "bf16"):
        out = train_run(tiny_model_dir, tweets, tmp_path / name, precision=name, max_steps=20, eval_fraction=0.2,
                        eval_steps=10)
        manifest = RunDir(out).read_manifest()
        model = manifest.models["pos"]
        assert model.precision is not None and model.precision.precision == name
        config = json.loads((out / "pos" / "config.json").read_text())
        assert config.get("dtype", config.get("torch_dtype")) == "float32"
        losses[name] = model.eval_loss
    assert losses["bf16"] == pytest.approx(losses["fp32"], rel=0.05)


def test_bf16_generation_is_recorded_reproducible_and_never_mixed(trained_run: Path, tmp_path: Path) -> None:
    """bf16 rows: the same command gives the same rows; a job is never finished in another format."""
    config = GenerateConfig(n=12, **SMALL)
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    for out in (first, second):
        generate_to_file(RunDir(trained_run), ["pos"], config, out, precision="bf16")
    assert first.read_bytes() == second.read_bytes()
    record = json.loads(first.with_name(first.name + ".provenance.json").read_text())
    assert record["precision"]["precision"] == "bf16" and record["precision"]["reason"] == "asked for"

    fp32 = tmp_path / "fp32.jsonl"
    generate_to_file(RunDir(trained_run), ["pos"], config, fp32, precision="fp32")
    assert json.loads(fp32.with_name(fp32.name + ".provenance.json").read_text())["precision"]["precision"] == "fp32"

    stopped = tmp_path / "stopped.jsonl"

    def stop(label: str, rows: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        generate_to_file(RunDir(trained_run), ["pos"], config, stopped, precision="bf16", on_rows=stop)
    assert parts_dir(stopped).exists()
    with pytest.raises(AugmentError, match=r"different settings \(precision: 'bf16' -> None\); cannot resume"):
        generate_to_file(RunDir(trained_run), ["pos"], config, stopped, resume=True, precision="fp32")


def test_experiment_keys_carry_a_precision_other_than_fp32() -> None:
    from augment.experiment import artefacts
    from augment.experiment.config import LMSpec

    spec = LMSpec(type="lm", name="lm", finetune={"model": "tiny-gpt2"})
    assert artefacts.lm_key("s", spec, 0) == artefacts.lm_key("s", spec, 0, precision="fp32")
    assert artefacts.lm_key("s", spec, 0, precision="bf16") != artefacts.lm_key("s", spec, 0)
    assert artefacts.pool_key("k", spec, 0, 10, precision="bf16") != artefacts.pool_key("k", spec, 0, 10)
    assert artefacts.lm_precision(spec, "fp32") == "fp32"
    own = LMSpec(type="lm", name="lm", finetune={"model": "tiny-gpt2", "precision": "bf16"})
    assert artefacts.lm_precision(own, "fp32") == "bf16"
