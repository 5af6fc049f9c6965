# mlpipe images, built from the same lock and the same make target the tests use (`make setup` runs
# `uv sync --frozen`, here with --no-dev), running as a non-root user. Two targets:
#   service: `mlpipe serve`; the model is pulled from the MLflow registry at start (models:/NAME@champion
#            on $MLFLOW_TRACKING_URI), never baked in; the prediction log goes to $MLPIPE_PREDICTION_LOG_URL;
#            a version is served only with a judged record signed by $MLPIPE_SIGNING_KEY.
#   flows:   the retrain deployment on its schedule against a Prefect server ($PREFECT_API_URL), in a clone
#            of the project's repository made at start ($MLPIPE_GIT_URL at $MLPIPE_GIT_REF), so a flow run is
#            always a commit, and its data comes from the DVC remote in that commit's .dvc/config.
# `make image` builds both with buildah, reaching no image registry (scripts/image.sh: the base is pulled
# where a registry answers, else bootstrapped from Debian's mirror; uv and its cache are mounted from the
# host, so the build is offline). Elsewhere:
#   docker build --target service -t mlpipe-service .    docker build --target flows -t mlpipe-flows .
FROM python:3.11.7-slim-bookworm AS base
# git: DVC and the lineage need it; make: the project's own setup target
RUN apt-get update \
    && apt-get install -y --no-install-recommends git=1:2.39.* make=4.3-* \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 mlpipe
ENV PYTHONUNBUFFERED=1 \
    DVC_NO_ANALYTICS=1 \
    MLFLOW_DISABLE_TELEMETRY=true \
    PREFECT_SERVER_ANALYTICS_ENABLED=false \
    DO_NOT_TRACK=1 \
    UV_PYTHON_DOWNLOADS=never \
    PATH=/app/.venv/bin:$PATH
WORKDIR /app
# The code and the environment belong to root, read-only to the user the containers run as; /app itself is
# the user's (the service's spool, .mlpipe/). UV_SYNC_FLAGS: no cache is left in the image; `make image`
# passes --offline instead, with the host's uv cache mounted at /root/.cache/uv (never delete under it here).
ARG UV_SYNC_FLAGS="--no-dev --no-cache"
# What the service never imports, left out of the base (the service's environment): Evidently and the
# packages only it pulls in (plotly, statsmodels, nltk, litestar, polyfactory, faker), and DVC's offline plots
# bundle (vl-convert): 0.42 GB of 1.9. The flows stage adds them on top; both images share every other layer.
ARG SERVICE_LEAVES_OUT="--no-install-package evidently --no-install-package plotly \
--no-install-package statsmodels --no-install-package nltk --no-install-package litestar \
--no-install-package polyfactory --no-install-package faker --no-install-package vl-convert-python"
# The locked dependencies first (a layer that changes only with the lock), then the project itself.
COPY Makefile pyproject.toml uv.lock ./
RUN UV_LINK_MODE=copy make setup UV_SYNC_FLAGS="$UV_SYNC_FLAGS $SERVICE_LEAVES_OUT --no-install-project" \
    && rm -rf /app/.tools
COPY README.md ./
COPY src ./src
RUN UV_LINK_MODE=copy make setup UV_SYNC_FLAGS="$UV_SYNC_FLAGS $SERVICE_LEAVES_OUT" \
    && rm -rf /app/.tools \
    && chown 10001:10001 /app
USER 10001:10001

FROM base AS service
COPY --chown=10001:10001 params.yaml ./
# Configured by environment only: MLPIPE_HOST/MLPIPE_PORT (the health check follows the port),
# MLFLOW_TRACKING_URI, MLPIPE_PREDICTION_LOG_URL, MLPIPE_SIGNING_KEY.
ENV MLPIPE_HOST=0.0.0.0 \
    MLPIPE_PORT=8000
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"MLPIPE_PORT\"]}/ready', timeout=4)"]
# What the image was built from (`make image` passes them; build args, so a cached build still gets them)
ARG REVISION=unknown UV_LOCK_SHA256=unknown
LABEL org.opencontainers.image.revision=$REVISION mlpipe.uv-lock-sha256=$UV_LOCK_SHA256
CMD ["sh", "-c", "exec mlpipe serve --host \"$MLPIPE_HOST\" --port \"$MLPIPE_PORT\""]

FROM base AS flows
# The whole locked environment: the retrain and monitor flows' drift reports need what the base left out
# (an ARG is a stage's own: the same default as the base's, and `make image` passes it to every stage).
ARG UV_SYNC_FLAGS="--no-dev --no-cache"
USER 0:0
RUN UV_LINK_MODE=copy make setup UV_SYNC_FLAGS="$UV_SYNC_FLAGS" \
    && rm -rf /app/.tools
USER 10001:10001
ENV MLPIPE_GIT_URL="" \
    MLPIPE_GIT_REF=main
WORKDIR /home/mlpipe
# What the image was built from (`make image` passes them; build args, so a cached build still gets them)
ARG REVISION=unknown UV_LOCK_SHA256=unknown
LABEL org.opencontainers.image.revision=$REVISION mlpipe.uv-lock-sha256=$UV_LOCK_SHA256
CMD ["sh", "-c", "git clone --quiet --branch \"$MLPIPE_GIT_REF\" \"$MLPIPE_GIT_URL\" project && cd project && exec mlpipe schedule"]
