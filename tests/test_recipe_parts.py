"""The recipe's small decisions, without training anything: how many rows each label wants, where prompts
come from, which unlabelled texts prompt which label, and the settings it refuses."""

from __future__ import annotations

import logging

import pandas as pd
import pytest

from augment.errors import ConfigError, DataError
from augment.recipe import (MIN_PROMPTS_PER_LABEL, RECOMMENDED_TEACHER, RecipeConfig, _prompt_texts, _warn_short, prompts_by_label,
                            recipe_config, wanted_rows)
from tests.conftest import NEG, POS


@pytest.fixture(scope="module")
def classifier():
    from classifiers import fitted_classifier

    return fitted_classifier("tfidf-lr", POS + NEG, ["pos"] * len(POS) + ["neg"] * len(NEG), 0)


def unlabelled(n: int = 300) -> list[str]:
    return [f"so happy today {i}" if i % 3 else f"awful day {i}" for i in range(n)]


def test_each_label_wants_ratio_times_its_rows_rounded_up_and_at_least_one():
    assert wanted_rows({"pos": 10, "neg": 3}, 3.0) == {"pos": 30, "neg": 9}
    assert wanted_rows({"pos": 5, "neg": 1}, 0.5) == {"pos": 3, "neg": 1}
    assert wanted_rows({"pos": 1}, 0.01) == {"pos": 1}


@pytest.mark.parametrize(("prompts", "prefix_words", "has_unlabelled", "source"), [
    ("auto", 3, True, "pool-by-label"), ("auto", 3, False, "labelled"), ("auto", 0, True, "labelled"),
    ("pool", 3, False, "pool"), ("labelled", 3, True, "labelled")])
def test_auto_prompts_use_unlabelled_texts_only_when_there_are_some_and_prompts_take_their_words(
        prompts: str, prefix_words: int, has_unlabelled: bool, source: str):
    config = recipe_config({}, lambda s: s, recipe={"prompts": prompts}, generate={"prefix_words": prefix_words})
    assert config.prompt_source(has_unlabelled) == source


def fetched(name: str) -> None:
    return None


def not_fetched(name: str) -> str:
    return f"`augment fetch {name}` (3.1 GB download)"


def test_auto_pseudo_labels_unlabelled_texts_with_the_recommended_judge_when_it_is_fetched():
    config, notices = RecipeConfig(source="auto").resolved(True, fetched)
    assert (config.source, config.teacher, config.filter.fidelity_classifier, notices) == (
        "pseudo-label", RECOMMENDED_TEACHER, RECOMMENDED_TEACHER, [])
    assert config.check_classifier == "minilm-lr", "the check trains the student; a zero-shot judge learns nothing"


def test_without_the_judge_the_fidelity_classifier_teaches_and_says_how_to_fetch_it():
    config, notices = RecipeConfig(source="auto").resolved(True, not_fetched)
    assert (config.source, config.teacher, config.filter.fidelity_classifier) == ("pseudo-label", "minilm-lr",
                                                                                 "minilm-lr")
    assert notices == ["qwen2.5-coder-1.5b-instruct is not fetched (`augment fetch qwen2.5-coder-1.5b-instruct` "
                       "(3.1 GB download)): minilm-lr labels the unlabelled texts instead of the recommended "
                       f"teacher {RECOMMENDED_TEACHER}, and gains less"]


def test_auto_generates_without_unlabelled_texts_and_the_judge_chooses_the_rows():
    config, notices = RecipeConfig(source="auto").resolved(False, fetched)
    assert (config.source, config.filter.fidelity_classifier) == ("generate", RECOMMENDED_TEACHER)
    assert len(notices) == 1 and "--unlabelled FILE" in notices[0]
    _, notices = RecipeConfig(source="auto").resolved(False, not_fetched)
    assert "minilm-lr chooses the generated rows instead of the recommended teacher" in notices[1]


def test_a_named_fidelity_classifier_or_teacher_is_kept_without_notices():
    named = recipe_config({}, lambda s: s, recipe={"source": "generate"}, filter={"fidelity_classifier": "tfidf-lr"})
    config, notices = named.resolved(True, not_fetched)
    assert (config.teacher, config.filter.fidelity_classifier, config.check_classifier, notices) == (
        "tfidf-lr", "tfidf-lr", "tfidf-lr", [])
    chosen = recipe_config({}, lambda s: s, recipe={"teacher": "tfidf-lr", "source": "auto"})
    config, notices = chosen.resolved(True, not_fetched)
    assert (config.source, config.filter.fidelity_classifier, config.check_classifier, notices) == (
        "pseudo-label", "tfidf-lr", "minilm-lr", [])
    with pytest.raises(ConfigError, match="teacher 'setfit' and fidelity_classifier 'tfidf-lr' name the same role"):
        recipe_config({}, lambda s: s, recipe={"teacher": "setfit"}, filter={"fidelity_classifier": "tfidf-lr"})


