-- The browser-less login flow as a state machine driven by responses, for login.lua and
-- soak.lua. wrk does not say which connection a response came from, so every step is
-- decided from the response itself, and each thread keeps a queue of next steps: a response
-- pushes exactly one follow-up request (or none when the flow ends), request() pops one.
--
--   GET  /authorize?...&prompt=consent  -> 303 /login?interaction=A    (+ binding cookie, once)
--   GET  /login?interaction=A           -> 200 form (interaction, csrf_token)
--   POST /login                         -> 303 /consent?interaction=B  (+ session cookie)
--   GET  /consent?interaction=B         -> 200 form (interaction, csrf_token, decision)
--   POST /consent decision=allow        -> 303 redirect_uri?code=...
--   POST /token authorization_code      -> 200 tokens  (one finished flow)
--
-- The login moves the interaction on (A becomes B, bound to the new session), so a flow
-- cannot be followed by its interaction id across that step. Each thread is one browser
-- instead: one binding cookie for all its flows, sent from the first request on (Latchkey
-- keeps a binding cookie the browser already has), and the session cookie kept per
-- interaction id. A flow that takes more than
-- MAX_STEPS steps is abandoned.
--
-- With BENCH_TOTP_FILE (the login_totp scenario) every user has a TOTP, and the login's answer
-- is the second-factor page instead of the consent page:
--
--   POST /login                         -> 303 /login/otp?interaction=B (+ password session)
--   GET  /login/otp?interaction=B       -> 200 form (interaction, csrf_token, otp; the user)
--   POST /login/otp                     -> 303 /consent?interaction=C  (+ two-factor session)
--
-- A code is accepted once per user and 30-second step, and only for a step later than the
-- user's last accepted one (one step of drift either way), so the file holds many users, each with its codes for every step of the run (computed by the
-- harness), one user a line: `USERNAME STEP:CODE ...`. Each thread takes its share of the
-- lines; a login takes a user whose next unused step is still within the drift of now, and
-- the second-factor page (which names its user) gets that step's code.
--
-- Flows log in as BENCH_USER_COUNT users in turn (USERNAME-0, USERNAME-1, ...) from a random
-- 10.x.y.z address sent as X-Forwarded-For (the server trusts 127.0.0.1 as its proxy): many
-- people logging in at once, as in production, rather than one account and one address, whose
-- throttles count every login in flight.
local common = require("common")

local M = {}
local MAX_STEPS = 8
local FORM = "application/x-www-form-urlencoded"

local cfg          -- settings read once per thread
local queue = {}   -- next requests, as wrk.format strings
local cookies = {} -- interaction id -> "name=value; name=value" (the session cookie)
local steps = {}   -- interaction id -> steps taken
local binding      -- this thread's binding cookie, "latchkey_interaction=VALUE"
local logins = 0   -- logins posted by this thread
local totp         -- login_totp: list of { name, codes = { [step] = code }, next = step }
local owed = {}    -- username -> the code its pending second-factor page gets

M.stats = { flows = 0, aborted = 0, unexpected = 0, no_user = 0 }

