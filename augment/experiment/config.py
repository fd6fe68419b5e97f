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

from augment.baselines import LABEL_NAME_TEMPLATES
from augment.config import DataConfig, FinetuneConfig, GenerateConfig, StageConfig, describe, read_yaml_mapping
from augment.errors import ConfigError
from augment.filter import FilterConfig
from augment.finetune.adapt import AdaptConfig
from classifiers.base import WEIGHTED_CLASSIFIERS, ClassifierName


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
    """Rows to choose settings on, so that the test split is only ever read for the final numbers.

    Two selections. The default draws ``size`` rows from the training pool once: a
    research aid, since a user with 10 labelled rows per class has no 2000
    validation rows. ``honest_per_class`` is the few-shot mode a real user could
    run: validation rows come out of the labelled budget, so of each class's
    ``examples_per_class`` rows this many are held out for validation and the
    rest are trained on (``examples_per_class: [20]`` with ``honest_per_class: 10``
    is 10 train + 10 validation per class; LMs, filters and pseudo-labellers see
    only the 10).
    """

    size: int = Field(2000, gt=0, description="Validation rows drawn from the training pool (pool selection).")
    seed: int = Field(1, description="Seed of the draw, or of the honest split of each sample.")
    honest_per_class: int | None = Field(
        None, gt=0, description="Honest few-shot selection: validation rows per class taken out of each sample's "
                                "examples_per_class labelled rows (None: the pool draw of `size` rows).")

    @model_validator(mode="after")
    def _one_selection(self) -> "ValidationSplit":
        if self.honest_per_class is not None and "size" in self.model_fields_set:
            raise ValueError("give either 'size' (rows drawn from the pool) or 'honest_per_class' (rows taken "
                             "from the labelled budget), not both")
        return self

    @property
    def honest(self) -> bool:
        return self.honest_per_class is not None

    def key(self) -> dict[str, Any]:
        """What a cell key records; ``honest_per_class`` only when set, so earlier results stay valid."""
        return self.model_dump(exclude=None if self.honest else {"honest_per_class"})

    def describe(self) -> str:
        """The selection, in words, for the report."""
        if self.honest:
            return (f"honest few-shot: {self.honest_per_class} of each class's examples_per_class labelled rows "
                    f"are the validation set and the rest the training set (split seed {self.seed}); "
                    "examples_per_class is the whole labelled budget")
        return (f"{self.size} pool rows drawn once (seed {self.seed}), minus each sample's own rows: a research "
                "aid, more labelled rows than a few-shot user has")


class NoAugmentation(StageConfig):
    type: Literal["none"]
    name: str = "none"


class SyntheticRows(StageConfig):
    """An augmenter whose rows join the real ones in training."""

    weight: float = Field(1.0, gt=0, le=1, description=(
        "Sample weight of each of its rows where a real row weighs 1 (soft rows: a classifier leans on them less); "
        "only for classifiers that take sample weights (tfidf-lr, minilm-lr)."),
        exclude_if=lambda v: v == 1.0)   # unset, configs and cell keys stay as they were
    ratios: list[float] | None = Field(None, min_length=1, description=(
        "This augmenter's own ratio axis instead of the grid's (rows that cost nothing to add, such as "
        "pseudo-labels, are worth measuring at counts an LM pool could not afford)."),
        exclude_if=lambda v: v is None)

    @field_validator("ratios")
    @classmethod
    def _positive_ratios(cls, values: list[float] | None) -> list[float] | None:
        if values is not None and any(v <= 0 for v in values):
            raise ValueError("every ratio must be positive")
        return values

    def ratio_axis(self, grid: list[float]) -> list[float]:
        return self.ratios or grid


class OversampleSpec(SyntheticRows):
    type: Literal["oversample"]
    name: str = "oversample"


class EDASpec(SyntheticRows):
    type: Literal["eda"]
    name: str = "eda"
    alpha: float = Field(0.1, gt=0, le=1, description="Share of words changed per row.")
    synonyms: Literal["off", "auto", "wordnet"] = Field(
        "off", description="EDA's synonym replacement from the offline WordNet (`augment fetch wordnet`): 'wordnet' "
                           "requires it, 'auto' uses it when present, 'off' never (the report says which ran).")

    def resolved_synonyms(self) -> Literal["off", "wordnet"]:
        """What runs: 'auto' becomes 'wordnet' where the offline WordNet is present (a cheap file check)."""
        from augment import wordnet

        if self.synonyms == "wordnet" or (self.synonyms == "auto" and wordnet.available()):
            return "wordnet"
        return "off"


