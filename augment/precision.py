"""Which number format a model runs in on this machine: measured, never assumed.

CPUs differ in their matrix units: an Intel Xeon with AMX multiplies bf16 about 6x
faster than fp32, an AMD EPYC with AVX512-BF16 about 2-4x, an older EPYC not at all.
So ``precision: auto`` times both formats on the model's own matrix shapes, once
per machine (the rates are cached), and takes bf16 where it is clearly faster.
``AUGMENT_PRECISION`` (fp32, bf16) fixes what ``auto`` means without measuring,
for runs that must match across machines (the test suite sets fp32).
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict

from augment.cache import cache_root
from augment.errors import AugmentError
from augment.files import hash_json, read_json, write_json_atomic

if TYPE_CHECKING:
    import torch

Precision = Literal["fp32", "bf16", "fp16"]
BF16_GAIN = 1.5  # bf16 must beat fp32 by this much: below it, the lost mantissa buys too little
ENV = "AUGMENT_PRECISION"
UNIT_FLAGS = ("amx_bf16", "amx_tile", "avx512_bf16", "avx512f", "avx2")
DECODE_ROWS = 32  # rows of one decode step, the shape generation spends its time in
MEASURE_S = 0.25


class MatmulShape(BaseModel):
    """``rows`` x ``inner`` times ``inner`` x ``outer``: a model's widest layer, fed one batch of rows."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    rows: int
    inner: int
    outer: int


class MatmulRates(BaseModel):
    """Attainable GFLOP/s of each format at one shape on this machine (2 flops per multiply-add)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    shape: MatmulShape
    fp32_gflops: float
    bf16_gflops: float
    threads: int
    processor: str
    units: list[str]

    @property
    def bf16_gain(self) -> float:
        return self.bf16_gflops / self.fp32_gflops if self.fp32_gflops > 0 else 0.0


class PrecisionChoice(BaseModel):
    """What a stage runs in, and why: goes into provenance and ``augment info``."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    precision: Precision
    device: str
    reason: str
    rates: MatmulRates | None = None


def processor_name() -> str:
    for line in _cpuinfo().splitlines():
        if line.lower().startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def cpu_units() -> list[str]:
    """The matrix and vector units /proc/cpuinfo names (empty where it does not exist)."""
    flags: set[str] = set()
    for line in _cpuinfo().splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            break
    return [flag for flag in UNIT_FLAGS if flag in flags]


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def model_shape(config: dict) -> MatmulShape:
    """The MLP's up-projection from a ``config.json``: the largest matrix every layer multiplies."""
    inner = config.get("hidden_size") or config.get("n_embd") or config.get("d_model") or 768
    outer = config.get("intermediate_size") or config.get("n_inner") or 4 * inner
    return MatmulShape(rows=DECODE_ROWS, inner=int(inner), outer=int(outer))


def gflops(shape: MatmulShape, dtypes: tuple[torch.dtype, ...], seconds: float = MEASURE_S) -> list[float]:
    """Best of repeated ``linear`` calls per format, the formats taking turns: the rate the kernels can reach,
    not an average of interruptions, and a burst of other work slows both formats alike instead of one."""
    import torch  # here, not at the top: reading a run manifest's records must not load torch
    pairs = [(torch.randn(shape.rows, shape.inner, dtype=d), torch.randn(shape.outer, shape.inner, dtype=d))
             for d in dtypes]
    flop = 2.0 * shape.rows * shape.inner * shape.outer
    best, spent = [float("inf")] * len(dtypes), 0.0
    with torch.inference_mode():
        for x, w in pairs:
            torch.nn.functional.linear(x, w)
        while spent < seconds * len(dtypes):
            for i, (x, w) in enumerate(pairs):
                start = time.perf_counter()
                torch.nn.functional.linear(x, w)
                took = time.perf_counter() - start
                best[i], spent = min(best[i], took), spent + took
    return [flop / b / 1e9 for b in best]


