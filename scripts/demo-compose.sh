#!/usr/bin/env bash
# The seed application (seeds/003): a Flask page counting its visits in Redis, both images built
# FROM a debian:bookworm-slim that `berth image bootstrap` makes (mmdebstrap), run with
# `berth compose`; Redis keeps its data in a named volume (its working directory), so the count
# survives a `down` and `up`; `down --volumes` removes everything at the end.
# Needs a Debian mirror (BERTH_DEBIAN_MIRROR, default deb.debian.org) for the bootstrap and apt.
set -eu
cd "$(dirname "$0")/.."
berth() { ./bin/berth "$@"; }
say() { printf '\n\033[1m$ berth %s\033[0m\n' "$*"; }
PORT=${DEMO_PORT:-8081}
export WEB_PORT=$PORT   # scripts/seed-app/compose.yaml publishes the page there

if ! berth image inspect debian:bookworm-slim >/dev/null 2>&1; then
  say image bootstrap debian:bookworm-slim; berth image bootstrap debian:bookworm-slim
fi
root=$PWD
app=$(mktemp -d /tmp/berth-demo-app-XXXX)
# Whatever happens, the project goes (containers, network, volume) and so does its directory.
cleanup() { (cd "$app" && "$root/bin/berth" compose down --volumes -t 1 >/dev/null 2>&1) || true; rm -rf "$app"; }
trap cleanup EXIT
# The application (scripts/seed-app: compose.yaml, app.py, its Dockerfile, redis/Dockerfile; the kube-seed test builds it too).
cp -r scripts/seed-app/. "$app/"
printf '\n\033[1m$ cat compose.yaml\033[0m\n'; cat "$app/compose.yaml"
cd "$app"
bc() { "$root/bin/berth" compose "$@"; }
hit() {
  # Wait for Flask on a path it does not count (its 404), then one counted visit.
  for i in $(seq 1 100); do [ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$PORT/ready" 2>/dev/null)" = 404 ] && break; sleep 0.2; done
  printf '\n\033[1m$ curl http://localhost:%s/\033[0m\n' "$PORT"; curl -s -m 5 "http://127.0.0.1:$PORT/"
}
say compose up -d --build; bc up -d --build
say compose ps; bc ps
hit; hit
printf '\nThe count lives in the redis-data volume: it survives a down and an up.\n'
say compose down; bc down -t 1
say compose up -d; bc up -d
hit
say compose down --volumes; bc down --volumes -t 1
