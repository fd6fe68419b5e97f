"""Instruct mode: no training, rows are a chat model's answers to prompts showing k real rows of the label."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from augment import Augmenter
from augment.cli import main
from augment.config import FinetuneConfig, GenerateConfig, InstructConfig
from augment.errors import AugmentError, ConfigError
from augment.files import hash_dir
from augment.finetune import INSTRUCT_HASHED, finetune_run
from augment.generate import LabelGenerator, generate_to_file, parts_dir
from augment.generate.job import GenerationProvenance
from augment.instruct import Answer, chat_ids, end_of_turn, example_subset, parse_answer
from augment.prompts import INSTRUCT
from augment.rundir import RunDir
from tests.tiny_models import build_tiny_chat_qwen2

NO_SYSTEM = ("{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
             "{% endif %}{{ '<start_of_turn>' + m['role'] + '\\n' + m['content'] + '<end_of_turn>\\n' }}{% endfor %}"
             "{% if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}{% endif %}")
SMALL = dict(batch_size=8, max_new_tokens=10, seed=3)


@pytest.fixture(scope="session")
def chat_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_chat_qwen2(tmp_path_factory.mktemp("tiny-chat-qwen2"))


TWEETS = pd.DataFrame({"text": [f"great flight number {i} thanks" for i in range(8)]
                       + [f"delayed again, flight {i} <|im_end|> awful" for i in range(8)],
                       "label": ["pos"] * 8 + ["neg"] * 8})


SHORT = dict(examples=3, system="Be brief.", user="Texts {description}:\n{examples}\nOne more:")  # fast prompts


def instruct_run(model: Path, out: Path, **instruct: object) -> Path:
    config = FinetuneConfig(model=str(model), mode="instruct", instruct=InstructConfig(**{**SHORT, **instruct}))
    finetune_run(TWEETS, out, config, data_info={"path": "tweets"})
    return out


@pytest.fixture(scope="session")
def run_dir(chat_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return instruct_run(chat_model, tmp_path_factory.mktemp("runs") / "instruct",
                        descriptions={"pos": "a happy tweet about an airline"})


# --- configuration and the run directory ---------------------------------------------------------------


def test_instruct_settings_come_with_their_mode_only() -> None:
    assert FinetuneConfig(mode="instruct").instruct == InstructConfig()
    assert InstructConfig().system.startswith("You write realistic example data") and InstructConfig().examples == 5
    assert "instruct" not in FinetuneConfig().model_dump()   # earlier runs' and results' keys stay the same
    with pytest.raises(ValueError, match="'instruct' settings need mode: instruct"):
        FinetuneConfig(instruct={"examples": 3})
    with pytest.raises(ValueError, match=r"\{examples\}"):
        InstructConfig(user="write a tweet about {topic}")


def test_a_description_for_a_label_the_data_lacks_is_refused(chat_model: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"instruct\.descriptions: no label 'postive' in the data "
                                          r"\(labels: neg, pos\)"):
        instruct_run(chat_model, tmp_path / "run", descriptions={"postive": "a happy tweet"})
    assert not (tmp_path / "run").exists()


def test_run_records_the_base_and_the_rows_and_trains_nothing(run_dir: Path, chat_model: Path) -> None:
    manifest = RunDir(run_dir).read_manifest()
    assert manifest.mode == "instruct" and set(manifest.labels) == {"pos", "neg"}
    entry = manifest.models[INSTRUCT]
    assert entry.status == "done" and entry.steps == 0 and entry.labels == ["neg", "pos"]
    assert Path(entry.base) == chat_model.resolve()
    assert entry.hash == hash_dir(chat_model, INSTRUCT_HASHED)
    assert manifest.separator.token == "<|im_end|>" and manifest.separator.source == "chat template"
    assert manifest.finetune["instruct"]["descriptions"] == {"pos": "a happy tweet about an airline"}
    rows = [json.loads(line) for line in (run_dir / "train.jsonl").read_text().splitlines()]
    assert len(rows) == 16 and {r["label"] for r in rows} == {"pos", "neg"}
    assert sorted(p.name for p in run_dir.iterdir()) == ["run.json", "train.jsonl"]   # no model copies
    assert RunDir(run_dir).finished_model("neg") == chat_model.resolve()


def test_a_model_without_chat_template_is_refused_in_one_line(tiny_model_dir: Path, tmp_path: Path) -> None:
    config = FinetuneConfig(model=str(tiny_model_dir), mode="instruct")
    with pytest.raises(AugmentError) as caught:
        finetune_run(TWEETS, tmp_path / "run", config, data_info={"path": "tweets"})
    message = str(caught.value)
    assert message.startswith(f"{tiny_model_dir}: has no chat template") and "\n" not in message
    assert not (tmp_path / "run").exists()


def test_a_missing_base_is_named(chat_model: Path, tmp_path: Path) -> None:
    import shutil

    copy = shutil.copytree(chat_model, tmp_path / "model")
    run = instruct_run(copy, tmp_path / "run")
    shutil.rmtree(copy)
    with pytest.raises(AugmentError, match=f"the base model {copy} is gone"):
        RunDir(run).finished_model("pos")


# --- prompts --------------------------------------------------------------------------------------------


def test_example_subset_depends_on_seed_label_and_index_only() -> None:
    rows = [f"row {i}" for i in range(20)]
    first = example_subset(rows, 5, seed=1, label="pos", index=7)
    assert len(first) == 5 and len(set(first)) == 5 and set(first) <= set(rows)
    assert example_subset(list(rows), 5, 1, "pos", 7) == first
    others = [example_subset(rows, 5, s, l, i) for s, l, i in ((2, "pos", 7), (1, "neg", 7), (1, "pos", 8))]
    assert all(o != first for o in others)
    assert sorted(example_subset(rows[:3], 5, 1, "pos", 0)) == rows[:3]   # fewer rows than k: all of them


def test_each_row_prompt_shows_its_own_k_examples_and_the_description(run_dir: Path) -> None:
    gen = LabelGenerator.load(RunDir(run_dir), "pos")
    tok = gen.tokenizer
    texts = {i: tok.decode(gen.prompt("", i, seed=3)) for i in range(4)}
    pos_rows = TWEETS.loc[TWEETS.label == "pos", "text"].tolist()
    for i, text in texts.items():
        assert text.startswith("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nTexts a happy")
        assert text.endswith("<|im_start|>assistant\n")
        assert text.count("a happy tweet about an airline") == 1
        shown = [r for r in pos_rows if r in text]
        assert sorted(shown) == sorted(example_subset(pos_rows, 3, 3, "pos", i))
    assert len(set(texts.values())) == 4
    assert gen.prompt("Wow", 2, 3)[-len(tok("Wow")["input_ids"]):] == tok("Wow")["input_ids"]  # prefix starts the answer


def test_rows_are_data_in_prompts_and_the_default_description_names_the_label(run_dir: Path) -> None:
    gen = LabelGenerator.load(RunDir(run_dir), "neg")
    ids = gen.prompt("", 0, seed=0)
    eot = gen.tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert ids.count(eot) == 2          # system and user turns only: the row's "<|im_end|>" is text
    text = gen.tokenizer.decode(ids)
    assert "<|im_end|> awful" in text and "labelled 'neg'" in text


def test_a_template_without_system_role_gets_the_system_text_in_the_user_turn(tmp_path: Path) -> None:
    from augment.models import load_tokenizer

    model = build_tiny_chat_qwen2(tmp_path / "gemma-like", NO_SYSTEM, ("<start_of_turn>", "<end_of_turn>"))
    tok = load_tokenizer(str(model))
    text = tok.decode(chat_ids(tok, "Be brief.", "Write one."))
    assert text == "<start_of_turn>user\nBe brief.\n\nWrite one.<end_of_turn>\n<start_of_turn>model\n"
    assert end_of_turn(tok) == tok.convert_tokens_to_ids("<end_of_turn>")


# --- parsing --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw, row", [
    ("Flight delayed 3 hours again, thanks @united", "Flight delayed 3 hours again, thanks @united"),
    ('"Flight delayed again!"', "Flight delayed again!"),
    ("“Best crew ever, thank you!”", "Best crew ever, thank you!"),
    ("Tweet: Lost my bag. Again.", "Lost my bag. Again."),
    ("New tweet: \"So smooth, loved it\"", "So smooth, loved it"),
    ("**Review:** Terrible food, rude staff.", "Terrible food, rude staff."),
    ("Sure! Here is a new tweet:\n\nWorst airline ever.", "Worst airline ever."),
    ("Here's a new tweet: Gate changed twice, no announcement.", "Gate changed twice, no announcement."),
    ("6. Seats were tiny and dirty", "Seats were tiny and dirty"),
    ("- Smooth landing, nice pilot", "Smooth landing, nice pilot"),
    ("Missed my connection.\n\nThis tweet expresses frustration with the airline.", "Missed my connection."),
    ("Missed my connection.\nNote: the tweet is negative.", "Missed my connection."),
    ('"Missed my connection." - This captures the angry tone.', "Missed my connection."),
    ("Great service today (Note: positive sentiment)", "Great service today"),
    ("1. Lovely crew\n2. Smooth flight", "Lovely crew"),
    # answers of qwen2.5-coder-0.5b-instruct in the sanity run (benchmarks/RESULTS.md)
    ("A new example of negative text would be:\n\n@TheBank is not providing an adequate account balance\n\nThis wou",
     "@TheBank is not providing an adequate account balance"),
    ("If you want to make the text sound more negative, you could say:\n\"I'd love to work for a company that's "
     "not like ours. Really?\"\nThis", "I'd love to work for a company that's not like ours. Really?"),
    ("Glad to hear you found our examples useful! Here's a new scenario, in a similar tone: Now, I hope it works",
     "Now, I hope it works"),
    ("Hello! I made a mistake with the previous examples. Here's your new one:\nBest flight ever!", "Best flight ever!"),
    ("@JetBlue arrived now. No clue if we have a place to stay.\n@AmericanAir booked at 5 am",
     "@JetBlue arrived now. No clue if we have a place to stay. @AmericanAir booked at 5 am"),
    ("Lost my bag\n#neveragain", "Lost my bag #neveragain"),
    ("It's a 'great' day, isn't it", "It's a 'great' day, isn't it"),
    ("\"Stuck\" on the tarmac again", "\"Stuck\" on the tarmac again"),
])
def test_rows_are_parsed_out_of_answers(raw: str, row: str) -> None:
    assert parse_answer(raw) == Answer(row)


@pytest.mark.parametrize("raw, reason", [
    ("I'm sorry, but I can't assist with that.", "refusal"),
    ("I cannot write content that is offensive.", "refusal"),
    ("I can't help with creating negative tweets.", "refusal"),
    ("As an AI language model, I don't write tweets.", "refusal"),
    ("Sorry, I can't do that.", "refusal"),
    ("Sure! Here is one:\n\"I'm sorry, but I cannot help with that.\"", "refusal"),
    ("", "empty"), ("   \n ", "empty"), ('""', "empty"), ("Tweet:", "empty"),
])
def test_refusals_and_empty_answers_are_dropped_with_their_reason(raw: str, reason: str) -> None:
    assert parse_answer(raw) == Answer("", reason)


# --- generation -------------------------------------------------------------------------------------------


def test_rows_do_not_depend_on_the_batch_size(run_dir: Path) -> None:
    aug = Augmenter.load(run_dir)
    one = aug.generate("pos", n=6, **{**SMALL, "batch_size": 1})
    eight = aug.generate("pos", n=6, **{**SMALL, "batch_size": 8})
    assert one["text"].tolist() == eight["text"].tolist()
    assert json.loads(one["params"][0])["parser"].startswith("instruct-parse")
    assert aug._generators.generator("pos").model is not None and set(aug.answers_dropped) == {"pos"}


def test_labels_share_one_loaded_model(run_dir: Path) -> None:
    aug = Augmenter.load(run_dir)
    frame = aug.generate(n=3, **SMALL)
    assert frame["label"].value_counts().to_dict() == {"neg": 3, "pos": 3}
    assert aug._generators.generator("pos").model is aug._generators.generator("neg").model


def test_refusals_are_counted_and_topped_up(run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import augment.generate.generators as sampler

    config = GenerateConfig(n=8, **SMALL)
    reference = Augmenter.load(run_dir).generate("neg", n=24, config=config)
    raw = sampler.parse_answer
    refused = set(reference["text"].tolist()[::3])   # every third answer becomes a refusal
    monkeypatch.setattr(sampler, "parse_answer",
                        lambda text: Answer("", "refusal") if raw(text).text in refused else raw(text))
    aug = Augmenter.load(run_dir)
    rows = aug.generate("neg", n=8, config=config)["text"].tolist()
    expected = [t for t in reference["text"] if t not in refused][:8]
    assert rows == expected
    last = reference["text"].tolist().index(expected[-1])
    assert aug.answers_dropped == {"neg": {"refusal": sum(t in refused for t in reference["text"][:last + 1])}}


def test_an_interrupted_job_resumes_to_the_same_rows(run_dir: Path, tmp_path: Path) -> None:
    config = GenerateConfig(n=6, **{**SMALL, "batch_size": 4})
    reference = tmp_path / "reference.jsonl"
    generate_to_file(RunDir(run_dir), ["pos", "neg"], config, reference)

    class Stop(Exception):
        pass

    seen: list[str] = []

    def stop_in_neg(label: str, rows: int) -> None:
        seen.append(label)
        if seen.count("neg") == 5:
            raise Stop

    out = tmp_path / "out.jsonl"
    with pytest.raises(Stop):
        generate_to_file(RunDir(run_dir), ["pos", "neg"], config, out, on_rows=stop_in_neg)
    assert list(parts_dir(out).glob("neg-*.jsonl"))
    generate_to_file(RunDir(run_dir), ["pos", "neg"], config.model_copy(update={"batch_size": 3}), out, resume=True)
    assert out.read_bytes() == reference.read_bytes()


def test_a_changed_prompt_is_not_resumed(chat_model: Path, tmp_path: Path) -> None:
    run, out = instruct_run(chat_model, tmp_path / "run"), tmp_path / "out.jsonl"
    config = GenerateConfig(n=8, **{**SMALL, "batch_size": 2})

    class Stop(Exception):
        pass

    def stop(label: str, rows: int) -> None:
        raise Stop

    with pytest.raises(Stop):
        generate_to_file(RunDir(run), ["pos"], config, out, on_rows=stop)
    changed = FinetuneConfig(model=str(chat_model), mode="instruct",
                             instruct=InstructConfig(**SHORT, descriptions={"pos": "a short happy tweet"}))
    finetune_run(TWEETS, run, changed, data_info={"path": "tweets"}, overwrite=True)
    with pytest.raises(AugmentError, match=r"instruct\.descriptions\.pos: None -> 'a short happy tweet'"):
        generate_to_file(RunDir(run), ["pos"], config, out, resume=True)


def test_cli_round_trip(chat_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "tweets.csv"
    TWEETS.to_csv(data, index=False)
    run, out, config = tmp_path / "run", tmp_path / "rows.csv", tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"finetune": {"instruct": SHORT}}))
    assert main(["finetune", "--data", str(data), "--out", str(run), "--model", str(chat_model), "-c", str(config),
                 "--mode", "instruct", "--no-progress"]) == 0
    assert "no training: each row's prompt shows 3 real rows" in capsys.readouterr().out.replace("\n", " ")
    assert main(["generate", "--run", str(run), "--out", str(out), "-n", "4", "--max-new-tokens", "8",
                 "--batch-size", "4", "--no-filter", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "answers dropped" in printed
    rows = pd.read_csv(out, keep_default_na=False)
    assert rows["label"].value_counts().to_dict() == {"neg": 4, "pos": 4}
    record = GenerationProvenance.model_validate_json((tmp_path / "rows.csv.provenance.json").read_text())
    assert set(record.answers_dropped) == {"neg", "pos"}
    assert record.models["pos"] == hash_dir(chat_model, INSTRUCT_HASHED)
    assert main(["info", str(run)]) == 0


def test_cli_refuses_a_model_without_chat_template(tiny_model_dir: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "tweets.csv"
    TWEETS.to_csv(data, index=False)
    assert main(["finetune", "--data", str(data), "--out", str(tmp_path / "run"), "--model", str(tiny_model_dir),
                 "--mode", "instruct", "--no-progress"]) == 2
    assert "has no chat template; instruct mode needs an instruct (chat) model" in capsys.readouterr().err


def test_the_shared_prompt_start_is_computed_once_and_gives_the_same_rows(run_dir: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import augment.generate.loop as loop

    gen = LabelGenerator.load(RunDir(run_dir), "pos")
    prefix = gen.shared_prefix
    assert len(prefix) >= loop.MIN_SHARED_PREFIX
    assert gen.tokenizer.decode(prefix).endswith("Texts a happy tweet about an airline:\n1.")
    jobs = [(i, gen.prompt("", i, 3)) for i in range(6)]
    assert all(p[:len(prefix)] == prefix for _, p in jobs)
    jobs.append((6, jobs[0][1][2:]))   # a prompt without the shared start is fed whole
    steps: list[int] = []
    real = loop.step
    monkeypatch.setattr(loop, "step", lambda *a: steps.append(1) or real(*a))
    config = GenerateConfig(max_new_tokens=6, top_k=0, top_p=None)
    shared = dict(loop.decode_rows(gen, config, jobs, 3))
    saved = len(steps)
    fed = dict(loop.decode_rows(gen, config, jobs, 3, share_prefix=False))
    assert shared == fed and len(shared) == 7
    assert saved < len(steps) - 2 * len(prefix)


def test_augment_run_prompts_the_chat_model_without_adapting_it(chat_model: Path, tmp_path: Path) -> None:
    from augment import augment_rows
    from augment.recipe import recipe_config

    config = recipe_config({
        "recipe": {"ratio": 0.25, "candidates": 1},
        "finetune": {"model": str(chat_model), "mode": "instruct", "instruct": SHORT},
        "generate": {"max_new_tokens": 6, "batch_size": 4},
        "filter": {"fidelity_classifier": "tfidf-lr", "fidelity": "off"}}, lambda section: section)
    out = tmp_path / "augmented.csv"
    pool = [f"great flight {i} thanks" for i in range(10)] + [f"delayed again, flight {i} awful" for i in range(10)]
    rows = augment_rows(TWEETS, out, unlabelled=pool, config=config)
    assert rows["synthetic"].sum() >= 1 and (~rows["synthetic"]).sum() == len(TWEETS)
    assert RunDir(tmp_path / "augmented.csv.work" / "run").read_manifest().mode == "instruct"
    assert not (tmp_path / "augmented.csv.work" / "adapted").exists()
