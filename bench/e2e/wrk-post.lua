-- wrk script of bench/e2e: POST a body of BODY_BYTES bytes (text/plain,
-- the driver's pattern) and print one JSON summary line prefixed "RESULT ".
local n = tonumber(os.getenv("BODY_BYTES") or "0")
local unit = "abcdefghijklmnopqrstuvwxyz0123456789"
wrk.method = "POST"
wrk.body = string.rep(unit, math.ceil(n / #unit)):sub(1, n)
wrk.headers["Content-Type"] = "text/plain"

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests":%d,"duration_us":%d,"bytes":%d,"errors_connect":%d,"errors_read":%d,' ..
    '"errors_write":%d,"errors_status":%d,"errors_timeout":%d,"p50_us":%d,"p90_us":%d,' ..
    '"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
