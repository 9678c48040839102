-- wrk script for bench/gateway.sh: every request is one non-streamed chat
-- completion for the model named by BENCH_MODEL (the mock ignores the name).
-- done() prints one machine-readable RESULT line that the shell script reads;
-- latencies are in microseconds, as wrk records them.

local model = os.getenv("BENCH_MODEL") or "direct-ok"

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
-- BENCH_PORTKEY_HOST (the upstream's base URL) adds the headers the Portkey
-- gateway routes by, so the same script loads it too.
local portkey = os.getenv("BENCH_PORTKEY_HOST")
if portkey and portkey ~= "" then
  wrk.headers["x-portkey-provider"] = "openai"
  wrk.headers["x-portkey-custom-host"] = portkey
  wrk.headers["Authorization"] = "Bearer bench"
end
wrk.body = '{"model":"' .. model .. '","messages":[{"role":"user","content":"Say hello."}]}'

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d rps=%.0f p50_us=%d p90_us=%d p99_us=%d max_us=%d non2xx=%d sockerr=%d\n",
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.status, e.connect + e.read + e.write + e.timeout))
end
