-- Refresh-token rotation. Every use of a refresh token returns a new one and retires the old,
-- so each thread keeps a pool of live tokens: a request takes one out, its response puts the
-- rotated one back. A connection has one request in flight, and wrk calls response() before
-- it builds that connection's next request, so the pool never runs dry while every response
-- is a 200; a failed rotation loses its token (counted in `lost`).
--   BENCH_TOKENS (file, one refresh token a line; at least 2 per connection), BENCH_AUTH
package.path = os.getenv("BENCH_LUA_DIR") .. "/?.lua;" .. package.path
local common = require("common")

setup = common.setup

local pool, headers
lost = 0
dry = 0

function init(args)
  pool = common.read_share(common.env("BENCH_TOKENS"), tid, nthreads)
  headers = {
    ["Authorization"] = common.env("BENCH_AUTH"),
    ["Content-Type"] = "application/x-www-form-urlencoded",
  }
end

function request()
  local token = table.remove(pool)
  if token == nil then
    dry = dry + 1          -- no live token left: this request fails on purpose (400)
    token = "pool-ran-dry"
  end
  return wrk.format("POST", "/token", headers, "grant_type=refresh_token&refresh_token=" .. token)
end

function response(status, hdrs, body)
  local token = status == 200 and body:match('"refresh_token":"([^"]+)"')
  if token then
    pool[#pool + 1] = token
  else
    lost = lost + 1
  end
end

function done(summary, latency, requests) common.report(summary, latency, { "lost", "dry" }) end
