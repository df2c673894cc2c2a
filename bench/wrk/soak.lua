-- The soak: a fixed mix of every scenario on one set of connections, to watch memory over
-- minutes. Each new request is picked by a fixed repeating pattern (no randomness, so every
-- run sends the same mix): client_credentials, introspection, userinfo, refresh rotation,
-- discovery, JWKS, and now and then the start of a full login flow (whose later steps jump
-- the queue, see loginflow.lua). Refresh tokens live in a per-thread pool as in refresh.lua.
--   everything static.lua, refresh.lua and loginflow.lua read, plus
--   BENCH_CC_BODY, BENCH_INTROSPECT_BODY, BENCH_BEARER
package.path = os.getenv("BENCH_LUA_DIR") .. "/?.lua;" .. package.path
local common = require("common")
local flow = require("loginflow")

setup = common.setup
flows, aborted, unexpected, lost = 0, 0, 0, 0

local pattern, pos, pool, reqs

function init(args)
  flow.init()
  pool = common.read_share(common.env("BENCH_TOKENS"), tid, nthreads)
  local form = { ["Authorization"] = common.env("BENCH_AUTH"),
                 ["Content-Type"] = "application/x-www-form-urlencoded" }
  reqs = {
    cc = wrk.format("POST", "/token", form, common.env("BENCH_CC_BODY")),
    introspect = wrk.format("POST", "/introspect", form, common.env("BENCH_INTROSPECT_BODY")),
    userinfo = wrk.format("GET", "/userinfo", { ["Authorization"] = common.env("BENCH_BEARER") }),
    discovery = wrk.format("GET", "/.well-known/openid-configuration"),
    jwks = wrk.format("GET", "/jwks"),
  }
  -- 200 picks: 60 cc, 40 introspect, 40 userinfo, 40 refresh, 9 discovery, 10 jwks,
  -- 1 login (a login's argon2id hash costs as much CPU as ~100 of the others together)
  pattern = {}
  local counts = { cc = 60, introspect = 40, userinfo = 40, refresh = 40,
                   discovery = 9, jwks = 10, login = 1 }
  local order = { "cc", "introspect", "userinfo", "refresh", "discovery", "jwks", "login" }
  for round = 1, 60 do
    for _, name in ipairs(order) do
      if counts[name] >= round then pattern[#pattern + 1] = name end
    end
  end
  pos = 0
  form_headers = form
end

function request()
  local follow = flow.next()
  if follow then return follow end
  pos = pos % #pattern + 1
  local pick = pattern[pos]
  if pick == "login" then return flow.start() end
  if pick == "refresh" then
    local token = table.remove(pool)
    if token == nil then return reqs.cc end -- pool ran dry: keep the connection busy
    return wrk.format("POST", "/token", form_headers, "grant_type=refresh_token&refresh_token=" .. token)
  end
  return reqs[pick]
end

function response(status, headers, body)
  if status == 200 and body:find('"refresh_token"', 1, true) then
    local token = body:match('"refresh_token":"([^"]+)"')
    if token then pool[#pool + 1] = token end
  else
    flow.response(status, headers, body)
  end
  flows, aborted, unexpected = flow.stats.flows, flow.stats.aborted, flow.stats.unexpected
end

function done(summary, latency, requests)
  common.report(summary, latency, { "flows", "aborted", "unexpected" })
end
