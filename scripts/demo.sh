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

printf '\nBuild an image from a Dockerfile, then serve its page on a published port (kernel DNAT to the container):\n'
ctx=$(mktemp -d /tmp/berth-demo-XXXX)
printf '<h1>Hello from a berth container</h1>\n' > "$ctx/index.html"
printf 'FROM busybox\nCOPY index.html /www/\nEXPOSE 80\nCMD ["httpd", "-f", "-p", "80", "-h", "/www"]\n' > "$ctx/Dockerfile"
printf '\n\033[1m$ cat Dockerfile\033[0m\n'; cat "$ctx/Dockerfile"
say build -t demo-page "$ctx"; berth build -t demo-page "$ctx"
rm -rf "$ctx"
berth rm -f demo-page >/dev/null 2>&1 || true
say run -d --name demo-page -p 8080:80 demo-page; berth run -d --name demo-page -p 8080:80 demo-page
say port demo-page; berth port demo-page
for i in $(seq 1 50); do curl -s -o /dev/null -m 1 http://localhost:8080/ && break; sleep 0.1; done
printf '\n\033[1m$ curl http://localhost:8080/\033[0m\n'; curl -s http://localhost:8080/
say rm -f demo-page; berth rm -f demo-page; berth rmi demo-page >/dev/null

printf '\nContainers on a user network reach each other by name (embedded DNS):\n'
berth rm -f demo-db >/dev/null 2>&1 || true; berth network rm demo-net >/dev/null 2>&1 || true
say network create demo-net; berth network create demo-net
say run -d --name demo-db --network demo-net busybox sh -c "'echo pong | nc -l -p 7000'"
berth run -d --name demo-db --network demo-net busybox sh -c 'echo pong | nc -l -p 7000' >/dev/null
sleep 0.3
say run --rm --network demo-net busybox sh -c "'nc demo-db 7000 </dev/null'"; berth run --rm --network demo-net busybox sh -c 'nc demo-db 7000 </dev/null'
berth rm -f demo-db >/dev/null; berth network rm demo-net >/dev/null

printf '\nThe Docker CLI works too: DOCKER_HOST=unix:///run/berth/berth.sock docker ps\n'

printf '\nThe seed application: Flask + Redis with berth compose, its count kept in a named volume across down and up:\n'
./scripts/demo-compose.sh
