"""The content-addressed file blob store: atomic writes, dedup, verified reads."""

from __future__ import annotations

import mmap
import os
import subprocess
import sys
from pathlib import Path

import pytest

from actors.errors import BlobCorruptedError, BlobNotFoundError
from actors.refs import BlobCache, digest_of
from runtime.durable import BlobReader, FileBlobStore, blob_dir_for


def test_a_blob_is_a_file_named_by_its_digest_and_reads_back(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path / "blobs")
    digest = digest_of(b"payload")
    assert store.put(digest, b"payload") is True
    assert store.path_of(digest) == tmp_path / "blobs" / digest[:2] / digest[2:]
    assert store.path_of(digest).read_bytes() == b"payload"
    assert store.get(digest) == b"payload"


def test_storing_a_blob_twice_writes_it_once(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path)
    digest = digest_of(b"same")
    assert store.put(digest, b"same") is True
    before = store.path_of(digest).stat().st_mtime_ns
    assert store.put(digest, b"same") is False
    assert store.path_of(digest).stat().st_mtime_ns == before


def test_a_blob_corrupted_on_disk_raises_the_typed_error_naming_its_digest(
        tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path)
    digest = digest_of(b"important bytes")
    store.put(digest, b"important bytes")
    path = store.path_of(digest)
    path.write_bytes(b"importent bytes")  # a flipped letter, same size
    with pytest.raises(BlobCorruptedError) as raised:
        store.get(digest)
    assert raised.value.digest == digest and digest in str(raised.value)


def test_a_missing_blob_raises_blob_not_found(tmp_path: Path) -> None:
    with pytest.raises(BlobNotFoundError):
        FileBlobStore(tmp_path).get(digest_of(b"never"))


def test_a_truncated_blob_is_written_again(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path)
    digest = digest_of(b"whole blob")
    store.put(digest, b"whole blob")
    store.path_of(digest).write_bytes(b"whole")
    assert store.put(digest, b"whole blob") is True
    assert store.get(digest) == b"whole blob"


def test_no_temporary_file_is_left_after_writes(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path)
    for data in (b"a", b"b", b"a"):
        store.put(digest_of(data), data)
    assert list((tmp_path / "tmp").iterdir()) == []


def test_temporary_files_of_writers_that_died_are_removed_on_open(tmp_path: Path) -> None:
    FileBlobStore(tmp_path)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    leftover = tmp_path / "tmp" / f"{'0' * 64}.{dead.stdout.strip()}.0"
    mine = tmp_path / "tmp" / f"{'1' * 64}.{os.getpid()}.0"
    leftover.write_bytes(b"half a blob")
    mine.write_bytes(b"being written")
    FileBlobStore(tmp_path)
    assert not leftover.exists() and mine.exists()


def test_a_read_only_store_writes_nothing(tmp_path: Path) -> None:
    reader = FileBlobStore(tmp_path / "absent", read_only=True)
    assert not (tmp_path / "absent").exists()
    with pytest.raises(PermissionError):
        reader.put(digest_of(b"x"), b"x")


def test_a_blob_reader_travels_by_its_directory_and_reads_verified(tmp_path: Path) -> None:
    import pickle

    FileBlobStore(tmp_path).put(digest_of(b"shared"), b"shared")
    reader = pickle.loads(pickle.dumps(BlobReader(str(tmp_path))))
    assert reader.load(digest_of(b"shared")) == b"shared"
    assert pickle.loads(pickle.dumps(BlobReader(str(tmp_path)))) is reader  # one cache


def test_the_blobs_directory_sits_beside_the_sqlite_file(tmp_path: Path) -> None:
    assert blob_dir_for(f"sqlite:///{tmp_path}/state.db") == str(tmp_path / "blobs")
    assert blob_dir_for(f"sqlite:///{tmp_path}/state.db?mode=ro") == str(tmp_path / "blobs")


def test_a_memory_store_puts_its_blobs_in_the_scratch_directory_given(tmp_path: Path) -> None:
    assert blob_dir_for("memory://", scratch=str(tmp_path)) == str(tmp_path / "blobs")


# -- the per-process cache of verified bytes ---------------------------------------------


def test_the_cache_evicts_the_least_recently_used_entry_past_its_byte_bound() -> None:
    cache = BlobCache(max_bytes=3 * 100_000)
    blobs = {name: os.urandom(100_000) for name in "abcd"}
    for name in "abc":
        cache.put(name, blobs[name])
    assert cache.get("a") == blobs["a"]  # now "b" is the least recently used
    cache.put("d", blobs["d"])
    assert cache.get("b") is None
    assert [cache.get(name) for name in "acd"] == [blobs[name] for name in "acd"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="MADV_WIPEONFORK is Linux's")
def test_large_cache_entries_live_in_memory_a_fork_does_not_copy() -> None:
    cache = BlobCache()
    large, small = os.urandom(BlobCache.OUTSIDE_FORK_BYTES), b"small"
    cache.put("large", large)
    cache.put("small", small)
    assert isinstance(cache._items["large"], mmap.mmap)
    assert cache._items["small"] is small
    assert cache.get("large") == large


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_starts_with_an_empty_cache() -> None:
    cache = BlobCache()
    cache.put("large", os.urandom(BlobCache.OUTSIDE_FORK_BYTES))
    cache.put("small", b"small")
    pid = os.fork()
    if pid == 0:  # the child: its large entries read as zeros, so it must not have any
        os._exit(0 if cache.get("large") is None and cache.get("small") is None else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert cache.get("small") == b"small"  # the parent keeps its own


def test_a_configured_blob_dir_is_used_whatever_the_store_and_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    shared = tmp_path / "shared"
    assert blob_dir_for("postgresql://app@db/app", shared) == str(shared)
    assert blob_dir_for(f"sqlite:///{tmp_path}/state.db", str(shared)) == str(shared)
    monkeypatch.chdir(tmp_path)
    assert blob_dir_for("postgresql://app@db/app", "relative") == str(tmp_path / "relative")


@pytest.mark.parametrize("wrong", ["", "   ", 42])
def test_a_blob_dir_that_names_no_directory_is_refused(wrong: object) -> None:
    from runtime import ConfigurationError, SystemConfig

    with pytest.raises(ConfigurationError, match="blob_dir"):
        SystemConfig(blob_dir=wrong)  # type: ignore[arg-type]
