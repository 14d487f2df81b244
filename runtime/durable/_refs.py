"""The content-addressed file blob store, and how Refs are wired into a system's processes.

``FileBlobStore`` keeps each blob as one file named by its SHA-256 under the
store's directory (``<db dir>/blobs/ab/cdef…``): written to a temporary name,
fsynced, renamed into place, and the directory fsynced, so a blob is either
absent or whole. Reads hash the file and compare it with its name: a corrupted
blob raises ``BlobCorruptedError`` naming the digest, never wrong bytes.

Placement (``RefServices``): the digest actor has a process of its own, the only
writer of the directory; each worker process runs a ``DigestClient`` (its saves,
off the branch threads) and reads blobs directly, verified; the service process
reads them too. A Ref sent in a message carries a ``BlobReader`` locator, so any
other process of the system can load it as well.

    store = FileBlobStore("/var/lib/app/blobs")
    store.put(digest_of(data), data)     # True: written; False: it was there (dedup)
    store.get(digest)                    # the bytes, verified
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from actors import tracelog
from actors.errors import BlobCorruptedError, BlobNotFoundError, RefUnavailableError
from actors.refs._backend import RefBackend, current_backend, install_backend
from actors.refs._blob_store import digest_of
from actors.refs._cache import BlobCache
from actors.refs._digest_actor import DigestActor
from actors.refs._digest_client import DigestClient
from actors.replies import exception_of
from actors.workers._actor import WorkerActor
from runtime.config import RestartPolicy
from runtime.processes._contract import Host
from runtime.processes._placement import Placement
from runtime.processes._process_host import ProcessHost
from runtime.stores import DEFAULT_PATH
from runtime.transport._future import Future

if TYPE_CHECKING:
    from collections.abc import Collection

    from actors.refs._pending import PendingDigest
    from runtime.remote._actor_ref import ActorRef

log = tracelog.get_logger("runtime.blobs")

_HEX = frozenset("0123456789abcdef")
_counter = itertools.count()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileBlobStore:
    """A ``BlobStore`` of files named by digest; see the module docstring.

    ``read_only=True`` never creates or writes anything (readers in other processes).
    """

    def __init__(self, directory: str | os.PathLike[str], *, read_only: bool = False) -> None:
        self.directory = Path(directory)
        self.read_only = read_only
        self._tmp = self.directory / "tmp"
        if not read_only:
            self._tmp.mkdir(parents=True, exist_ok=True)
            _fsync_dir(self.directory)
            self._clean_tmp()

    def __repr__(self) -> str:
        return f"FileBlobStore({str(self.directory)!r})"

    def path_of(self, digest: str) -> Path:
        if len(digest) != 64 or not _HEX.issuperset(digest):
            raise ValueError(f"{digest!r} is not a hex SHA-256 digest")
        return self.directory / digest[:2] / digest[2:]

    def has(self, digest: str) -> bool:
        return self.path_of(digest).exists()

    def put(self, digest: str, data: bytes) -> bool:
        """Write ``data`` as the blob ``digest`` unless a whole one is there; True if written."""
        if self.read_only:
            raise PermissionError(f"{self!r} was opened read-only")
        path = self.path_of(digest)
        try:
            if path.stat().st_size == len(data):
                return False  # stored already: a dedup hit
            log.warning("blob.rewritten", digest=digest, reason="stored size differs")
        except FileNotFoundError:
            pass
        fan = path.parent
        if not fan.exists():
            fan.mkdir(exist_ok=True)
            _fsync_dir(self.directory)
        tmp = self._tmp / f"{digest}.{os.getpid()}.{next(_counter)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        os.close(fd)
        os.replace(tmp, path)  # atomic: readers see no blob or the whole blob
        _fsync_dir(fan)
        return True

    def get(self, digest: str) -> bytes:
        """The blob's bytes, verified against ``digest``."""
        path = self.path_of(digest)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise BlobNotFoundError(digest, str(self.directory)) from None
        found = digest_of(data)
        if found != digest:
            raise BlobCorruptedError(digest, found, str(path))
        return data

    def _clean_tmp(self) -> None:
        """Remove temporary files of writers that died mid-write (``kill -9``)."""
        for leftover in self._tmp.iterdir():
            parts = leftover.name.split(".")
            try:
                pid = int(parts[1])
                os.kill(pid, 0)
            except (IndexError, ValueError, ProcessLookupError):
                with contextlib.suppress(OSError):
                    leftover.unlink()
            except PermissionError:
                pass  # a live process of another user: not ours


class BlobReader:
    """A read-only ``RefBackend`` over a blobs directory: Refs load here, saves are refused.

    It is also what a Ref sent in a message carries as its locator: a process with
    no blob store of its own loads the Ref through it. Unpickled, it is the one
    reader of that directory in the receiving process (one cache, not one per Ref).

        install_backend(BlobReader("/var/lib/app/blobs"))   # read a store's Refs offline
    """

    ref_threshold_bytes: int | None = None

    def __init__(self, directory: str) -> None:
        self.directory = str(directory)
        self.cache = BlobCache()
        self._store: FileBlobStore | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        return (_reader_for, (self.directory,))

    def save(self, data: bytes, codec: str, children: Collection[PendingDigest]) -> PendingDigest:
        raise RefUnavailableError(
            "ctx.save runs in branches (worker processes); this process only reads Refs"
        )

    def load(self, digest: str) -> bytes:
        data = self.cache.get(digest)
        if data is None:
            if self._store is None:
                self._store = FileBlobStore(self.directory, read_only=True)
            data = self._store.get(digest)
            self.cache.put(digest, data)
        return data

    def locator(self) -> BlobReader:
        return self


