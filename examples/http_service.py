"""Embedding an ``ActorSystem`` in an HTTP service, with the standard library only.

    python examples/http_service.py          # self-test: an ephemeral port, driven by urllib
    python examples/http_service.py --serve  # serve on 127.0.0.1:8000 until Ctrl-C

The service's *lifespan* starts the system before the server takes requests and
shuts it down after the server has stopped, so no request ever meets a stopped
system and no process outlives the service. Endpoints:

* ``POST /orders`` with ``{"orders": [...], "id": "optional-id"}`` starts a
  durable ``map`` over the orders; ``202`` with the execution's id. Posting the
  same id again resumes (or reports) that execution instead of starting twice.
* ``GET /executions/<id>`` reports its status and progress, and its result
  once it has finished.
* An order with ``"approval": true`` waits for a person: its branch creates a
  callback (``ctx.create_callback``), tells the service in a step
  (``POST /approvals``, listed by ``GET /approvals``) and suspends on it
  (``ctx.wait_for_callback``), holding no thread. ``POST /callbacks/<id>`` with
  ``{"value": "approve"}`` completes it (``system.complete_callback``) and the
  branch goes on; any other value rejects the order.

Try it by hand:

    curl -X POST localhost:8000/orders -d '{"orders": [{"sku": "a", "qty": 2}], "id": "o-1"}'
    curl localhost:8000/executions/o-1
    curl -X POST localhost:8000/orders -d '{"orders": [{"sku": "fig", "qty": 9, "approval": true}]}'
    curl localhost:8000/approvals                       # the callback id to complete
    curl -X POST localhost:8000/callbacks/cb%3A...%3A2 -d '{"value": "approve"}'
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from actors import BranchActor, BranchContext
from actors.errors import UnknownCallbackError
from runtime import ActorSystem, SystemConfig
from runtime.durable import Execution

PRICES = {"apple": 0.5, "pear": 0.75, "fig": 1.25}


def price(order: dict[str, Any]) -> float:
    """Stands for a call to a pricing service."""
    return PRICES.get(order["sku"], 1.0) * int(order["qty"])


def reserve(order: dict[str, Any]) -> str:
    """Stands for a call to a warehouse."""
    return f"reservation-{order['sku']}-{order['qty']}"


def request_approval(notify_url: str, callback_id: str, order: dict[str, Any],
                     total: float) -> None:
    """Tell the service that a person must approve (a step: it may run more than once)."""
    call("POST", notify_url, {"callback_id": callback_id, "sku": order["sku"], "total": total})


class FulfilOrder(BranchActor):
    """Price an order, get it approved if asked, let it settle, reserve it."""

    def run(self, ctx: BranchContext, order: dict[str, Any]) -> dict[str, Any]:
        total = ctx.step("price", price, order)
        if order.get("approval"):
            callback = ctx.create_callback("approval", timeout=3600)
            ctx.step("request approval", request_approval, order["notify"], callback.id, order,
                     total)
            if ctx.wait_for_callback(callback) != "approve":  # suspends until completed
                return {"sku": order["sku"], "total": total, "status": "rejected"}
        ctx.wait("settle", seconds=0.2)  # a suspension: the branch holds no thread meanwhile
        reservation = ctx.step("reserve", reserve, order)
        return {"sku": order["sku"], "total": total, "status": "reserved",
                "reservation": reservation}


class Orders:
    """The service's view of its executions: start one, describe one."""

    def __init__(self, system: ActorSystem) -> None:
        self.system = system
        self.base_url = ""  # set once the server has its port
        self.approvals: dict[str, dict[str, Any]] = {}  # callback id -> what to approve
        self._runs: dict[str, Execution] = {}
        self._lock = threading.Lock()  # request handlers run on threads of their own

    def start(self, orders: list[dict[str, Any]], execution_id: str | None) -> Execution:
        orders = [{**order, "notify": f"{self.base_url}/approvals"} if order.get("approval")
                  else order for order in orders]
        run = self.system.map(FulfilOrder, orders, max_concurrency=10, execution_id=execution_id)
        with self._lock:
            self._runs[run.id] = run
        return run

    def ask_approval(self, request: dict[str, Any]) -> None:
        with self._lock:
            self.approvals[request["callback_id"]] = request  # by id: a repeated step is harmless

    def decide(self, callback_id: str, value: Any) -> bool:
        """Complete the callback with ``value``; False if no branch waits for this id."""
        try:
            self.system.complete_callback(callback_id, value)
        except UnknownCallbackError:
            return False
        with self._lock:
            self.approvals.pop(callback_id, None)
        return True

    def describe(self, execution_id: str) -> dict[str, Any] | None:
        with self._lock:
            run = self._runs.get(execution_id)
        if run is None:
            return None
        progress = run.progress()
        answer: dict[str, Any] = {"id": run.id, "status": progress["status"],
                                  "progress": progress}
        if progress["status"] in ("SUCCEEDED", "FAILED"):
            result = run.result(timeout=10)
            answer["results"] = list(result.results)
            answer["errors"] = [None if e is None else repr(e) for e in result.errors]
        return answer


