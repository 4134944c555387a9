from pathlib import Path

import pytest

from honed.config import find_workspace, flat_settings, init_workspace, load_settings, settings_with_sources
from honed.errors import ConfigError, WorkspaceNotFoundError


def test_workspace_is_found_from_a_subfolder(workspace: Path) -> None:
    sub = workspace / "a" / "b"
    sub.mkdir(parents=True)
    assert find_workspace(sub, env={}) == workspace
    assert load_settings(start=sub, env={}).root == workspace


def test_honed_home_overrides_the_current_folder(tmp_path: Path) -> None:
    other = init_workspace(tmp_path / "other")
    here = tmp_path / "here"
    here.mkdir()
    assert find_workspace(here, env={"HONED_HOME": str(other)}) == other


def test_honed_home_without_config_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceNotFoundError, match=r"has no honed\.toml"):
        find_workspace(tmp_path, env={"HONED_HOME": str(tmp_path / "nowhere")})


def test_no_workspace_means_no_database(tmp_path: Path) -> None:
    settings = load_settings(start=tmp_path, env={})
    assert settings.root is None
    with pytest.raises(WorkspaceNotFoundError, match="honed init"):
        settings.resolved_database_url()


def test_precedence_flag_over_env_over_file_over_default(workspace: Path) -> None:
    (workspace / "honed.toml").write_text('default_model = "scripted/from-file"\ncache = false\n')
    assert load_settings(start=workspace, env={}).default_model == "scripted/from-file"
    env = {"HONED_DEFAULT_MODEL": "scripted/from-env"}
    assert load_settings(start=workspace, env=env).default_model == "scripted/from-env"
    flag = load_settings({"default_model": "scripted/from-flag"}, start=workspace, env=env)
    assert flag.default_model == "scripted/from-flag"
    # a flag that was not given (None) does not override
    assert (
        load_settings({"default_model": None}, start=workspace, env=env).default_model == "scripted/from-env"
    )
    # untouched settings keep their defaults; the file's `cache = false` holds until the env says otherwise
    assert load_settings(start=workspace, env={}).cache is False
    assert load_settings(start=workspace, env={"HONED_CACHE": "1"}).cache is True
    assert load_settings(start=workspace, env={}).retry.max_attempts == 6


def test_sqlite_database_lives_in_the_data_folder(workspace: Path) -> None:
    url = load_settings(start=workspace, env={}).resolved_database_url()
    assert url == f"sqlite:///{workspace / '.honed' / 'honed.db'}"


def test_unknown_top_level_key_names_key_line_and_file(workspace: Path) -> None:
    (workspace / "honed.toml").write_text('cache = true\ndefualt_model = "x/y"\n')
    with pytest.raises(ConfigError) as err:
        load_settings(start=workspace, env={})
    msg = str(err.value)
    assert "defualt_model" in msg and f"{workspace / 'honed.toml'}:2" in msg


def test_unknown_nested_key_names_its_section(workspace: Path) -> None:
    (workspace / "honed.toml").write_text("[retry]\nmax_atempts = 3\n")
    with pytest.raises(
        ConfigError,
        match=r"honed\.toml:2: retry\.max_atempts: unknown key \(allowed keys here: max_attempts, ",
    ):
        load_settings(start=workspace, env={})


def test_every_unknown_key_is_named_with_the_keys_its_section_knows(workspace: Path) -> None:
    (workspace / "honed.toml").write_text("[local]\nlatency_call = 3\nmax_bach = 2\n")
    with pytest.raises(ConfigError) as err:
        load_settings(start=workspace, env={})
    msg = str(err.value)
    assert msg.startswith(f"{workspace / 'honed.toml'}:2: local.latency_call: unknown key ("), msg
    assert msg.endswith("also line 3: local.max_bach: unknown key)"), msg
    # The hint names what is known there, rather than a command that fails on the same file.
    assert "allowed keys here: " in msg and "latency_calls" in msg and "max_batch" in msg
    assert "config show" not in msg and "root" not in msg.split("allowed keys here: ")[1]
    (workspace / "honed.toml").write_text('[endpoints.vllm]\nprovider = "openai"\n[prices."a/b"]\ninpt = 1\n')
    with pytest.raises(
        ConfigError,
        match=r"honed\.toml:4: prices\.a/b\.inpt: unknown key \(allowed keys here: input, output, notional",
    ):
        load_settings(start=workspace, env={})


