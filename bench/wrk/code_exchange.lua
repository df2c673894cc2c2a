-- Authorization-code exchange: each request redeems one pre-minted code (single use).
--   BENCH_CODES (file, one code a line), BENCH_AUTH (Basic), BENCH_REDIRECT_URI, BENCH_VERIFIER
-- Each thread takes its own share of the codes. A thread that runs out stops (the run then
-- ends early; its duration is what wrk reports, so req/s stays right) and counts it.
package.path = os.getenv("BENCH_LUA_DIR") .. "/?.lua;" .. package.path
local common = require("common")

setup = common.setup

local codes, next_code, headers, tail
exhausted = 0

function init(args)
  codes = common.read_share(common.env("BENCH_CODES"), tid, nthreads)
  next_code = 1
  headers = {
    ["Authorization"] = common.env("BENCH_AUTH"),
    ["Content-Type"] = "application/x-www-form-urlencoded",
  }
  tail = "&redirect_uri=" .. common.env("BENCH_REDIRECT_URI_ENC") ..
         "&code_verifier=" .. common.env("BENCH_VERIFIER")
end

function request()
  local code = codes[next_code]
  if code == nil then
    exhausted = 1
    wrk.thread:stop()
    code = "exhausted"
  end
  next_code = next_code + 1
  return wrk.format("POST", "/token", headers, "grant_type=authorization_code&code=" .. code .. tail)
end

function done(summary, latency, requests) common.report(summary, latency, { "exhausted" }) end
