"""The service against a hostile client, as a deployed process (`mlpipe serve` on 127.0.0.1): bodies that
used to reach a 500 get a 4xx naming the field or the limit, a body larger than the limit costs no more
than the limit in memory however it is sent, idle and slow connections are cut on time, a flood of idle
sockets does not keep /health from answering, and the command's options are range-checked."""

from __future__ import annotations

import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import yaml
from conftest import copy_project, mlpipe, start_server, stop

pytestmark = pytest.mark.integration
LIMIT = 1 << 20  # --max-bytes (the default)
IDLE_S, REQUEST_S = 2.0, 3.0
TIMEOUT_S = 30


@pytest.fixture(scope="module")
def service(first_run, tmp_path_factory):
    root = copy_project(first_run[0], tmp_path_factory.mktemp("abuse") / "project")
    # a project whose pressure has no physical range (as `mlpipe init` writes for a column it knows nothing
    # of): any finite number is accepted there
    doc = yaml.safe_load((root / "params.yaml").read_text())
    del doc["validate"]["ranges"]["pressure"]
    (root / "params.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    base, proc = start_server(
        root,
        "--idle-timeout-s",
        str(IDLE_S),
        "--request-timeout-s",
        str(REQUEST_S),
        "--max-bytes",
        str(LIMIT),
    )
    example = httpx.get(f"{base}/model", timeout=TIMEOUT_S).json()["input_example"]["records"][0]
    yield base, proc, example
    stop(proc)


def post(base: str, path: str, body: bytes) -> httpx.Response:
    return httpx.post(
        f"{base}{path}", content=body, headers={"content-type": "application/json"}, timeout=TIMEOUT_S
    )


def port_of(base: str) -> int:
    return int(base.rsplit(":", 1)[1])


def rss_kib(pid: int) -> int:
    """VmRSS of the process, KiB."""
    line = next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x.startswith("VmRSS:"))
    return int(line.split()[1])


