#!/usr/bin/env bash
# bench/gateway.sh (make bench-gateway): measures the node's OpenAI-compatible
# HTTP gateway in front of a local mock OpenAI-compatible upstream, and the
# mock on its own for comparison. Loopback only; takes about 100 s.
#
# It builds bin/hive-node and bin/mock-openai, starts two mocks (one healthy,
# one answering 500 to every call), writes a temporary configuration with two
# models, direct-ok (openai provider -> healthy mock) and dead-primary
# (openai -> dead mock, fallbacks [direct-ok], no retry), starts a node on
# free ports, and runs wrk (bench/chat.lua: one non-streamed chat completion
# per request) for BENCH_DURATION seconds per case:
#   (a) straight to the mock, 1 / 16 / 64 connections
#   (b) through the gateway to direct-ok, 1 / 16 / 64
#   (c) through the gateway to dead-primary, 1 / 16 / 64
#   (d) through bench/bareproxy (net/http) and bench/fastproxy (fasthttp),
#       proxies that only forward bytes: the ceiling of each HTTP stack here
#   (e) through the Portkey gateway (JavaScript), when it is installed:
#       `npm install --prefix bench/portkey @portkey-ai/gateway@1.15.2`
#       (or PORTKEY_DIR=<a directory holding node_modules/@portkey-ai/gateway>)
# BENCH_SOAK=SECONDS instead runs one long load at 16 connections through the
# gateway and reports the node's resident memory (VmHWM and VmRSS) after the
# first minute and at the end (make bench-soak: 600 s).
# Each target first gets an unrecorded BENCH_WARMUP-second run at 16
# connections (fills connection pools; for dead-primary it also lets the
# breaker see its first failures, as it would in any steady state).
# Then it prints a table, the node's resident memory (VmHWM, the peak, and
# VmRSS from /proc/<pid>/status) and the comparisons, and stops everything.
#
# Nothing is pinned: wrk, the node and the mock share the machine's cores as
# they would on a developer's machine (BENCH_TASKSET="taskset -c 1" prefixes
# the wrk command, for experiments only). The figures are what they are: the
# script asserts nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
DURATION=${BENCH_DURATION:-10}
WARMUP=${BENCH_WARMUP:-2}
TASKSET=${BENCH_TASKSET:-}

if ! command -v wrk >/dev/null; then
  echo "installing wrk (Debian package)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends wrk >/dev/null 2>&1 ||
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends wrk >/dev/null; }
fi
command -v curl >/dev/null || { echo "curl is needed" >&2; exit 1; }

echo "building bin/hive-node and bin/mock-openai" >&2
mkdir -p bin
$GO build -o bin/hive-node ./cmd/hive-node
$GO build -o bin/mock-openai ./cmd/mock-openai
$GO build -o bin/bareproxy ./bench/bareproxy
$GO build -o bin/fastproxy ./bench/fastproxy

