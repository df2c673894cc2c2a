-- client_credentials with private_key_jwt (RFC 7523 §2.2): each request carries one pre-minted
-- client assertion, which the server accepts once (its `jti` is single use on every node).
--   BENCH_ASSERTIONS (file prefix: thread i reads PREFIX<i>, one assertion a line),
--   BENCH_BODY (the grant's form fields, without client authentication)
-- A thread that runs out of assertions stops (the run then ends early; its duration is what
-- wrk reports, so req/s stays right) and counts it.
package.path = os.getenv("BENCH_LUA_DIR") .. "/?.lua;" .. package.path
local common = require("common")

setup = common.setup

local requests, next_request
exhausted = 0

-- Every request is formatted here, before wrk starts its clock: the bearer scenario's request
-- is one static buffer that wrk sends without calling Lua, and building ~1 KB strings per
-- request in Lua would charge the load generator's work to this scenario (wrk shares the
-- server's cores).
function init(args)
  local headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }
  local head = common.env("BENCH_BODY") ..
         "&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer" ..
         "&client_assertion="
  requests = {}
  local f = assert(io.open(common.env("BENCH_ASSERTIONS") .. tid, "r"))
  for line in f:lines() do
    if line ~= "" then requests[#requests + 1] = wrk.format("POST", "/token", headers, head .. line) end
  end
  f:close()
  next_request = 1
end

function request()
  local r = requests[next_request]
  if r == nil then
    exhausted = 1
    wrk.thread:stop()
    return wrk.format("POST", "/token", nil, "exhausted")
  end
  next_request = next_request + 1
  return r
end

function done(summary, latency, requests) common.report(summary, latency, { "exhausted" }) end
