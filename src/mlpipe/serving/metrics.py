"""Prometheus metrics of the service: requests by endpoint and status, latency, predictions by class,
refused fields by rule and refused records, hot swaps (counted by a pure-ASGI middleware); the served model's
name, version, alias and run id (`mlpipe_model_info`); the prediction log's rows by outcome and its
spool's depth (read off the log at each scrape)."""

from __future__ import annotations

import time
from collections import Counter as Tally
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily


class Metrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "mlpipe_requests",
            "HTTP requests by endpoint and status",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "mlpipe_request_latency_seconds",
            "Request latency by endpoint",
            ["endpoint"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        self.predictions = Counter(
            "mlpipe_predictions", "Predictions by class", ["cls"], registry=self.registry
        )
        self.failures = Counter(
            "mlpipe_validation_failures", "Refused fields by rule", ["rule"], registry=self.registry
        )
        self.refused_records = Counter(
            "mlpipe_refused_records",
            "Records refused (a request's other records answered, or the whole request refused, 422)",
            registry=self.registry,
        )
        self.swaps = Counter(
            "mlpipe_model_swaps", "Hot swaps by outcome", ["outcome"], registry=self.registry
        )
        self.values: Histogram | None = None  # regression: predicted values, buckets from the training target

    def watch_log(self, log) -> None:
        """Export the prediction log's counts (written, spooled, replayed, refused) and spool depth."""
        self.registry.register(LogCollector(log))

    def watch_model(self, current) -> None:
        """Export `mlpipe_model_info{name,version,alias,run_id} 1` of the model `current()` names (a tuple of
        those four, or None while none is loaded), read at each scrape: a hot swap shows at the next one."""
        self.registry.register(ModelCollector(current))

    def watch_refusal(self, reason: Callable[[], str | None]) -> None:
        """Export `mlpipe_model_refused{reason} 1` while `reason()` says why a model is refused (the champion
        the alias names, kept out while another is served, or none loaded), else 0, read at each scrape."""
        self.registry.register(RefusalCollector(reason))

    def count_shed(self, routes: frozenset[str], path: str) -> None:
        """A request shed before the application (`serving.guard.Admission`): a 503 of its route (one of
        `routes`, else UNMATCHED)."""
        self.requests.labels(path if path in routes else UNMATCHED, "503").inc()

    def count_refusals(self, verdict) -> None:
        """A request's refused records, and their refused fields by rule (`request_rules.Verdict`)."""
        if verdict.refused:
            self.refused_records.inc(verdict.refused)
            for p in verdict.problems:
                self.failures.labels(p["kind"]).inc()

    def count_answers(self, served, answers) -> None:
        """Classifiers: predictions by class; regressors: a histogram of the predicted values."""
        if served.task == "regression":
            if self.values is None:
                self.values = Histogram(
                    "mlpipe_predicted_value",
                    "Predicted values (buckets: the training target's quantiles)",
                    registry=self.registry,
                    buckets=value_buckets(served.profile, served.info.get("target")),
                )
            for v in answers:
                self.values.observe(float(v))
            return
        # one pass in Python, in order of appearance (as one increment per row did): on the event loop, a
        # single row's answer costs a dict entry, not np.unique's sort
        for value, count in Tally(answers.tolist()).items():
            self.predictions.labels(str(value)).inc(count)


class RefusalCollector:
    """Why a model the service should serve is refused, as it is at the scrape."""

    def __init__(self, reason: Callable[[], str | None]):
        self.reason = reason

    def describe(self):
        return []

    def collect(self):
        reason = self.reason()
        family = GaugeMetricFamily(
            "mlpipe_model_refused",
            "1 while the model the alias names is refused (the reason says why; the served one is kept)",
            labels=["reason"],
        )
        family.add_metric([(reason or "")[:300]], 1 if reason else 0)
        yield family


class LogCollector:
    """The prediction log's rows by outcome, its spool's depth and state, as they are at the scrape."""

    def __init__(self, log):
        self.log = log

    def describe(self):
        return []  # no samples at registration: the counts are read at each scrape

    def collect(self):
        log = self.log
        rows = CounterMetricFamily(
            "mlpipe_log_rows",
            "Prediction log rows by outcome: logged (committed on arrival), spooled (kept in the local spool "
            "while the database was away), replayed (spooled rows committed later), refused (request failed)",
            labels=["outcome"],
        )
        for outcome, value in (
            ("logged", log.written),
            ("spooled", log.spooled),
            ("replayed", log.replayed),
            ("refused", log.refused),
        ):
            rows.add_metric([outcome], value)
        yield rows
        health = log.health()
        yield GaugeMetricFamily(
            "mlpipe_log_spool_rows", "Rows waiting in the spool", value=health.get("spool_rows", 0)
        )
        yield GaugeMetricFamily(
            "mlpipe_log_spool_bytes", "Bytes of the spool's segments", value=health.get("spool_bytes", 0)
        )
        yield GaugeMetricFamily(
            "mlpipe_log_degraded",
            "1 while rows wait in the spool (2: the spool is full and requests are refused), else 0",
            value={"ok": 0, "degraded": 1, "full": 2}[health["log"]],
        )


class ModelCollector:
    """The served model as an info gauge (the labels carry the facts, the value is 1)."""

    def __init__(self, current):
        self.current = current

    def describe(self):
        return []

    def collect(self):
        info = GaugeMetricFamily(
            "mlpipe_model_info",
            "The model being served (1): its name, registry version, the alias it is served by, its run id",
            labels=["name", "version", "alias", "run_id"],
        )
        found = self.current()
        if found is not None:
            info.add_metric([str(v) for v in found], 1)
        yield info


def value_buckets(profile: dict, target: str | None) -> tuple[float, ...]:
    """Histogram buckets from the training target's quantiles (distinct, increasing), else a default."""
    col = profile.get("columns", {}).get(target or profile.get("target", ""), {})
    edges = sorted({round(v, 6) for v in (col.get("quantiles") or {}).values() if v is not None})
    return tuple(edges) + (float("inf"),) if edges else Histogram.DEFAULT_BUCKETS


UNMATCHED = "unmatched"  # the endpoint label of a request no route answers (a 404): one label, not its path


class CountRequests:
    """Pure ASGI middleware: requests by endpoint and status, and latency up to the response's start (what
    `@app.middleware("http")` did, without its per-request task group and body stream: ~0.1 ms of CPU a GET,
    more for a POST with a body). The endpoint is the path of the route that answered (a Mount: its
    prefix), the request's path when it names a route that was refused before routing (a 413 of /predict),
    else UNMATCHED: a label per path a client made up would grow /metrics without bound."""

    def __init__(self, app, metrics: Metrics, route_paths: Callable[[], Iterable[str]] = tuple):
        self.app, self.metrics = app, metrics
        self.route_paths = route_paths
        self.known: frozenset[str] | None = None  # the app's route paths, read at the first request

    def endpoint(self, scope) -> str:
        route = scope.get("route")  # set by the router once a route matched
        if route is not None and getattr(route, "path", None) is not None:
            return route.path
        if self.known is None:
            self.known = frozenset(self.route_paths())
        path = scope.get("path", "")
        return path if path in self.known else UNMATCHED

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()

        async def counted(message):
            if message["type"] == "http.response.start":
                endpoint = self.endpoint(scope)
                self.metrics.requests.labels(endpoint, str(message["status"])).inc()
                self.metrics.latency.labels(endpoint).observe(time.perf_counter() - t0)
            await send(message)

        await self.app(scope, receive, counted)
