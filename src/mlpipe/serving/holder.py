"""The served model behind the routes: loaded once at start, watched for a new champion, swapped in one
assignment, with the reason it is not served when it is not. /model reads it through `current` (a FastAPI
dependency); /predict and /feedback, plain routes (`serving.routes.plain_routes`), read `served` once at
their start. None holds on to a model past its request."""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable

from mlpipe.runtime.logs import event
from mlpipe.serving.champion import ChampionWatch, poll_champion
from mlpipe.serving.served import Served


class ModelHolder:
    """One served model (or none, with why), for `name`. `fetch(ref)` loads a ref through every check
    (app.load_served); `watch_alias`, when given, is polled every `poll_s` for a new version to swap in."""

    def __init__(
        self,
        name: str,
        fetch: Callable[[str], Served],
        watch_alias: str | None,
        poll_s: float,
        swaps,
    ) -> None:
        self.name, self.fetch, self.watch_alias, self.poll_s, self.swaps = (
            name,
            fetch,
            watch_alias,
            poll_s,
            swaps,
        )
        self.served: Served | None = None
        self.load_error: str | None = None
        self.champion = ChampionWatch()
        self._stop = threading.Event()

    async def current(self) -> Served | None:
        """The model served now (a dependency of the routes: read once per request)."""
        return self.served

    def refusal(self) -> str | None:
        """Why the champion is not what is served (the watch's word), or why nothing is served."""
        return self.champion.reason or (None if self.served else self.load_error)

    def load(self, ref: str) -> None:
        """Load `ref`; a refusal is kept as the reason (reported by /ready and /model), never served."""
        try:
            self.serve(self.fetch(ref))
        except Exception as exc:  # noqa: BLE001 - the reason is reported, never served
            self.load_error = f"{type(exc).__name__}: {exc}".splitlines()[0]
            event("model_refused", model=self.name, ref=ref, error=self.load_error, level=40)

    def serve(self, served: Served) -> None:
        """Serve `served`, a model `fetch` loaded (here, or before the service started)."""
        self.served = served  # one assignment: atomic
        self.load_error = None
        # The model's objects (and the imports') out of the cyclic collector's reach: its full passes no
        # longer walk them in the middle of a request (p99 of single rows)
        gc.collect()
        gc.freeze()
        event("model_loaded", model=self.name, version=served.version)

    def start(self, ref: str, client, loaded: Served | None = None) -> None:
        """Load `ref` (or serve `loaded`, `ref` fetched already: `mlpipe serve --model` loads it to check it
        before the service starts), then (serving an alias) watch it in a daemon thread until `stop`."""
        if loaded is None:
            self.load(ref)
        else:
            self.serve(loaded)
        if self.watch_alias:
            threading.Thread(target=self._watch, args=(client,), name="champion-watch", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _watch(self, client) -> None:
        while not self._stop.wait(self.poll_s):
            found = poll_champion(
                self.champion, client, self.name, self.watch_alias, self.served, self.fetch, self.swaps
            )
            if found is not None:
                self.served = found  # one assignment: the swap is atomic
