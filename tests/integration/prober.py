"""Probes of a service for the probe tests, in a process of their own, as a load balancer's probes are: the
test process's own pauses (a full garbage collection of a heap holding MLflow and pandas takes 100-250 ms)
are not the service's. `python prober.py PORT` GETs /health, /ready and /metrics in turn on a new connection
every 20 ms until its stdin closes, then prints [[milliseconds, status], ...] as JSON. Imports nothing
heavy."""

from __future__ import annotations

import gc
import json
import socket
import sys
import threading
import time

PATHS = ("/health", "/ready", "/metrics")


def probe_ms(port: int, path: str) -> tuple[float, int]:
    """(milliseconds, status) of one GET on a new connection, as a load balancer's probe does it."""
    t0 = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return (time.perf_counter() - t0) * 1000, int(data.split(b" ", 2)[1])


def main(port: int) -> None:
    gc.disable()  # a few hundred small objects: nothing to collect, no pause to measure
    stop, seen = threading.Event(), []
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    k = 0
    while not stop.is_set():
        seen.append(probe_ms(port, PATHS[k % len(PATHS)]))
        k += 1
        stop.wait(0.02)
    print(json.dumps(seen))


if __name__ == "__main__":
    main(int(sys.argv[1]))