def test_a_bad_environment_value_is_blamed_on_the_variable(workspace: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(start=workspace, env={"HONED_LOCAL_LATENCY_CALLS": "abc"})
    assert str(err.value).startswith("environment HONED_LOCAL_LATENCY_CALLS: local.latency_calls: ")
    assert "honed.toml" not in str(err.value)


def test_bad_value_and_bad_toml_are_one_line_errors(workspace: Path) -> None:
    (workspace / "honed.toml").write_text("[retry]\nmax_attempts = 0\n")
    with pytest.raises(ConfigError, match=r"retry\.max_attempts"):
        load_settings(start=workspace, env={})
    (workspace / "honed.toml").write_text("cache = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(start=workspace, env={})


def test_endpoints_and_prices_parse(workspace: Path) -> None:
    (workspace / "honed.toml").write_text(
        '[endpoints.vllm]\nprovider = "openai"\nbase_url = "http://127.0.0.1:9/v1"\n'
        'api_key_env = "VLLM_KEY"\n'
        '[prices."vllm/llama"]\ninput = 0.1\noutput = 0.2\n'
    )
    s = load_settings(start=workspace, env={})
    assert s.endpoints["vllm"].base_url == "http://127.0.0.1:9/v1"
    assert s.prices["vllm/llama"].output == 0.2


def test_relative_paths_resolve_against_the_workspace(workspace: Path) -> None:
    (workspace / "honed.toml").write_text('data_dir = "data"\n[local]\ncache_dir = "models"\n')
    s = load_settings(start=workspace, env={})
    assert s.data_dir == workspace / "data"
    assert s.local.resolved_cache_dir() == workspace / "models"


def test_sources_name_the_flag_variable_file_line_or_default(workspace: Path) -> None:
    (workspace / "honed.toml").write_text(
        "# settings\n"
        'default_model = "scripted/from-file"\n'
        "cache = false\n"
        "\n"
        "[local]\n"
        "max_batch = 4\n"
        '[prices."openai/gpt-4o-mini"]\n'
        "input = 0.15\n"
        "output = 0.6\n"
        "[endpoints.vllm]\n"
        'provider = "openai"\n'
        'base_url = "http://localhost:8000/v1"\n'
    )
    env = {"HONED_DEFAULT_MODEL": "scripted/from-env", "HONED_LOCAL_MAX_BATCH": "8"}
    settings, sources = settings_with_sources({"cache": True}, start=workspace, env=env)
    assert settings.default_model == "scripted/from-env" and settings.cache is True
    assert sources["root"] == "nearest honed.toml"
    assert sources["default_model"] == "environment HONED_DEFAULT_MODEL"
    assert sources["cache"] == "flag"
    assert sources["local.max_batch"] == "environment HONED_LOCAL_MAX_BATCH"
    assert sources['prices."openai/gpt-4o-mini".input'] == "honed.toml:8"
    assert sources['prices."openai/gpt-4o-mini".output'] == "honed.toml:9"
    assert sources["endpoints.vllm.base_url"] == "honed.toml:12"
    assert sources["endpoints.vllm.timeout_s"] == "default"
    assert sources["retry.max_attempts"] == "default" and sources["local.batch_window_ms"] == "default"
    # Every value shown has a source, keyed alike.
    assert flat_settings(settings.model_dump(mode="json")).keys() == sources.keys()
    _, plain = settings_with_sources(start=workspace, env={})
    assert plain["default_model"] == "honed.toml:2" and plain["cache"] == "honed.toml:3"
    assert plain["local.max_batch"] == "honed.toml:6"