-- login_totp: this thread's share of the users and their codes.
local function load_totp(path)
  local users = {}
  for _, line in ipairs(common.read_share(path, tonumber(tid) or 0, tonumber(nthreads) or 1)) do
    local name, rest = line:match("^(%S+)%s+(.*)$")
    local codes = {}
    for step, code in rest:gmatch("(%d+):(%d+)") do codes[tonumber(step)] = code end
    users[#users + 1] = { name = name, codes = codes, next = 0 }
  end
  return users
end

-- login_totp: the next user with a code still acceptable now (its next unused step is the
-- current step or the one after) and no login of theirs still on its way to the second-factor
-- page; reserves that step's code for the user's second-factor page. The previous step is
-- never picked: a login posted just before a step boundary reaches the second-factor page
-- after it, when the server's window no longer holds that step. A user is never in two logins
-- at once: the page names only the user, so a second pending code would replace the first,
-- and the server takes a user's codes only in step order.
local function totp_user()
  local now = math.floor(os.time() / 30)
  for _ = 1, #totp do
    logins = logins + 1
    local u = totp[(logins % #totp) + 1]
    local step = math.max(u.next, now)
    if owed[u.name] == nil and step <= now + 1 and u.codes[step] then
      u.next = step + 1
      owed[u.name] = u.codes[step]
      return u.name
    end
  end
  M.stats.no_user = M.stats.no_user + 1
  local u = totp[(logins % #totp) + 1]
  return u.name
end

function M.init()
  cfg = {
    authorize = common.env("BENCH_LOGIN_AUTHORIZE_PATH"),
    username = common.env("BENCH_USERNAME_ENC"),
    password = common.env("BENCH_PASSWORD_ENC"),
    auth = common.env("BENCH_AUTH"),
    tail = "&redirect_uri=" .. common.env("BENCH_REDIRECT_URI_ENC") ..
           "&code_verifier=" .. common.env("BENCH_VERIFIER"),
    users = tonumber(common.env("BENCH_USER_COUNT", "1")),
  }
  local totp_file = os.getenv("BENCH_TOTP_FILE")
  if totp_file and totp_file ~= "" then totp = load_totp(totp_file) end
  -- `tid` is the thread number common.setup gave this thread's Lua state.
  math.randomseed(os.time() * 1000 + (tonumber(tid) or 0))
  -- The thread's browser brings its binding cookie from the first request on, so that the
  -- flows it starts at once share it (the server keeps a binding cookie a browser sends).
  binding = string.format("latchkey_interaction=bench%d%d%d", tonumber(tid) or 0,
                          math.random(100000000, 999999999), math.random(100000000, 999999999))
end

-- The Cookie header for a step of flow `id`.
local function cookie_header(id)
  local parts = {}
  if binding then parts[#parts + 1] = binding end
  if id and cookies[id] then parts[#parts + 1] = cookies[id] end
  if #parts == 0 then return nil end
  return table.concat(parts, "; ")
end

-- The first request of a new flow.
function M.start()
  local cookie = cookie_header(nil)
  return wrk.format("GET", cfg.authorize, cookie and { ["Cookie"] = cookie } or nil)
end

-- A queued follow-up step, or nil.
function M.next() return table.remove(queue, 1) end

local function cookie_pair(set_cookie)
  return set_cookie and set_cookie:match("^([^;]+)")
end

local function add_cookie(id, set_cookie)
  local pair = cookie_pair(set_cookie)
  if not pair then return end
  if pair:find("^latchkey_interaction=") then
    binding = pair
  else
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
      queue[#queue + 1] = wrk.format("GET", path, { ["Cookie"] = cookie_header(id) })
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
    local headers = { ["Cookie"] = cookie_header(id), ["Content-Type"] = FORM }
    local path = "/login"
    if body:find('name="decision"', 1, true) then
      path, form = "/consent", form .. "&decision=allow"
    elseif body:find('name="otp"', 1, true) then
      local who = body:match('class="who">[^<]*<strong>([^<]+)</strong>')
      local code = who and owed[who]
      if not code then
        M.stats.unexpected = M.stats.unexpected + 1
        forget(id)
        return true
      end
      owed[who] = nil
      path, form = "/login/otp", form .. "&otp=" .. code
    else
      local user
      if totp then
        user = totp_user()
      else
        user = cfg.username
        if cfg.users > 1 then user = user .. "-" .. (logins % cfg.users) end
        logins = logins + 1
      end
      form = form .. "&username=" .. user .. "&password=" .. cfg.password
      headers["X-Forwarded-For"] = string.format("10.%d.%d.%d",
        math.random(0, 255), math.random(0, 255), math.random(1, 254))
    end
    -- The answer names another interaction (the code redirect, or the consent page of the
    -- interaction the login moved on): this id is done.
    forget(id)
    queue[#queue + 1] = wrk.format("POST", path, headers, form)
    return true
  end
  if status == 200 and body:find('"id_token"', 1, true) then
    M.stats.flows = M.stats.flows + 1
    return true
  end
  return false
end

return M