tmp=$(mktemp -d)
pids=()
cleanup() {
  local p i
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for i in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_listener NAME CMD...: starts a program that prints the address it
# listens on as its first line, and sets $addr to it.
start_listener() {
  local name=$1
  shift
  "$@" >"$tmp/$name.out" 2>&1 &
  pids+=($!)
  addr=
  for _ in $(seq 100); do
    addr=$(grep -m1 -E '^[0-9.]+:[0-9]+$' "$tmp/$name.out" || true)
    [ -n "$addr" ] && return
    sleep 0.1
  done
  echo "$name did not start:" >&2; cat "$tmp/$name.out" >&2; exit 1
}

start_listener ok bin/mock-openai --addr 127.0.0.1:0 --status 200; ok=$addr
start_listener dead bin/mock-openai --addr 127.0.0.1:0 --status 500; dead=$addr

# The ceilings: bare proxies in front of the same mock (no JSON, no routing),
# one on net/http and one on fasthttp: what a gateway on each stack can do on
# this machine at most.
start_listener bareproxy bin/bareproxy --addr 127.0.0.1:0 --upstream "http://$ok/v1"; bare=$addr
start_listener fastproxy bin/fastproxy --addr 127.0.0.1:0 --upstream "http://$ok/v1"; fast=$addr

# The Portkey gateway (JavaScript), when installed (see the header).
portkey=
pkdir=${PORTKEY_DIR:-bench/portkey}
pkjs=$pkdir/node_modules/@portkey-ai/gateway/build/start-server.js
if [ -z "${BENCH_SOAK:-}" ] && [ -f "$pkjs" ] && command -v node >/dev/null; then
  pkport=$((20000 + RANDOM % 40000))
  NODE_ENV=production node "$pkjs" --port="$pkport" --headless >"$tmp/portkey.out" 2>&1 &
  pids+=($!)
  for _ in $(seq 300); do
    if curl -s -o /dev/null "http://127.0.0.1:$pkport/"; then portkey="http://127.0.0.1:$pkport"; break; fi
    sleep 0.1
  done
  [ -n "$portkey" ] || { echo "the Portkey gateway did not start in 30 s; left out:" >&2; tail -5 "$tmp/portkey.out" >&2; }
else
  [ -n "${BENCH_SOAK:-}" ] || echo "the Portkey gateway is not installed ($pkjs); left out" >&2
fi

mkdir -p "$tmp/config"
cat >"$tmp/config/models-resilience.yml" <<EOF
models:
  direct-ok:
    provider: openai
    endpoint: http://$ok/v1
  dead-primary:
    provider: openai
    endpoint: http://$dead/v1
    fallbacks: [direct-ok]
    retry: {maxRetries: 0}
EOF

# The node logs where it serves HTTP at info level only, and the bench runs it
# at warn; so a port is picked here, and another one tried if it was taken.
gw=
for attempt in 1 2 3 4 5; do
  port=$((20000 + RANDOM % 40000))
  command -v ss >/dev/null && [ -n "$(ss -Htln "sport = :$port")" ] && continue
  bin/hive-node serve --config-dir "$tmp/config" --nats-listen 127.0.0.1:-1 --http-addr "127.0.0.1:$port" \
    --data-dir "$tmp/data" --node-id bench --log-level warn --log-format json >"$tmp/node.log" 2>&1 &
  node=$!
  pids+=("$node")
  for _ in $(seq 300); do
    if ! kill -0 "$node" 2>/dev/null; then
      grep -q 'http: listen' "$tmp/node.log" && break
      echo "hive-node exited:" >&2; cat "$tmp/node.log" >&2; exit 1
    fi
    if curl -fs -o /dev/null "http://127.0.0.1:$port/readyz"; then gw="http://127.0.0.1:$port"; break; fi
    sleep 0.1
  done
  [ -n "$gw" ] && break
  kill -0 "$node" 2>/dev/null && { echo "hive-node not ready after 30 s:" >&2; cat "$tmp/node.log" >&2; exit 1; }
done
[ -n "$gw" ] || { echo "hive-node found no free HTTP port in 5 tries:" >&2; cat "$tmp/node.log" >&2; exit 1; }

# served_by MODEL: one request through the gateway; prints status, served-by, attempts.
served_by() {
  curl -s -o /dev/null -D - "$gw/v1/chat/completions" -H 'Content-Type: application/json' \
    -d "{\"model\":\"$1\",\"messages\":[{\"role\":\"user\",\"content\":\"Say hello.\"}]}" |
    tr -d '\r' | awk -v m="$1" '
      /^HTTP\//            { status = $2 }
      /^X-Hive-Served-By:/ { served = $2 }
      /^X-Hive-Attempts:/  { attempts = $2 }
      END { printf "  %s: HTTP %s, served by %s, attempts %s\n", m, status, served, attempts }'
}
echo "gateway $gw, mocks: healthy $ok, dead $dead" >&2
served_by direct-ok >&2
served_by dead-primary >&2

node_cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$node/stat"; }
mem() { awk -v k="$1:" '$1 == k { printf "%.1f", $2 / 1024 }' "/proc/$node/status"; }
ticks=$(getconf CLK_TCK)
rss_idle=$(mem VmRSS)

results="$tmp/results"
: >"$results"
# run LABEL URL MODEL CONNECTIONS SECONDS [record]
run() {
  local label=$1 url=$2 model=$3 conns=$4 secs=$5 threads=2 out line c0 c1
  [ "$conns" -lt 2 ] && threads=1
  c0=$(node_cpu_ticks)
  out=$(BENCH_MODEL=$model BENCH_PORTKEY_HOST=${7:-} $TASKSET wrk -t"$threads" -c"$conns" -d"${secs}s" --timeout 5s \
    -s bench/chat.lua "$url/v1/chat/completions")
  c1=$(node_cpu_ticks)
  line=$(grep '^RESULT' <<<"$out") || { echo "wrk gave no result:" >&2; echo "$out" >&2; exit 1; }
  [ "${6:-}" = record ] || return 0
  echo "$label $conns $line node_cpu=$(awk -v d=$((c1 - c0)) -v t="$ticks" -v s="$secs" 'BEGIN { printf "%.2f", d / t / s }')" >>"$results"
  echo "  $label, $conns connections: $line" >&2
}

if [ -n "${BENCH_SOAK:-}" ]; then
  # The soak: one long load at 16 connections through the gateway; the
  # node's resident memory after the first minute and at the end.
  echo "soak: ${BENCH_SOAK} s at 16 connections through the gateway (direct-ok)" >&2
  BENCH_MODEL=direct-ok wrk -t2 -c16 -d"${BENCH_SOAK}s" --timeout 5s -s bench/chat.lua "$gw/v1/chat/completions" >"$tmp/soak.out" &
  load=$!
  c0=$(node_cpu_ticks)
  sleep 60
  hwm1=$(mem VmHWM); rss1=$(mem VmRSS)
  echo "  after 60 s: VmHWM $hwm1 MiB, VmRSS $rss1 MiB" >&2
  elapsed=60
  while kill -0 "$load" 2>/dev/null; do
    sleep 60
    elapsed=$((elapsed + 60))
    kill -0 "$load" 2>/dev/null && echo "  after $elapsed s: VmHWM $(mem VmHWM) MiB, VmRSS $(mem VmRSS) MiB" >&2
  done
  wait "$load"
  c1=$(node_cpu_ticks)
  hwm=$(mem VmHWM); rss=$(mem VmRSS)
  line=$(grep '^RESULT' "$tmp/soak.out") || { echo "wrk gave no result:" >&2; cat "$tmp/soak.out" >&2; exit 1; }
  requests=$(sed -E 's/.*requests=([0-9]+).*/\1/' <<<"$line")
  cat <<EOF

Soak, $(date -u +%Y-%m-%d), commit $(git describe --always --dirty 2>/dev/null || echo unknown), $(nproc) cores, ${BENCH_SOAK} s at 16 connections
wrk: $line
node resident memory: idle ${rss_idle} MiB; after the first minute VmHWM ${hwm1} MiB, VmRSS ${rss1} MiB; at the end VmHWM ${hwm} MiB, VmRSS ${rss} MiB
node CPU per request: $(awk -v d=$((c1 - c0)) -v t="$ticks" -v n="$requests" 'BEGIN { printf "%.0f", 1e6 * d / t / n }') µs
growth of the peak after the first minute: $(awk -v a="$hwm1" -v b="$hwm" 'BEGIN { printf "%.1f MiB (%.1f %%)", b - a, 100 * (b - a) / a }')
EOF
  exit 0
fi

echo "warming up (${WARMUP} s per target, not recorded)" >&2
run mock "http://$ok" direct-ok 16 "$WARMUP"
run bareproxy "http://$bare" direct-ok 16 "$WARMUP"
run fastproxy "http://$fast" direct-ok 16 "$WARMUP"
run direct-ok "$gw" direct-ok 16 "$WARMUP"
run dead-primary "$gw" dead-primary 16 "$WARMUP"
[ -n "$portkey" ] && run portkey "$portkey" direct-ok 16 "$WARMUP" "" "http://$ok/v1"

# The targets take turns at each number of connections, so that the ones
# compared (the gateway and its ceilings, healthy and dead primary) run
# within a minute of each other: this machine's speed drifts more than that
# over the whole run.
echo "measuring (${DURATION} s per case)" >&2
for c in 1 16 64; do
  run mock "http://$ok" direct-ok "$c" "$DURATION" record
  run bareproxy "http://$bare" direct-ok "$c" "$DURATION" record
  run fastproxy "http://$fast" direct-ok "$c" "$DURATION" record
  run direct-ok "$gw" direct-ok "$c" "$DURATION" record
  run dead-primary "$gw" dead-primary "$c" "$DURATION" record
  if [ -n "$portkey" ]; then run portkey "$portkey" direct-ok "$c" "$DURATION" record "http://$ok/v1"; fi
done

hwm=$(mem VmHWM)
rss=$(mem VmRSS)
echo "after the load:" >&2
served_by dead-primary >&2

cat <<EOF

Gateway benchmark, $(date -u +%Y-%m-%d), commit $(git describe --always --dirty 2>/dev/null || echo unknown), $(nproc) cores, $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2), ${DURATION} s per case, no pinning

