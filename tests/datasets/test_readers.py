"""Reading JSONL, CSV and TSV into cases: mappings, line numbers, and every way a row can be wrong."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from honed.datasets import Case, Columns, derived_id, read_cases
from honed.errors import InvalidInputError
from tests.datasets.conftest import WriteFile


def test_structured_jsonl_reads_every_field(write: WriteFile) -> None:
    row = {
        "id": "q1",
        "inputs": {"question": "2+2?", "context": ["a", "b"]},
        "reference": {"answer": 4},
        "metadata": {"source": "hand", "difficulty": 1},
        "context_ids": ["d1", "d2"],
        "split": "test",
    }
    parsed = read_cases(write("d.jsonl", json.dumps(row) + "\n\n"))
    assert parsed.cases == [Case.model_validate(row)]
    assert parsed.lines == [1]
    assert parsed.cases[0].to_dict() == row


def test_ids_are_derived_from_inputs_and_numbers_become_strings(write: WriteFile) -> None:
    text = '{"inputs": {"q": "a"}}\n{"id": 7, "inputs": {"q": "b"}}\n'
    a, b = read_cases(write("d.jsonl", text)).cases
    assert a.id == derived_id({"q": "a"}) and a.id.startswith("c-") and len(a.id) == 18
    assert b.id == "7"
    # The id depends on the inputs only: a different reference keeps it.
    again = read_cases(write("e.jsonl", '{"inputs": {"q": "a"}, "reference": "x"}\n')).cases[0]
    assert again.id == a.id


def test_flat_jsonl_needs_a_mapping(write: WriteFile) -> None:
    path = write("nq.jsonl", '{"question": "who?", "answer": ["me"]}\n')
    with pytest.raises(InvalidInputError, match=r"nq.jsonl:1: no inputs .*'question', 'answer'.*--input"):
        read_cases(path)
    mapped = read_cases(path, columns=Columns(inputs=("question",), reference="answer")).cases[0]
    assert mapped.inputs == {"question": "who?"} and mapped.reference == ["me"]
    rest = read_cases(path, columns=Columns(rest_as_inputs=True, reference="answer")).cases[0]
    assert rest == mapped


def test_unknown_fields_are_errors_that_name_them(write: WriteFile) -> None:
    path = write("d.jsonl", '{"inputs": {"q": 1}}\n{"inputs": {"q": 2}, "answr": "x"}\n')
    with pytest.raises(InvalidInputError, match=r"d.jsonl:2: unknown field\(s\) 'answr'") as info:
        read_cases(path)
    assert "nothing was imported" in str(info.value)
    ok = read_cases(path, columns=Columns(ignore=("answr",)))
    assert len(ok.cases) == 2


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object, got list"),
        ('{"inputs": {"q": NaN}}', "NaN is not valid JSON"),
        ('{"inputs": {"q": 1}, "inputs": {"q": 2}}', "key 'inputs' appears twice"),
        ('{"inputs": "q"}', "inputs must be an object"),
        ('{"inputs": {}}', "inputs: is empty (a case needs at least one input variable)"),
        ('{"id": "", "inputs": {"q": 1}}', "id: is empty (got '')"),
        ('{"inputs": {"q": 1}, "split": "no spaces"}', "is not a split name"),
        ('{"inputs": {"q": 1}, "metadata": [1]}', "metadata must be an object"),
        ('{"inputs": {"q": 1}, "context_ids": "d1"}', "context_ids"),
    ],
)
def test_bad_jsonl_rows_name_file_line_and_reason(write: WriteFile, line: str, reason: str) -> None:
    path = write("bad.jsonl", '{"inputs": {"q": 0}}\n\n' + line + "\n")
    with pytest.raises(InvalidInputError) as info:
        read_cases(path)
    assert str(info.value).startswith(f"{path}:3: ")
    assert reason in str(info.value)


def test_duplicate_ids_name_both_lines(write: WriteFile) -> None:
    explicit = write(
        "a.jsonl",
        '{"id": "x", "inputs": {"q": 1}}\n{"id": "y", "inputs": {"q": 2}}\n{"id": "x", "inputs": {"q": 3}}\n',
    )
    with pytest.raises(InvalidInputError, match=r"a.jsonl:3: duplicate id 'x' \(also on line 1\)"):
        read_cases(explicit)
    derived = write("b.jsonl", '{"inputs": {"q": 1}}\n{"inputs": {"q": 1}, "reference": "r"}\n')
    with pytest.raises(InvalidInputError, match=r"b.jsonl:2: same inputs as line 1 .*give the cases ids"):
        read_cases(derived)


def test_empty_files_and_unreadable_files_are_errors(write: WriteFile, tmp_path: Path) -> None:
    for name, text in [("e.jsonl", ""), ("e2.jsonl", "\n  \n"), ("h.csv", "q,reference\n")]:
        with pytest.raises(InvalidInputError, match="has no cases"):
            read_cases(write(name, text))
    with pytest.raises(InvalidInputError, match="is empty"):
        read_cases(write("e.csv", ""))
    with pytest.raises(InvalidInputError, match="no such file"):
        read_cases(tmp_path / "missing.jsonl")
    latin1 = tmp_path / "l.jsonl"
    latin1.write_bytes(b'{"inputs": {"q": "ok"}}\n{"inputs": {"q": "caf\xe9"}}\n')
    with pytest.raises(InvalidInputError, match=r"l.jsonl:2: not UTF-8 \(byte 0xe9\)"):
        read_cases(latin1)
    with pytest.raises(InvalidInputError, match="cannot tell the format"):
        read_cases(write("d.txt", "x"))


def test_bom_and_crlf_are_tolerated(write: WriteFile) -> None:
    jsonl = read_cases(write("b.jsonl", '\ufeff{"inputs": {"q": "a"}}\r\n{"inputs": {"q": "b"}}\r\n'))
    assert [c.inputs["q"] for c in jsonl.cases] == ["a", "b"]
    csv_ = read_cases(write("b.csv", "\ufeffid,q\r\n1,a\r\n2,b\r\n"))
    assert [(c.id, c.inputs) for c in csv_.cases] == [("1", {"q": "a"}), ("2", {"q": "b"})]


def test_csv_maps_columns_and_defaults_the_rest_to_inputs(write: WriteFile) -> None:
    text = (
        "id,question,context,reference,split,context_ids,metadata\n"
        'a,"Who, really?",ctx,me,test,"[""d1"", ""d2""]","{""src"": ""x""}"\n'
        "b,What?,ctx2,,,d3; d4 ;,\n"
    )
    a, b = read_cases(write("d.csv", text)).cases
    assert a == Case(
        id="a",
        inputs={"question": "Who, really?", "context": "ctx"},
        reference="me",
        metadata={"src": "x"},
        context_ids=["d1", "d2"],
        split="test",
    )
    # Empty cells mean "not given"; context ids may be ;-separated.
    assert (b.reference, b.split, b.metadata, b.context_ids) == (None, None, {}, ["d3", "d4"])


def test_csv_explicit_columns(write: WriteFile) -> None:
    text = "ticket,body,queue,product,extra\nT1,help,billing,p1,zzz\n"
    path = write("t.csv", text)
    cols = Columns(inputs=("body",), id="ticket", reference="queue", metadata=("product",))
    with pytest.raises(InvalidInputError, match=r"t.csv:2: unknown field\(s\) 'extra'"):
        read_cases(path, columns=cols)
    case = read_cases(path, columns=dataclasses.replace(cols, ignore=("extra",))).cases[0]
    assert case == Case(id="T1", inputs={"body": "help"}, reference="billing", metadata={"product": "p1"})
    with pytest.raises(InvalidInputError, match=r"t.csv:1: no column 'nope' in the header"):
        read_cases(path, columns=Columns(inputs=("nope",)))
    with pytest.raises(InvalidInputError, match="mapped twice"):
        read_cases(path, columns=Columns(inputs=("body",), metadata=("body",)))


def test_csv_line_numbers_count_the_header_and_follow_multiline_cells(write: WriteFile) -> None:
    text = 'id,q\n1,"line one\nline two\nline three"\n\n2,fine\n3,"x","too many"\n'
    path = write("m.csv", text)
    with pytest.raises(InvalidInputError, match=r"m.csv:7: has 3 field\(s\), the header has 2"):
        read_cases(path)
    ok = read_cases(write("ok.csv", text.rsplit("3,", 1)[0]))
    assert ok.lines == [2, 6]
    assert ok.cases[0].inputs["q"] == "line one\nline two\nline three"
    bad_json = write("j.csv", 'q,metadata\na,b\nc,"{""k"": 1"\n')
    with pytest.raises(InvalidInputError, match=r"j.csv:2: metadata cell is not valid JSON"):
        read_cases(bad_json)
    quote = write("q.csv", 'q,r\n"ok",x\n"bro"ken",y\n')
    with pytest.raises(InvalidInputError, match=r"q.csv:3: not valid CSV"):
        read_cases(quote)


def test_csv_header_problems(write: WriteFile) -> None:
    with pytest.raises(InvalidInputError, match=r"d.csv:1: column 'q' appears twice"):
        read_cases(write("d.csv", "q,q\n1,2\n"))
    with pytest.raises(InvalidInputError, match=r"e.csv:1: the header has an empty column name"):
        read_cases(write("e.csv", "q,\n1,2\n"))


def test_tsv_and_long_cells(write: WriteFile) -> None:
    long = "word " * 60_000  # 300 kB, over the csv module's default field limit
    cases = read_cases(write("d.tsv", f"id\tq\n1\t{long}\n")).cases
    assert cases[0].inputs["q"] == long
    assert read_cases(write("d.data", "id,q\n1,x\n"), format="csv").cases[0].inputs == {"q": "x"}


def test_jsonl_keeps_u2028_inside_strings(write: WriteFile) -> None:
    # str.splitlines() would cut this line in two; JSON allows the raw character inside a string.
    row = json.dumps({"inputs": {"q": "a\u2028b\x85c"}}, ensure_ascii=False)
    assert read_cases(write("u.jsonl", row + "\n")).cases[0].inputs["q"] == "a\u2028b\x85c"
