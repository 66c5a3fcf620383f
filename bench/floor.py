"""The floor: the least a Quart-on-Hypercorn app can do for the same jobs.

- `GET /events`: a server-sent event stream fed from one queue per subscriber;
- `POST /publish`: puts the request body, as it is, on every subscriber's queue;
- `POST /noop`: answers 204 and does nothing (the mutation-throughput floor).

No database, no sign-in, no rendering: what is left is the framework and the server.
It runs with the same Hypercorn settings as the project (uvloop worker, listen backlog).

    python -m bench.floor --port 8100
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator
from typing import Any

from quart import Quart, Response, request

app = Quart(__name__)
queues: set[asyncio.Queue[bytes]] = set()


@app.get("/healthz")
async def healthz() -> Any:
    return {"status": "ok", "subscribers": len(queues)}


@app.get("/events")
async def events() -> Any:
    queue: asyncio.Queue[bytes] = asyncio.Queue()

    async def body() -> AsyncIterator[bytes]:
        queues.add(queue)
        try:
            yield b"retry: 2000\n\n"
            while True:
                yield await queue.get()
        finally:
            queues.discard(queue)

    response = Response(
        body(), 200, {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    response.timeout = None
    return response


@app.post("/publish")
async def publish() -> Any:
    message: bytes = await request.get_data(as_text=False)  # type: ignore[assignment]
    for queue in queues:
        queue.put_nowait(message)
    return "", 204


@app.post("/noop")
async def noop() -> Any:
    return "", 204


def main() -> None:
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    # The same settings as app/server.py's hypercorn_config for the project.
    config = Config()
    config.bind = [f"127.0.0.1:{args.port}"]
    config.backlog = 4096
    config.graceful_timeout = 1.0
    import uvloop

    uvloop.run(serve(app, config))  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