def measure_rates(shape: MatmulShape) -> MatmulRates:
    import torch

    fp32, bf16 = gflops(shape, (torch.float32, torch.bfloat16))
    return MatmulRates(shape=shape, fp32_gflops=round(fp32, 2), bf16_gflops=round(bf16, 2),
                       threads=torch.get_num_threads(), processor=processor_name(), units=cpu_units())


def rates_path(shape: MatmulShape, cache: Path | None = None) -> Path:
    """One file per (processor, units, threads, torch, shape): another machine never reads this one's."""
    import torch

    key = hash_json({"processor": processor_name(), "units": cpu_units(), "threads": torch.get_num_threads(),
                     "torch": torch.__version__, "shape": shape.model_dump()})[:16]
    return (cache or cache_root()) / "precision" / f"{key}.json"


def cached_rates(shape: MatmulShape, cache: Path | None = None) -> MatmulRates:
    path = rates_path(shape, cache)
    stored = read_json(path, "measured rates", default=None)
    if stored is not None:
        try:
            return MatmulRates.model_validate(stored)
        except ValueError:
            pass  # an older or torn file: measure again
    rates = measure_rates(shape)
    write_json_atomic(path, rates.model_dump(mode="json"))
    return rates


def choose(requested: str, device: torch.device, shape: MatmulShape | None) -> PrecisionChoice:
    """Resolve ``auto`` (and check an explicit format) for ``device``."""
    import torch

    if requested != "auto":
        if requested == "fp16" and device.type == "cpu":
            raise AugmentError("precision fp16 needs a GPU; on CPU use bf16 or fp32")
        return PrecisionChoice(precision=requested, device=device.type, reason="asked for")
    if device.type == "cuda":
        bf16 = torch.cuda.is_bf16_supported()
        return PrecisionChoice(precision="bf16" if bf16 else "fp32", device="cuda",
                               reason="GPU supports bf16" if bf16 else "GPU without bf16")
    fixed = os.environ.get(ENV, "").strip().lower()
    if fixed in ("fp32", "bf16"):
        return PrecisionChoice(precision=fixed, device=device.type, reason=f"{ENV}={fixed}")
    if fixed not in ("", "auto"):
        raise AugmentError(f"{ENV}={fixed}: expected fp32, bf16 or auto")
    if device.type != "cpu":
        return PrecisionChoice(precision="fp32", device=device.type, reason=f"no bf16 measurement on {device.type}")
    if shape is None:
        return PrecisionChoice(precision="fp32", device="cpu", reason="no local model config to measure its shape on")
    return cpu_choice(cached_rates(shape))


def cpu_choice(rates: MatmulRates) -> PrecisionChoice:
    gain = rates.bf16_gain
    units = ", ".join(rates.units) or "no bf16 units listed"
    verdict = "bf16" if gain >= BF16_GAIN else "fp32"
    reason = (f"bf16 {rates.bf16_gflops:.0f} vs fp32 {rates.fp32_gflops:.0f} GFLOP/s ({gain:.2f}x) at "
              f"{rates.shape.rows}x{rates.shape.inner}x{rates.shape.outer} on {rates.processor} ({units}); "
              f"bf16 needs {BF16_GAIN}x")
    return PrecisionChoice(precision=verdict, device="cpu", reason=reason, rates=rates)


def keyed(key: dict, precision: str) -> dict:
    """A cache or resume key that names the format: bf16 rows are other rows. fp32 adds nothing, so every
    key made before the format was recorded still matches."""
    return key if precision == "fp32" else {**key, "precision": precision}


def describe(choice: PrecisionChoice) -> str:
    return f"{choice.precision} on {choice.device} ({choice.reason})"


def read_model_shape(path: str | Path) -> MatmulShape | None:
    """The shape from a local model dir's ``config.json``; None for a hub id not downloaded yet."""
    config = Path(path) / "config.json"
    if not config.is_file():
        return None
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    text = data.get("text_config") if isinstance(data.get("text_config"), dict) else data
    return model_shape(text)
