"""The one-command path: a labelled file in, real + synthetic rows out (``augment run``).

It chains the stages a user would otherwise run by hand, with the settings that
won on validation (README, "Does it help?"): adapt the base LM on the user's
unlabelled texts when there are any, fine-tune on the labelled rows, generate
``candidates`` x the rows wanted per label (prompted with unlabelled texts the
teacher, by default the fidelity classifier, gives that label), filter, and keep
each label's rows the teacher is surest of (LAMBADA's top-k). ``source: auto``
is what experiments/teachers.yaml recommends for sentiment: given unlabelled
texts, the Qwen-1.5B judge labels them and each label gets the texts it is
surest of (GAL's "annotate"); not the default, since the judge's labels lost on
TREC and SMS spam (experiments/suite.yaml).

Everything it trains or generates lives in a work folder beside the output
(``OUT.work/``), one sub-folder per stage, each resumable the way its own
command is; ``--resume`` skips what is finished. The work folder holds the
fine-tuned run directory, so ``augment generate --run OUT.work/run`` makes
more rows later without training again.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, Field, model_validator

from augment.config import FinetuneConfig, GenerateConfig, StageConfig, build, merge
from augment.data import LABEL, TEXT, hold_out_per_class, label_counts
from augment.errors import ConfigError, DataError
from augment.filter import FilterConfig, FilterReport, filter_synthetic, pseudo_labelled
from augment.finetune import finetuned_once, validate
from augment.finetune.adapt import AdaptConfig, adapted_once
from augment.files import (check_output_path, hash_json, holds_lock, provenance, read_json, read_jsonl, slug,
                           write_json_atomic)
from augment.resume import open_work_folder
from augment.rundir import RunDir
from classifiers.base import ClassifierName

log = logging.getLogger(__name__)

SYNTHETIC = "synthetic"
RECIPE_JSON = "recipe.json"
STAGES_JSON = "stages.json"
PROMPT_CANDIDATES = 4000   # unlabelled texts scored for label-aware prompts (scoring 100k costs minutes)
MIN_PROMPTS_PER_LABEL = 200  # so that a label with few wanted rows still gets varied openings
RECOMMENDED_TEACHER = "llm-judge:qwen2.5-coder-1.5b-instruct"   # experiments/teachers.yaml, on validation


class RecipeConfig(StageConfig):
    """What ``augment run`` does; the generation stages' defaults are those of ``lm-adapted-bylabel-t11``
    with the filter on, the LM recipe with the best validation lift in experiments/tweets-adapt.yaml;
    ``source: auto`` is the teacher recipe of experiments/teachers.yaml, opt-in."""

    source: Literal["auto", "generate", "pseudo-label"] = Field(
        "generate", description="Where the added rows come from: an LM fine-tuned on the labelled rows (generate), "
                                "or unlabelled texts the teacher labels (pseudo-label: needs unlabelled texts; no LM "
                                "trains; the rows are real texts, their labels the teacher's). auto: the recipe "
                                "experiments/teachers.yaml recommends for sentiment, pseudo-label with unlabelled "
                                "texts, else generate, the teacher being the Qwen-1.5B judge when fetched; not the "
                                "default, because the judge's labels cost 2-16 points on TREC and SMS "
                                "(experiments/suite.yaml).")
    teacher: ClassifierName | None = Field(None, description=(
        "The classifier that knows more than yours: it labels the unlabelled texts (pseudo-label), or picks each "
        "label's prompt texts and chooses the generated rows (generate: it is the fidelity classifier). Default: "
        f"filter.fidelity_classifier; with source auto, {RECOMMENDED_TEACHER} when fetched (else a notice)."))
    pseudo_candidates: int = Field(2000, gt=0, description="pseudo-label: unlabelled texts the teacher labels "
                                                            "(a seeded sample; a 1.5B judge costs 0.13-0.3 s per text on 2 CPU cores).")
    ratio: float = Field(3.0, gt=0, description="Synthetic rows per real row of each label.")
    candidates: float = Field(3.0, ge=1, description="Rows generated per row kept; the filters and the "
                                                      "fidelity top-k choose among them.")
    prompts: Literal["auto", "labelled", "pool", "pool-by-label"] = Field(
        "auto", description="Where prompts' first words come from: the labelled rows; the unlabelled texts; or "
                            "the unlabelled texts the fidelity classifier gives each label. auto: pool-by-label "
                            "with unlabelled texts, else labelled.")
    adapt: bool = Field(True, description="Adapt the base LM on the unlabelled texts first (when given).")
    adapt_texts: int = Field(5000, gt=1, description="Unlabelled texts the adaptation reads (a seeded sample).")
    seed: int = Field(0, description="Seed of every sample, the fine-tunes and generation.")
    check: int = Field(0, ge=0, description=(
        "Hold out this many labelled rows per label, make the synthetic rows from the rest, and keep them only "
        "if check_classifier trained with them scores a higher macro-F1 on the held-out rows than trained "
        "without (the choice experiments/tweets-honest.yaml measured). 0: no check."))
    check_classifier: ClassifierName | None = Field(None, description="The check's classifier: tfidf-lr, minilm-lr, setfit, "
                                                           "llm-judge:MODEL[:K] "
                                                           "(default: the fidelity classifier).")
    adapt_config: AdaptConfig = Field(default_factory=lambda: AdaptConfig(
        model="smollm2-135m", max_steps=120, batch_size=8, block_size=64, learning_rate=1e-4,
        eval_fraction=0.02, eval_steps=40))
    finetune: FinetuneConfig = Field(default_factory=lambda: FinetuneConfig(
        model="smollm2-135m", max_steps=20, batch_size=4, block_size=64, learning_rate=2e-4,
        eval_fraction=0.2, eval_steps=5, early_stopping=2))
    generate: GenerateConfig = Field(default_factory=lambda: GenerateConfig(
        max_new_tokens=32, temperature=1.1, top_k=50, top_p=0.95, prefix_words=3))
    filter: FilterConfig = Field(default_factory=lambda: FilterConfig(
        fidelity="top-k", fidelity_top_k=1, fidelity_classifier="minilm-lr"))

    @model_validator(mode="after")
    def _consistent(self) -> "RecipeConfig":
        if self.prompts in ("pool", "pool-by-label") and self.generate.prefix_words == 0:
            raise ValueError(f"prompts '{self.prompts}' needs generate.prefix_words > 0")
        if self.adapt and self.finetune.backend != "torch":
            raise ValueError("adapt needs the torch back-end (set adapt: false for gpt-2-simple)")
        return self

    def resolved(self, has_unlabelled: bool, unfetched: Callable[[str], str | None]) -> tuple["RecipeConfig", list[str]]:
        """The concrete source and teacher that ``auto`` and an unset teacher stand for, and the notices a
        user reads when a choice is not the recommended one. The teacher becomes the fidelity classifier;
        the check keeps the student (a zero-shot judge learns nothing from added rows, so it would never
        keep them). ``unfetched``: a model's fetch command, or None when it is on this machine."""
        source, teacher, notices = self.source, self.teacher, []
        if source == "auto":
            source = "pseudo-label" if has_unlabelled else "generate"
            if source == "generate":
                notices.append("no unlabelled texts: an LM fine-tuned on your rows writes new ones (with "
                               "--unlabelled FILE the teacher labels your domain's own texts instead, which gained "
                               "more on sentiment in experiments/teachers.yaml)")
        student = self.filter.fidelity_classifier
        if teacher is None and self.source != "auto":
            teacher = student
        elif teacher is None:
            judge = RECOMMENDED_TEACHER.removeprefix("llm-judge:")
            fetch = unfetched(judge)
            teacher = RECOMMENDED_TEACHER if fetch is None else student
            if fetch is not None:
                role = "labels the unlabelled texts" if source == "pseudo-label" else "chooses the generated rows"
                notices.append(f"{judge} is not fetched ({fetch}): {student} {role} instead of the recommended "
                               f"teacher {RECOMMENDED_TEACHER}, and gains less")
        return self.model_copy(update={
            "source": source, "teacher": teacher, "check_classifier": self.check_classifier or student,
            "filter": self.filter.model_copy(update={"fidelity_classifier": teacher})}), notices

    def prompt_source(self, has_unlabelled: bool) -> str:
        if self.prompts == "auto":
            return "pool-by-label" if has_unlabelled and self.generate.prefix_words else "labelled"
        return self.prompts


