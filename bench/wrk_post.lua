-- wrk script for the benchmark: POST a JSON body from a file, report one JSON line.
--
-- Environment:
--   BENCH_BODY  path of the request body (JSON)
--   BENCH_AUTH  value of the Authorization header (empty or unset: none)
-- done() writes one line starting with "BENCH_JSON " and holding requests, duration,
-- requests/s, latency percentiles (microseconds) and the error counts; wrk counts a
-- status >= 400 under errors.status and a streamed (chunked) answer once it is complete.

local body_path = os.getenv("BENCH_BODY")
local f = assert(io.open(body_path, "rb"), "BENCH_BODY: cannot open " .. tostring(body_path))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
local auth = os.getenv("BENCH_AUTH")
if auth and auth ~= "" then
  wrk.headers["Authorization"] = auth
end

function done(summary, latency, requests)
  local e = summary.errors
  local p = {}
  for _, q in ipairs({50, 90, 99, 99.9}) do
    p[#p + 1] = string.format('"%s":%d', tostring(q), latency:percentile(q))
  end
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"latency_us":{%s},' ..
    '"latency_mean_us":%.1f,"latency_max_us":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}}\n',
    summary.requests, summary.duration, summary.bytes, table.concat(p, ","),
    latency.mean, latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