def handler_for(orders: Orders) -> type[BaseHTTPRequestHandler]:
    """A request handler class bound to ``orders``."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            callback = re.fullmatch(r"/callbacks/(.+)", self.path)
            if callback:
                done = orders.decide(urllib.parse.unquote(callback.group(1)),
                                     self._body().get("value"))
                return self._reply(200 if done else 404, {"completed": done})
            if self.path == "/approvals":
                orders.ask_approval(self._body())
                return self._reply(200, {})
            if self.path != "/orders":
                return self._reply(404, {"error": f"no such endpoint: POST {self.path}"})
            body = self._body()
            if not isinstance(body.get("orders"), list):
                return self._reply(400, {"error": 'send {"orders": [...], "id": "optional"}'})
            run = orders.start(body["orders"], body.get("id"))
            return self._reply(202, {"id": run.id, "started": run.started})

        def do_GET(self) -> None:
            if self.path == "/approvals":
                return self._reply(200, {"pending": list(orders.approvals.values())})
            match = re.fullmatch(r"/executions/([^/]+)", self.path)
            found = orders.describe(match.group(1)) if match else None
            if found is None:
                return self._reply(404, {"error": f"no such execution: {self.path}"})
            return self._reply(200, found)

        def _body(self) -> dict[str, Any]:
            length = int(self.headers.get("Content-Length") or 0)
            try:
                data = json.loads(self.rfile.read(length) or b"{}")
            except ValueError:
                return {}
            return data if isinstance(data, dict) else {}

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            print(f"  {self.command} {self.path} -> {args[1] if len(args) > 1 else ''}")

    return Handler


@contextmanager
def lifespan(store: str | None, port: int) -> Iterator[ThreadingHTTPServer]:
    """Start the system, then the server; on the way out stop the server, then the system."""
    with ActorSystem(store=store, config=SystemConfig(workers=2)) as system:
        orders = Orders(system)
        server = ThreadingHTTPServer(("127.0.0.1", port), handler_for(orders))
        orders.base_url = f"http://127.0.0.1:{server.server_address[1]}"
        thread = threading.Thread(target=server.serve_forever, name="http", daemon=True)
        thread.start()
        try:
            yield server
        finally:
            server.shutdown()  # no request is being handled after this returns
            server.server_close()
            thread.join()


def call(method: str, url: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def self_test() -> int:
    with tempfile.TemporaryDirectory() as tmp, \
            lifespan(f"sqlite:///{Path(tmp) / 'orders.db'}", port=0) as server:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        print(f"serving on {base}")
        orders = [{"sku": "apple", "qty": 4}, {"sku": "fig", "qty": 2},
                  {"sku": "pear", "qty": 90, "approval": True}]
        status, started = call("POST", f"{base}/orders", {"orders": orders, "id": "orders-1"})
        print(f"started: {status} {started}")
        deadline = time.monotonic() + 60
        while not (pending := call("GET", f"{base}/approvals")[1]["pending"]):
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        print(f"waiting for approval: {pending}")
        for request in pending:
            quoted = urllib.parse.quote(request["callback_id"], safe="")
            code, _ = call("POST", f"{base}/callbacks/{quoted}", {"value": "approve"})
            print(f"approved {request['sku']}: {code}")
        unknown, _ = call("POST", f"{base}/callbacks/cb%3Anope%3A1", {"value": "approve"})
        print(f"an unknown callback: {unknown}")
        while True:
            status, found = call("GET", f"{base}/executions/orders-1")
            if found.get("status") in ("SUCCEEDED", "FAILED") or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        print(f"status: {found['status']} {found['progress']}")
        print(f"results: {found.get('results')}")
        status_again, again = call("POST", f"{base}/orders", {"orders": orders, "id": "orders-1"})
        print(f"the same id again: {status_again} {again}")
        missing, _ = call("GET", f"{base}/executions/nope")
        print(f"an unknown execution: {missing}")
        ok = (status == 200 and found["status"] == "SUCCEEDED" and again["started"] == "finished"
              and missing == 404 and unknown == 404 and len(pending) == 1
              and all(r["status"] == "reserved" for r in found["results"]))
    print("the server and the actor system are stopped" if ok else "self-test failed")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action="store_true", help="serve until Ctrl-C")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--store", default=None, help="store URL (default: ./.durable/)")
    args = parser.parse_args()
    if not args.serve:
        return self_test()
    with lifespan(args.store, args.port) as server:
        print(f"serving on http://127.0.0.1:{server.server_address[1]}; Ctrl-C stops it")
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print("stopping")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
