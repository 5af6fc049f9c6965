"""`mlpipe ui` prints its address once the server answers, not ~45 s before (issue 32): a link printed early
opens an error page."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from mlpipe.cli.services import announce_when_up, answer_url, answers


class Running:
    """A server process that has not ended (what announce_when_up asks of it)."""

    def __init__(self, code=None):
        self.code = code

    def poll(self):
        return self.code


class NotFound(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - the standard library's name
        self.send_response(404)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_the_address_is_printed_once_the_server_answers_with_any_status(capsys):
    server = ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = answer_url("0.0.0.0", server.server_port, "health")
        assert url == f"http://127.0.0.1:{server.server_port}/health" and answers(url)
        announce_when_up(Running(), url, "MLflow UI on http://here", every_s=0.05)
    finally:
        server.shutdown()
        server.server_close()
    assert capsys.readouterr().out == "MLflow UI on http://here\n"


def test_nothing_is_printed_when_the_server_ends_before_it_answers(capsys):
    server = ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    port = server.server_port
    server.server_close()  # nothing listens there now
    assert not answers(f"http://127.0.0.1:{port}/health")
    announce_when_up(Running(code=1), f"http://127.0.0.1:{port}/health", "never", every_s=0.05)
    assert capsys.readouterr().out == ""
