"""A page seen as a person sees it: Debian's Chromium, headless, driven by Playwright (never a browser of
Playwright's own download). Every request the page makes is recorded and any that would leave the machine
is refused; uncaught JavaScript errors are kept; a screenshot is saved. `Visit.problems()` says what is
wrong with the page in one line per finding: an outside request, a JS error, a blank page."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

# Where a page may fetch from: this machine, and what the browser makes in memory.
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
LOCAL_SCHEMES = {"file", "data", "blob", "about", "chrome-error"}
# Flags the machine needs (root, no GPU) and those that stop Chromium's own calls home (updates, sync,
# field trials): without them it tries Google's hosts at every start, none of them the page's doing.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--disable-features=OptimizationHints,MediaRouter,Translate",
]
VIEWPORT = {"width": 1280, "height": 800}
MIN_TEXT_CHARS = 40  # a page showing less text than this is blank to a reader


def is_local(url: str) -> bool:
    """True when fetching `url` stays on this machine (loopback, file, data, blob, about)."""
    parts = urlsplit(url)
    if parts.scheme in LOCAL_SCHEMES:
        return True
    return parts.scheme in {"http", "https", "ws", "wss"} and (parts.hostname or "") in LOCAL_HOSTS


def outside_requests(urls: Iterable[str]) -> list[str]:
    """The URLs among `urls` that would leave the machine, each once, in order."""
    return list(dict.fromkeys(url for url in urls if not is_local(url)))


def chromium_path() -> str:
    """Debian's Chromium (`make browser` installs it when missing)."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        raise AssertionError("chromium is not installed: `make browser` installs Debian's package")
    return path


@dataclass
class Visit:
    """What one page did while it was looked at."""

    name: str
    url: str
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # uncaught JS errors (pageerror)
    text: str = ""
    expected: str = ""
    screenshot: Path | None = None

    def problems(self) -> list[str]:
        found = [f"{self.name}: requested outside host {url}" for url in outside_requests(self.requests)]
        found += [f"{self.name}: JS error {err}" for err in self.errors]
        if len(self.text.strip()) < MIN_TEXT_CHARS:
            found.append(f"{self.name}: blank ({len(self.text.strip())} characters of text)")
        elif self.expected and self.expected not in self.text:
            found.append(f"{self.name}: {self.expected!r} not shown")
        return found


class Browser:
    """One headless Chromium for several pages; screenshots go to `shots` (and, when `readme_shots` is set,
    a small palette PNG of each page named in `readme_names` to that folder: the README's pictures)."""

    def __init__(self, shots: Path, readme_shots: Path | None = None, readme_names: Iterable[str] = ()):
        self.shots = shots
        self.readme_shots = readme_shots
        self.readme_names = set(readme_names)

    def __enter__(self) -> Browser:
        from playwright.sync_api import sync_playwright

        self.shots.mkdir(parents=True, exist_ok=True)
        self._pw = sync_playwright().start()
        self._browser = self._pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        return self

    def __exit__(self, *exc) -> None:
        self._browser.close()
        self._pw.stop()

    def visit(
        self,
        name: str,
        url: str,
        expect: str,
        act: Callable | None = None,
        timeout_s: float = 60,
    ) -> Visit:
        """Open `url` in a fresh context, wait until `expect` is shown (or the timeout), run `act(page)`
        (clicks), settle, screenshot; every request is recorded and an outside one refused."""
        visit = Visit(name=name, url=url, expected=expect)
        context = self._browser.new_context(viewport=VIEWPORT, service_workers="block")

        def route(r):
            visit.requests.append(r.request.url)
            return r.continue_() if is_local(r.request.url) else r.abort("blockedbyclient")

        context.route("**/*", route)
        page = context.new_page()
        page.on("pageerror", lambda err: visit.errors.append(str(err).splitlines()[0][:300]))
        page.on("websocket", lambda ws: visit.requests.append(ws.url))
        try:
            page.goto(url, wait_until="load", timeout=timeout_s * 1000)
            try:
                page.get_by_text(expect).first.wait_for(timeout=timeout_s * 1000)
            except Exception:  # noqa: BLE001 - reported below as "not shown" with the page's text
                pass
            if act is not None:
                act(page)
            try:
                page.wait_for_load_state("networkidle", timeout=5000)
            except Exception:  # noqa: BLE001 - pages that poll never go idle; the screenshot waits anyway
                page.wait_for_timeout(1000)
            visit.text = page.inner_text("body")
            visit.screenshot = self.shots / f"{name}.png"
            page.screenshot(path=str(visit.screenshot))
            if self.readme_shots is not None and name in self.readme_names:
                small_png(visit.screenshot, self.readme_shots / f"{name}.png")
        finally:
            context.close()
        return visit


def small_png(src: Path, dest: Path, width: int = 960) -> Path:
    """A copy of screenshot `src` scaled to `width` and reduced to a 128-colour palette: a picture for the
    README of ~50-150 KB instead of ~400 KB."""
    from PIL import Image

    dest.parent.mkdir(parents=True, exist_ok=True)
    with Image.open(src) as image:
        image = image.convert("RGB")
        height = round(image.height * width / image.width)
        image = image.resize((width, height), Image.LANCZOS)
        image.quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(dest, optimize=True)
    return dest


def readme_shots_dir() -> Path | None:
    """Where the check writes the README's pictures: $UI_CHECK_README_SHOTS (set by `make ui-check`)."""
    value = os.environ.get("UI_CHECK_README_SHOTS")
    return Path(value) if value else None
