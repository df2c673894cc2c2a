-- client_credentials with a DPoP proof (RFC 9449): each request carries its own pre-minted
-- proof (a proof's jti is accepted once), so each thread takes its own share of the proofs.
--   BENCH_PROOFS (file, one proof a line), BENCH_AUTH (Basic), BENCH_BODY (form body)
-- A thread that runs out stops (the run then ends early; its duration is what wrk reports, so
-- req/s stays right) and counts it.
package.path = os.getenv("BENCH_LUA_DIR") .. "/?.lua;" .. package.path
local common = require("common")

setup = common.setup

local proofs, next_proof, body
exhausted = 0

function init(args)
  proofs = common.read_share(common.env("BENCH_PROOFS"), tid, nthreads)
  next_proof = 1
  body = common.env("BENCH_BODY")
end

function request()
  local proof = proofs[next_proof]
  if proof == nil then
    exhausted = 1
    wrk.thread:stop()
    proof = "exhausted"
  end
  next_proof = next_proof + 1
  return wrk.format("POST", "/token", {
    ["Authorization"] = common.env("BENCH_AUTH"),
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["DPoP"] = proof,
  }, body)
end

function done(summary, latency, requests) common.report(summary, latency, { "exhausted" }) end
