#!/usr/bin/env bash
# Time `make serve` on a fresh clone, as a new user meets it: clone, `make serve`, wait until /readyz
# answers 200 and one estimate comes back with every member of the default bundle, then stop the
# service and print the wall time of each phase and what the install wrote. The figures in README.md
# come from this script.
#
#   deploy/time-fresh-serve.sh [CLONE_DIR] [--cold-pip-cache]
#
# --cold-pip-cache: pip downloads everything from the registries (an empty PIP_CACHE_DIR), as on a
# fresh machine; without it pip's cache on this machine is used. ../shared/data must sit beside the
# clone (the index is built from it). Port PRICER_PORT (default 8000) must be free.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
clone=${1:-$(dirname "$repo")/fresh-serve}
cold=${2:-}
port=${PRICER_PORT:-8000}
[ -e "$clone" ] && { echo "refusing: $clone exists (remove it first)" >&2; exit 2; }
if curl -s -o /dev/null "http://127.0.0.1:$port/healthz"; then echo "refusing: port $port is in use" >&2; exit 2; fi
git clone -q "$repo" "$clone"
# The clone's data is ../shared/data relative to it: link the repository's when the clone sits elsewhere.
[ -e "$(dirname "$clone")/shared" ] || ln -s "$(dirname "$repo")/shared" "$(dirname "$clone")/shared"
cd "$clone"
if [ "$cold" = "--cold-pip-cache" ]; then export PIP_CACHE_DIR="$clone/.pip-cache"; fi
grep -m1 -o 'model name.*' /proc/cpuinfo || true
echo "cpu flags: $(grep -m1 -o -w -E 'amx_bf16|avx512_bf16|avx512f|avx2' /proc/cpuinfo | sort -u | tr '\n' ' ')"
start=$(date +%s)
PRICER_PORT=$port setsid make serve > make-serve.log 2>&1 &
serve_pid=$!
trap 'kill -TERM -- -$serve_pid 2>/dev/null || pkill -TERM -f "$clone/.venv/bin/pricer serve" || true' EXIT
phase() { grep -q -- "$1" make-serve.log 2>/dev/null; }
seen_install="" seen_index="" seen_bases="" seen_built=""
until curl -sf -o /dev/null "http://127.0.0.1:$port/readyz"; do
    kill -0 $serve_pid 2>/dev/null || { echo "make serve stopped before it was ready:"; tail -30 make-serve.log; exit 1; }
    now=$(( $(date +%s) - start ))
    [ -z "$seen_install" ] && phase ">>> pricer\[.*\] installed" && { seen_install=$now; echo "installed after ${now} s"; }
    [ -z "$seen_bases" ] && phase "^>>> bases the default" && { seen_bases=$now; echo "bases listed after ${now} s"; }
    [ -z "$seen_built" ] && phase "embedding:" && { seen_built=$now; echo "bases prepared, index embedding started after ${now} s"; }
    [ -z "$seen_index" ] && phase "pricer serve" && { seen_index=$now; echo "index done, serve started after ${now} s"; }
    sleep 5
done
ready=$(( $(date +%s) - start ))
echo "ready (/readyz 200) after ${ready} s"
curl -s "http://127.0.0.1:$port/v1/estimate" -H 'content-type: application/json' \
    -d '{"title": "KitchenAid Artisan Series 5-Quart Tilt-Head Stand Mixer"}'
echo
echo "sizes: .venv $(du -sh .venv | cut -f1), models/base $(du -sh models/base | cut -f1), models/index $(du -sh models/index 2>/dev/null | cut -f1)"
echo "packages downloaded: $(grep -c '^ *Downloading' make-serve.log), taken from pip's cache: $(grep -c 'Using cached' make-serve.log)"
echo "total wall time to a served answer: $(( $(date +%s) - start )) s"
