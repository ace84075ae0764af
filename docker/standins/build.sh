#!/usr/bin/env bash
# Builds local stand-ins for the three upstream images docker-compose.yml uses, for a machine where no container
# registry answers (`docker pull` fails), from Debian's packages only:
#
#   arena-standin/debian:bookworm   debootstrap --variant=minbase bookworm, imported with `docker import`
#   arena-standin/python:3.11       for ARENA_PYTHON_IMAGE (python:3.11-slim): Debian's Python 3.11
#   arena-standin/postgres:15       for ARENA_POSTGRES_IMAGE (postgres:16-alpine): Debian's PostgreSQL 15
#   arena-standin/redis:7           for ARENA_REDIS_IMAGE (redis:7-alpine): Debian's Redis 7.0
#
# Usage (root, with debootstrap installed and dockerd running):
#   docker/standins/build.sh            # builds what is missing; prints the variables to export
#   docker/standins/build.sh --force    # rebuilds all four
# An image that already exists is kept, so a second run takes seconds. Needs a Debian mirror (DEBIAN_MIRROR,
# default deb.debian.org) reachable from the host and from containers.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
force=0
[ "${1:-}" = "--force" ] && force=1

exists() { [ "$force" = 0 ] && docker image inspect "$1" >/dev/null 2>&1; }

if ! exists arena-standin/debian:bookworm; then
    command -v debootstrap >/dev/null || { echo "build.sh: debootstrap is missing (apt-get install debootstrap)" >&2; exit 1; }
    rootfs="$(mktemp -d)"
    trap 'rm -rf "$rootfs"' EXIT
    echo "debootstrap bookworm into $rootfs (about 30 s to 2 min)" >&2
    debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$rootfs.log" 2>&1 || { tail -20 "$rootfs.log" >&2; exit 1; }
    rm -f "$rootfs.log"
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -c . | docker import --change 'CMD ["bash"]' --change 'ENV LANG=C.UTF-8' - arena-standin/debian:bookworm >/dev/null
fi

# The three at once: each is mostly apt downloading.
pids=()
for name in python:3.11 postgres:15 redis:7; do
    if ! exists "arena-standin/$name"; then
        echo "building arena-standin/$name" >&2
        docker build -q -t "arena-standin/$name" -f "$here/${name%%:*}.Dockerfile" "$here" >/dev/null &
        pids+=($!)
    fi
done
for pid in "${pids[@]}"; do
    wait "$pid" || { echo "build.sh: a stand-in image failed to build" >&2; exit 1; }
done

cat <<VARS
export ARENA_PYTHON_IMAGE=arena-standin/python:3.11
export ARENA_POSTGRES_IMAGE=arena-standin/postgres:15
export ARENA_REDIS_IMAGE=arena-standin/redis:7
VARS
