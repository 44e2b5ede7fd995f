-- Like report.lua, and also counts every response whose status is not 2xx
-- (wrk's own errors.status only counts >= 400). Slower: used where exactness
-- matters more than throughput (change under load).
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  non2xx = 0
  seen = ""
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    -- Keep the first few statuses to say what went wrong.
    if string.len(seen) < 60 then seen = seen .. status .. " " end
  end
end

done = function(summary, latency, requests)
  local n = 0
  local statuses = ""
  for _, t in ipairs(threads) do
    n = n + t:get("non2xx")
    statuses = statuses .. t:get("seen")
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"durationUs":%d,"bytes":%d,"non2xx":%d,"non2xxStatuses":"%s",' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latencyUs":{"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d,"mean":%.1f}}\n',
    summary.requests, summary.duration, summary.bytes, n, statuses,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, latency.mean))
end
