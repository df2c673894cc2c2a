-- Not a measured scenario: mints authorization codes for code_exchange.lua by sending
-- /authorize with a logged-in, consented session cookie (each answer is a 303 to the
-- redirect URI carrying a fresh code). Each thread writes its codes to its own file and
-- stops at its quota; the run is also bounded by wrk's -d.
--   BENCH_AUTHORIZE_PATH, BENCH_COOKIE, BENCH_OUT_PREFIX (file prefix), BENCH_QUOTA (per thread)
package.path = os.getenv("BENCH_LUA_DIR") .. "/?.lua;" .. package.path
local common = require("common")

setup = common.setup

local req, out, quota
minted = 0

function init(args)
  req = wrk.format("GET", common.env("BENCH_AUTHORIZE_PATH"), { ["Cookie"] = common.env("BENCH_COOKIE") })
  out = assert(io.open(common.env("BENCH_OUT_PREFIX") .. tid .. ".txt", "w"))
  out:setvbuf("line")
  quota = tonumber(common.env("BENCH_QUOTA"))
end

function request() return req end

function response(status, hdrs, body)
  local code = status == 303 and (common.header(hdrs, "Location") or ""):match("[?&]code=([^&]+)")
  if code and minted < quota then
    out:write(code, "\n")
    minted = minted + 1
    if minted >= quota then
      out:flush()
      wrk.thread:stop()
    end
  end
end

function done(summary, latency, requests) common.report(summary, latency, { "minted" }) end
