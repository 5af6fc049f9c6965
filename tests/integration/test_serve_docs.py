"""The service's pages as a person meets them, on the real `mlpipe serve`: the OpenAPI document is the served
model's (its example is answered 200, its schemas hold the real answers and refusals), /docs and /redoc load
only files this service serves, `/` says what the service is, /metrics names the model."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import httpx
import pytest
from conftest import copy_project, start_server, stop
from jsonschema import Draft202012Validator

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def service(first_run, tmp_path_factory):
    """One service over a copy of the first run's project, for every check here (they only read)."""
    root = copy_project(first_run[0], tmp_path_factory.mktemp("docs") / "project")
    base, proc = start_server(root)
    yield base
    stop(proc)


class Assets(HTMLParser):
    """Every URL a page makes the browser fetch: script src, link href, img src."""

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("src", "href") if tag in ("script", "link", "img") else ():
            if attrs.get(key):
                self.urls.append(attrs[key])


def assets_of(page: str) -> list[str]:
    parser = Assets()
    parser.feed(page)
    return parser.urls


def schema(doc: dict, name: str) -> Draft202012Validator:
    return Draft202012Validator({**doc, "$ref": f"#/components/schemas/{name}"})


def test_the_openapi_example_is_answered_and_the_schemas_hold_the_real_bodies(service):
    doc = httpx.get(f"{service}/openapi.json").json()
    post = doc["paths"]["/predict"]["post"]
    example = post["requestBody"]["content"]["application/json"]["example"]
    assert example == httpx.get(f"{service}/model").json()["input_example"]
    record = doc["components"]["schemas"]["PredictRecord"]
    assert set(record["required"]) == set(example["records"][0])
    assert "x-training-categories" in record["properties"]["carrier"]
    answer = httpx.post(f"{service}/predict", json=example)
    assert answer.status_code == 200, answer.text
    schema(doc, "PredictAnswer").validate(answer.json())

    refusal = schema(doc, "Refusal")
    new = {**example["records"][0], "carrier": "ZZ"}  # answered as an unknown carrier, and flagged
    unseen = httpx.post(f"{service}/predict", json={"records": [new]})
    assert unseen.status_code == 200 and schema(doc, "PredictRecord").is_valid(new), unseen.text
    schema(doc, "PredictAnswer").validate(unseen.json())
    impossible = {**example["records"][0], "distance": 7000}
    partial = httpx.post(f"{service}/predict", json={"records": [new, impossible]})
    assert partial.status_code == 200 and partial.json()["predictions"][1] is None, partial.text
    schema(doc, "PredictAnswer").validate(partial.json())
    refused = httpx.post(f"{service}/predict", json={"records": [impossible]})
    assert refused.status_code == 422 and not schema(doc, "PredictRecord").is_valid(impossible)
    refusal.validate(refused.json())
    for body, code in ((b"{not json", 400), (b"x" * (2 << 20), 413)):
        refused = httpx.post(f"{service}/predict", content=body, headers={"content-type": "application/json"})
        assert refused.status_code == code and str(code) in post["responses"]
        refusal.validate(refused.json())
    fb = httpx.post(f"{service}/feedback", json={"request_id": answer.json()["request_id"], "labels": ["x"]})
    assert fb.status_code == 422 and "422" in doc["paths"]["/feedback"]["post"]["responses"]
    refusal.validate(fb.json())


@pytest.mark.parametrize("page", ["/docs", "/redoc", "/"])
def test_every_page_loads_only_what_this_service_serves(service, page):
    answer = httpx.get(f"{service}{page}")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    urls = assets_of(answer.text)
    assert urls, "a page with no script or style of its own"
    for url in urls:
        assert url.startswith("/") and not url.startswith("//"), url
        asset = httpx.get(f"{service}{url}")
        assert asset.status_code == 200 and b"cdn.redoc.ly" not in asset.content, url
    assert not re.search(r"(src|href)=[\"']?(https?:)?//", answer.text)
    assert "fonts.googleapis.com" not in answer.text and "validator.swagger.io" not in answer.text


def test_the_home_page_says_what_the_service_is_and_metrics_name_the_model(service):
    info = httpx.get(f"{service}/model").json()
    page = httpx.get(f"{service}/").text
    for text in (info["name"], info["run_id"], "champion", info["task"], *info["features"]):
        assert text in page
    for href in ("/docs", "/redoc", "/metrics", "/health", "/ready", "/model"):
        assert f'href="{href}"' in page and httpx.get(f"{service}{href}").status_code == 200
    metrics = httpx.get(f"{service}/metrics").text
    expected = (
        f'mlpipe_model_info{{alias="champion",name="{info["name"]}",run_id="{info["run_id"]}",'
        f'version="{info["version"]}"}} 1.0'
    )
    assert expected in metrics
