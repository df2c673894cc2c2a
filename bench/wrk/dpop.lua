-- client_credentials with a DPoP proof (RFC 9449): each request carries its own pre-minted
-- proof (a proof's jti is accepted once), so each thread takes its own share of the proofs.
--   BENCH_PROOFS (file, one proof a line), BENCH_AUTH (Basic), BENCH_BODY (form body)
-- A thread that runs out stops (the run then ends early; its duration is what wrk reports, so
-- req/s stays right) and counts it.
package.path = os.getenv("BENCH_LUA_DIR") .. "/?.lua;" .. package.path
local common = require("common")

setup = common.setup

local requests, next_request
exhausted = 0

-- Every request is formatted here, before wrk starts its clock (as in
-- client_credentials_pkjwt.lua: the bearer scenario's request costs wrk no Lua at all).
function init(args)
  local auth, body = common.env("BENCH_AUTH"), common.env("BENCH_BODY")
  requests = {}
  for _, proof in ipairs(common.read_share(common.env("BENCH_PROOFS"), tid, nthreads)) do
    requests[#requests + 1] = wrk.format("POST", "/token", {
      ["Authorization"] = auth,
      ["Content-Type"] = "application/x-www-form-urlencoded",
      ["DPoP"] = proof,
    }, body)
  end
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
