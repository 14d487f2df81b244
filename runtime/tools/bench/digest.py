"""Digest benchmarks: the calling-thread stall of ``ctx.save`` beside a synchronous save.

* **Stall**: a branch, on its worker thread, times ``ctx.save(value)`` and then
  waits for the digest (``ref.wait()``), so each save is measured alone; the
  wait is reported too, as *save → durable*.
* **Baseline, same branch, same process, alternating with the above**: a
  synchronous save — the worker's serializer (cloudpickle; ``bytes`` as they
  are), SHA-256, and ``FileBlobStore.put`` (temporary name, fsync, rename,
  directory fsync) into a directory of its own — and its three parts apart.
* **Values**: a 1 MB nested object (a list of dicts holding lists and dicts of
  small ints, floats and short strings) and a 10 MB ``bytes`` payload, a
  distinct one per sample, so nothing is a dedup hit. The branch keeps one value
  alive at a time: a fork costs more the bigger the process (the worker's RSS at
  each save is reported beside the stall).
* **After a forked snapshot** (nested value only; the same round also saves a
  third value with forking off, the inline snapshot, for an A/B): the time to
  change every row of the saved value right after ``save`` (copy-on-write page
  faults, CPU shared with the child) and of a full ``gc.collect()`` once the
  digest is known, each beside the same after the inline snapshot.
* **Hash**: SHA-256 against BLAKE2b-256 on 8 MB, in this process: why SHA-256.
"""

from __future__ import annotations

import gc
import hashlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from typing import Any

from actors import BranchActor, BranchContext, Ref
from actors._compat.linux import resident_mb, thread_page_faults
from actors.refs._backend import current_backend
from actors.refs._blob_store import digest_of
from actors.refs._digest_client import DigestClient
from runtime import serialization
from runtime.config import SystemConfig
from runtime.durable._refs import FileBlobStore
from runtime.system import ActorSystem
from runtime.tools.bench.report import Figure

NESTED_BYTES = 1 << 20
PAYLOAD_BYTES = 10 << 20
WARMUP = 3


def nested_value(seed: int, rows: int) -> dict[str, Any]:
    """About ``rows`` × 87 pickled bytes of dicts and lists of small values."""
    return {
        "meta": {"seed": seed, "source": "bench"},
        "rows": [{"id": seed * 1_000_000 + i, "name": f"item-{i}", "tags": ["red", f"t{i % 50}"],
                  "score": i * 0.5, "flags": {"a": True, "b": None, "n": i % 7},
                  "vals": list(range(i % 10, i % 10 + 8))} for i in range(rows)],
    }


def rows_for(size: int) -> int:
    per_row = len(serialization.dumps(nested_value(0, 1000))) / 1000
    return int(size / per_row)


class SaveSamples(BranchActor):
    """Alternates a synchronous save and ``ctx.save`` on distinct values; returns the timings.

    For the nested value ``ctx.save`` is measured twice per round, as configured
    (a forked snapshot) and with forking turned off (the inline snapshot), and
    after each the branch changes every row of the value it saved: with a fork,
    its first write to each page copies it (copy-on-write), a cost that lands on
    the branch thread after ``save`` returned and is reported, not hidden.
    """

    def run(self, ctx: BranchContext, item: Any) -> dict[str, list[float]]:
        kind, count, sync_dir = item
        store = FileBlobStore(sync_dir)
        rows = rows_for(NESTED_BYTES)
        base = os.urandom(PAYLOAD_BYTES) if kind == "bytes" else b""  # only what the case needs
        backend = current_backend()
        snapshots = backend.snapshots if isinstance(backend, DigestClient) else None
        fork_at = snapshots.min_bytes if snapshots is not None else 0
        found: dict[str, list[float]] = {k: [] for k in (
            "stall", "durable", "sync", "serialize", "hash", "write", "mutate", "faults", "gc",
            "inline stall", "inline mutate", "inline faults", "inline gc", "rss")}
        for i in range(count + WARMUP):
            # One value alive at a time: a fork's cost grows with the process (its RSS is reported).
            if kind == "nested":
                sync = _sync_save(store, nested_value(3 * i, rows))
                for_save: Any = nested_value(3 * i + 1, rows)
            else:
                sync = _sync_save(store, b"%08d" % (2 * i) + base[8:])
                for_save = b"%08d" % (2 * i + 1) + base[8:]
            rss = resident_mb()
            started = time.perf_counter()
            ref = ctx.save(for_save)
            saved = time.perf_counter()
            durable = _when_durable(ref)
            mutated, faults = _mutate_after(for_save)
            ref.wait(60)
            collected = _full_collection(for_save)  # the child is gone by now
            inline: dict[str, float] = {}
            if kind == "nested" and snapshots is not None:
                snapshots.min_bytes = 1 << 62  # this save: the inline snapshot
                try:
                    value = nested_value(3 * i + 2, rows)
                    started_inline = time.perf_counter()
                    inline_ref = ctx.save(value)
                    inline["inline stall"] = time.perf_counter() - started_inline
                    inline["inline mutate"], inline["inline faults"] = _mutate_after(value)
                    inline_ref.wait(60)
                    inline["inline gc"] = _full_collection(value)
                finally:
                    snapshots.min_bytes = fork_at
            if i >= WARMUP:
                found["stall"].append(saved - started)
                found["durable"].append(durable[0] - started)
                found["mutate"].append(mutated)
                found["faults"].append(faults)
                found["gc"].append(collected)
                found["rss"].append(rss)
                for name, seconds in (*sync.items(), *inline.items()):
                    found[name].append(seconds)
        return found


