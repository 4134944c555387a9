"""Settings and the workspace.

Precedence, highest first (one rule for every setting):
    command-line flag  >  HONED_* environment variable  >  honed.toml  >  defaults

A workspace is a folder with a `honed.toml` and a `.honed/` data folder; it is found from the current
folder or any parent (like git), or named by HONED_HOME. Unknown keys in `honed.toml` are errors that
name the key, the line and the file.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from honed.errors import ConfigError, WorkspaceNotFoundError
from honed.secrets import mask, register_env
from honed.userfiles import invalid, problems

CONFIG_FILE = "honed.toml"
DATA_DIR = ".honed"
DEFAULT_MODEL = "local/smollm2-135m-instruct"

#: environment variable -> dotted settings path
ENV_VARS: dict[str, str] = {
    "HONED_DATABASE_URL": "database_url",
    "HONED_DEFAULT_MODEL": "default_model",
    "HONED_CACHE": "cache",
    "HONED_DATA_DIR": "data_dir",
    "HONED_MODEL_CACHE": "local.cache_dir",
    "HONED_LOCAL_MAX_BATCH": "local.max_batch",
    "HONED_LOCAL_USE_SERVER": "local.use_server",
    "HONED_LOCAL_LATENCY_CALLS": "local.latency_calls",
    "HONED_LOGGING": "logging.enabled",
    "HONED_SERVE_MAX_BODY_BYTES": "serve.max_body_bytes",
    "HONED_SERVE_MAX_JSON_DEPTH": "serve.max_json_depth",
    "HONED_SERVE_ALLOW_ORIGINS": "serve.allow_origins",
    "HONED_SERVE_ALLOWED_HOSTS": "serve.allowed_hosts",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EndpointConfig(BaseModel):
    """A named endpoint. Keys other than these are the provider's own options (it validates them)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    provider: str
    base_url: str | None = None
    api_key_env: str | None = None
    max_concurrency: int | None = Field(default=None, ge=1)
    timeout_s: float = Field(default=60.0, gt=0)

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class RetryConfig(_Strict):
    """Retries with exponential backoff and full jitter on 429, 5xx and timeouts."""

    max_attempts: int = Field(default=6, ge=1)
    base_delay_s: float = Field(default=0.5, ge=0)
    max_delay_s: float = Field(default=20.0, ge=0)
    max_total_s: float = Field(default=120.0, ge=0)


class LocalConfig(_Strict):
    """The embedded local model."""

    cache_dir: Path | None = None
    # 32 rows: ~9x the tokens/s of one-at-a-time on 2 cores (bench/local_batching.py); 64 gains little more
    # and needs ~2 GB of KV cache for few-shot-length prompts.
    max_batch: int = Field(default=32, ge=1)
    batch_window_ms: float = Field(default=5.0, ge=0)
    threads: int | None = Field(default=None, ge=1)
    # Send the local model's and local embedders' work to a running `honed serve` of the workspace
    # instead of loading them in this process (see honed.models.served).
    use_server: bool = True
    # After an experiment run, calls per variant on this model timed one at a time (0: none), since a
    # batched call's time is its batch's (see honed.experiments.latency).
    latency_calls: int = Field(default=5, ge=0, le=100)

    def resolved_cache_dir(self) -> Path:
        return self.cache_dir or Path(platformdirs.user_cache_dir("honed")) / "models"


class OnlineEvalRule(_Strict):
    """One online evaluation: an evaluator (a type name or a spec as in eval specs) scoring a sample of
    the logs that arrive, optionally only those of one prompt, model or source."""

    evaluator: str | dict[str, Any]
    sample: float = Field(default=1.0, gt=0, le=1)
    prompt: str | None = None
    model: str | None = None
    source: str | None = None


class LoggingConfig(_Strict):
    """Generation logging. `enabled` logs every model call honed makes (not served from the cache);
    `Honed.log` and the ingestion endpoint log whatever it says. `online_eval` rules score incoming logs
    while `honed serve` runs, every `online_eval_interval_s` seconds."""

    enabled: bool = True
    batch_size: int = Field(default=1000, ge=1)
    flush_interval_s: float = Field(default=0.2, ge=0)
    online_eval: list[OnlineEvalRule] = Field(default_factory=list)
    online_eval_interval_s: float = Field(default=10.0, gt=0)


