"""The browser check (`make ui-check`): every page mlpipe points a person at, opened in headless Chromium from
Debian's packages after a real `mlpipe run`, as a data scientist would look at it: the MLflow runs table, run
page, logged model and registered version (`mlpipe ui` on a free port), the Prefect flow-run page (a server
on a port other than 4200), the service's `/docs` with the example sent from "Try it out", `/redoc` and `/`,
the run's Evidently report and the DVC plots (`mlpipe plots`); the docs site (`make docs`: built with
`mkdocs build --strict`, served on 127.0.0.1), its search included.

A page fails when it shows too little text or not what it is for (blank), when it asks for anything beyond
127.0.0.1, file:, data: or blob: (refused, recorded), or when it throws a JavaScript error. Screenshots go
to `.ui-check/` (git-ignored); `make ui-shots` also writes small copies to docs/screenshots/ (the README's
and the docs site's pictures)."""

from __future__ import annotations

import json
import re
import sys
import urllib.request
from pathlib import Path

import pytest
from browser import Browser, Visit, outside_requests, readme_shots_dir
from conftest import REPO, copy_project, mlpipe, start_server, stop, tracking_client, wait_until
from docs_build import build_docs_site

from mlpipe.flows.common import run_link
from mlpipe.runtime.localserver import free_port, launch, wait_answering
from mlpipe.runtime.shell import stop_process_group, tool_env

pytestmark = pytest.mark.integration

SHOTS = REPO / ".ui-check"
# one picture per tool for the README and the docs site (`make ui-shots`)
README_PAGES = (
    "mlflow-run",
    "mlflow-model",
    "prefect-flow-run",
    "service-docs",
    "evidently-report",
    "dvc-plots",
)


def assert_seen(visit: Visit) -> None:
    assert visit.problems() == [], f"{visit.url}\n{visit.text[:1500]}"


@pytest.fixture(scope="module")
def browser():
    with Browser(SHOTS, readme_shots_dir(), README_PAGES) as b:
        yield b


@pytest.fixture(scope="module")
def looked_at(first_run, tmp_path_factory) -> tuple[Path, str]:
    """A copy of the first run's project (runs, registry, drift report, DVC plots' data) and the name of the
    Prefect flow run that made it."""
    root = copy_project(first_run[0], tmp_path_factory.mktemp("ui-check") / "project")
    logs = first_run[1].stdout + first_run[1].stderr
    names = re.findall(r"Flow run '(retrain-[^']+)' - Finished", logs)
    assert names, logs[-3000:]
    return root, names[-1]


@pytest.fixture(scope="module")
def mlflow_ui(looked_at):
    """`mlpipe ui --port P` (MLflow) over the project's store, as a user starts it."""
    root = looked_at[0]
    port = free_port()
    env = tool_env()
    env.pop("MLFLOW_TRACKING_URI", None)
    proc = launch([sys.executable, "-m", "mlpipe.cli", "ui", "--port", str(port)], root, env, root / "ui.log")
    try:
        wait_answering(proc, f"http://127.0.0.1:{port}/health", 180)
        # the address is printed once the server answers (polled every 0.5 s), never before
        wait_until(lambda: "MLflow UI on " in (root / "ui.log").read_text(), 30)
        printed = re.search(r"MLflow UI on (\S+)", (root / "ui.log").read_text())
        assert printed, (root / "ui.log").read_text()[-2000:]
        yield f"http://127.0.0.1:{port}", printed[1]
    finally:
        stop_process_group(proc, grace_s=10)


def close_assistant(page) -> None:
    """Close the MLflow Assistant panel (MLflow 3.17 opens it beside every page; it needs an LLM provider
    this project has none of), as a person would before reading the page."""
    close = page.locator('[data-component-id="mlflow.assistant.chat_panel.close"]')
    if close.count():
        close.first.click()
        page.wait_for_timeout(300)