SECTION_FIELDS = {"adapt": "adapt_config", "finetune": "finetune", "generate": "generate", "filter": "filter"}


def recipe_config(sections: Mapping[str, Mapping[str, Any]], where: Callable[[str], str],
                  **given: Mapping[str, Any]) -> RecipeConfig:
    """Layers, later winning: the recipe's defaults, a YAML file's sections, the options typed.

    A section overrides single keys of the recipe's stage settings (``finetune: {max_steps: 40}``
    keeps the recipe's model and learning rate), which nested pydantic defaults alone would not.
    """
    defaults = RecipeConfig()
    values: dict[str, Any] = merge({k: v for k, v in defaults.model_dump().items() if k not in SECTION_FIELDS.values()},
                                   sections.get("recipe"), given.get("recipe"))
    for section, field in SECTION_FIELDS.items():
        stage = getattr(defaults, field)
        values[field] = build(type(stage), where(section), **merge(
            stage.model_dump(exclude_unset=False), sections.get(section), given.get(section)))
    named = merge(sections.get("filter"), given.get("filter")).get("fidelity_classifier")
    if named is not None:   # a fidelity classifier the user names is the teacher of generated rows
        if values.get("teacher") not in (None, named):
            raise ConfigError(f"{where('recipe')}: teacher '{values['teacher']}' and fidelity_classifier '{named}' "
                              "name the same role (the classifier that chooses the rows); give one")
        values["teacher"] = named
    if values.get("source") == "auto" and (generating := generation_settings(sections, given)):
        log.info("source: generate (you set %s, which only generation reads)", ", ".join(generating))
        values["source"] = "generate"
    return build(RecipeConfig, where("recipe"), **values)


