"""The experiment's YAML, as one validated pydantic model.

Every stage reuses its own config class (``DataConfig``, ``FinetuneConfig``,
``GenerateConfig``, ``FilterConfig``), so an experiment accepts exactly the keys
the single-stage commands accept. Values the grid sets itself (the sampling
seed, training and generation seeds, rows per label) are refused in the YAML
instead of being silently replaced.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import Field, ValidationError, field_validator, model_validator

from augment.config import DataConfig, FinetuneConfig, GenerateConfig, StageConfig, describe, read_yaml_mapping
from augment.errors import ConfigError
from augment.filter import FilterConfig


class TestSplit(StageConfig):
    size: int | float = Field(1000, gt=0, description="Held-out rows (int) or share of the data (float < 1).")
    seed: int = Field(0, description="Seed of the stratified split.")
    min_rows: int = Field(1000, ge=1, description="A smaller test split is an error: its scores would be noise.")
    data: DataConfig | None = Field(None, description="A separate test file instead of a split.")

    @field_validator("size")
    @classmethod
    def _size(cls, value: int | float) -> int | float:
        if isinstance(value, float) and not value < 1:
            raise ValueError("a float size is a share of the data and must be below 1")
        return value


class ValidationSplit(StageConfig):
    """Rows to choose settings on, so that the test split is only ever read for the final numbers."""

    size: int = Field(2000, gt=0, description="Validation rows drawn from the training pool.")
    seed: int = Field(1, description="Seed of the draw.")


class NoAugmentation(StageConfig):
    type: Literal["none"]
    name: str = "none"


class OversampleSpec(StageConfig):
    type: Literal["oversample"]
    name: str = "oversample"


class EDASpec(StageConfig):
    type: Literal["eda"]
    name: str = "eda"
    alpha: float = Field(0.1, gt=0, le=1, description="Share of words changed per row.")


class LMSpec(StageConfig):
    type: Literal["lm"]
    name: str = "lm"
    finetune: FinetuneConfig
    generate: GenerateConfig = GenerateConfig()
    pool_margin: float = Field(1.5, ge=1, description="Pool = largest ratio x examples x this, so filtered "
                                                       "cells still find enough rows.")
    prompts: Literal["labelled", "pool"] = Field(
        "labelled", description="Where prefix_words come from: the sample's labelled rows, or unlabelled rows "
                                "of the training pool (their labels unused; test and validation rows never).")

    @field_validator("finetune", "generate")
    @classmethod
    def _grid_owns_seed(cls, value: StageConfig) -> StageConfig:
        owned = {"seed", "n"} & value.model_fields_set
        if owned:
            raise ValueError(f"'{sorted(owned)[0]}' is set by the grid (seeds, ratios); remove it")
        return value

    @model_validator(mode="after")
    def _prompts_need_words(self) -> "LMSpec":
        if self.prompts == "pool" and self.generate.prefix_words == 0:
            raise ValueError("prompts 'pool' needs generate.prefix_words > 0")
        return self


AugmenterSpec = Annotated[Union[NoAugmentation, OversampleSpec, EDASpec, LMSpec], Field(discriminator="type")]


class QualityConfig(StageConfig):
    judge: str = Field("tfidf-lr", description="Classifier for label agreement, trained on real non-test rows.")
    judge_rows_per_class: int = Field(2000, gt=0, description="Rows per label the judge is trained on.")
    seed: int = Field(0, description="Seed of the judge's sample.")

    @field_validator("judge")
    @classmethod
    def _known(cls, value: str) -> str:
        from classifiers.factory import known_classifier

        return known_classifier(value)


class ExperimentConfig(StageConfig):
    name: str | None = Field(None, description="Results go to results/NAME (default: the YAML file's stem).")
    notes: str = Field("", description="Free text copied into the report: what was tried, and why.")
    data: DataConfig | None = Field(None, description="One dataset.")
    datasets: dict[str, DataConfig] | None = Field(None, description="Several datasets, by name.")
    test: TestSplit = TestSplit()
    validation: ValidationSplit | None = Field(
        None, description="Also score every cell on pool rows outside its training sample (report: validation lift).")
    examples_per_class: list[int] = Field(min_length=1)
    seeds: list[int] = Field(min_length=1)
    augmenters: list[AugmenterSpec] = Field(min_length=1)
    ratios: list[float] = Field([1.0], min_length=1, description="Synthetic rows per real row, per label.")
    filters: list[bool] = Field([False], min_length=1, description="Filter axis; applies to lm augmenters.")
    filter: FilterConfig = FilterConfig()
    classifiers: list[str] = Field(["tfidf-lr"], min_length=1)
    quality: QualityConfig = QualityConfig()

    @field_validator("examples_per_class", "ratios")
    @classmethod
    def _positive(cls, values: list[Any]) -> list[Any]:
        if any(v <= 0 for v in values):
            raise ValueError("every value must be positive")
        return _unique(values)

    @field_validator("seeds", "filters")
    @classmethod
    def _distinct(cls, values: list[Any]) -> list[Any]:
        return _unique(values)

    @field_validator("classifiers")
    @classmethod
    def _classifiers(cls, values: list[str]) -> list[str]:
        from classifiers.factory import known_classifier

        return _unique([known_classifier(v) for v in values])

    @model_validator(mode="after")
    def _consistent(self) -> "ExperimentConfig":
        if (self.data is None) == (self.datasets is None):
            raise ValueError("give exactly one of 'data' (one dataset) or 'datasets' (a mapping name -> data)")
        for name, data in self.named_datasets().items():
            if data.per_class is not None:
                raise ValueError(f"dataset '{name}': remove per_class; examples_per_class samples the data")
        names = [a.name for a in self.augmenters]
        if len(set(names)) != len(names):
            raise ValueError(f"augmenter names must be unique, got {', '.join(names)}")
        if not any(a.type == "none" for a in self.augmenters):
            raise ValueError("augmenters must include type 'none': it is the baseline every lift is paired with")
        return self

    def named_datasets(self) -> dict[str, DataConfig]:
        if self.datasets is not None:
            return dict(self.datasets)
        assert self.data is not None
        return {Path(self.data.path).stem or "data": self.data}


def _unique(values: list[Any]) -> list[Any]:
    if len(set(values)) != len(values):
        raise ValueError(f"values must be distinct, got {values}")
    return values


def load_experiment(path: Path) -> ExperimentConfig:
    """Read and validate an experiment YAML; every problem is one line naming the file."""
    path = Path(path)
    raw = read_yaml_mapping(path, "experiment config")
    try:
        config = ExperimentConfig(**raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {describe(exc)}") from None
    if config.name is None:
        config = config.model_copy(update={"name": path.stem})
    return config