class LabelNameSpec(SyntheticRows):
    """Rows made of each label's name ("This text is negative."): what the label alone teaches."""

    type: Literal["label-name"]
    name: str = "label-name"
    templates: list[str] = Field(default_factory=lambda: list(LABEL_NAME_TEMPLATES), min_length=1,
                                 description="Row templates, each holding '{label}'; a label's rows cycle through them.")
    descriptions: dict[str, str] = Field(default_factory=dict, description=(
        "A label's name in words where the label is a code, e.g. {ABBR: an abbreviation}; one mapping may "
        "cover the labels of several datasets."))

    @field_validator("templates")
    @classmethod
    def _templates(cls, value: list[str]) -> list[str]:
        bad = [t for t in value if "{label}" not in t]
        if bad:
            raise ValueError(f"every template must hold '{{label}}', got {bad[0]!r}")
        return value


class OracleSpec(SyntheticRows):
    """The ceiling: real labelled rows in exactly the counts the synthetic rows would add."""

    type: Literal["oracle"]
    name: str = "oracle"


class PseudoLabelSpec(SyntheticRows):
    """What the unlabelled pool texts give without generation: labelled by a classifier trained
    on the cell's sample, the ``k`` rows per label it is surest of."""

    type: Literal["pseudo-label"]
    name: str = "pseudo-label"
    classifier: ClassifierName = Field("tfidf-lr", description="Labeller trained on the cell's real rows: "
                                                               "tfidf-lr, minilm-lr, setfit, llm-judge:MODEL[:K].")
    candidates: int | None = Field(None, gt=0, description=(
        "Label a seeded sample of this many pool texts instead of all of them (an embedding labeller takes "
        "minutes per seed on 20k texts; the pool-by-label prompts score a 4000-text sample)."))
    rounds: int = Field(1, ge=1, le=2, description=(
        "Self-training rounds: 2 retrains the labeller on the real rows plus, per label, as many of its surest "
        "round-1 pseudo-labels as the sample has real rows, then labels the texts again."),
        exclude_if=lambda v: v == 1)


class LMSpec(SyntheticRows):
    type: Literal["lm"]
    name: str = "lm"
    finetune: FinetuneConfig
    adapt: AdaptConfig | None = Field(
        None, description="First continue pre-training finetune.model on unlabelled pool texts (never test or "
                          "validation rows), once per dataset; every sample's LM starts from the adapted model.")
    adapt_texts: int = Field(5000, gt=1, description="Pool texts the adaptation reads (a seeded sample).")
    generate: GenerateConfig = GenerateConfig()
    pool_margin: float = Field(1.5, ge=1, description="Pool = largest ratio x examples x this, so filtered "
                                                       "cells still find enough rows.")
    prompts: Literal["labelled", "pool", "pool-by-label"] = Field(
        "labelled", description="Where prefix_words come from: the sample's labelled rows; unlabelled rows of the "
                                "training pool (test and validation rows never); or pool rows that the fidelity "
                                "classifier (trained on the sample) assigns to each label, most confident first.")
    filter: FilterConfig | None = Field(
        None, description="This augmenter's filter in the filtered cells (default: the experiment's `filter:`), so "
                          "one run compares filters on the same LMs and pools.")

    @field_validator("finetune", "generate")
    @classmethod
    def _grid_owns_seed(cls, value: StageConfig) -> StageConfig:
        owned = {"seed", "n"} & value.model_fields_set
        if owned:
            raise ValueError(f"'{sorted(owned)[0]}' is set by the grid (seeds, ratios); remove it")
        return value

    @field_validator("adapt")
    @classmethod
    def _adapt_starts_from_finetune_model(cls, value: AdaptConfig | None) -> AdaptConfig | None:
        if value is not None and "model" in value.model_fields_set:
            raise ValueError("'model' is finetune.model (the adaptation's start); remove it from adapt")
        return value

    @model_validator(mode="after")
    def _prompts_need_words(self) -> "LMSpec":
        if self.prompts != "labelled" and self.generate.prefix_words == 0:
            raise ValueError(f"prompts '{self.prompts}' needs generate.prefix_words > 0")
        if self.adapt is not None and self.finetune.backend != "torch":
            raise ValueError("adapt needs the torch back-end")
        if self.adapt is not None and self.finetune.mode == "instruct":
            raise ValueError("adapt does not apply to mode instruct (the chat model is used as it is)")
        return self

    def adapt_config(self) -> AdaptConfig | None:
        return None if self.adapt is None else self.adapt.model_copy(update={"model": self.finetune.model})


