#!/usr/bin/env bash
# The Dockerfile's base image (its first FROM) in local storage, for a build that reaches no image registry:
# kept when present (pulled, or bootstrapped by this same recipe), else pulled when a registry answers, else
# bootstrapped: Debian bookworm (minbase) from the package mirror apt already uses, plus Debian's Python 3.11,
# imported under the FROM's name. The bootstrapped image carries the sha256 of this file as the label
# mlpipe.base-recipe: a changed recipe bootstraps again, an unchanged one never does.
# Usage: scripts/base-image.sh DOCKERFILE   (prints the base's name)
set -euo pipefail
dockerfile=${1:-Dockerfile}
base=$(awk 'toupper($1) == "FROM" {print $2; exit}' "$dockerfile")
recipe=$(sha256sum "$0" | cut -c1-16)
podman=(podman --runtime /usr/sbin/runc --cgroup-manager cgroupfs)

label=$("${podman[@]}" image inspect --format '{{index .Labels "mlpipe.base-recipe"}}' "$base" 2>/dev/null) \
    && { [ "$label" = "<no value>" ] || [ -z "$label" ] || [ "$label" = "$recipe" ]; } \
    && { echo "base $base: present (recipe ${label:-pulled})" >&2; echo "$base"; exit 0; }

if timeout 60 "${podman[@]}" pull --quiet "docker.io/library/$base" >/dev/null 2>&1; then
    "${podman[@]}" tag "docker.io/library/$base" "$base"
    echo "base $base: pulled" >&2; echo "$base"; exit 0
fi

# The mirror apt already uses (deb822 .sources or one-line .list), so nothing else is reached.
mirror=$({ cat /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null || true; } \
    | awk '$1 == "URIs:" || $1 == "deb" {print $2}' | grep -v security | head -1 || true)
mirror=${mirror:-http://deb.debian.org/debian}
rootfs=$(mktemp -d /var/tmp/mlpipe-base.XXXXXX)
trap 'rm -rf "$rootfs" "$rootfs.log"' EXIT
echo "base $base: no registry answers; bootstrapping Debian bookworm from $mirror (recipe $recipe)" >&2
start=$(date +%s)
debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$rootfs.log" 2>&1 \
    || { tail -20 "$rootfs.log" >&2; exit 1; }
# Python after the bootstrap (passing python3.11-venv to --include fails to configure).
chroot "$rootfs" /bin/sh -c 'export DEBIAN_FRONTEND=noninteractive \
    && apt-get update -qq \
    && apt-get install -y -qq --no-install-recommends python3.11 python3.11-venv ca-certificates >/dev/null \
    && ln -sf /usr/bin/python3.11 /usr/local/bin/python3 && ln -sf /usr/bin/python3.11 /usr/local/bin/python \
    && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin' >"$rootfs.log" 2>&1 \
    || { tail -20 "$rootfs.log" >&2; exit 1; }
rm -f "$rootfs.log"
tar -C "$rootfs" -c . | "${podman[@]}" import \
    --change "LABEL mlpipe.base-recipe=$recipe" \
    --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8" \
    --change 'CMD ["python3"]' - "$base" >/dev/null
echo "base $base: bootstrapped in $(( $(date +%s) - start )) s" >&2
echo "$base"