def test_lone_surrogates_are_a_422_naming_the_field(service):
    base, _, example = service
    body = json.dumps({"records": [{**example, "carrier": "\udc80"}]}).encode()  # sent as the \udc80 escape
    assert b"\\udc80" in body
    answer = post(base, "/predict", body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"][0]["field"] == "records[0].carrier"
    feedback = post(base, "/feedback", b'{"request_id": "\\udc80", "labels": [1]}')
    assert feedback.status_code == 422 and feedback.json()["detail"][0]["field"] == "request_id", (
        feedback.text
    )
    key = post(base, "/predict", b'{"records": [{"\\udfff": 1}]}')
    assert key.status_code == 422 and key.json()["detail"][0]["field"] == "records[0].\\udfff", key.text


def test_deep_nesting_is_a_400_naming_the_limit(service):
    base, _, example = service
    deep = b"[" * 1000 + b"]" * 1000
    in_a_field = json.dumps({"records": [{**example, "hour": "HOLE"}]}).encode()
    in_a_field = in_a_field.replace(b'"HOLE"', b"[" * 500 + b"]" * 500)  # 1.3 KB
    for path, body in (("/predict", deep), ("/predict", in_a_field), ("/feedback", deep)):
        answer = post(base, path, body)
        assert answer.status_code == 400, (path, answer.text)
        assert answer.json()["detail"][0]["rule"] == "JSON nested more than 32 levels deep (limit: 32)"


def test_a_number_too_large_for_a_float_is_a_422_not_a_500(service):
    base, _, example = service
    body = json.dumps({"records": [{**example, "pressure": 10**400}]}).encode()  # was a 500 (OverflowError)
    answer = post(base, "/predict", body)
    assert answer.status_code == 422 and answer.json()["detail"][0]["kind"] == "too_large", answer.text
    as_text = post(base, "/predict", json.dumps({"records": [{**example, "pressure": "9" * 400}]}).encode())
    assert as_text.status_code == 422 and as_text.json()["detail"][0]["kind"] == "wrong_type"
    digits = post(base, "/predict", b'{"records": [{"pressure": ' + b"9" * 5000 + b"}]}")
    assert digits.status_code == 400 and "invalid JSON" in digits.text


def chunked_upload(port: int, path: str, total: int, chunk: int = 1 << 20) -> tuple[int, bytes]:
    """Stream `total` bytes to `path` without a Content-Length (chunked) until the service answers or
    closes; returns (bytes sent, what it answered)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S)
    sent, answer = 0, b""
    piece = b"%x\r\n" % chunk + b" " * chunk + b"\r\n"
    try:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n\r\n".encode()
        )
        sock.setblocking(False)
        while sent < total and not answer:
            view = memoryview(piece)
            while view:
                try:
                    view = view[sock.send(view) :]
                except BlockingIOError:
                    time.sleep(0.001)
                try:
                    answer = sock.recv(65536)
                    if answer:
                        break
                except BlockingIOError:
                    pass
            sent += chunk
    except (BrokenPipeError, ConnectionResetError):
        pass
    finally:
        sock.close()
    return sent, answer


def test_a_body_over_the_limit_is_a_413_and_costs_no_more_than_the_limit(service):
    base, proc, _ = service
    port = port_of(base)
    declared = httpx.post(f"{base}/feedback", content=b" " * (2 * LIMIT), timeout=TIMEOUT_S)  # 2 MiB
    assert declared.status_code == 413 and declared.json()["detail"][0]["rule"] == (
        f"payload of {2 * LIMIT} bytes is over the limit of {LIMIT}"
    )
    before = rss_kib(proc.pid)
    peak, done = [before], threading.Event()

    def sample():
        while not done.is_set():
            peak.append(rss_kib(proc.pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        with ThreadPoolExecutor(4) as pool:  # four 500 MB bodies at once, as the hostile tester sent them
            results = list(
                pool.map(lambda p: chunked_upload(port, p, 500 << 20), ["/predict", "/feedback"] * 2)
            )
    finally:
        done.set()
        sampler.join()
    grown_mib = (max(peak) - before) / 1024
    print(
        f"RSS {before / 1024:.0f} MiB -> peak {max(peak) / 1024:.0f} MiB (+{grown_mib:.1f}); "
        f"sent {[sent for sent, _ in results]}"
    )
    for sent, answer in results:
        assert sent < 64 * LIMIT, "the service stopped reading long before 500 MB"
        assert not answer or answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert any(answer.startswith(b"HTTP/1.1 413") for _, answer in results)
    assert grown_mib < 16 * LIMIT / (1 << 20), f"RSS grew {grown_mib:.1f} MiB for four bodies over {LIMIT} B"
    assert httpx.get(f"{base}/health", timeout=TIMEOUT_S).status_code == 200


def test_two_hundred_idle_sockets_do_not_keep_health_from_answering(service):
    base, _, example = service
    port = port_of(base)
    idle = [socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) for _ in range(200)]
    try:
        for path in ("/health", "/ready"):
            t0 = time.perf_counter()
            answer = httpx.get(f"{base}{path}", timeout=TIMEOUT_S)
            took = time.perf_counter() - t0
            print(f"{path} under 200 idle sockets: {took * 1000:.1f} ms")
            assert answer.status_code == 200 and took < 1.0, (path, answer.status_code, took)
        assert (
            httpx.post(f"{base}/predict", json={"records": [example]}, timeout=TIMEOUT_S).status_code == 200
        )
    finally:
        for sock in idle:
            sock.close()


def seconds_until_closed(sock: socket.socket) -> float:
    t0 = time.perf_counter()
    while sock.recv(65536):
        pass
    return time.perf_counter() - t0


def test_idle_and_slow_connections_are_cut_on_time(service):
    base, _, _ = service
    port = port_of(base)
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as never_speaks:
        took = seconds_until_closed(never_speaks)
    print(f"idle socket closed after {took:.2f} s (idle timeout {IDLE_S} s)")
    assert IDLE_S - 0.5 < took < IDLE_S + 3, took

    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as kept_alive:
        kept_alive.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert kept_alive.recv(65536).startswith(b"HTTP/1.1 200")
        assert IDLE_S - 0.5 < seconds_until_closed(kept_alive) < IDLE_S + 3

    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as slowloris:
        t0 = time.perf_counter()
        answer = b""
        try:
            for line in [b"POST /predict HTTP/1.1\r\n", *[b"X-Slow-%d: 1\r\n" % i for i in range(100)]]:
                slowloris.sendall(line)  # a header line every half second: never idle, never done
                time.sleep(0.5)
                if time.perf_counter() - t0 > REQUEST_S + 3:
                    break
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            answer = slowloris.recv(65536)
        except ConnectionResetError:
            pass
        took = time.perf_counter() - t0
    assert answer.startswith(b"HTTP/1.1 408") or answer == b"", answer[:200]
    assert took < REQUEST_S + 3, took

    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as big_headers:
        big_headers.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (100 << 10) + b"\r\n\r\n")
        assert big_headers.recv(65536).startswith(b"HTTP/1.1 431")


def test_no_abuse_left_a_5xx_in_the_metrics(service):
    base, _, _ = service
    metrics = httpx.get(f"{base}/metrics", timeout=TIMEOUT_S).text
    assert 'status="5' not in metrics, [line for line in metrics.splitlines() if 'status="5' in line]


@pytest.mark.parametrize(
    "option",
    ["--port 99999", "--port 0", "--poll-s 0", "--max-records 0", "--max-concurrency 0", "--max-bytes 0"],
)
def test_serve_options_out_of_range_are_one_error_line_and_exit_2(first_run, option):
    proc = mlpipe(first_run[0], "serve", *option.split(), check=False)
    name = option.split()[0]
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    (line,) = proc.stderr.strip().splitlines()  # one line: the command, the option and its rule
    assert line.startswith("mlpipe serve: Invalid value for ") and f"'{name}'" in line, line
