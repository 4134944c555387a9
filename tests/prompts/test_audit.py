"""Changes that name their author are audited: a saved version, and a label's move (from which version to
which); the label history reads the moves back, newest first."""

from __future__ import annotations

from pathlib import Path

from honed.prompts import Prompt, push, set_label
from honed.prompts.registry import LABEL_ACTION, SAVE_ACTION, label_moves
from honed.store import Store
from tests.support.cli import honed


def qa(text: str) -> Prompt:
    return Prompt.parse({"name": "qa", "messages": [{"role": "system", "content": text}]})


def test_a_push_by_someone_records_each_new_version_once(store: Store) -> None:
    push(store, [qa("one")], note="first", by="ana")
    push(store, [qa("one")], note="same content", by="ana")  # not a new version: nothing to record
    push(store, [qa("two")])  # no author (a library call without by=): not audited
    events, _ = store.audit.page(10, kind="prompt", name="qa")
    assert [(e.user, e.action, e.detail["version"], e.detail["note"]) for e in events] == [
        ("ana", SAVE_ACTION, 1, "first")
    ]


def test_label_moves_record_where_the_label_came_from(store: Store) -> None:
    for text in ("one", "two", "three"):
        push(store, [qa(text)])
    set_label(store, "qa@v1", "production", by="ana")
    set_label(store, "qa@v3", "production", by="bo")
    set_label(store, "qa@v3", "production", by="bo")  # already there: not a move
    push(store, [qa("three")], label="staging", by="cy")
    moves = label_moves(store, "qa")
    assert [(e.user, e.detail["label"], e.detail["from"], e.detail["to"]) for e in moves] == [
        ("cy", "staging", None, 3),
        ("bo", "production", 1, 3),
        ("ana", "production", None, 1),
    ]
    assert all(e.action == LABEL_ACTION for e in moves)
    assert moves[1].detail["from_hash"] != moves[1].detail["to_hash"]


def test_the_cli_records_its_system_user(workspace: Path) -> None:
    import getpass

    write = workspace / "qa.yaml"
    write.write_text("model: scripted/echo\nmessages:\n  - {role: user, content: hi}\n", encoding="utf-8")
    assert honed("prompts", "push", "qa.yaml", cwd=workspace).returncode == 0
    assert honed("prompts", "label", "qa@v1", "production", cwd=workspace).returncode == 0
    with Store.open(f"sqlite:///{workspace / '.honed' / 'honed.db'}") as store:
        moves = label_moves(store, "qa")
        saves, _ = store.audit.page(10, kind="prompt", name="qa")
    assert [(m.user, m.detail["label"], m.detail["to"]) for m in moves] == [
        (getpass.getuser(), "production", 1)
    ]
    assert {e.action for e in saves} == {SAVE_ACTION, LABEL_ACTION}
