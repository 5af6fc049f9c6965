"""A burst of /predict for the probe tests, in a process of its own (its CPU and GIL are not the prober's):
`python burst.py PORT CONNECTIONS WAVES BODY_FILE` opens CONNECTIONS keep-alive connections and, WAVES
times, sends one request on each at once and waits for every answer; prints the statuses and the first 503's
Retry-After and rule as JSON."""

from __future__ import annotations

import asyncio
import json
import sys


async def answer(reader: asyncio.StreamReader) -> tuple[int, bool, dict, bytes]:
    """(status, closed, headers, body) of one HTTP/1.1 response with a Content-Length."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status, length, close, headers = int(lines[0].split(b" ", 2)[1]), 0, False, {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.decode().lower()] = value.strip().decode()
        if name.lower() == b"content-length":
            length = int(value)
        elif name.lower() == b"connection":
            close = value.strip().lower() == b"close"
    return status, close, headers, await reader.readexactly(length)


async def burst(port: int, connections: int, waves: int, body: bytes) -> tuple[dict[str, int], dict]:
    request = (
        f"POST /predict HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode() + body
    open_: list = [None] * connections
    codes: dict[str, int] = {}
    shed: dict = {}

    async def one(k: int) -> None:
        try:
            if open_[k] is None:
                open_[k] = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 30)
            reader, writer = open_[k]
            writer.write(request)
            status, close, headers, content = await asyncio.wait_for(answer(reader), 60)
            if status == 503 and not shed:
                try:
                    rule = json.loads(content)["detail"][0]["rule"]
                except (ValueError, KeyError, IndexError, TypeError):
                    rule = content.decode(errors="replace")  # not the service's refusal shape
                shed.update(headers, rule=rule)
            if close:
                writer.close()
                open_[k] = None
        except (OSError, asyncio.IncompleteReadError, TimeoutError) as exc:
            status, open_[k] = type(exc).__name__, None
        codes[str(status)] = codes.get(str(status), 0) + 1

    for _ in range(waves):
        await asyncio.gather(*(one(k) for k in range(connections)))
    return codes, shed


if __name__ == "__main__":
    port, connections, waves, body_file = sys.argv[1:5]
    with open(body_file, "rb") as f:
        body = f.read()
    print(json.dumps(asyncio.run(burst(int(port), int(connections), int(waves), body))))
