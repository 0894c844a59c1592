-- Bundled Lua plugin "lua-body-log": the native, in-process body logger that
-- the end-to-end benchmark (bench/e2e) compares tcp-body-log with.  It is
-- written the way Kong users write one, after Kong's own tcp-log
-- (kong/plugins/tcp-log/handler.lua) and the usual body-logging plugins:
--   access:      the request body, kong.request.get_raw_body();
--   body_filter: the response body, from the chunks nginx streams to the
--                client (no buffered proxying: in-process plugins do not
--                need a `response` handler, external ones do);
--   log:         kong.log.serialize() + tcp-body-log's body fields (body,
--                body_encoding, body_size, body_truncated; header values of
--                the default redact list replaced by REDACTED), one JSON line
--                (lua-cjson, as Kong's tcp-log) queued in the worker; one
--                ngx.timer.at(0) at a time sends what is queued, in one write,
--                over a cosocket kept alive in nginx's connection pool (a
--                timer and a send per record, as tcp-log does, costs the
--                gateway about twice as much per request).
-- Simplifications against tcp-body-log (cheap on purpose, it is the ceiling):
-- a body with any byte >= 0x80 or NUL goes as base64 (no UTF-8 validation),
-- no content_types filter, no JSON field masking; the queue holds at most
-- 10000 lines per worker (more are dropped and logged), and a batch whose
-- send fails is logged at error level and lost.

local cjson = require "cjson.safe"

local ngx = ngx
local kong = kong
local timer_at = ngx.timer.at
local tcp = ngx.socket.tcp
local sub, lower = string.sub, string.lower
local re_find = ngx.re.find
local concat = table.concat
local encode_base64 = ngx.encode_base64
local pairs, type = pairs, type

local REDACT = {
  ["authorization"] = true, ["proxy-authorization"] = true, ["cookie"] = true,
  ["set-cookie"] = true, ["apikey"] = true, ["x-api-key"] = true,
}

local function redact(headers)
  if type(headers) ~= "table" then
    return
  end
  for k in pairs(headers) do
    if REDACT[lower(k)] then
      headers[k] = "REDACTED"
    end
  end
end

local function add_body(t, body, max, size)
  if type(t) ~= "table" then
    return
  end
  if body == nil then
    t.body_skipped = "not_received"
    return
  end
  size = size or #body
  local kept = #body > max and sub(body, 1, max) or body
  if re_find(kept, "[\\x00\\x80-\\xff]", "jo") then
    t.body = encode_base64(kept)
    t.body_encoding = "base64"
  else
    t.body = kept
    t.body_encoding = "text"
  end
  t.body_size = size
  t.body_truncated = size > max
end

local MAX_QUEUED = 10000
local MAX_BATCH = 512
local queues = {} -- "host:port" -> { conf = , lines = {}, n = , running = , dropped = }

local function flush(premature, q)
  if premature then
    q.running = false
    return
  end
  local conf = q.conf
  for _ = 1, 1000 do -- bounded: at most 1000 batches per timer
    if q.n == 0 then
      break
    end
    local lines, n = q.lines, q.n
    local batch
    if n <= MAX_BATCH then
      batch = concat(lines, "", 1, n)
      q.lines, q.n = {}, 0
    else
      batch = concat(lines, "", 1, MAX_BATCH)
      local rest = {}
      for i = MAX_BATCH + 1, n do
        rest[i - MAX_BATCH] = lines[i]
      end
      q.lines, q.n = rest, n - MAX_BATCH
    end
    local sock = tcp()
    sock:settimeout(conf.timeout)
    local ok, err = sock:connect(conf.host, conf.port)
    if not ok then
      ngx.log(ngx.ERR, "[lua-body-log] connect ", conf.host, ":", conf.port, ": ", err)
    else
      ok, err = sock:send(batch)
      if not ok then
        ngx.log(ngx.ERR, "[lua-body-log] send to ", conf.host, ":", conf.port, ": ", err)
        sock:close()
      else
        sock:setkeepalive(conf.keepalive)
      end
    end
  end
  q.running = false
  if q.n > 0 then
    q.running = timer_at(0, flush, q)
  end
end

local function enqueue(conf, line)
  local key = conf.host .. ":" .. conf.port
  local q = queues[key]
  if not q then
    q = { lines = {}, n = 0, running = false, dropped = 0 }
    queues[key] = q
  end
  q.conf = conf
  if q.n >= MAX_QUEUED then
    q.dropped = q.dropped + 1
    ngx.log(ngx.ERR, "[lua-body-log] queue full, record dropped (", q.dropped, ")")
    return
  end
  q.n = q.n + 1
  q.lines[q.n] = line
  if not q.running then
    local ok, err = timer_at(0, flush, q)
    if not ok then
      ngx.log(ngx.ERR, "[lua-body-log] could not create the send timer: ", err)
      return
    end
    q.running = true
  end
end

return {
  PRIORITY = 7,
  VERSION = "0.1.0",
  schema_fields = {
    { host = { type = "string", required = true } },
    { port = { type = "integer", required = true, between = { 1, 65535 } } },
    { timeout = { type = "number", default = 10000 } },
    { keepalive = { type = "number", default = 60000 } },
    { max_body_size = { type = "integer", default = 8192, between = { 0, 16777216 } } },
  },

  access = function(self, conf)
    -- nil when nginx spooled the body to a file (not the case in the benchmark)
    ngx.ctx.lua_body_log_req = kong.request.get_raw_body()
    ngx.ctx.lua_body_log = true
  end,

  body_filter = function(self, conf)
    local ctx = ngx.ctx
    local chunk, eof = ngx.arg[1], ngx.arg[2]
    local size = (ctx.lua_body_log_resp_size or 0) + #chunk
    ctx.lua_body_log_resp_size = size
    if chunk ~= "" and size - #chunk < conf.max_body_size then
      local t = ctx.lua_body_log_chunks
      if not t then
        t = {}
        ctx.lua_body_log_chunks = t
      end
      t[#t + 1] = chunk
    end
    if eof then
      local t = ctx.lua_body_log_chunks
      ctx.lua_body_log_resp = t and concat(t) or ""
    end
  end,

  log = function(self, conf)
    local ctx = ngx.ctx
    local data = kong.log.serialize()
    local req, resp = data.request, data.response
    if type(req) == "table" then
      redact(req.headers)
    end
    if type(resp) == "table" then
      redact(resp.headers)
    end
    if ctx.lua_body_log then
      add_body(req, ctx.lua_body_log_req, conf.max_body_size)
      add_body(resp, ctx.lua_body_log_resp, conf.max_body_size, ctx.lua_body_log_resp_size)
    else -- short-circuited before the access phase of this plugin
      if type(req) == "table" then req.body_skipped = "short_circuited" end
      if type(resp) == "table" then resp.body_skipped = "short_circuited" end
    end
    local line, err = cjson.encode(data)
    if not line then
      kong.log.err("cannot encode the record: ", err)
      return
    end
    enqueue(conf, line .. "\n")
  end,
}
