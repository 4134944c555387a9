import honed.prompts


def test_all_names_exist_and_are_sorted() -> None:
    for name in honed.prompts.__all__:
        assert hasattr(honed.prompts, name), name
    assert honed.prompts.__all__ == sorted(honed.prompts.__all__)
    assert {"Prompt", "Chain", "load_prompt", "load_prompts", "push", "get_prompt"} <= set(
        honed.prompts.__all__
    )
