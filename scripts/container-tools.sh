#!/usr/bin/env bash
# Installs the container tools this machine kind builds and runs images with (docs/how-to/containers.md):
# buildah (chroot isolation), podman run by runc with cgroupfs, debootstrap for the base when no registry
# answers. Idempotent: installs only what is missing; apt-get as root, else through sudo.
set -euo pipefail
sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
missing=()
for tool in buildah podman runc debootstrap; do
    command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]} from Debian"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" uidmap fuse-overlayfs slirp4netns >/dev/null
fi
