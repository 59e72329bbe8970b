#!/bin/sh
# Make a python:3.11-slim equivalent from Debian packages, for sites where no image registry can be
# reached (only Debian's and PyPI's package registries):
#   deploy/base-image.sh [TAG]          default tag nerve-base:bookworm
#   docker build --network host --build-arg BASE_IMAGE=nerve-base:bookworm -t nerve .
# Debian 12 ships Python 3.11. The machine's extra CA certificates (/usr/local/share/ca-certificates)
# go into the image too: behind a TLS-inspecting proxy, pip inside the build needs them.
set -eu
tag="${1:-nerve-base:bookworm}"
suite="${DEBIAN_SUITE:-bookworm}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
certs=/usr/local/share/ca-certificates
mmdebstrap --variant=minbase --format=tar --include=python3,python3-venv,ca-certificates \
    --customize-hook="if [ -d $certs ]; then cp -r $certs/. \"\$1$certs/\"; fi" \
    --customize-hook='chroot "$1" update-ca-certificates' \
    --customize-hook='ln -sf python3 "$1/usr/bin/python"' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
    "$suite" "$work/rootfs.tar" "$mirror"
docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    "$work/rootfs.tar" "$tag"
echo "$tag"
