-- client_credentials with private_key_jwt (RFC 7523 §2.2): each request carries one pre-minted
-- client assertion, which the server accepts once (its `jti` is single use on every node).
--   BENCH_ASSERTIONS (file prefix: thread i reads PREFIX<i>, one assertion a line),
--   BENCH_BODY (the grant's form fields, without client authentication)
-- A thread that runs out of assertions stops (the run then ends early; its duration is what
-- wrk reports, so req/s stays right) and counts it.
package.path = os.getenv("BENCH_LUA_DIR") .. "/?.lua;" .. package.path
local common = require("common")

setup = common.setup

local assertions, next_assertion, headers, head
exhausted = 0

function init(args)
  assertions = {}
  local f = assert(io.open(common.env("BENCH_ASSERTIONS") .. tid, "r"))
  for line in f:lines() do
    if line ~= "" then assertions[#assertions + 1] = line end
  end
  f:close()
  next_assertion = 1
  headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }
  head = common.env("BENCH_BODY") ..
         "&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer" ..
         "&client_assertion="
end

function request()
  local assertion = assertions[next_assertion]
  if assertion == nil then
    exhausted = 1
    wrk.thread:stop()
    assertion = "exhausted"
  end
  next_assertion = next_assertion + 1
  return wrk.format("POST", "/token", headers, head .. assertion)
end

function done(summary, latency, requests) common.report(summary, latency, { "exhausted" }) end
