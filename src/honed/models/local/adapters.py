"""LoRA adapters on the embedded model: which folder a name means, and switching them on the one base model.

A model name `smollm2-135m-instruct+NAME` asks for adapter NAME. NAME is looked up first in the endpoint's
`adapters` table (`[endpoints.local] adapters = {tiny = "path/to/folder"}`), then in the workspace's
`.honed/adapters/NAME`, where local fine-tuning writes them.

All adapters are loaded into the same base model (peft via transformers' adapter API), so they share its
memory; the engine switches the active one between batches and disables them all for base requests. An
adapter's internal name carries a fingerprint of its files, so retraining an adapter under the same name
loads the new weights instead of serving the old ones.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from honed.errors import ConfigError, ModelError, UnknownModelError
from honed.models.local.weights import BASE_MODEL

ADAPTERS_FOLDER = "adapters"
ADAPTER_CONFIG = "adapter_config.json"
_WEIGHT_FILES = (ADAPTER_CONFIG, "adapter_model.safetensors", "adapter_model.bin")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


@dataclass(frozen=True, slots=True)
class AdapterRef:
    """A resolved adapter: its name, folder and a fingerprint of its files."""

    name: str
    path: Path
    fingerprint: str

    @property
    def key(self) -> str:
        """The name peft knows it by: unique per content, and free of the dots peft forbids."""
        return f"{re.sub(r'[^A-Za-z0-9_]', '_', self.name)}_{self.fingerprint}"


def split_model_name(endpoint: str, model: str, available: Callable[[], list[str]]) -> str | None:
    """The adapter name in `base+NAME` (None for the bare base); unknown names are an error.

    `available` lists the served models for the error message (called only on error: it reads folders).
    """
    base, plus, adapter = model.partition("+")
    if base != BASE_MODEL or (plus and not _NAME.match(adapter)):
        raise UnknownModelError(
            f"{endpoint} has no model {model!r} (available: {', '.join(available())})",
            hint=f"use {BASE_MODEL}, or {BASE_MODEL}+ADAPTER for a LoRA adapter",
        )
    return adapter if plus else None


class AdapterResolver:
    """Maps adapter names to folders: the endpoint's `adapters` table first, then `<data>/adapters/NAME`."""

    def __init__(self, endpoint: str, configured: Mapping[str, Path], folder: Path | None) -> None:
        self.endpoint = endpoint
        self.configured = dict(configured)
        self.folder = folder

    @classmethod
    def from_option(
        cls, endpoint: str, option: Any, *, root: Path | None, data_folder: Path | None
    ) -> AdapterResolver:
        """Validate the endpoint's `adapters` option (a table NAME -> folder; relative to the workspace)."""
        configured: dict[str, Path] = {}
        if option is not None:
            if not isinstance(option, Mapping):
                raise ConfigError(
                    f'[endpoints.{endpoint}] adapters must be a table of NAME = "folder"',
                    hint='e.g. adapters = {support = "adapters/support-v2"}',
                )
            base = root or Path.cwd()
            for name, value in option.items():
                if not isinstance(name, str) or not _NAME.match(name) or not isinstance(value, str):
                    raise ConfigError(
                        f'[endpoints.{endpoint}] adapters: {name!r} = {value!r} is not NAME = "folder"',
                        hint="names use letters, digits, '.', '_' and '-'; folders are strings",
                    )
                path = Path(value).expanduser()
                configured[name] = path if path.is_absolute() else base / path
        return cls(endpoint, configured, data_folder / ADAPTERS_FOLDER if data_folder else None)

    def resolve(self, name: str) -> AdapterRef:
        """The adapter called `name`, or UnknownModelError saying where it looked."""
        looked: list[str] = []
        if name in self.configured:
            candidates = [self.configured[name]]
            looked.append(f"[endpoints.{self.endpoint}] adapters.{name} = {self.configured[name]}")
        else:
            looked.append(f"[endpoints.{self.endpoint}] adapters (no {name!r})")
            candidates = [self.folder / name] if self.folder else []
            looked.append(str(self.folder / name) if self.folder else "no workspace adapters folder")
        for path in candidates:
            if (path / ADAPTER_CONFIG).is_file():
                return AdapterRef(name, path, _fingerprint(path))
        raise UnknownModelError(
            f"no LoRA adapter {name!r} with an {ADAPTER_CONFIG} (looked in: {'; '.join(looked)})",
            hint=f"fine-tune one, or name its folder in [endpoints.{self.endpoint}] adapters",
        )

    def known(self) -> list[str]:
        """Adapter names that resolve now (configured ones and those in the workspace folder)."""
        names = {n for n, p in self.configured.items() if (p / ADAPTER_CONFIG).is_file()}
        if self.folder is not None and self.folder.is_dir():
            names |= {
                p.name
                for p in self.folder.iterdir()
                if _NAME.match(p.name) and (p / ADAPTER_CONFIG).is_file()
            }
        return sorted(names)


def _fingerprint(path: Path) -> str:
    parts = []
    for name in _WEIGHT_FILES:
        f = path / name
        if f.is_file():
            st = f.stat()
            parts.append(f"{name}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha256("|".join([str(path.resolve()), *parts]).encode()).hexdigest()[:10]


class AdapterSlots:
    """The adapters loaded into one base model. Used only by the engine thread that owns the model.

    peft injects LoRA layers into the base model in place, so the engine keeps calling the base model's
    `generate`; this class only decides which adapter those layers apply.
    """

    def __init__(self, model: Any) -> None:
        self.model = model
        self._peft: Any = None  # the PeftModel wrapping `model`, once an adapter was asked for
        self._loaded: dict[str, str] = {}  # adapter name -> key of its weights now loaded

    @contextlib.contextmanager
    def use(self, ref: AdapterRef | None) -> Iterator[None]:
        """Run the body with `ref` active (loading it on first use), or with every adapter off for None."""
        if ref is None:
            if self._peft is None:
                yield
            else:
                with self._peft.disable_adapter():
                    yield
            return
        self._load(ref)
        self._peft.set_adapter(ref.key)
        yield

    def _load(self, ref: AdapterRef) -> None:
        old = self._loaded.get(ref.name)
        if old == ref.key:
            return
        try:
            with warnings.catch_warnings():
                # peft 0.21 calls a transformers property that warns it is deprecated; nothing to act on.
                warnings.filterwarnings(
                    "ignore", message=".*is_gradient_checkpointing", category=FutureWarning
                )
                if self._peft is None:
                    from peft import PeftModel

                    self._peft = PeftModel.from_pretrained(self.model, str(ref.path), adapter_name=ref.key)
                    self._peft.eval()
                else:
                    self._peft.load_adapter(str(ref.path), adapter_name=ref.key)
        except Exception as exc:
            raise ModelError(
                f"LoRA adapter {ref.name!r} in {ref.path} cannot be loaded: {exc}",
                hint="it must be a peft LoRA adapter trained on SmolLM2-135M-Instruct",
            ) from exc
        self._loaded[ref.name] = ref.key
        if old is not None:  # retrained under the same name: drop the stale weights
            self._peft.set_adapter(ref.key)
            self._peft.delete_adapter(old)