| case | connections | requests/s | p50 | p90 | p99 | non-2xx | socket errors | node CPU (cores) |
| --- | --- | --- | --- | --- | --- | --- | --- | --- |
EOF
awk '
  function v(k,   i) { for (i = 3; i <= NF; i++) if (index($i, k "=") == 1) return substr($i, length(k) + 2) }
  function lat(us)   { us += 0; return us < 1000 ? sprintf("%d µs", us) : sprintf("%.2f ms", us / 1000) }
  function num(n,   s, r) { s = sprintf("%d", n); while (length(s) > 3) { r = "," substr(s, length(s) - 2) r; s = substr(s, 1, length(s) - 3) }; return s r }
  {
    name = $1 == "mock" ? "mock, direct" : $1 == "bareproxy" ? "bare net/http proxy -> mock" : $1 == "fastproxy" ? "bare fasthttp proxy -> mock" : $1 == "portkey" ? "Portkey gateway (JavaScript) -> mock" : "gateway -> " $1
    cpu = $1 == "mock" || $1 == "bareproxy" || $1 == "fastproxy" || $1 == "portkey" ? "-" : v("node_cpu")
    printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", name, $2, num(v("rps")), lat(v("p50_us")), lat(v("p90_us")), lat(v("p99_us")), v("non2xx"), v("sockerr"), cpu
  }' < <(awk 'BEGIN { split("mock bareproxy fastproxy direct-ok dead-primary portkey", t); for (i in t) o[t[i]] = i }
    { print o[$1], $0 }' "$results" | sort -s -k1,1n -k3,3n | cut -d" " -f2-)