def test_the_default_generates_and_the_fidelity_classifier_chooses_without_notices():
    config, notices = RecipeConfig().resolved(True, fetched)
    assert (config.source, config.teacher, config.filter.fidelity_classifier, notices) == (
        "generate", "minilm-lr", "minilm-lr", [])


def test_a_generation_setting_makes_auto_generate_and_precision_does_not():
    auto = {"source": "auto"}
    assert recipe_config({}, lambda s: s, recipe=auto, finetune={"mode": "instruct"}).source == "generate"
    assert recipe_config({"generate": {"temperature": 0.9}}, lambda s: s, recipe=auto).source == "generate"
    assert recipe_config({}, lambda s: s, recipe={**auto, "candidates": 2}).source == "generate"
    assert recipe_config({}, lambda s: s, finetune={"precision": "bf16"}, adapt={"precision": "bf16"},
                         recipe={"source": "auto", "ratio": 5, "pseudo_candidates": 100}).source == "auto"
    assert recipe_config({}, lambda s: s, recipe={"source": "pseudo-label"}, finetune={"mode": "instruct"}
                         ).source == "pseudo-label", "a source the user names is kept"


def test_settings_that_cannot_run_are_refused_before_anything_trains():
    with pytest.raises(ConfigError, match="prompts 'pool' needs generate.prefix_words > 0"):
        recipe_config({}, lambda s: s, recipe={"prompts": "pool"}, generate={"prefix_words": 0})
    with pytest.raises(ConfigError, match="adapt needs the torch back-end"):
        recipe_config({}, lambda s: s, finetune={"backend": "gpt-2-simple"})
    assert not recipe_config({}, lambda s: s, recipe={"adapt": False}, finetune={"backend": "gpt-2-simple"}).adapt
    with pytest.raises(ConfigError, match="check_classifier"):
        recipe_config({}, lambda s: s, recipe={"check_classifier": "no-such-classifier"})


def test_the_defaults_are_the_validated_recipe():
    config = RecipeConfig()
    assert (config.ratio, config.candidates, config.prompts, config.adapt) == (3.0, 3.0, "auto", True)
    assert config.filter.fidelity == "top-k" and config.filter.fidelity_classifier == "minilm-lr"
    assert config.generate.temperature == 1.1 and config.finetune.early_stopping == 2


def test_label_aware_prompts_are_the_texts_the_classifier_gives_each_label_surest_first(classifier):
    texts = unlabelled()
    chosen = prompts_by_label(texts, classifier, {"pos": 3, "neg": 250}, seed=0)
    assert all(t.startswith("so happy") for t in chosen["pos"]) and all(t.startswith("awful") for t in chosen["neg"])
    assert len(chosen["pos"]) == MIN_PROMPTS_PER_LABEL          # a few wanted rows still get varied openings
    assert len(chosen["neg"]) == 100                            # all the texts it gives 'neg'
    assert not set(chosen["pos"]) & set(chosen["neg"])
    assert chosen == prompts_by_label(texts, classifier, {"pos": 3, "neg": 250}, seed=0)
    assert chosen["pos"] != prompts_by_label(texts, classifier, {"pos": 3, "neg": 250}, seed=1)["pos"]


def test_prompt_texts_per_source(classifier):
    texts, want = unlabelled(30), {"pos": 2, "neg": 2}
    config = RecipeConfig()
    assert _prompt_texts(texts, "labelled", classifier, want, config) == {"pos": None, "neg": None}
    assert _prompt_texts(texts, "pool", classifier, want, config) == {"pos": texts, "neg": texts}
    with pytest.raises(DataError, match="gives none of the unlabelled texts the label 'neg'"):
        _prompt_texts([t for t in texts if t.startswith("so happy")], "pool-by-label", classifier, want, config)


def test_a_label_short_of_rows_is_named(caplog: pytest.LogCaptureFixture):
    kept = pd.DataFrame({"text": ["a", "b", "c"], "label": ["pos", "pos", "neg"]})
    with caplog.at_level(logging.WARNING, logger="augment.recipe"):
        _warn_short(kept, {"pos": 2, "neg": 4}, "candidates")
        _warn_short(kept, {"pos": 3, "neg": 1}, "recipe.pseudo_candidates")
    assert [r.getMessage() for r in caplog.records] == [
        "'neg': 1 synthetic rows passed the filters, 4 wanted; raise candidates for more",
        "'pos': 2 synthetic rows passed the filters, 3 wanted; raise recipe.pseudo_candidates for more"]
