-- Shared by every scenario script.
--
-- wrk runs one Lua state per thread plus one in the main thread. `setup` (main state) numbers
-- the threads and keeps them, so that `done` can add up the counters each thread kept with
-- `thread:get`. Each script reports through `common.report`, which prints one line
--   BENCH_JSON {...}
-- that the harness (bench/lib/bench.py) parses: requests, duration, wrk's error counts,
-- latency percentiles (microseconds) and the script's own counters.
local M = {}

-- An environment variable, or an error naming it when it is required and missing.
function M.env(name, default)
  local v = os.getenv(name)
  if v == nil or v == "" then
    if default == nil then error("missing environment variable " .. name) end
    return default
  end
  return v
end

-- Lines of a file, keeping only those that belong to thread `tid` of `nthreads`
-- (line i goes to thread i % nthreads), so that threads never share a single-use value.
function M.read_share(path, tid, nthreads)
  local out, i = {}, 0
  local f = assert(io.open(path, "r"))
  for line in f:lines() do
    if line ~= "" then
      if i % nthreads == tid then out[#out + 1] = line end
      i = i + 1
    end
  end
  f:close()
  return out
end

-- A header of a response, whatever the case of its name.
function M.header(headers, name)
  return headers[name] or headers[name:lower()] or headers[name:gsub("^%l", string.upper)]
end

-- setup() for every script: number the threads and remember them.
M.threads = {}
function M.setup(thread)
  thread:set("tid", #M.threads)
  thread:set("nthreads", tonumber(M.env("BENCH_THREADS")))
  M.threads[#M.threads + 1] = thread
end

-- done(): print the JSON line. `counters` names per-thread global numbers to add up.
function M.report(summary, latency, counters)
  local extra = {}
  for _, name in ipairs(counters or {}) do
    local total = 0
    for _, t in ipairs(M.threads) do total = total + (tonumber(t:get(name)) or 0) end
    extra[#extra + 1] = string.format('"%s":%d', name, total)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"mean_us":%.1f,"max_us":%d,"extra":{%s}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.mean, latency.max, table.concat(extra, ",")))
end

return M
