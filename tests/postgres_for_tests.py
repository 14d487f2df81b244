"""Helpers of the PostgreSQL tests: sessions of a database, work in a thread, and a proxy
that loses a COMMIT's answer.

``CommitCutter`` is a TCP proxy in front of the server that forwards every byte
both ways; once armed (``cut_next_commit``), it closes the next connection whose
server answer holds a ``COMMIT`` command completion, without passing that answer
on: the transaction committed on the server, and its client sees a lost
connection. That is the one fault a store cannot tell from a transaction that
never ran.

    with CommitCutter(url) as cutter:
        store = PostgresStore(cutter.url)
        cutter.cut_next_commit()
        store.renew_leases(...)       # committed, answer lost, run again on a new connection
        assert cutter.cuts == 1
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

from runtime.stores.postgres_faults import APPLICATION_NAME


def store_backends(conn: psycopg.Connection[Any], waiting_on_a_lock: bool = False) -> list[int]:
    """The pids of the store's sessions on ``conn``'s database."""
    sql = ("SELECT pid FROM pg_stat_activity WHERE application_name = %s "
           "AND datname = current_database()")
    if waiting_on_a_lock:
        sql += " AND wait_event_type = 'Lock'"
    return [pid for (pid,) in conn.execute(sql, (APPLICATION_NAME,))]


def in_thread(work: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    """Run ``work`` in a thread; its result or exception lands in the returned list."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(work())
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


_COMMIT_COMPLETE = b"C\x00\x00\x00\x0bCOMMIT\x00"  # CommandComplete, length 11, tag COMMIT


class CommitCutter:
    """See the module docstring."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self._server = (parts.hostname or "127.0.0.1", parts.port or 5432)
        self._listener = socket.create_server(("127.0.0.1", 0))
        port = self._listener.getsockname()[1]
        netloc = parts.netloc.rpartition("@")
        self.url = urlunsplit(parts._replace(netloc=f"{netloc[0]}{netloc[1]}127.0.0.1:{port}"))
        self._armed = threading.Event()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self.cuts = 0
        self._start(self._accept)

    def _start(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        self._threads.append(thread)
        thread.start()

    def cut_next_commit(self) -> None:
        self._armed.set()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            server = socket.create_connection(self._server)
            with self._lock:
                self._sockets += [client, server]
            self._start(self._pump, client, server, False)
            self._start(self._pump, server, client, True)

    def _pump(self, source: socket.socket, sink: socket.socket, answers: bool) -> None:
        try:
            while data := source.recv(65536):
                if answers and self._armed.is_set() and _COMMIT_COMPLETE in data:
                    self._armed.clear()
                    self.cuts += 1
                    break  # the COMMIT's answer goes nowhere
                sink.sendall(data)
        except OSError:
            pass  # either end closed: the pump ends
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
        self._listener.close()
        with self._lock:
            for end in self._sockets:
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
                end.close()
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> CommitCutter:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()
