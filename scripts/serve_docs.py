"""`make docs`: serve the built site (site/) on 127.0.0.1 and print its address; Ctrl-C stops it.

A static server of the standard library rather than `mkdocs serve`: the page served is the one `mkdocs build
--strict` checked, nothing is rebuilt behind the reader's back, and no port is fixed (0: a free one)."""

from __future__ import annotations

import argparse
import functools
import http.server
import sys
from pathlib import Path


def serve(site: Path, port: int) -> None:
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    with http.server.ThreadingHTTPServer(("127.0.0.1", port), handler) as server:
        print(f"docs: http://127.0.0.1:{server.server_address[1]}/index.html (built in {site}; Ctrl-C stops)")
        sys.stdout.flush()
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            print("docs: stopped")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", type=Path)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    if not (args.site / "index.html").exists():
        print(f"docs: {args.site}/index.html missing (rule: build first: make docs-build)", file=sys.stderr)
        return 1
    serve(args.site, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