_readers: dict[str, BlobReader] = {}


def _reader_for(directory: str) -> BlobReader:
    reader = _readers.get(directory)
    if reader is None:
        reader = _readers.setdefault(directory, BlobReader(directory))
    return reader


class StoreDigestActor(DigestActor):
    """The digest actor as hosted by the runtime: it opens its blobs directory in its process."""

    def __init__(self, directory: str) -> None:
        super().__init__(FileBlobStore(directory))


class CallbackFuture(Future[Any]):
    """A reply handle (it pickles like any ``Future``) that calls back when answered."""

    __slots__ = ("_on_error", "_on_value")

    def __init__(self, on_value: Callable[[Any], None],
                 on_error: Callable[[BaseException], None]) -> None:
        super().__init__()
        self._on_value = on_value
        self._on_error = on_error

    def set(self, value: Any = None) -> None:
        if not self.done():
            super().set(value)
            self._on_value(value)

    def set_exception(self, exc_info: Any = None) -> None:
        if not self.done():
            if exc_info is None:
                exc_info = sys.exc_info()
            super().set_exception(exc_info)
            self._on_error(exception_of(exc_info))


class RefWorkerActor(WorkerActor):
    """A worker whose branches save Refs through the system's digest actor.

    Its process gets a ``DigestClient`` as its ``RefBackend``: saves leave the branch
    threads at once, blobs are read straight from the directory, verified.
    """

    def __init__(self, *, digest: ActorRef[Any], blob_dir: str,
                 ref_threshold_bytes: int | None, fork_snapshot_bytes: int | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        reader = BlobReader(blob_dir)
        self.refs = DigestClient(
            digest, load_blob=FileBlobStore(blob_dir, read_only=True).get,
            reply_factory=CallbackFuture, ref_threshold_bytes=ref_threshold_bytes,
            fork_snapshot_bytes=fork_snapshot_bytes, locator=reader, name=f"{self.name}-digest",
        )
        install_backend(self.refs)

    def on_stop(self) -> None:
        super().on_stop()
        self.refs.close()
        if current_backend() is self.refs:
            install_backend(None)


def blob_dir_for(store_url: str, blob_dir: str | os.PathLike[str] | None = None,
                 scratch: str | None = None) -> str:
    """The blobs directory of a store: ``blob_dir`` (``SystemConfig.blob_dir``) if given,
    made absolute; else ``<directory of the SQLite file>/blobs``; else ``./.durable/blobs``
    (every host its own: systems on several hosts give a shared ``blob_dir`` instead).

    A store that keeps nothing (``memory://``) keeps its blobs in ``scratch``, the
    system's own temporary directory, removed at shutdown: never in the working directory.

        blob_dir_for("sqlite:////var/lib/app/state.db")                # "/var/lib/app/blobs"
        blob_dir_for("postgresql://db/app", "/mnt/shared/app-blobs")   # "/mnt/shared/app-blobs"
    """
    if blob_dir is not None:
        return str(Path(blob_dir).expanduser().absolute())
    scheme, sep, rest = store_url.partition("://")
    if scheme.lower() == "sqlite" and sep and rest.startswith("/") and ":memory:" not in rest:
        return str(Path(rest[1:].partition("?")[0]).parent / "blobs")
    if scratch is not None and (scheme.lower() == "memory" or ":memory:" in rest):
        return str(Path(scratch) / "blobs")
    return str(DEFAULT_PATH.resolve().parent / "blobs")


class RefServices:
    """A system's digest actor (a process of its own) and Ref loading in the service process."""

    worker_class = RefWorkerActor

    def __init__(self, host: Host, store_url: str, restart: RestartPolicy) -> None:
        config = host.config
        self.blob_dir = blob_dir_for(store_url, config.blob_dir, scratch=host.scratch_dir)
        self.digest: ActorRef[Any] = host.spawn(StoreDigestActor, (self.blob_dir,),
                                                name="digest", restart=restart, registered=False,
                                                placement=Placement.STORE)
        self.worker_options: dict[str, Any] = {
            "digest": self.digest, "blob_dir": self.blob_dir,
            "ref_threshold_bytes": config.ref_threshold_bytes,
            # A Ray worker is multi-threaded (gRPC): never forked for a snapshot.
            "fork_snapshot_bytes": (config.fork_snapshot_bytes
                                    if isinstance(host, ProcessHost) else None),
        }
        self.reader = BlobReader(self.blob_dir)
        with _LIVE_LOCK:
            self._previous: RefBackend | None = install_backend(self.reader)
            _LIVE.append(self)

    def close(self) -> None:
        """Put back the backend this system replaced; systems of this process may close in
        any order: none is left holding the reader of one that closed."""
        with _LIVE_LOCK:
            if self not in _LIVE:
                return
            _LIVE.remove(self)
            for later in _LIVE:
                if later._previous is self.reader:
                    later._previous = self._previous
            if current_backend() is self.reader:
                install_backend(self._previous)


_LIVE: list[RefServices] = []  # the Ref services of this process's open systems
_LIVE_LOCK = threading.Lock()

