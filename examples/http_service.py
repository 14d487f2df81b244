"""Embedding an ``ActorSystem`` in an ASGI service (Starlette on uvicorn), never blocking its loop.

    pip install starlette uvicorn httpx       # (the project's [test] extra has them)
    python examples/http_service.py           # self-test: a real uvicorn on an ephemeral port
    python examples/http_service.py --serve   # serve on 127.0.0.1:8000 until Ctrl-C

The app's *lifespan* starts the system (``async with ActorSystem(...)``, its
processes spawned off the loop) before the server takes requests and shuts it
down after the server has stopped, so no request ever meets a stopped system
and no process outlives the service. Every handler awaits: starting an
execution, reading its progress and result, completing a callback. Endpoints:

* ``POST /orders`` with ``{"orders": [...], "id": "optional-id"}`` starts a
  durable ``map`` over the orders; ``202`` with the execution's id. Posting the
  same id again resumes (or reports) that execution instead of starting twice.
* ``GET /executions/<id>`` reports its status and progress, and its result
  once it has finished, for any execution of the store: one started before a
  restart (the system took it over at start and runs it on) or by another
  instance.
* An order with ``"approval": true`` waits for a person: its branch (an async
  branch) creates a callback, tells the service in a step (an awaited HTTP call:
  ``POST /approvals``, listed by ``GET /approvals``) and suspends on it, a
  suspended coroutine and then nothing at all. ``POST /callbacks/<id>`` with
  ``{"value": "approve"}`` completes it and the branch goes on; any other value
  rejects the order. It survives a restart: a service killed while an order
  waits resumes the execution when it starts again, and completing the
  callback then lets the branch go on.

Try it by hand:

    curl -X POST localhost:8000/orders -d '{"orders": [{"sku": "a", "qty": 2}], "id": "o-1"}'
    curl localhost:8000/executions/o-1
    curl -X POST localhost:8000/orders -d '{"orders": [{"sku": "fig", "qty": 9, "approval": true}]}'
    curl localhost:8000/approvals                       # the callback id to complete
    curl -X POST localhost:8000/callbacks/cb%3A...%3A2 -d '{"value": "approve"}'
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

try:
    import httpx
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route
except ImportError as missing:  # the example's own dependencies, not the library's
    raise SystemExit(f"{missing}: run `pip install starlette uvicorn httpx` first") from None

from actors import AsyncBranchContext, BranchActor
from actors.errors import UnknownCallbackError, UnknownExecutionError
from runtime import ActorSystem, ConfigurationError, SystemConfig
from runtime.durable import Execution

PRICES = {"apple": 0.5, "pear": 0.75, "fig": 1.25}


def price(order: dict[str, Any]) -> float:
    """Stands for a call to a pricing service (a sync one: it runs off the worker's loop)."""
    return PRICES.get(order["sku"], 1.0) * int(order["qty"])


def reserve(order: dict[str, Any]) -> str:
    """Stands for a call to a warehouse."""
    return f"reservation-{order['sku']}-{order['qty']}"


async def request_approval(notify_url: str, callback_id: str, order: dict[str, Any],
                           total: float) -> None:
    """Tell the service that a person must approve (a step: it may run more than once)."""
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(notify_url, json={"callback_id": callback_id,
                                                       "sku": order["sku"], "total": total})
        response.raise_for_status()


class FulfilOrder(BranchActor):
    """Price an order, get it approved if asked, let it settle, reserve it."""

    async def run(self, ctx: AsyncBranchContext, order: dict[str, Any]) -> dict[str, Any]:
        total = await ctx.step("price", price, order)
        if order.get("approval"):
            callback = await ctx.create_callback("approval", timeout=3600)
            await ctx.step("request approval", request_approval, order["notify"], callback.id,
                           order, total, timeout=30)
            if await ctx.wait_for_callback(callback) != "approve":  # suspends until completed
                return {"sku": order["sku"], "total": total, "status": "rejected"}
        await ctx.wait("settle", seconds=0.2)  # a suspended coroutine, not a parked thread
        reservation = await ctx.step("reserve", reserve, order)
        return {"sku": order["sku"], "total": total, "status": "reserved",
                "reservation": reservation}


class Orders:
    """The service's view of its executions: start one, describe one."""

    def __init__(self, system: ActorSystem) -> None:
        self.system = system
        self.base_url = ""  # set once the server has its port
        self.approvals: dict[str, dict[str, Any]] = {}  # callback id -> what to approve
        self._runs: dict[str, Execution] = {}  # one loop touches these: no lock needed

    async def start(self, orders: list[dict[str, Any]], execution_id: str | None) -> Execution:
        orders = [{**order, "notify": f"{self.base_url}/approvals"} if order.get("approval")
                  else order for order in orders]
        run = await self.system.map_async(FulfilOrder, orders, max_concurrency=10,
                                          execution_id=execution_id)
        self._runs[run.id] = run
        return run

    def ask_approval(self, request: dict[str, Any]) -> None:
        self.approvals[request["callback_id"]] = request  # by id: a repeated step is harmless

    async def decide(self, callback_id: str, value: Any) -> bool:
        """Complete the callback with ``value``; False if no branch waits for this id."""
        try:
            await self.system.complete_callback_async(callback_id, value)
        except UnknownCallbackError:
            return False
        self.approvals.pop(callback_id, None)
        return True

    async def describe(self, execution_id: str) -> dict[str, Any] | None:
        run = self._runs.get(execution_id)
        if run is None:  # started before a restart, or by another instance: it is stored
            try:
                run = await asyncio.to_thread(self.system.execution, execution_id)
            except (UnknownExecutionError, ConfigurationError):
                return None
            self._runs[execution_id] = run
        progress = await run.progress_async()
        answer: dict[str, Any] = {"id": run.id, "status": progress["status"],
                                  "progress": progress}
        if progress["status"] in ("SUCCEEDED", "FAILED"):
            result = await run.result_async(timeout=10)
            answer["results"] = list(result.results)
            answer["errors"] = [None if e is None else repr(e) for e in result.errors]
        return answer


async def _body(request: Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def make_app(store: str | None) -> Starlette:
    """The ASGI app; its lifespan owns the actor system (``app.state.orders``)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with ActorSystem(store=store, config=SystemConfig(workers=2)) as system:
            app.state.orders = Orders(system)
            yield  # the server takes requests now; the system stops after it has stopped

    async def post_orders(request: Request) -> JSONResponse:
        body = await _body(request)
        if not isinstance(body.get("orders"), list):
            return JSONResponse({"error": 'send {"orders": [...], "id": "optional"}'}, 400)
        run = await request.app.state.orders.start(body["orders"], body.get("id"))
        return JSONResponse({"id": run.id, "started": run.started}, 202)

    async def get_execution(request: Request) -> JSONResponse:
        found = await request.app.state.orders.describe(request.path_params["id"])
        if found is None:
            return JSONResponse({"error": f"no such execution: {request.url.path}"}, 404)
        return JSONResponse(found)

    async def post_approval(request: Request) -> JSONResponse:
        request.app.state.orders.ask_approval(await _body(request))
        return JSONResponse({})

    async def get_approvals(request: Request) -> JSONResponse:
        return JSONResponse({"pending": list(request.app.state.orders.approvals.values())})

    async def post_callback(request: Request) -> JSONResponse:
        done = await request.app.state.orders.decide(
            urllib.parse.unquote(request.path_params["id"]), (await _body(request)).get("value"))
        return JSONResponse({"completed": done}, 200 if done else 404)

    return Starlette(lifespan=lifespan, routes=[
        Route("/orders", post_orders, methods=["POST"]),
        Route("/executions/{id}", get_execution, methods=["GET"]),
        Route("/approvals", post_approval, methods=["POST"]),
        Route("/approvals", get_approvals, methods=["GET"]),
        Route("/callbacks/{id:path}", post_callback, methods=["POST"]),
    ])


@contextlib.asynccontextmanager
async def serving(store: str | None, port: int) -> AsyncIterator[str]:
    """Run uvicorn on this loop (lifespan included) until the block ends; its base URL."""
    app = make_app(store)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on",
                                           log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():  # the lifespan or the bind failed: say why
            task.result()
            raise RuntimeError("the server stopped before it started")
        await asyncio.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]
    base = f"http://127.0.0.1:{bound}"
    app.state.orders.base_url = base
    try:
        yield base
    finally:
        server.should_exit = True  # requests end, then the lifespan stops the system
        await task


async def self_test() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        async with serving(f"sqlite:///{Path(tmp) / 'orders.db'}", port=0) as base, \
                httpx.AsyncClient(base_url=base, timeout=10) as client:
            print(f"serving on {base}")

            async def call(method: str, path: str, body: Any = None) -> tuple[int, Any]:
                response = await client.request(method, path, json=body)
                return response.status_code, response.json()

            orders = [{"sku": "apple", "qty": 4}, {"sku": "fig", "qty": 2},
                      {"sku": "pear", "qty": 90, "approval": True}]
            status, started = await call("POST", "/orders", {"orders": orders, "id": "orders-1"})
            print(f"started: {status} {started}")
            deadline = time.monotonic() + 60
            while not (pending := (await call("GET", "/approvals"))[1]["pending"]):
                if time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.1)
            print(f"waiting for approval: {pending}")
            for request in pending:
                quoted = urllib.parse.quote(request["callback_id"], safe="")
                code, _ = await call("POST", f"/callbacks/{quoted}", {"value": "approve"})
                print(f"approved {request['sku']}: {code}")
            unknown, _ = await call("POST", "/callbacks/cb%3Anope%3A1", {"value": "approve"})
            print(f"an unknown callback: {unknown}")
            while True:
                status, found = await call("GET", "/executions/orders-1")
                if found.get("status") in ("SUCCEEDED", "FAILED") or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.1)
            print(f"status: {found['status']} {found['progress']}")
            print(f"results: {found.get('results')}")
            status_again, again = await call("POST", "/orders",
                                             {"orders": orders, "id": "orders-1"})
            print(f"the same id again: {status_again} {again}")
            missing, _ = await call("GET", "/executions/nope")
            print(f"an unknown execution: {missing}")
            ok = (status == 200 and found["status"] == "SUCCEEDED"
                  and again["started"] == "finished" and missing == 404 and unknown == 404
                  and len(pending) == 1
                  and all(r["status"] == "reserved" for r in found["results"]))
    print("the server and the actor system are stopped" if ok else "self-test failed")
    return 0 if ok else 1


async def serve(store: str | None, port: int) -> None:
    async with serving(store, port) as base:
        print(f"serving on {base}; Ctrl-C stops it")
        await asyncio.Event().wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action="store_true", help="serve until Ctrl-C")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--store", default=None, help="store URL (default: ./.durable/)")
    args = parser.parse_args()
    if not args.serve:
        return asyncio.run(self_test())
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.store, args.port))
    print("stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
