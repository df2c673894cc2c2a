-- The browser-less login flow as a state machine driven by responses, for login.lua and
-- soak.lua. wrk does not say which connection a response came from, so every step is
-- decided from the response itself, and each thread keeps a queue of next steps: a response
-- pushes exactly one follow-up request (or none when the flow ends), request() pops one.
--
--   GET  /authorize?...&prompt=consent  -> 303 /login?interaction=ID   (+ interaction cookie)
--   GET  /login?interaction=ID          -> 200 form (interaction, csrf_token)
--   POST /login                         -> 303 /consent?interaction=ID (+ session cookie)
--   GET  /consent?interaction=ID        -> 200 form (interaction, csrf_token, decision)
--   POST /consent decision=allow        -> 303 redirect_uri?code=...
--   POST /token authorization_code      -> 200 tokens  (one finished flow)
--
-- Cookies are kept per interaction id (every step's URL or form names it) and dropped when
-- the flow leaves the pages. A flow that takes more than MAX_STEPS steps is abandoned.
local common = require("common")

local M = {}
local MAX_STEPS = 8
local FORM = "application/x-www-form-urlencoded"

local cfg          -- settings read once per thread
local queue = {}   -- next requests, as wrk.format strings
local cookies = {} -- interaction id -> "name=value; name=value"
local steps = {}   -- interaction id -> steps taken

M.stats = { flows = 0, aborted = 0, unexpected = 0 }

function M.init()
  cfg = {
    authorize = common.env("BENCH_LOGIN_AUTHORIZE_PATH"),
    username = common.env("BENCH_USERNAME_ENC"),
    password = common.env("BENCH_PASSWORD_ENC"),
    auth = common.env("BENCH_AUTH"),
    tail = "&redirect_uri=" .. common.env("BENCH_REDIRECT_URI_ENC") ..
           "&code_verifier=" .. common.env("BENCH_VERIFIER"),
  }
end

-- The first request of a new flow.
function M.start()
  return wrk.format("GET", cfg.authorize)
end

-- A queued follow-up step, or nil.
function M.next() return table.remove(queue, 1) end

local function cookie_pair(set_cookie)
  return set_cookie and set_cookie:match("^([^;]+)")
end

local function add_cookie(id, set_cookie)
  local pair = cookie_pair(set_cookie)
  if pair then
    cookies[id] = cookies[id] and (cookies[id] .. "; " .. pair) or pair
  end
end

local function forget(id)
  cookies[id] = nil
  steps[id] = nil
end

-- Counts a step of flow `id`; false when the flow is over its budget (then dropped).
local function step(id)
  steps[id] = (steps[id] or 0) + 1
  if steps[id] > MAX_STEPS then
    forget(id)
    M.stats.aborted = M.stats.aborted + 1
    return false
  end
  return true
end

-- Handles a response if it belongs to the login flow; returns true when it did.
function M.response(status, headers, body)
  if status == 303 then
    local location = common.header(headers, "Location") or ""
    local code = location:match("[?&]code=([^&]+)")
    if code then
      queue[#queue + 1] = wrk.format("POST", "/token",
        { ["Authorization"] = cfg.auth, ["Content-Type"] = FORM },
        "grant_type=authorization_code&code=" .. code .. cfg.tail)
      return true
    end
    local id = location:match("interaction=([%w_%-]+)")
    if id and step(id) then
      add_cookie(id, common.header(headers, "Set-Cookie"))
      local path = location:match("^https?://[^/]+(/.*)$") or location
      queue[#queue + 1] = wrk.format("GET", path, { ["Cookie"] = cookies[id] })
    end
    return id ~= nil
  end
  if status == 200 and body:find('name="csrf_token"', 1, true) then
    local id = body:match('name="interaction" value="([^"]*)"')
    local csrf = body:match('name="csrf_token" value="([^"]*)"')
    if not (id and csrf and step(id)) then
      M.stats.unexpected = M.stats.unexpected + 1
      return true
    end
    local form = "interaction=" .. id .. "&csrf_token=" .. csrf
    local path = "/login"
    local cookie = cookies[id]
    if body:find('name="decision"', 1, true) then
      path, form = "/consent", form .. "&decision=allow"
      forget(id) -- the last page of this flow: the next answer is the code redirect
    else
      form = form .. "&username=" .. cfg.username .. "&password=" .. cfg.password
    end
    queue[#queue + 1] = wrk.format("POST", path, { ["Cookie"] = cookie, ["Content-Type"] = FORM }, form)
    return true
  end
  if status == 200 and body:find('"id_token"', 1, true) then
    M.stats.flows = M.stats.flows + 1
    return true
  end
  return false
end

return M
