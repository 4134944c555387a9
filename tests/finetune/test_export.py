"""Exporting cases as chat fine-tuning data: the two modes, OpenAI JSONL (checked, written atomically) and
Hugging Face datasets that round-trip through `datasets.load_from_disk`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from datasets import Dataset, DatasetDict, load_from_disk
from honed.datasets import Case
from honed.errors import InvalidInputError
from honed.finetune.chat_format import check_chat_jsonl, count_example_tokens
from honed.finetune.export import chat_examples, export_hf, export_openai_jsonl
from honed.prompts.spec import Prompt

LONG_SYSTEM = (
    "You are the support assistant of Acme. Always answer in one short sentence. Never promise refunds. "
    "Quote the policy number when relevant. Be polite, concise and accurate. " * 8
)


def logged_case(n: int, split: str | None = "train") -> Case:
    messages = [
        {"role": "system", "content": LONG_SYSTEM},
        {"role": "user", "content": "Where is my parcel?"},
        {"role": "assistant", "content": "It is on its way."},
        {"role": "user", "content": f"Can I change order {n}?"},
    ]
    return Case(
        id=f"log-{n}",
        inputs={"question": f"Can I change order {n}?"},
        reference=f"Yes, order {n} can be changed until it ships.",
        metadata={"messages": messages},
        split=split,
    )


def test_full_mode_is_the_logged_prompt_plus_the_reference() -> None:
    (example,) = chat_examples([logged_case(1)])
    roles = [m["role"] for m in example["messages"]]
    assert roles == ["system", "user", "assistant", "user", "assistant"]
    assert example["messages"][0]["content"] == LONG_SYSTEM
    assert example["messages"][-1] == {
        "role": "assistant",
        "content": "Yes, order 1 can be changed until it ships.",
    }

    (short,) = chat_examples([logged_case(1)], system="Acme support.")
    assert short["messages"][0] == {"role": "system", "content": "Acme support."}
    assert [m["role"] for m in short["messages"]].count("system") == 1


def test_input_output_mode_drops_instructions_and_few_shot_and_saves_tokens() -> None:
    cases = [logged_case(n) for n in range(10)]
    full = chat_examples(cases)
    pairs = chat_examples(cases, mode="input_output")
    assert pairs[3]["messages"] == [
        {"role": "user", "content": "Can I change order 3?"},
        {"role": "assistant", "content": "Yes, order 3 can be changed until it ships."},
    ]
    assert all(LONG_SYSTEM not in json.dumps(p) and "Where is my parcel" not in json.dumps(p) for p in pairs)
    full_tokens = sum(count_example_tokens(e) for e in full)
    pair_tokens = sum(count_example_tokens(e) for e in pairs)
    assert pair_tokens * 5 < full_tokens

    with_system = chat_examples(cases[:1], mode="input_output", system="Acme support.")
    assert with_system[0]["messages"][0] == {"role": "system", "content": "Acme support."}


def test_input_output_with_several_inputs_or_a_template() -> None:
    case = Case(id="c1", inputs={"product": "kettle", "issue": "leaks"}, reference={"action": "replace"})
    (plain,) = chat_examples([case], mode="input_output")
    assert plain["messages"][0]["content"] == "product: kettle\nissue: leaks"
    assert plain["messages"][1]["content"] == '{"action": "replace"}'  # JSON references become text
    (templated,) = chat_examples([case], mode="input_output", template="My {{ product }} {{ issue }}.")
    assert templated["messages"][0]["content"] == "My kettle leaks."
    with pytest.raises(InvalidInputError, match="undefined variable 'colour'"):
        chat_examples([case], mode="input_output", template="{{ colour }}")


def test_full_mode_renders_the_prompt_for_cases_without_logged_messages() -> None:
    case = Case(id="c1", inputs={"question": "Why?"}, reference="Because.")
    with pytest.raises(InvalidInputError, match="case 'c1' has no logged prompt messages"):
        chat_examples([case])
    prompt = Prompt.parse(
        {
            "name": "qa",
            "messages": [
                {"role": "system", "content": "Answer."},
                {"role": "user", "content": "{{ question }}"},
            ],
        }
    )
    (example,) = chat_examples([case], prompt=prompt)
    assert example["messages"] == [
        {"role": "system", "content": "Answer."},
        {"role": "user", "content": "Why?"},
        {"role": "assistant", "content": "Because."},
    ]
    with pytest.raises(InvalidInputError, match="no reference"):
        chat_examples([case.model_copy(update={"reference": None})], prompt=prompt)


def test_openai_jsonl_is_valid_and_a_bad_export_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out" / "train.jsonl"
    result = export_openai_jsonl(chat_examples([logged_case(n) for n in range(12)]), out)
    assert result.examples == 12 and result.tokens > 12 * 100
    assert check_chat_jsonl(out) == []
    assert len(out.read_text(encoding="utf-8").splitlines()) == 12

    before = out.read_bytes()
    with pytest.raises(InvalidInputError, match="too_few_examples"):
        export_openai_jsonl(chat_examples([logged_case(1)]), out)
    broken = chat_examples([logged_case(n) for n in range(12)])
    broken[4]["messages"][0]["role"] = "narrator"
    with pytest.raises(InvalidInputError, match=r"line 5: message 1: role 'narrator'"):
        export_openai_jsonl(broken, out)
    assert out.read_bytes() == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["train.jsonl"]  # no temporary file left


def test_hf_export_round_trips_with_splits(tmp_path: Path) -> None:
    cases = [logged_case(n, "train" if n < 8 else "test") for n in range(10)]
    data, result = export_hf(cases, tmp_path / "hf", mode="input_output")
    assert isinstance(data, DatasetDict) and result.splits == {"test": 2, "train": 8}
    loaded = load_from_disk(str(tmp_path / "hf"))
    assert isinstance(loaded, DatasetDict) and set(loaded) == {"train", "test"}
    assert set(loaded["train"].column_names) == {"id", "split", "messages"}
    row = loaded["test"][0]
    assert row["id"] == "log-8" and row["split"] == "test"
    assert row["messages"][-1] == {
        "role": "assistant",
        "content": "Yes, order 8 can be changed until it ships.",
    }

    # One split, as one Dataset, replacing the earlier export in place.
    data, result = export_hf(cases, tmp_path / "hf", split="train")
    assert isinstance(data, Dataset) and result.examples == 8
    reloaded = load_from_disk(str(tmp_path / "hf"))
    assert isinstance(reloaded, Dataset) and reloaded["id"] == [f"log-{n}" for n in range(8)]
    assert reloaded[0]["messages"][0]["content"] == LONG_SYSTEM  # full mode keeps the prompt

    precious = tmp_path / "mine"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me", encoding="utf-8")
    with pytest.raises(InvalidInputError, match="not a saved dataset"):
        export_hf(cases, precious)
    assert (precious / "notes.txt").read_text(encoding="utf-8") == "keep me"
    with pytest.raises(InvalidInputError, match="no rows in split 'dev'"):
        export_hf(cases, tmp_path / "dev", split="dev")


def test_hf_export_of_plain_examples(tmp_path: Path) -> None:
    examples = chat_examples([logged_case(n, None) for n in range(3)], mode="input_output")
    data, _ = export_hf(examples, tmp_path / "plain")
    assert isinstance(data, Dataset)
    loaded = load_from_disk(str(tmp_path / "plain"))
    assert loaded["id"] == ["1", "2", "3"] and loaded[2]["messages"][0]["content"] == "Can I change order 2?"