def _when_durable(ref: Ref) -> list[float]:
    """Filled with the moment the Ref's digest resolves (on the digest client's thread)."""
    stamp: list[float] = []
    cell = ref._cell
    if cell is None:
        stamp.append(time.perf_counter())
    else:
        cell.add_done_callback(lambda _: stamp.append(time.perf_counter()))
    return stamp


def _mutate_after(value: Any) -> tuple[float, float]:
    """Seconds to change every row of a just-saved nested value, and the page faults taken."""
    if type(value) is not dict:
        return 0.0, 0.0
    faults = thread_page_faults()
    started = time.perf_counter()
    for row in value["rows"]:
        row["score"] += 1
        row["flags"]["n"] = 0
    seconds = time.perf_counter() - started
    return seconds, thread_page_faults() - faults


def _full_collection(value: Any) -> float:
    """Seconds of a full garbage collection (it writes to every container in the heap)."""
    if type(value) is not dict:
        return 0.0
    started = time.perf_counter()
    gc.collect()
    return time.perf_counter() - started


def _sync_save(store: FileBlobStore, value: Any) -> dict[str, float]:
    started = time.perf_counter()
    data = value if type(value) is bytes else serialization.dumps(value)
    serialized = time.perf_counter()
    digest = digest_of(data)
    hashed = time.perf_counter()
    store.put(digest, data)
    written = time.perf_counter()
    return {"sync": written - started, "serialize": serialized - started,
            "hash": hashed - serialized, "write": written - hashed}


def hash_rates(size: int = 8 << 20, rounds: int = 5) -> dict[str, float]:
    """MB/s of each candidate hash on ``size`` random bytes (best of ``rounds``)."""
    data = os.urandom(size)
    rates = {}
    for name, make in (("sha256", hashlib.sha256),
                       ("blake2b-256", lambda d: hashlib.blake2b(d, digest_size=32))):
        best = min(_timed(lambda make=make: make(data).digest()) for _ in range(rounds))
        rates[name] = size / best / 1e6
    return rates


def _timed(fn: Any) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def _pct(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct))] * 1e3


def _say(text: str) -> None:
    print(f"  {text}", file=sys.stderr, flush=True)


def run(quick: bool) -> list[Figure]:
    counts = {"nested": 15 if quick else 60, "bytes": 8 if quick else 30}
    directory = tempfile.mkdtemp(prefix="durable-actors-bench-")  # both sides: one filesystem
    samples: dict[str, dict[str, list[float]]] = {}
    try:
        config = SystemConfig(workers=1, worker_threads=1)
        with ActorSystem(store=f"sqlite:///{directory}/state.db", config=config) as system:
            for kind, count in counts.items():
                sync_dir = os.path.join(directory, f"sync-{kind}")
                run = system.map(SaveSamples, [(kind, count, sync_dir)], execution_id=kind)
                samples[kind] = run.result(timeout=600).values()[0]
                _say(f"{kind}: {count} saves each way, one branch, alternating")
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    rates = hash_rates()
    return _figures(samples, rates)


def _figures(samples: dict[str, dict[str, list[float]]], rates: dict[str, float]) -> list[Figure]:
    figures = []
    sync_name = "sync save: pickle + sha256 + write/fsync/rename"
    for kind, label, target in (("nested", "1 MB nested", "≤ 0.20× (5× lower)"),
                                ("bytes", "10 MB bytes", "report")):
        found = samples[kind]
        parts = {f"sync {k} p50 ms": round(_pct(found[k], 0.5), 3)
                 for k in ("serialize", "hash", "write")}
        for pct, tag in ((0.5, "p50"), (0.99, "p99")):
            figures.append(Figure(
                f"ctx.save stall {tag}, {label}", "ms", _pct(found["stall"], pct),
                _pct(found["sync"], pct), sync_name if kind == "nested" else
                "sync save: sha256 + write/fsync/rename", higher_is_better=False,
                target=target if tag == "p50" else "report",
                extra={"samples": len(found["stall"]), **parts,
                       "worker RSS MB p50": round(statistics.median(found["rss"]))},
            ))
        if found["inline stall"]:
            figures.append(Figure(
                f"ctx.save stall p50, {label}, inline snapshot", "ms",
                _pct(found["inline stall"], 0.5), _pct(found["sync"], 0.5), sync_name,
                higher_is_better=False, target="report (fork off: the old path)",
                extra={"samples": len(found["inline stall"])},
            ))
            figures.append(Figure(
                f"full gc.collect() after a save p50, {label}", "ms",
                _pct(found["gc"], 0.5), _pct(found["inline gc"], 0.5),
                "the same after an inline snapshot", higher_is_better=False,
                target="report (copy-on-write after a fork)",
            ))
            figures.append(Figure(
                f"change every row right after save p50, {label}", "ms",
                _pct(found["mutate"], 0.5), _pct(found["inline mutate"], 0.5),
                "the same after an inline snapshot", higher_is_better=False,
                target="report (copy-on-write after a fork)",
                extra={"page faults p50": _pct(found["faults"], 0.5) / 1e3,
                       "inline page faults p50": _pct(found["inline faults"], 0.5) / 1e3},
            ))
        figures.append(Figure(
            f"save → durable p50, {label}", "ms", _pct(found["durable"], 0.5),
            _pct(found["sync"], 0.5), "sync save (same run)", higher_is_better=False,
            target="report", extra={"note": "the digest resolves off the branch thread"},
        ))
    figures.append(Figure(
        "hash throughput, sha256", "MB/s", rates["sha256"], rates["blake2b-256"],
        "blake2b-256 on the same 8 MB", higher_is_better=True, target="the faster one",
    ))
    return figures


__all__ = ["SaveSamples", "run"]

