-- One fixed request, sent over and over: client_credentials, introspection, userinfo,
-- discovery, JWKS, and the ceiling's endpoints. wrk pre-builds the request once.
--   BENCH_METHOD (GET), BENCH_AUTH (Authorization header, optional),
--   BENCH_BODY (form body, optional; sent as application/x-www-form-urlencoded)
package.path = os.getenv("BENCH_LUA_DIR") .. "/?.lua;" .. package.path
local common = require("common")

wrk.method = common.env("BENCH_METHOD", "GET")
local auth = common.env("BENCH_AUTH", "")
if auth ~= "" then wrk.headers["Authorization"] = auth end
local body = common.env("BENCH_BODY", "")
if body ~= "" then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end

setup = common.setup
function done(summary, latency, requests) common.report(summary, latency) end
