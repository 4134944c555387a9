"""Finding and opening the files a load names without being led outside the folders the user named.

Every path the user gives has a root: a folder is its own root, a glob pattern's root is its leading
part without wildcards (`docs` for `docs/**/*.md`), a named file's root is its folder. What the user typed
is taken as meant; what is found below a root is not:

- a link to a folder is not entered (with `follow_links`, it is, once per real folder, so a loop ends);
- a link to a file is read when its target lies inside the root, and refused otherwise (`follow_links`
  reads it, and the load reports that it did);
- only regular files are read: FIFOs, sockets and devices are refused. Each file is opened with
  O_NONBLOCK (and, unless links are followed, O_NOFOLLOW) and checked with fstat before a byte is read,
  so neither a FIFO (which would block forever) nor a file swapped for a link after the walk gets through;
- a file over the byte limit is refused before it is read, and one that turns out longer while being read
  (a /proc file reports size 0) is refused at the limit.

A refused file is reported with its reason, never dropped silently.
"""

from __future__ import annotations

import fnmatch
import os
import re
import stat
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from honed.errors import InvalidInputError

_GLOB_CHARS = re.compile(r"[*?[]")
# The `honed kb ingest` flags that a refusal's reason names.
FOLLOW_HINT = "--follow-links"
SIZE_HINT = "--max-file-mb"


class Refused(Exception):
    """A file that is not read; the message is the one-line reason."""


@dataclass(slots=True)
class Found:
    """Files to read, each mapped to the root it was found under (absolute paths, not resolved), the
    roots the user named, and what was left out on the way: `skipped` (path, reason) and `followed`
    (link, target) for links read with `follow_links` that lead outside their root."""

    files: dict[Path, Path] = field(default_factory=dict)
    bases: list[Path] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    followed: list[tuple[str, str]] = field(default_factory=list)


def absolute(path: Path) -> Path:
    return Path(os.path.abspath(path))


def shown(path: Path) -> str:
    """The path as the user would type it: relative to the current folder when inside it."""
    try:
        return Path(os.path.relpath(path)).as_posix() if path.is_relative_to(Path.cwd()) else str(path)
    except ValueError:
        return str(path)


def extension(path: Path) -> str:
    return repr(path.suffix) if path.suffix else "(no extension)"


def find(paths: list[Path | str], suffixes: Collection[str], *, follow_links: bool) -> Found:
    """The files that `paths` (files, folders, glob patterns) name. A named file of a type not in
    `suffixes`, a path that does not exist and a pattern that matches nothing are errors."""
    found = Found()
    for given in paths:
        path = Path(given)
        if path.is_dir():
            root = absolute(path)
            found.bases.append(root)
            _Walker(found, root, follow_links).walk(root)
        elif path.exists() or path.is_symlink():
            if path.suffix.lower() not in suffixes:
                raise InvalidInputError(
                    f"{shown(path)}: unsupported file type {extension(path)}",
                    hint=f"supported: {', '.join(suffixes)}",
                )
            found.bases.append(absolute(path).parent)
            found.files.setdefault(absolute(path), absolute(path).parent)
        elif _GLOB_CHARS.search(str(given)):
            base = _glob_base(str(given))
            root = absolute(base)
            found.bases.append(root)
            walker = _Walker(found, root, follow_links)
            walker.glob(root, list(Path(given).parts[len(base.parts) :]))
            if not walker.hits:
                raise InvalidInputError(f"{given}: the pattern matches no files", hint="check the pattern")
        else:
            raise InvalidInputError(f"{given}: no such file or folder", hint="check the path")
    return found


def _glob_base(pattern: str) -> Path:
    """The folder a glob pattern searches: its leading parts without wildcards."""
    parts: list[str] = []
    for part in Path(pattern).parts:
        if _GLOB_CHARS.search(part):
            break
        parts.append(part)
    return Path(*parts) if parts else Path()


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a file or folder"