awk -v hwm="$hwm" -v rss="$rss" -v idle="$rss_idle" '
  function v(k,   i) { for (i = 3; i <= NF; i++) if (index($i, k "=") == 1) return substr($i, length(k) + 2) }
  function verdict(ok, miss) { return ok ? "met" : "MISSED by " miss }
  { rps[$1, $2] = v("rps"); p50[$1, $2] = v("p50_us"); p99[$1, $2] = v("p99_us"); cpu[$1, $2] = v("node_cpu") }
  END {
    added = p50["direct-ok", 1] - p50["mock", 1]
    r16 = rps["direct-ok", 16] + 0
    d16 = 100 * rps["dead-primary", 16] / r16
    d64 = 100 * rps["dead-primary", 64] / rps["direct-ok", 64]
    peak = hwm + 0
    printf "\nnode resident memory: %.1f MiB idle before the load, %.1f MiB peak (VmHWM), %.1f MiB after the load (VmRSS)\n", idle, hwm, rss
    printf "node CPU per request through the gateway: %.0f µs at 1 client, %.0f µs at 16, %.0f µs at 64\n", 1e6 * cpu["direct-ok", 1] / rps["direct-ok", 1], 1e6 * cpu["direct-ok", 16] / r16, 1e6 * cpu["direct-ok", 64] / rps["direct-ok", 64]
    printf "gateway / direct at 16 clients: %.1f %% of the mock'"'"'s own throughput\n", 100 * r16 / rps["mock", 16]
    printf "gateway / bare net/http proxy (the ceiling of a net/http gateway here): %.1f %% at 16 clients, %.1f %% at 64; the bare proxy adds %d µs p50 at 1 client\n", 100 * r16 / rps["bareproxy", 16], 100 * rps["direct-ok", 64] / rps["bareproxy", 64], p50["bareproxy", 1] - p50["mock", 1]
    printf "bare fasthttp proxy / bare net/http proxy: %.2fx at 1 client, %.2fx at 16, %.2fx at 64; the fasthttp proxy adds %d µs p50 at 1 client\n", rps["fastproxy", 1] / rps["bareproxy", 1], rps["fastproxy", 16] / rps["bareproxy", 16], rps["fastproxy", 64] / rps["bareproxy", 64], p50["fastproxy", 1] - p50["mock", 1]
    printf "added latency at one client (over the direct call), p50 / p99: gateway %d / %d µs, dead-primary %d / %d µs, bare net/http proxy %d / %d µs, bare fasthttp proxy %d / %d µs", added, p99["direct-ok", 1] - p99["mock", 1], p50["dead-primary", 1] - p50["mock", 1], p99["dead-primary", 1] - p99["mock", 1], p50["bareproxy", 1] - p50["mock", 1], p99["bareproxy", 1] - p99["mock", 1], p50["fastproxy", 1] - p50["mock", 1], p99["fastproxy", 1] - p99["mock", 1]
    if (rps["portkey", 1] > 0) printf ", Portkey %d / %d µs", p50["portkey", 1] - p50["mock", 1], p99["portkey", 1] - p99["mock", 1]
    printf "\n"
    if (rps["portkey", 16] > 0) printf "gateway / Portkey gateway (JavaScript), same run: %.1fx at 1 client, %.1fx at 16, %.1fx at 64 (goal at 16: 10x)\n", rps["direct-ok", 1] / rps["portkey", 1], r16 / rps["portkey", 16], rps["direct-ok", 64] / rps["portkey", 64]
    printf "\ngoals (the JavaScript gateway of docs/policy.md in brackets):\n"
    printf "  >= 18,000 requests/s at 16 clients [~1,800]: %d, %s\n", r16, verdict(r16 >= 18000, sprintf("%d requests/s (%.0f %% of the goal)", 18000 - r16, 100 * r16 / 18000))
    if (rps["portkey", 16] > 0) printf "  >= 10x the JavaScript gateway at 16 clients, same run: %.1fx, %s\n", r16 / rps["portkey", 16], verdict(r16 >= 10 * rps["portkey", 16], sprintf("%.1fx", 10 - r16 / rps["portkey", 16]))
    c16 = 1e6 * cpu["direct-ok", 16] / r16
    printf "  node CPU per request at 16 clients halved (<= 74 µs; 149 µs on net/http): %.0f µs, %s\n", c16, verdict(c16 <= 74.5, sprintf("%.0f µs", c16 - 74.5))
    printf "  added p50, one client, < 100 µs [~700 µs]: %d µs, %s\n", added, verdict(added < 100, sprintf("%d µs", added - 100))
    printf "  resident memory under load < 64 MiB [~200 MiB]: %.1f MiB peak, %s\n", peak, verdict(peak < 64, sprintf("%.1f MiB", peak - 64))
    printf "  dead primary >= 95 %% of healthy [~55 %%]: %.1f %% at 16 clients, %.1f %% at 64, %s\n", d16, d64, verdict(d16 >= 95 && d64 >= 95, sprintf("%.1f points", 95 - (d16 < d64 ? d16 : d64)))
  }' "$results"
