#!/usr/bin/env bash
# The main job, end to end: start berthd (bin/berth starts it when nothing
# answers), make a busybox image from Debian's busybox-static, and show what a
# container is: its own hostname, its own pid 1, a process list with only itself.
set -eu
cd "$(dirname "$0")/.."
berth() { ./bin/berth "$@"; }
say() { printf '\n\033[1m$ berth %s\033[0m\n' "$*"; }

say version; berth version
if ! berth image inspect busybox >/dev/null 2>&1; then
  say image bootstrap busybox; berth image bootstrap busybox
fi
say images; berth images
printf '\nThis host is %s; a container has its own hostname, its own pid 1, and sees only its own processes:\n' "$(hostname)"
say run --rm busybox sh -c "'hostname; echo my pid is \$\$; ps; true'"; berth run --rm busybox sh -c 'hostname; echo my pid is $$; ps; true'
say run -d --name demo-web busybox sh -c 'while true; do date; sleep 1; done'
berth rm -f demo-web >/dev/null 2>&1 || true
berth run -d --name demo-web busybox sh -c 'while true; do date; sleep 1; done'
sleep 1.5
say ps; berth ps
say logs --tail 2 demo-web; berth logs --tail 2 demo-web
say exec demo-web hostname; berth exec demo-web hostname
say stop -t 1 demo-web; berth stop -t 1 demo-web
say rm demo-web; berth rm demo-web
printf '\nThe Docker CLI works too: DOCKER_HOST=unix:///run/berth/berth.sock docker ps\n'