class _Walker:
    """Walks folders and expands glob patterns below one root, by `lstat` (links are never followed
    implicitly). Matches what `glob.glob(recursive=True)` matches, except that links to folders are not
    entered: a wildcard and `**` skip hidden names; a matched folder is walked whole."""

    def __init__(self, found: Found, root: Path, follow_links: bool) -> None:
        self.found = found
        self.root = root
        self.follow_links = follow_links
        self.seen: set[tuple[int, int, int]] = set()  # (device, inode, parts left) of folders entered
        self.hits = 0  # paths a pattern matched, read or not

    @staticmethod
    def _key(folder: Path, parts_left: int) -> tuple[int, int, int] | None:
        try:
            st = os.stat(folder)
        except OSError:
            return None
        return (st.st_dev, st.st_ino, parts_left)

    def _enter(self, folder: Path, parts_left: int) -> bool:
        """Whether to enter `folder`: a real folder is entered once (for each pattern position)."""
        key = self._key(folder, parts_left)
        if key is None or key in self.seen:
            return False
        self.seen.add(key)
        return True

    def _folder_link(self, path: Path, parts_left: int) -> bool:
        """Whether to enter the link to a folder at `path`; reports it either way."""
        self.hits += 1
        if not self.follow_links:
            reason = f"link to a folder (not followed; {FOLLOW_HINT} follows it)"
        elif self._key(path, parts_left) in self.seen:
            reason = "link to a folder already walked (not followed again)"
        else:
            self.found.followed.append((shown(path) + "/", os.path.realpath(path)))
            return True
        self.found.skipped.append((shown(path) + "/", reason))
        return False

    def _entries(self, folder: Path) -> list[os.DirEntry[str]]:
        try:
            with os.scandir(folder) as it:
                return sorted(it, key=lambda e: e.name)
        except OSError as exc:
            self.found.skipped.append((shown(folder) + "/", f"cannot be listed: {exc.strerror}"))
            return []

    def walk(self, folder: Path) -> None:
        if not self._enter(folder, -1):
            return
        for entry in self._entries(folder):
            path = Path(entry.path)
            is_dir = entry.is_dir()  # follows a link: a hidden link to a folder is a hidden folder
            if entry.name.startswith("."):
                self.found.skipped.append(
                    (shown(path) + "/", "hidden folder") if is_dir else (shown(path), "hidden file")
                )
            elif entry.is_symlink():
                if is_dir:
                    if self._folder_link(path, -1):
                        self.walk(path)
                else:
                    self.found.files.setdefault(absolute(path), self.root)  # judged when read
            elif is_dir:
                self.walk(path)
            else:
                self._file(entry, path)

    def _file(self, entry: os.DirEntry[str], path: Path) -> None:
        try:
            mode = entry.stat(follow_symlinks=False).st_mode
        except OSError as exc:
            self.found.skipped.append((shown(path), f"cannot be read: {exc.strerror}"))
            return
        if stat.S_ISREG(mode):
            self.found.files.setdefault(absolute(path), self.root)
        else:
            self.found.skipped.append((shown(path), f"not a regular file ({_kind(mode)})"))

    def _match(self, path: Path) -> None:
        """A path a pattern matched: a folder is walked, anything else is read (or refused) later."""
        self.hits += 1
        if path.is_symlink() and path.is_dir():
            if self._folder_link(path, -1):
                self.walk(path)
        elif path.is_dir():
            self.walk(path)
        else:
            try:
                mode = os.lstat(path).st_mode
            except OSError:
                return
            if stat.S_ISREG(mode) or stat.S_ISLNK(mode):
                self.found.files.setdefault(absolute(path), self.root)
            else:
                self.found.skipped.append((shown(path), f"not a regular file ({_kind(mode)})"))

    def _descend(self, path: Path, parts: list[str]) -> None:
        """Go on matching `parts` inside `path` if it is a folder (a link to one only when followed)."""
        if path.is_symlink():
            if path.is_dir() and self._folder_link(path, len(parts)):
                self.glob(path, parts)
        elif path.is_dir():
            self.glob(path, parts)

    def glob(self, folder: Path, parts: list[str]) -> None:
        if not parts:
            self._match(folder)
            return
        if not self._enter(folder, len(parts)):
            return
        head, rest = parts[0], parts[1:]
        if head == "**":
            if rest:
                self.glob(folder, rest)  # `**` matches no folder too
            for entry in self._entries(folder):
                if entry.name.startswith("."):
                    continue
                path = Path(entry.path)
                if entry.is_dir():
                    if not rest:
                        self._match(path)
                    else:
                        self._descend(path, parts)
                elif not rest:
                    self._match(path)
        elif _GLOB_CHARS.search(head):
            for entry in self._entries(folder):
                if entry.name.startswith(".") and not head.startswith("."):
                    continue
                if not fnmatch.fnmatch(entry.name, head):
                    continue
                if rest:
                    self._descend(Path(entry.path), rest)
                else:
                    self._match(Path(entry.path))
        else:
            path = folder / head
            if rest:
                self._descend(path, rest)
            elif os.path.lexists(path):
                self._match(path)


def read(path: Path, root: Path, *, follow_links: bool, max_bytes: int) -> tuple[bytes, str | None]:
    """The bytes of the regular file at `path`, found under `root`, and, when `path` is a link out of
    the root that `follow_links` let through, where it leads. Raises `Refused` for anything the module
    docstring says is not read, and `OSError` when the file cannot be opened."""
    target = path
    outside: str | None = None
    if os.path.islink(path) or not follow_links:
        real = os.path.realpath(path)
        real_root = os.path.realpath(root)
        if not os.path.exists(real):
            raise Refused("broken link")
        if os.path.commonpath([real, real_root]) != real_root:
            if not follow_links:
                what = "link" if os.path.islink(path) else "path through a link"
                raise Refused(f"{what} to {real}, outside {shown(root)}/ (not read; {FOLLOW_HINT} reads it)")
            outside = real
        else:
            target = Path(real)  # inside the root: opened where it really is, refusing any link there now
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    flags |= getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    if not follow_links:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(target, flags)
    except OSError:
        if not os.path.exists(target):
            raise Refused("broken link") from None
        if os.path.islink(target):
            raise Refused(f"became a link while being read (not read; {FOLLOW_HINT} reads it)") from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise Refused(f"not a regular file ({_kind(st.st_mode)})")
        too_big = Refused(
            f"larger than the limit of {_size(max_bytes)} for a file (raise it with {SIZE_HINT})"
        )
        if st.st_size > max_bytes:
            raise too_big
        chunks: list[bytes] = []
        total = 0
        while chunk := os.read(fd, min(1 << 20, max_bytes + 1 - total)):
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:
                raise too_big
        return b"".join(chunks), outside
    finally:
        os.close(fd)


def _size(n: int) -> str:
    return f"{n / (1 << 20):,.4g} MB" if n >= 1 << 20 else f"{n:,} bytes"