GENERATION_KEYS = {"recipe": {"candidates", "prompts", "adapt", "adapt_texts"},
                   "adapt": None, "finetune": None, "generate": None}   # None: every key but precision


def generation_settings(sections: Mapping[str, Mapping[str, Any]], given: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The generation-only settings a user named: with any of them, ``source: auto`` means generate,
    so ``--mode instruct`` with unlabelled texts is not silently turned into pseudo-labels."""
    named = []
    for section, keys in GENERATION_KEYS.items():
        for key in merge(sections.get(section), given.get(section)):
            if (key in keys) if keys is not None else key != "precision":
                named.append(f"{section}.{key}")
    return named


class StageTime(BaseModel):
    stage: str
    cached: bool
    wall_s: float


class CheckRecord(BaseModel):
    """The held-out check: macro-F1 on the held-out rows of a classifier trained without and with the
    synthetic rows; they are written only when ``kept``."""

    rows_per_label: int
    classifier: str
    macro_f1_without: float
    macro_f1_with: float
    kept: bool


class RecipeRecord(BaseModel):
    """``OUT.provenance.json``: what made each synthetic row, and what it cost."""

    output: str
    data: dict[str, Any]
    unlabelled: dict[str, Any] | None
    real_rows: dict[str, int]
    synthetic_rows: dict[str, int]
    source: Literal["generate", "pseudo-label"] = "generate"
    candidates: dict[str, int]
    prompts: str | None
    adapted: dict[str, Any] | None
    run_dir: str | None
    filter: FilterReport
    check: CheckRecord | None = None
    stages: list[StageTime]
    config: dict[str, Any]
    provenance: dict[str, Any]


@dataclass(frozen=True)
class Added:
    """The rows a source adds (each label's first ``want`` kept) and how they were made."""

    kept: pd.DataFrame
    candidates: dict[str, int]
    report: FilterReport
    prompts: str | None = None
    adapted: dict[str, Any] | None = None
    run_dir: str | None = None


@dataclass(frozen=True)
class RecipeResult:
    rows: pd.DataFrame          # what was written: text, label, synthetic
    record: RecipeRecord


def work_dir(out: Path) -> Path:
    return out.with_name(out.name + ".work")


def record_path(out: Path) -> Path:
    return out.with_name(out.name + ".provenance.json")


def wanted_rows(real: Mapping[str, int], ratio: float) -> dict[str, int]:
    return {label: max(1, math.ceil(count * ratio)) for label, count in real.items()}


@holds_lock("out")
def run_recipe(frame: pd.DataFrame, out: Path, config: RecipeConfig, *, data_info: dict[str, Any],
               unlabelled: Sequence[str] | None = None, unlabelled_info: dict[str, Any] | None = None,
               work: Path | None = None, resume: bool = False, overwrite: bool = False,
               progress: bool = False) -> RecipeResult:
    """Write ``frame``'s rows plus the recipe's synthetic rows to ``out`` (a ``synthetic`` column
    tells them apart) and ``OUT.provenance.json``; returns the record."""
    from augment.generate.job import output_format, write_table
    from augment.models import unfetched

    out = Path(out)
    output_format(out)
    check_output_path(out, overwrite)
    work = Path(work) if work is not None else work_dir(out)
    texts = [t for t in (unlabelled or []) if t.strip()]
    config, notices = config.resolved(bool(texts), unfetched)
    source = str(data_info.get("path", "data"))
    pseudo = config.source == "pseudo-label"
    prompts = None if pseudo else config.prompt_source(bool(texts))
    if not texts and (pseudo or prompts != "labelled"):
        what = "source 'pseudo-label'" if pseudo else f"prompts '{prompts}'"
        raise ConfigError(f"{what} needs unlabelled texts (--unlabelled FILE)")
    for notice in notices:
        log.warning("%s", notice)
    given = label_counts(frame)
    if len(given) < 2:
        raise DataError(f"{source}: augment run needs at least 2 labels, got {sorted(given)}")
    train, held = (frame, None) if not config.check else hold_out_per_class(
        frame, config.check, config.seed, f"{source}: --check {config.check}")
    if not pseudo:
        validate(train, config.finetune,
                 source if held is None else f"{source} less {config.check} check rows per label")
    real = label_counts(train)
    want = wanted_rows(real, config.ratio)
    started = time.perf_counter()
    _check_judges(config)
    classifier = _fidelity_classifier(train, config)  # cheap, and a missing extra fails before any training
    per_label = None if pseudo else _prompt_texts(texts, prompts, classifier, want, config)
    if per_label is not None:
        _check_fits(config, train, per_label)
    open_work_folder(work, _work_key(frame, texts, config), record=RECIPE_JSON, what="`augment run`", resume=resume,
                     overwrite=overwrite)
    stages: list[StageTime] = []
    if per_label is None:
        added = _pseudo_labelled_rows(work, train, frame, texts, want, config, classifier, stages)
    else:
        added = _generated_rows(work, train, frame, texts, want, config, classifier, (prompts, per_label),
                                data_info, progress, stages)
    kept = added.kept
    _warn_short(kept, want, "recipe.pseudo_candidates" if per_label is None else "candidates")
    check = None if held is None else _check(train, kept, held, config, classifier)
    if check is not None and not check.kept:
        kept = kept.iloc[:0]
    output = pd.concat([frame[[TEXT, LABEL]].assign(**{SYNTHETIC: False}),
                        kept[[TEXT, LABEL]].assign(**{SYNTHETIC: True})], ignore_index=True)
    stages.append(StageTime(stage="elapsed", cached=False, wall_s=round(time.perf_counter() - started, 2)))
    record = RecipeRecord(
        output=str(out), data=data_info, unlabelled=None if not texts else {
            **(unlabelled_info or {}), "texts": len(texts), "hash": hash_json(texts)},
        real_rows=given, synthetic_rows=label_counts(kept), source=config.source, candidates=added.candidates,
        prompts=added.prompts, adapted=added.adapted, run_dir=added.run_dir, filter=added.report, check=check,
        stages=stages,
        config=config.model_dump(), provenance=provenance(None))
    write_table(output, out, overwrite=True)
    write_json_atomic(record_path(out), record.model_dump())
    return RecipeResult(output, record)


def _generated_rows(work: Path, train: pd.DataFrame, frame: pd.DataFrame, texts: list[str],
                    want: Mapping[str, int], config: RecipeConfig, classifier: Any,
                    prompts: tuple[str, Mapping[str, list[str] | None]], data_info: dict[str, Any], progress: bool,
                    stages: list[StageTime]) -> Added:
    """Adapt, fine-tune, generate ``candidates`` x the rows wanted, filter, keep each label's first ``want``.
    ``prompts``: where the prompts come from, and each label's prompt texts."""
    prompt_source, per_label = prompts
    start_model, adapted = None, None
    if texts and config.adapt and config.finetune.mode != "instruct":   # instruct: the chat model as it is
        start_model, adapted = _adapt(work, texts, config, progress, stages)
    run = _finetune(work, train, config, data_info, start_model, progress, stages)
    candidates = _generate(work, run, {label: math.ceil(n * config.candidates) for label, n in sorted(want.items())},
                           config, per_label, stages)
    pool = pd.concat(candidates.values(), ignore_index=True)
    result = filter_synthetic(pool[[TEXT, LABEL]], frame[[TEXT, LABEL]], config.filter.keeping(want), seed=config.seed,
                              classifier=classifier)
    return Added(_first(result.kept, want), {l: len(c) for l, c in candidates.items()}, result.report,
                 prompts=prompt_source, adapted=adapted, run_dir=str(run.root))


def _pseudo_labelled_rows(work: Path, train: pd.DataFrame, frame: pd.DataFrame, texts: list[str],
                          want: Mapping[str, int], config: RecipeConfig, fidelity: Any,
                          stages: list[StageTime]) -> Added:
    """The unlabelled texts the teacher is surest of, per label (GAL's "annotate with the best classifier"):
    the filters minus label fidelity (the teacher chose the labels) drop duplicates and copies of labelled rows."""
    began = time.perf_counter()
    name = config.filter.fidelity_classifier   # the teacher, once resolved; ``fidelity`` is it fitted
    if name.startswith("llm-judge:"):
        log.info("%s labels %d unlabelled texts (a 1.5B judge: 0.13-0.3 s each on 2 CPU cores)", name,
                 min(len(texts), config.pseudo_candidates))
    labelled = set(frame[TEXT])
    fresh = [t for t in dict.fromkeys(texts) if t not in labelled]
    sample = random.Random(f"pseudo:{config.seed}").sample(fresh, min(len(fresh), config.pseudo_candidates))
    ordered = pseudo_labelled(sample, fidelity)
    log.info("%s labelled %d unlabelled texts: %s", name, len(ordered), dict(label_counts(ordered)))
    result = filter_synthetic(ordered[[TEXT, LABEL]], frame[[TEXT, LABEL]],
                              config.filter.model_copy(update={"fidelity": "off", "fidelity_relabel": None}),
                              seed=config.seed)
    _timed(work, stages, "pseudo-label", False, began)
    return Added(_first(result.kept, want), label_counts(ordered), result.report)


def _first(rows: pd.DataFrame, want: Mapping[str, int]) -> pd.DataFrame:
    return pd.concat([rows[rows[LABEL] == l].head(want[l]) for l in sorted(want)], ignore_index=True)


def _fitted(classifier: Any, frame: pd.DataFrame, config: RecipeConfig) -> Any:
    """A classifier name trained on ``frame`` (a fitted estimator is used as given), in the recipe's format."""
    from classifiers import fitted_classifier

    return fitted_classifier(classifier, frame[TEXT].tolist(), frame[LABEL].tolist(), config.seed,
                             precision=config.finetune.precision)


def _check(train: pd.DataFrame, synthetic: pd.DataFrame, held: pd.DataFrame, config: RecipeConfig,
           fidelity: Any) -> CheckRecord:
    """The per-draw choice of tweets-honest.yaml: ties keep no synthetic rows. ``fidelity``: the
    classifier already fitted on ``train``, reused as the model without synthetic rows when it is
    the check's classifier."""
    from classifiers import evaluate

    name = config.check_classifier or config.filter.fidelity_classifier
    augmented = pd.concat([train[[TEXT, LABEL]], synthetic[[TEXT, LABEL]]], ignore_index=True)
    scores = []
    for rows, model in ((train, fidelity if name == config.filter.fidelity_classifier else name), (augmented, name)):
        scores.append(evaluate(_fitted(model, rows, config), held[TEXT].tolist(), held[LABEL].tolist())["macro_f1"])
    without, with_rows = scores
    check = CheckRecord(rows_per_label=config.check, classifier=name, macro_f1_without=round(without, 4),
                        macro_f1_with=round(with_rows, 4), kept=with_rows > without and not synthetic.empty)
    if not check.kept:
        log.warning("check: %s scores %.3f macro-F1 on the %d held-out rows per label with the synthetic rows "
                    "and %.3f without; writing your rows only", name, with_rows, config.check, without)
    return check


def _check_judges(config: RecipeConfig) -> None:
    """A check classifier or teacher that is a base LM's judge fails here, not after the LM has trained."""
    from classifiers.base import judge_name, member_names
    from classifiers.judge import check_judge_model

    names = {config.filter.fidelity_classifier, config.check_classifier or "tfidf-lr", config.teacher or "tfidf-lr"}
    for name in sorted(member_names(names)):
        if (judge := judge_name(name)) is not None:
            check_judge_model(judge.model)


def _fidelity_classifier(frame: pd.DataFrame, config: RecipeConfig) -> Any:
    return _fitted(config.filter.fidelity_classifier, frame, config)


def _prompt_texts(texts: list[str], prompts: str, classifier: Any, want: Mapping[str, int],
                  config: RecipeConfig) -> dict[str, list[str] | None]:
    """Each label's prompt texts (None: its own training rows)."""
    if prompts == "labelled":
        return dict.fromkeys(want)
    if prompts == "pool":
        return dict.fromkeys(want, texts)
    rows = {label: math.ceil(n * config.candidates) for label, n in want.items()}
    chosen = prompts_by_label(texts, classifier, rows, config.seed)
    for label, picked in chosen.items():
        if not picked:
            raise DataError(f"the fidelity classifier gives none of the unlabelled texts the label '{label}'; "
                            "use prompts 'pool' or 'labelled'")
    return dict(chosen)


def prompts_by_label(texts: list[str], classifier: Any, rows: Mapping[str, int], seed: int) -> dict[str, list[str]]:
    """Label-aware prompts: the unlabelled texts ``classifier`` gives each label, surest first,
    at least ``MIN_PROMPTS_PER_LABEL`` (or the label's rows) of them, so a label's openings are its own."""
    sample = random.Random(f"prompts:{seed}").sample(texts, min(len(texts), PROMPT_CANDIDATES))
    ordered = pseudo_labelled(sample, classifier)
    return {label: ordered.loc[ordered[LABEL].astype(str) == label, TEXT].head(max(n, MIN_PROMPTS_PER_LABEL)).tolist()
            for label, n in rows.items()}


def _check_fits(config: RecipeConfig, frame: pd.DataFrame, per_label: Mapping[str, list[str] | None]) -> None:
    """The prompts plus max_new_tokens fit the base model (the fine-tunes share its context), before training."""
    from augment.generate.context import check_label_fits
    from augment.models import load_tokenizer, resolve_model

    if config.finetune.backend != "torch":
        return
    path = resolve_model(config.finetune.model, config.finetune.trust_pickle)
    if not Path(path).is_dir():
        return  # a hub id: the generate stage checks the fine-tuned model
    tokenizer = load_tokenizer(path)
    for label, given in per_label.items():
        texts = given if given is not None else frame.loc[frame[LABEL] == label, TEXT].tolist()
        check_label_fits(Path(path), tokenizer, tokenizer.eos_token_id, config.finetune.mode, label, texts,
                         config.generate)


def _work_key(frame: pd.DataFrame, texts: list[str], config: RecipeConfig) -> dict[str, Any]:
    return {"rows": hash_json(frame[[TEXT, LABEL]].to_dict("records")), "unlabelled": hash_json(texts),
            "config": config.model_dump()}


def _timed(work: Path, stages: list[StageTime], stage: str, cached: bool, began: float) -> None:
    """A stage's cost; one reused on resume reports what it cost when it ran (kept in ``stages.json``)."""
    path = work / STAGES_JSON
    earlier = read_json(path, "stage times", default={})
    wall = earlier.get(stage) if cached and stage in earlier else round(time.perf_counter() - began, 2)
    stages.append(StageTime(stage=stage, cached=cached, wall_s=wall))
    write_json_atomic(path, {**earlier, stage: wall})


def _adapt(work: Path, texts: list[str], config: RecipeConfig, progress: bool,
           stages: list[StageTime]) -> tuple[Path, dict[str, Any]]:
    out = work / "adapted"
    began = time.perf_counter()
    if len(texts) > config.adapt_texts:
        texts = random.Random(config.seed).sample(texts, config.adapt_texts)
    adapt_config = config.adapt_config.model_copy(update={"model": config.finetune.model, "seed": config.seed})
    record, cached = adapted_once(texts, out, adapt_config, source="--unlabelled", progress=progress)
    _timed(work, stages, "adapt", cached, began)
    return out, {"dir": str(out), "texts": record.texts, "tokens": record.tokens, "steps": record.steps,
                 "eval_loss": record.eval_loss, "best_step": record.best_step, "separator": record.separator.token}


def _finetune(work: Path, frame: pd.DataFrame, config: RecipeConfig, data_info: dict[str, Any],
              start: Path | None, progress: bool, stages: list[StageTime]) -> RunDir:
    run = RunDir(work / "run")
    began = time.perf_counter()
    ft = config.finetune.model_copy(update={"seed": config.seed, **({"model": str(start)} if start else {})})
    _, cached = finetuned_once(frame, run.root, ft, data_info=data_info, progress=progress)
    _timed(work, stages, "finetune", cached, began)
    return run


def _generate(work: Path, run: RunDir, wanted: Mapping[str, int], config: RecipeConfig,
              prompts: Mapping[str, list[str] | None], stages: list[StageTime]) -> dict[str, pd.DataFrame]:
    """Each label's candidates, kept in ``candidates/LABEL.jsonl`` once complete (and in parts while
    they are sampled), so a resumed run samples only what it has not."""
    from augment.generate import Generators, Parts, generate_rows, parts_dir, write_table

    gens = None
    candidates = {}
    for label, n in wanted.items():
        out = work / "candidates" / f"{slug(label)}.jsonl"
        began = time.perf_counter()
        cached = out.exists()
        if cached:
            candidates[label] = pd.DataFrame(read_jsonl(out), columns=[TEXT, LABEL]).astype(str)
        else:
            log.info("generating %d candidate rows for '%s'", n, label)
            gens = gens or Generators.open(run, list(wanted), config.finetune.precision)   # one base for all labels
            settings = config.generate.model_copy(update={"n": n, "seed": config.seed})
            given = prompts[label]
            parts = Parts.open(parts_dir(out), gens, [label], settings, resume=True,
                               prefixes_hash=None if given is None else hash_json(given))
            rows = generate_rows(gens, [label], settings, prefix_texts=None if given is None else {label: given},
                                 parts=parts).rows
            write_table(rows, out)
            parts.remove()
            candidates[label] = rows[[TEXT, LABEL]].astype(str)
        _timed(work, stages, f"generate {label}", cached, began)
    return candidates


def _warn_short(kept: pd.DataFrame, want: Mapping[str, int], more: str) -> None:
    have = label_counts(kept)
    for label, n in want.items():
        if have.get(label, 0) < n:
            log.warning("'%s': %d synthetic rows passed the filters, %d wanted; raise %s for more",
                        label, have.get(label, 0), n, more)
