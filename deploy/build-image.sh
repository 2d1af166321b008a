#!/usr/bin/env bash
# Build deploy/Containerfile without a registry, as it was built and run on the project's machine (docs/deploy.md):
# a Debian 12 base made by debootstrap from Debian's own mirror (no Docker Hub), then `buildah bud` in chroot
# isolation (the machine's cgroups in hybrid mode refuse crun), then a smoke run of the image's command as its user.
# Needs root and: apt-get install -y buildah debootstrap. With a registry, simply:
#   podman build --format docker -f deploy/Containerfile -t nbpack .
# Usage: deploy/build-image.sh [TAG]   (TAG default localhost/nbpack:dev)
set -euo pipefail
cd "$(dirname "$0")/.."
tag=${1:-localhost/nbpack:dev}
base=localhost/nbpack-base:bookworm
buildah=(buildah)
if ! "${buildah[@]}" inspect --type image "$base" >/dev/null 2>&1; then
  ctr=$("${buildah[@]}" from scratch)
  mnt=$("${buildah[@]}" mount "$ctr")
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$mnt" \
    http://deb.debian.org/debian
  "${buildah[@]}" umount "$ctr"
  "${buildah[@]}" commit --rm "$ctr" "$base"
fi
# --format docker: the OCI image format has no HEALTHCHECK (buildah drops it with a warning).
# Behind a TLS-intercepting proxy, add: --volume /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro
"${buildah[@]}" bud --isolation chroot --format docker --layers ${NBPACK_BUILD_ARGS:-} \
  -f deploy/Containerfile --build-arg BASE="$base" -t "$tag" .

# Smoke run: the image's command on 127.0.0.1 with local storage, /healthz by the image's HEALTHCHECK command.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
ctr=$("${buildah[@]}" from "$tag")
trap '"${buildah[@]}" rm "$ctr" >/dev/null 2>&1 || true' EXIT
test "$("${buildah[@]}" run --isolation chroot "$ctr" -- id -u)" != 0
key=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')
setsid timeout 120 "${buildah[@]}" run --isolation chroot -e NBPACK_SECRET_KEY="$key" -e NBPACK_API_KEYS=smoke=smoke-key \
  -e NBPACK_STORAGE=/var/cache/nbpack/store -e NBPACK_PUBLIC_URL="http://127.0.0.1:$port" "$ctr" -- \
  nbpack serve --host 127.0.0.1 --port "$port" --no-demo --workers 1 &
serve=$!
ok=1
for _ in $(seq 60); do
  if "${buildah[@]}" run --isolation chroot "$ctr" -- python3 -c "import sys, urllib.request; \
sys.exit(urllib.request.urlopen('http://127.0.0.1:$port/healthz', timeout=4).status != 200)" 2>/dev/null; then
    ok=0; break
  fi
  sleep 1
done
kill -TERM -- "-$serve" 2>/dev/null || true
wait "$serve" 2>/dev/null || true
[ "$ok" = 0 ] && echo "image $tag: non-root, /healthz 200 on its own command" || { echo "image $tag: no /healthz" >&2; exit 1; }
