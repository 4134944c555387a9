import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from honed.hashing import canonical_json, content_hash

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text() | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@given(st.dictionaries(st.text(), json_values))
def test_key_order_does_not_change_the_hash(d: dict[str, object]) -> None:
    reordered = dict(reversed(list(d.items())))
    assert content_hash(d) == content_hash(reordered)
    assert json.loads(canonical_json(d)) == d


def test_hash_has_algorithm_prefix_and_distinguishes_content() -> None:
    h = content_hash({"a": 1})
    assert h.startswith("sha256:") and len(h) == len("sha256:") + 64
    assert content_hash({"a": 1}) != content_hash({"a": 2})
    assert content_hash([1, 2]) != content_hash([2, 1])


def test_nan_is_refused() -> None:
    with pytest.raises(ValueError):
        content_hash({"x": float("nan")})
