-- Full browser-less login flows (authorize -> login -> consent -> token), see loginflow.lua.
-- Every flow posts the password once, so this measures argon2id-bound logins. `flows`
-- counts finished flows (token responses with an ID token); wrk's request count covers all
-- six steps (eight with the second factor of login_totp, BENCH_TOTP_FILE). prompt=consent
-- makes every flow show the consent page.
package.path = os.getenv("BENCH_LUA_DIR") .. "/?.lua;" .. package.path
local common = require("common")
local flow = require("loginflow")

setup = common.setup
flows, aborted, unexpected, no_user = 0, 0, 0, 0

function init(args) flow.init() end

function request()
  return flow.next() or flow.start()
end

-- BENCH_DEBUG_FILE (optional): append every unexpected answer's status and body start there.
local debug_file = os.getenv("BENCH_DEBUG_FILE")

function response(status, headers, body)
  if debug_file and status >= 400 then
    local f = io.open(debug_file, "a")
    if f then f:write(status, " ", body:sub(1, 200):gsub("%s+", " "), "\n"); f:close() end
  end
  if not flow.response(status, headers, body) then
    flow.stats.unexpected = flow.stats.unexpected + 1
  end
  flows, aborted, unexpected = flow.stats.flows, flow.stats.aborted, flow.stats.unexpected
  no_user = flow.stats.no_user
end

function done(summary, latency, requests)
  common.report(summary, latency, { "flows", "aborted", "unexpected", "no_user" })
end
