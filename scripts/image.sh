#!/usr/bin/env bash
# `make image`: the Dockerfile's targets (default: service flows) built with buildah from the repository as
# it is, reaching no image registry. The base comes from scripts/base-image.sh; the environment is
# `uv sync --frozen --no-dev --offline` with the host's uv (the project's own, from .venv) and the host's uv
# cache mounted into the build. Each image is labelled with the commit (+"-dirty" for uncommitted changes)
# and the sha256 of uv.lock. Usage: scripts/image.sh UV [TARGET...]   (images mlpipe-TARGET)
set -euo pipefail
uv=$(readlink -f "$1"); shift
targets=("$@"); [ ${#targets[@]} -gt 0 ] || targets=(service flows)
cd "$(dirname "$0")/.."
scripts/container-tools.sh
base=$(scripts/base-image.sh Dockerfile)
cache=$("$uv" cache dir)
mkdir -p "$cache"
# The lock's packages that only some Python 3.11 patch releases need (e.g. async-timeout below 3.11.3: the
# base's Debian Python is 3.11.2) go into the cache first, from the index, once; the build itself stays
# offline and checks every wheel against uv.lock's hashes.
extra=$("$uv" export --frozen --no-dev --no-hashes --no-emit-project | grep "python_full_version" \
    | cut -d' ' -f1 || true)
if [ -n "$extra" ]; then
    prefetch=$(mktemp -d); trap 'rm -rf "$prefetch"' EXIT
    # shellcheck disable=SC2086
    "$uv" pip install --quiet --no-deps --python-version 3.11 --target "$prefetch" $extra
fi
commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
[ -z "$(git status --porcelain 2>/dev/null)" ] || commit="$commit-dirty"
lock=$(sha256sum uv.lock | cut -d' ' -f1)
for target in "${targets[@]}"; do
    start=$(date +%s)
    buildah bud --quiet --isolation chroot --ulimit nofile=1024:1024 --format docker --layers --pull=never \
        --target "$target" -t "mlpipe-$target" \
        --build-arg UV_SYNC_FLAGS="--no-dev --offline" \
        -v "$uv:/usr/local/bin/uv:ro" -v "$cache:/root/.cache/uv" \
        --build-arg REVISION="$commit" --build-arg UV_LOCK_SHA256="$lock" . >/dev/null
    # the labels once more on top: a build served from buildah's layer cache keeps the cached ones
    ctr=$(buildah from --pull-never "mlpipe-$target")
    buildah config --label org.opencontainers.image.revision="$commit" --label mlpipe.uv-lock-sha256="$lock" \
        --label mlpipe.base="$base" "$ctr"
    buildah commit --quiet --format docker --rm "$ctr" "mlpipe-$target" >/dev/null
    size=$(podman image inspect --format '{{.Size}}' "mlpipe-$target")
    echo "mlpipe-$target: built in $(( $(date +%s) - start )) s, $(( size / 1000000 )) MB, commit $commit, uv.lock $lock"
done