def test_mlflow_runs_run_and_model_pages_render_offline(browser, looked_at, mlflow_ui):
    mlflow_ui, printed = mlflow_ui
    client = tracking_client(looked_at[0])
    experiment = client.get_experiment_by_name("mlpipe")
    run = client.search_runs([experiment.experiment_id], max_results=1)[0]
    version = client.get_model_version("flights-late", "1")
    model_id = version.source.removeprefix("models:/")
    view = run_link(mlflow_ui, experiment.experiment_id, run.info.run_id).split("?", 1)[1]
    experiment_page = f"{mlflow_ui}/#/experiments/{experiment.experiment_id}"
    pages = [
        # the address `mlpipe ui` prints: the runs table, model-training view, headline metrics as columns
        ("mlflow-runs", printed, run.info.run_name),
        # the run link of the summary and the Prefect artifact; its description says how to reproduce it
        ("mlflow-run", run_link(mlflow_ui, experiment.experiment_id, run.info.run_id), "mlpipe reproduce"),
        # the logged model knows its registered version (not "Not registered")
        ("mlflow-logged-model", f"{experiment_page}/models/{model_id}?{view}", "v1"),
        ("mlflow-model", f"{mlflow_ui}/#/models/flights-late/versions/1?{view}", "champion"),
        # the registered model says what its versions are and how they move
        ("mlflow-registered-model", f"{mlflow_ui}/#/models/flights-late", "Versions are registered by"),
    ]
    visits = [browser.visit(name, url, expect, act=close_assistant) for name, url, expect in pages]
    for visit in visits:
        assert_seen(visit)
    assert "Not registered" not in visits[2].text
    # the run is named after what it is, and its gate table is on the page, not behind a hover
    assert run.info.run_name.startswith("v1 · first run"), run.info.run_name
    assert {"criterion", "bound", "verdict"} <= set(visits[1].text.split()), (
        "the gate table in the description"
    )
    assert "Model training" in visits[0].text  # the view's toggle is shown, set to model training
    assert {"roc_auc", "average_precision"} <= set(visits[0].text.split()), "headline metric columns"