_HOST_PATTERN = re.compile(r"\*|(\*\.)?[A-Za-z0-9_.-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def normal_origin(text: str) -> str:
    """An origin as browsers send it (`scheme://host[:port]`, lowercase, the port only when not the
    scheme's default), so two spellings of one origin compare equal. ValueError unless `text` is an
    http(s) origin: no path, query or user."""
    error = ValueError(f"{text!r} is not an origin: give scheme://host[:port], e.g. http://localhost:3000")
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError:
        raise error from None
    scheme = parts.scheme.lower()
    if (
        scheme not in _DEFAULT_PORTS
        or not parts.hostname
        or parts.username is not None
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
    ):
        raise error
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    return origin_of(scheme, host, port)


def origin_of(scheme: str, host: str, port: int | None) -> str:
    """The serialized origin of `scheme://host:port` (no port when it is the scheme's default)."""
    shown = "" if port is None or port == _DEFAULT_PORTS.get(scheme) else f":{port}"
    return f"{scheme}://{host}{shown}"


class ServeConfig(_Strict):
    """`honed serve`: the largest request body and JSON nesting it takes, the web pages (origins) that may
    call it besides its own, and the host names it answers to (the Host header) besides the address it
    listens on. In the environment the lists are comma-separated."""

    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    max_json_depth: int = Field(default=64, ge=2, le=512)
    allow_origins: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] = ()

    @field_validator("allow_origins", "allowed_hosts", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(v.strip() for v in value.split(",") if v.strip())
        return value

    @field_validator("allow_origins")
    @classmethod
    def _origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(normal_origin(v) for v in value)

    @field_validator("allowed_hosts")
    @classmethod
    def _hosts(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for v in value:
            if not _HOST_PATTERN.fullmatch(v):
                raise ValueError(
                    f"{v!r} is not a host name: give NAME, NAME:PORT, *.DOMAIN or * (no scheme, no path)"
                )
        return tuple(v.lower() for v in value)


class Price(_Strict):
    """USD per million tokens. A `notional` price is not charged (calls cost what the model's real price
    says, e.g. nothing on the local model) but shown where steps or models are compared on cost: what the
    same tokens would cost on a comparable hosted model."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    notional: bool = False


class Settings(_Strict):
    root: Path | None = None  # the workspace folder; None when running outside a workspace
    database_url: str | None = None
    default_model: str = DEFAULT_MODEL
    cache: bool = True
    data_dir: Path | None = None
    endpoints: dict[str, EndpointConfig] = Field(default_factory=dict)
    prices: dict[str, Price] = Field(default_factory=dict)
    retry: RetryConfig = Field(default_factory=RetryConfig)
    local: LocalConfig = Field(default_factory=LocalConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    serve: ServeConfig = Field(default_factory=ServeConfig)

    @property
    def data_folder(self) -> Path | None:
        return self.root / DATA_DIR if self.root else None

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        if self.data_folder is None:
            raise WorkspaceNotFoundError(
                "no honed workspace here, so there is no database",
                hint="run `honed init` in your project folder, set HONED_HOME, or set HONED_DATABASE_URL",
            )
        return f"sqlite:///{self.data_folder / 'honed.db'}"


def find_workspace(start: Path | None = None, env: Mapping[str, str] | None = None) -> Path | None:
    """The workspace root: HONED_HOME if set, else the nearest folder upwards holding `honed.toml`."""
    env = os.environ if env is None else env
    home = env.get("HONED_HOME")
    if home:
        path = Path(home).expanduser().resolve()
        if not (path / CONFIG_FILE).is_file():
            raise WorkspaceNotFoundError(
                f"HONED_HOME={home} has no {CONFIG_FILE}",
                hint=f"run `honed init {home}` or unset HONED_HOME",
            )
        return path
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG_FILE).is_file():
            return folder
    return None


def read_config_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}", hint="fix the syntax at that line") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror}") from exc


def _set_path(data: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    node = data
    for p in parents:
        node = node.setdefault(p, {})
    node[last] = value


def _merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in top.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    *,
    start: Path | None = None,
    env: Mapping[str, str] | None = None,
    require_workspace: bool = False,
) -> Settings:
    """Settings for the workspace around `start`, with the documented precedence.

    `overrides` are command-line flags as dotted paths (`{"cache": False, "local.max_batch": 4}`); `None`
    values mean "flag not given" and are ignored.
    """
    return _load(overrides, start=start, env=env, require_workspace=require_workspace)[0]


def settings_with_sources(
    overrides: Mapping[str, Any] | None = None,
    *,
    start: Path | None = None,
    env: Mapping[str, str] | None = None,
    require_workspace: bool = False,
) -> tuple[Settings, dict[str, str]]:
    """`load_settings`, and where each setting's value came from: a dotted key (`local.max_batch`,
    `prices."openai/gpt-4o-mini".input`) -> `flag`, `environment HONED_X`, `honed.toml:LINE` or `default`
    (`root`: `environment HONED_HOME`, `nearest honed.toml` or `default`)."""
    return _load(overrides, start=start, env=env, require_workspace=require_workspace, sources=True)


def _load(
    overrides: Mapping[str, Any] | None,
    *,
    start: Path | None,
    env: Mapping[str, str] | None,
    require_workspace: bool,
    sources: bool = False,
) -> tuple[Settings, dict[str, str]]:
    env = os.environ if env is None else env
    root = find_workspace(start, env)
    if root is None and require_workspace:
        raise WorkspaceNotFoundError(
            f"no {CONFIG_FILE} in {(start or Path.cwd()).resolve()} or any parent folder",
            hint="run `honed init` to create a workspace here, or set HONED_HOME",
        )
    data: dict[str, Any] = {}
    text = ""
    config_path = root / CONFIG_FILE if root else None
    if config_path is not None:
        text = config_path.read_text(encoding="utf-8")
        data = read_config_file(config_path)
        if "root" in data:
            line = toml_key_lines(text).get(("root",))
            raise ConfigError(
                f"{config_path}{f':{line}' if line else ''}: root: unknown key",
                hint="remove it; the folder is the root",
            )
    layered: dict[str, Any] = {}
    given: dict[str, str] = {}  # dotted key -> where the layer above the file set it
    for var, dotted in ENV_VARS.items():
        if env.get(var) not in (None, ""):
            _set_path(layered, dotted, env[var])
            given[dotted] = f"environment {var}"
    for dotted, value in (overrides or {}).items():
        if value is not None:
            _set_path(layered, dotted, value)
            given[dotted] = "flag"
    merged = _merge(data, layered)
    merged["root"] = root
    try:
        settings = Settings.model_validate(merged)
    except ValidationError as exc:
        raise _config_error(exc, config_path, text, given) from None
    for endpoint in settings.endpoints.values():
        register_env(endpoint.api_key_env)  # its key is masked wherever an error could show it
    settings = _resolve_relative_paths(settings)
    if not sources:
        return settings, {}
    found: dict[str, str] = {}
    if root is not None:
        found["root"] = "environment HONED_HOME" if env.get("HONED_HOME") else f"nearest {CONFIG_FILE}"
    lines = toml_key_lines(text)
    for path in _leaf_paths(settings.model_dump(mode="json")):
        key = dotted_key(path)
        if path == ("root",):
            found.setdefault(key, "default")
        elif key in given:
            found[key] = given[key]
        elif _has_path(data, path):
            line = next((lines[path[:n]] for n in range(len(path), 0, -1) if path[:n] in lines), None)
            found[key] = f"{CONFIG_FILE}:{line}" if line else CONFIG_FILE
        else:
            found[key] = "default"
    return settings, found


def flat_settings(data: Mapping[str, Any]) -> dict[str, Any]:
    """A settings dump (`model_dump(mode="json")`) keyed as `settings_with_sources` keys its sources."""
    out: dict[str, Any] = {}
    for path in _leaf_paths(data):
        node: Any = data
        for part in path:
            node = node[part]
        out[dotted_key(path)] = node
    return out


def _leaf_paths(data: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The paths to every value that is not a non-empty mapping (lists are one value)."""
    out: list[tuple[str, ...]] = []
    for k, v in data.items():
        if isinstance(v, Mapping) and v:
            out += _leaf_paths(v, (*prefix, k))
        else:
            out.append((*prefix, k))
    return out


def _has_path(data: Mapping[str, Any], path: tuple[str, ...]) -> bool:
    node: Any = data
    for part in path:
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return True


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_KEY_PART = r"""(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')"""
_DOTTED = rf"{_KEY_PART}(?:\s*\.\s*{_KEY_PART})*"
_TABLE_LINE = re.compile(rf"^\s*\[\[?\s*({_DOTTED})\s*\]\]?")
_KEY_LINE = re.compile(rf"^\s*({_DOTTED})\s*=")


def dotted_key(path: tuple[str, ...]) -> str:
    """A settings path as written in TOML: `prices."openai/gpt-4o-mini".input`."""
    return ".".join(p if _BARE_KEY.fullmatch(p) else f'"{p}"' for p in path)


def toml_key_lines(text: str) -> dict[tuple[str, ...], int]:
    """The line (1-based) of every key and table header in a TOML text, by path; the first one wins.

    A line scan rather than a parser (tomllib keeps no positions): keys inside multi-line strings could be
    misread, which at worst points `config show` at a wrong line of a file tomllib already accepted.
    """
    out: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    for i, line in enumerate(text.splitlines(), 1):
        header = _TABLE_LINE.match(line)
        if header:
            table = _split_dotted(header.group(1))
            out.setdefault(table, i)
            continue
        key = _KEY_LINE.match(line)
        if key:
            out.setdefault((*table, *_split_dotted(key.group(1))), i)
    return out


def _split_dotted(text: str) -> tuple[str, ...]:
    parts = re.findall(_KEY_PART, text)
    return tuple(p[1:-1] if p[:1] in "\"'" else p for p in parts)


def _resolve_relative_paths(settings: Settings) -> Settings:
    if settings.root is None:
        return settings
    updates: dict[str, Any] = {}
    if settings.data_dir is not None and not settings.data_dir.is_absolute():
        updates["data_dir"] = settings.root / settings.data_dir
    cache_dir = settings.local.cache_dir
    if cache_dir is not None and not cache_dir.is_absolute():
        updates["local"] = settings.local.model_copy(update={"cache_dir": settings.root / cache_dir})
    return settings.model_copy(update=updates) if updates else settings


def _config_error(
    exc: ValidationError, path: Path | None, text: str, given: Mapping[str, str] | None = None
) -> ConfigError:
    """The one error form of user files (`honed.userfiles`: FILE:LINE: key.path: what is wrong, the keys
    allowed where a key is unknown, further problems after the hint), except that a bad value set by an
    environment variable or a flag is blamed on it, not on a line of the file it overrides."""
    first = problems(exc)[0]  # pydantic's order, as `given` speaks of the values it layered on top
    source = (given or {}).get(".".join(map(str, first.loc)))
    if source is not None:
        return ConfigError(f"{source}: {first}")
    lines = toml_key_lines(text) if text else None
    # `root` is the workspace folder honed finds, never a key to write, so it is not offered as one.
    err = invalid(exc, Settings, where=str(path) if path else "settings", lines=lines, hidden=("root",))
    return ConfigError(err.message, hint=err.hint)


DEFAULT_TOML = """\
# honed workspace settings.
# Precedence: command-line flag > HONED_* environment variable > this file > defaults.

# The model used when a command names none.
default_model = "local/smollm2-135m-instruct"

# Responses are cached in the workspace database; `--no-cache` or HONED_CACHE=0 bypasses it.
cache = true

# A shared PostgreSQL store instead of the workspace's SQLite file (or set HONED_DATABASE_URL):
# database_url = "postgresql+psycopg://user@localhost/honed"

# Any OpenAI-compatible endpoint, used as `NAME/model`, e.g. `vllm/llama-3.1-8b`.
# The key is read from the named environment variable and never stored.
# [endpoints.vllm]
# provider = "openai"
# base_url = "http://localhost:8000/v1"
# api_key_env = "VLLM_API_KEY"
# max_concurrency = 32

# Every model call honed makes is logged in the workspace database (`honed logs list`); HONED_LOGGING=0
# or `enabled = false` turns that off.
# [logging]
# enabled = true

# `honed serve`: the largest request body, and web pages and host names it answers besides its own address
# (--max-body-bytes, --allow-origin, --allowed-host, or HONED_SERVE_*).
# [serve]
# max_body_bytes = 8388608
# allow_origins = ["http://localhost:3000"]
# allowed_hosts = ["honed.example.com"]

# Prices in USD per million tokens, overriding the built-in table. `notional = true` charges nothing but
# prices the model's tokens in comparisons (the ladder's cost per step), e.g. at a hosted small model's rate.
# [prices."openai/gpt-4o-mini"]
# input = 0.15
# output = 0.60
# [prices."local/smollm2-135m-instruct"]
# input = 0.15
# output = 0.60
# notional = true
"""


def init_workspace(path: Path) -> Path:
    """Create `honed.toml` and `.honed/` in `path` (kept if they exist). Returns the workspace root."""
    path = path.expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    config = path / CONFIG_FILE
    if not config.exists():
        config.write_text(DEFAULT_TOML, encoding="utf-8")
    data = path / DATA_DIR
    data.mkdir(exist_ok=True)
    ignore = data / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# honed's data folder: the local database and caches\n*\n", encoding="utf-8")
    return path


def mask_url(text: str) -> str:
    """`text` (a database URL, or a message quoting one) with its password (`user:***@`, `?password=***`)
    and any other secret masked, so it is fit to print."""
    return mask(text)


def system_user() -> str:
    """The name of the user running this process, for "who did it" records made outside the web UI (a
    run's author, a label moved from the CLI); `unknown` where the system has no name for the uid."""
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