AugmenterSpec = Annotated[Union[NoAugmentation, OversampleSpec, EDASpec, LabelNameSpec, LMSpec, OracleSpec,
                                PseudoLabelSpec],
                          Field(discriminator="type")]


class QualityConfig(StageConfig):
    judge: ClassifierName = Field("tfidf-lr", description="Classifier for label agreement, trained on real "
                                                          "non-test rows.")
    judge_rows_per_class: int = Field(2000, gt=0, description="Rows per label the judge is trained on.")
    seed: int = Field(0, description="Seed of the judge's sample.")


class ExperimentConfig(StageConfig):
    name: str | None = Field(None, description="Results go to results/NAME (default: the YAML file's stem).")
    notes: str = Field("", description="Free text copied into the report: what was tried, and why.")
    data: DataConfig | None = Field(None, description="One dataset.")
    datasets: dict[str, DataConfig] | None = Field(None, description="Several datasets, by name.")
    test: TestSplit = TestSplit()
    validation: ValidationSplit | None = Field(
        None, description="Also score every cell on validation rows (report: validation lift): a pool draw, or "
                          "with honest_per_class rows taken out of each sample's labelled budget.")
    examples_per_class: list[int] = Field(min_length=1)
    seeds: list[int] = Field(min_length=1)
    augmenters: list[AugmenterSpec] = Field(min_length=1)
    ratios: list[float] = Field([1.0], min_length=1, description="Synthetic rows per real row, per label.")
    filters: list[bool] = Field([False], min_length=1, description="Filter axis; applies to lm augmenters.")
    filter: FilterConfig = FilterConfig()
    classifiers: list[ClassifierName] = Field(["tfidf-lr"], min_length=1)
    quality: QualityConfig = QualityConfig()
    precision: Literal["fp32", "bf16", "auto"] = Field(
        "fp32", exclude_if=lambda v: v == "fp32",  # unset: keys and records of older results still match
        description="Format the LMs train and generate in (an LM's own finetune.precision wins): fp32 keeps "
                    "results the same on every machine; auto takes the machine's faster format, and the "
                    "resolved one goes into the artefact keys.")

    @field_validator("examples_per_class", "ratios")
    @classmethod
    def _positive(cls, values: list[Any]) -> list[Any]:
        if any(v <= 0 for v in values):
            raise ValueError("every value must be positive")
        return _unique(values)

    @field_validator("seeds", "filters", "classifiers")
    @classmethod
    def _distinct(cls, values: list[Any]) -> list[Any]:
        return _unique(values)

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
        own = self.own_filters()
        if own and True not in self.filters:
            raise ValueError(f"augmenter '{next(iter(own))}' sets its own filter, but filters is {self.filters}: "
                             "add true")
        weighted = [a for a in self.augmenters if getattr(a, "weight", 1.0) != 1.0]
        unweighted = [c for c in self.classifiers if c not in WEIGHTED_CLASSIFIERS]
        if weighted and unweighted:
            raise ValueError(f"augmenter '{weighted[0].name}' weighs its rows {weighted[0].weight:g}, but classifier "
                             f"'{unweighted[0]}' takes no sample weights (those that do: "
                             f"{', '.join(WEIGHTED_CLASSIFIERS)})")
        honest = self.honest_validation()
        if honest and honest >= min(self.examples_per_class):
            raise ValueError(f"validation.honest_per_class {honest} takes the whole labelled budget: it must be "
                             f"below every examples_per_class (smallest {min(self.examples_per_class)}), "
                             "the rest is the training set")
        return self

    def own_filters(self) -> dict[str, FilterConfig]:
        """The augmenters (by name) that bring their own filter in place of the experiment's."""
        return {a.name: a.filter for a in self.augmenters if getattr(a, "filter", None) is not None}

    def filter_for(self, augmenter: Any) -> FilterConfig:
        """The filter an augmenter's filtered cells run: its own, or the experiment's."""
        return getattr(augmenter, "filter", None) or self.filter

    def honest_validation(self) -> int:
        """Validation rows per class taken out of each sample (0 unless the honest selection is on)."""
        return (self.validation.honest_per_class or 0) if self.validation is not None else 0

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