def _flow_run(api: str, name: str) -> dict:
    body = json.dumps({"flow_runs": {"name": {"any_": [name]}}, "limit": 1}).encode()
    request = urllib.request.Request(
        f"{api}/flow_runs/filter", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        found = json.loads(answer.read())
    assert found, f"no flow run named {name} on {api}"
    return found[0]


def test_prefect_flow_run_page_on_a_non_default_port(browser, looked_at, prefect_server):
    # The session's server is `prefect server start` on a free port with mlpipe's settings (those of
    # `mlpipe ui --prefect --port P`): the UI must call the API on that port, not 4200.
    base = prefect_server.removesuffix("/api")
    assert not base.endswith(":4200")
    flow_run = _flow_run(prefect_server, looked_at[1])

    visit = browser.visit("prefect-flow-run", f"{base}/runs/flow-run/{flow_run['id']}", flow_run["name"])
    assert_seen(visit)
    # the flow run's state is named after the gate's outcome (its task runs stay Completed)
    assert "Promoted" in visit.text and "Completed" in visit.text and "stage-train" in visit.text

    def open_artifacts(page):
        page.get_by_text("Artifacts", exact=True).first.click()
        page.get_by_text("retrain-summary").first.wait_for(timeout=30_000)

    artifacts = browser.visit(
        "prefect-artifacts", f"{base}/runs/flow-run/{flow_run['id']}", flow_run["name"], act=open_artifacts
    )
    assert_seen(artifacts)
    assert "retrain-metrics" in artifacts.text


@pytest.fixture(scope="module")
def service(looked_at):
    base, proc = start_server(looked_at[0])
    yield base
    stop(proc)


def send_the_example(page) -> None:
    """Open POST /predict, "Try it out" (when the page asks for it), Execute: the example body is sent and the
    answer's status shows on the page."""
    op = page.locator("#operations-default-predict_predict_post")
    op.locator(".opblock-summary").click()
    try_it = op.get_by_role("button", name="Try it out")
    if try_it.count():
        try_it.click()
    # the query (?all_or_nothing=..., when the page sends the parameter) is not part of the route
    with page.expect_response(
        lambda r: r.url.split("?")[0].endswith("/predict") and r.request.method == "POST"
    ) as sent:
        op.get_by_role("button", name="Execute").click()
    page.answered_status = sent.value.status
    status = op.locator(".live-responses-table .response-col_status").first
    status.wait_for(timeout=30_000)
    op.locator(".live-responses-table").first.scroll_into_view_if_needed()


def test_service_docs_send_the_example_and_every_page_is_local(browser, service):
    answered = {}

    def act(page):
        send_the_example(page)
        answered["status"] = page.answered_status

    docs = browser.visit("service-docs", f"{service}/docs", "/predict", act=act)
    assert_seen(docs)
    assert answered == {"status": 200}
    assert "probabilities" in docs.text  # the answer's body is shown under "Server response"
    assert any(u.split("?")[0] == f"{service}/predict" for u in docs.requests), docs.requests
    pages = [("service-redoc", "/redoc", "Request samples"), ("service-home", "/", "/docs")]
    for name, path, expect in pages:
        assert_seen(browser.visit(name, f"{service}{path}", expect))


def test_evidently_report_and_dvc_plots_render_from_files(browser, looked_at):
    root = looked_at[0]
    client = tracking_client(root)
    run = client.search_runs([client.get_experiment_by_name("mlpipe").experiment_id], max_results=1)[0]
    report = Path(client.download_artifacts(run.info.run_id, "drift/drift.html", str(root / ".mlpipe")))
    # Evidently draws its panels with its own script: the share is shown only when that script ran
    drift = browser.visit("evidently-report", report.as_uri(), "Share of Drifted Columns")
    assert_seen(drift)
    assert "vs the training split" in drift.text  # mlpipe's title and context above Evidently's page
    page = mlpipe(root, "plots").stdout.strip().splitlines()[-1]
    # the plots' titles are drawn by Vega: shown only when vega, vega-lite and vega-embed loaded offline
    plots = browser.visit("dvc-plots", page, "ROC on the test split")
    assert_seen(plots)
    assert "Confusion matrix on the test split" in plots.text


@pytest.fixture(scope="module")
def docs_site(tmp_path_factory):
    """The docs site as `make docs` makes it: `mkdocs build --strict` into a folder, then
    scripts/serve_docs.py on a free loopback port."""
    site = tmp_path_factory.mktemp("docs") / "site"
    env = tool_env()
    build_docs_site(site, env)
    port = free_port()
    cmd = [sys.executable, str(REPO / "scripts" / "serve_docs.py"), str(site), "--port", str(port)]
    proc = launch(cmd, REPO, env, site.parent / "serve.log")
    try:
        wait_answering(proc, f"http://127.0.0.1:{port}/index.html", 60)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process_group(proc, grace_s=5)


def search_for(words: str):
    """Type `words` into the site's search box, as a reader does, and wait for the results (the search index
    and its worker script are the site's own files)."""

    def act(page) -> None:
        box = page.locator("input.md-search__input")
        box.click()  # on a wide window the box is in the header (a narrow one shows a button instead)
        box.press_sequentially(words, delay=30)  # key by key: the theme searches on keyboard events
        page.locator(".md-search-result__item").first.wait_for(timeout=20_000)

    return act


def test_docs_site_renders_offline_with_its_search_and_generated_reference(browser, docs_site):
    home = browser.visit(
        "docs-home", f"{docs_site}/index.html", "Everything runs offline", act=search_for("champion")
    )
    assert_seen(home)
    assert "make run" in home.text and "make test" in home.text  # the quick start's two commands
    assert "Getting started" in home.text  # the navigation drawn by the theme
    assert "matching documents" in home.text  # the search answered from the site's own index
    assert any("search_index.json" in u for u in home.requests), home.requests
    cli = browser.visit("docs-cli", f"{docs_site}/reference/cli.html", "--max-concurrency")
    assert_seen(cli)
    assert "mlpipe serve" in cli.text and "mlpipe data accept" in cli.text  # generated from the Typer app
    params = browser.visit("docs-params", f"{docs_site}/reference/params.html", "gate.max_net_negative_flips")
    assert_seen(params)
    arch = browser.visit(
        "docs-architecture", f"{docs_site}/architecture.html", "mlpipe.pipeline.stages.train"
    )
    assert_seen(arch)
    assert "mlpipe.serving" in arch.text  # the layers table, generated from the import contracts
    every = home.requests + cli.requests + params.requests + arch.requests
    assert all(u.startswith((docs_site, "data:", "blob:")) for u in every), outside_requests(every) or every


# The check itself: each kind of broken page is caught (a check that cannot fail checks nothing).
BROKEN = {
    "blank": ("<html><body><div id=app></div></body></html>", "blank"),
    "outside": (
        "<html><body><h1>A page with an outside image</h1><p>" + "text " * 20 + "</p>"
        '<img src="https://cdn.example.com/logo.png"></body></html>',
        "requested outside host https://cdn.example.com/logo.png",
    ),
    "js-error": (
        "<html><body><p>" + "text " * 20 + "</p><script>throw new Error('boom')</script></body></html>",
        "JS error",
    ),
    "wrong": ("<html><body><p>" + "Not the page you wanted. " * 5 + "</p></body></html>", "not shown"),
}


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_the_check_fails_a_blank_outside_or_throwing_page(browser, tmp_path, kind):
    html, finding = BROKEN[kind]
    page = tmp_path / f"{kind}.html"
    page.write_text(html)
    visit = browser.visit(f"broken-{kind}", page.as_uri(), "the expected words", timeout_s=2)
    assert any(finding in problem for problem in visit.problems()), visit.problems()


def test_only_loopback_and_in_browser_urls_count_as_local():
    urls = [
        "http://127.0.0.1:5000/ajax-api/2.0/mlflow/runs/get",
        "ws://localhost:4200/api/events/in",
        "file:///tmp/report.html",
        "data:image/png;base64,AAAA",
        "blob:http://127.0.0.1:8000/1",
        "https://cdn.jsdelivr.net/npm/vega@5",
        "http://10.0.0.1/x",
        "https://cdn.jsdelivr.net/npm/vega@5",
    ]
    assert outside_requests(urls) == ["https://cdn.jsdelivr.net/npm/vega@5", "http://10.0.0.1/x"]
