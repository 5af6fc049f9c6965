"""The service's pages for people: `/` (what this service is, with links), `/docs` (Swagger UI) and `/redoc`
(ReDoc), their scripts and styles served from the `fastapi-offline` package's files under `/static/docs`:
no page asks any host but this one."""

from __future__ import annotations

import html
from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

STATIC = "/static/docs"
LINKS = (
    ("/docs", "API docs (Swagger UI: try a request)"),
    ("/redoc", "API reference (ReDoc)"),
    ("/openapi.json", "OpenAPI document"),
    ("/model", "the served model (JSON: lineage, metrics, input example)"),
    ("/metrics", "Prometheus metrics"),
    ("/health", "liveness"),
    ("/ready", "readiness"),
)


# redoc 2.5's sidebar shows Redocly's logo from its CDN, with no option to turn it off
REDOC_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"


def offline_redoc(bundle: bytes) -> bytes:
    """redoc's bundle without its one outside request: the logo's URL becomes an empty `data:` URL, which
    fails to load as an image, and the logo hides itself (its onError), as it does offline."""
    return bundle.replace(REDOC_LOGO, b"data:,")


def asset_dir() -> Path:
    """swagger-ui-bundle.js, swagger-ui.css, redoc.standalone.js, favicon.png, as the package ships them."""
    return Path(str(files("fastapi_offline") / "static"))


def home_html(title: str, served, alias: str, features: list[str], load_error: str | None) -> str:
    """The page at `/`: the model this service answers with (or why none is loaded) and its links."""
    esc = html.escape
    if served is None:
        about = f"<p>No model loaded: {esc(load_error or 'loading')}.</p>"
    else:
        rows = [
            ("model", served.name),
            ("version", served.version),
            ("alias", alias or "(served by version, not by alias)"),
            ("run id", served.run_id),
            ("task", served.task),
            ("classes", ", ".join(map(str, served.classes)) or "-"),
            ("features", ", ".join(features)),
        ]
        about = "<table>" + "".join(f"<tr><th>{esc(k)}</th><td>{esc(str(v))}</td></tr>" for k, v in rows)
        about += "</table>"
    links = "".join(f'<li><a href="{href}">{esc(href)}</a>: {esc(text)}</li>' for href, text in LINKS)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<title>{esc(title)}</title><link rel="icon" href="{STATIC}/favicon.png">'
        "<style>body{font-family:sans-serif;max-width:48rem;margin:2rem auto;padding:0 1rem}"
        "th{text-align:left;padding-right:1rem;vertical-align:top}</style></head><body>"
        f"<h1>{esc(title)}</h1><p>Predictions over HTTP: POST a JSON body to <code>/predict</code>, checked "
        "against the model's training profile; true labels go to <code>/feedback</code>.</p>"
        f"{about}<h2>Links</h2><ul>{links}</ul></body></html>"
    )


def add_pages(app: FastAPI, home) -> None:
    """Mount the doc assets and add `/`, `/docs`, `/redoc` to `app` (made with docs_url=None,
    redoc_url=None); `home()` gives the HTML of `/` at each request."""
    openapi_url, redirect_url = app.openapi_url, app.swagger_ui_oauth2_redirect_url
    redoc_js = offline_redoc((asset_dir() / "redoc.standalone.js").read_bytes())

    @app.get("/", include_in_schema=False)
    def index() -> HTMLResponse:
        return HTMLResponse(home())

    @app.get("/docs", include_in_schema=False)
    def swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{STATIC}/swagger-ui-bundle.js",
            swagger_css_url=f"{STATIC}/swagger-ui.css",
            swagger_favicon_url=f"{STATIC}/favicon.png",
            oauth2_redirect_url=redirect_url,
            # no validator badge: it would send the document to validator.swagger.io
            swagger_ui_parameters={"validatorUrl": None, "tryItOutEnabled": True},
        )

    @app.get(redirect_url, include_in_schema=False)
    def swagger_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{STATIC}/redoc.standalone.js",
            redoc_favicon_url=f"{STATIC}/favicon.png",
            with_google_fonts=False,
        )

    @app.get(f"{STATIC}/redoc.standalone.js", include_in_schema=False)
    def redoc_bundle() -> Response:
        return Response(redoc_js, media_type="text/javascript")

    # after the route above, which it would otherwise shadow
    app.mount(STATIC, StaticFiles(directory=asset_dir()), name="docs-assets")
