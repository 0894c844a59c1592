-- The request runloop, after Kong.rewrite/access/response/balancer/
-- header_filter/body_filter/log/handle_error (kong/init.lua) and
-- kong/runloop/handler.lua (routing, upstream variables, response headers).
--
-- * rewrite: global plugins only (routing happens in access);
-- * access: route, then every configured plugin in priority order, each in
--   its own coroutine with ctx.delay_response set: a Lua error becomes
--   HTTP 500 "An unexpected error occurred" (KONG_UNEXPECTED), an exit is
--   flushed after the loop; either way later plugins do not run and
--   ctx.buffered_proxying is cleared;
-- * buffered proxying (a plugin with a response handler, or
--   kong.service.request.enable_buffering()): read the body, proxy through
--   ngx.location.capture("/kong_buffered_http"), run response handlers,
--   send; Upgrade requests are not buffered;
-- * log: collected plugins' log handlers (external ones defer to a timer).

local plugins = require "gateway.plugins"
local router = require "gateway.router"
local balancer = require "gateway.balancer"
local uri = require "gateway.uri"
local ctx_ref = require "gateway.ctx_ref"
local errors = require "gateway.errors"
local worker_events = require "gateway.worker_events"
local era = require "gateway.era"
local PHASES = require("gateway.pdk.phases").phases

local ngx = ngx
local var = ngx.var

local _M = {}

local ws_id
local server_header = "kong"

function _M.init(opts)
  ws_id = opts.ws_id
  server_header = "kong/" .. opts.version
end

local function now_ms()
  return ngx.now() * 1000
end

local function updated_now_ms()
  ngx.update_time()
  return ngx.now() * 1000
end

local function setup_plugin_context(ctx, plugin, cfg)
  ctx.plugin_id = cfg.__plugin_id
  kong.set_namespaced_log(plugin.name, ctx)
end

local function reset_plugin_context(ctx)
  ctx.plugin_id = nil
  kong.reset_log(ctx)
end

local function run_global(phase, ctx)
  local iter, list = plugins.global_iterator(phase)
  if not iter then
    return
  end
  for _, plugin, cfg in iter, list, 0 do
    setup_plugin_context(ctx, plugin, cfg)
    plugin.handler[phase](plugin.handler, cfg)
    reset_plugin_context(ctx)
  end
end

local function run_collected(phase, ctx)
  local iter, list = plugins.collected_iterator(phase, ctx)
  if not iter then
    return
  end
  for _, plugin, cfg in iter, list, 0 do
    setup_plugin_context(ctx, plugin, cfg)
    plugin.handler[phase](plugin.handler, cfg)
    reset_plugin_context(ctx)
  end
end

local function run_collecting_access(ctx)
  local iter, state = plugins.collecting_iterator(ctx)
  ctx.delay_response = true
  for _, plugin, cfg in iter, state, 0 do
    if not ctx.delayed_response then
      setup_plugin_context(ctx, plugin, cfg)
      local co = coroutine.create(plugin.handler.access)
      local ok, err = coroutine.resume(co, plugin.handler, cfg)
      if not ok then
        kong.log.err(err)
        ctx.delayed_response = {
          status_code = 500,
          content = { message = "An unexpected error occurred" },
        }
        ctx.KONG_UNEXPECTED = true
      end
      reset_plugin_context(ctx)
    end
  end
  ctx.delay_response = nil
end

local function flush_delayed_response(ctx)
  ctx.delay_response = nil
  ctx.buffered_proxying = nil
  if type(ctx.delayed_response_callback) == "function" then
    ctx.delayed_response_callback(ctx)
    return
  end
  local dr = ctx.delayed_response
  local message = dr.content and dr.content.message or dr.content
  return kong.response.error(dr.status_code, message, dr.headers)
end

function _M.rewrite()
  local ctx = ngx.ctx
  if not ctx.KONG_PROCESSING_START then
    ctx.KONG_PROCESSING_START = ngx.req.start_time() * 1000
  end
  if not ctx.KONG_REWRITE_START then
    ctx.KONG_REWRITE_START = now_ms()
  end
  ctx.KONG_PHASE = PHASES.rewrite
  ctx_ref.stash(ctx)
  worker_events.poll()
  ctx.workspace = ws_id

  run_global("rewrite", ctx)

  ctx.KONG_REWRITE_ENDED_AT = updated_now_ms()
  ctx.KONG_REWRITE_TIME = ctx.KONG_REWRITE_ENDED_AT - ctx.KONG_REWRITE_START
end

-- runloop.access.before: routing and upstream variables
local function access_before(ctx)
  ctx.scheme = var.scheme
  ctx.request_uri = var.request_uri
  ctx.host = var.host

  local match_t = router.exec(ctx)
  if not match_t then
    -- 3.3.0: kong.response.error (templated, Accept-negotiated); 3.0-3.2 exit
    -- with a JSON table (kong/runloop/handler.lua)
    if not era.ge("3.3") then
      return kong.response.exit(404, { message = "no Route matched with those values" })
    end
    return kong.response.error(404, "no Route matched with those values")
  end

  local route, service = match_t.route, match_t.service
  ctx.route = route
  ctx.service = service
  ctx.router_matches = match_t.matches
  ctx.workspace = route.ws_id

  local host = ctx.host
  local port = tonumber(var.server_port, 10)
  local forwarded_path = ctx.request_uri
  local q = forwarded_path:find("?", 2, true)
  if q then
    forwarded_path = forwarded_path:sub(1, q - 1)
  end

  if service then
    balancer.prepare(ctx, match_t.upstream_scheme, service.host, service.port, service)
  end
  var.upstream_scheme = match_t.upstream_scheme
  var.upstream_uri = uri.escape(match_t.upstream_uri)
  if route.preserve_host then
    var.upstream_host = var.http_host or host
  end

  local upgrade = var.http_upgrade
  if upgrade and upgrade:lower() == "websocket" then
    var.upstream_connection = "keep-alive, Upgrade"
    var.upstream_upgrade = "websocket"
  else
    var.upstream_connection = "keep-alive"
  end

  local xff = var.http_x_forwarded_for
  if xff then
    var.upstream_x_forwarded_for = xff .. ", " .. var.realip_remote_addr
  else
    var.upstream_x_forwarded_for = var.remote_addr
  end
  var.upstream_x_forwarded_proto = ctx.scheme
  var.upstream_x_forwarded_host = host
  var.upstream_x_forwarded_port = port
  var.upstream_x_forwarded_path = forwarded_path
  if match_t.prefix and match_t.prefix ~= "/" then
    var.upstream_x_forwarded_prefix = match_t.prefix
  end
  -- 3.8.0: a Via request header to the upstream (before: none; an empty
  -- $upstream_via sends nothing) (kong/runloop/handler.lua)
  if era.ge("3.8") then
    local proto = ngx.req.http_version()
    local inbound_via = proto and (proto .. " " .. server_header) or server_header
    local req_via = var.http_via
    var.upstream_via = req_via and (req_via .. ", " .. inbound_via) or inbound_via
  end
end

-- runloop.access.after
local function access_after(ctx)
  local ru = ctx.request_uri or var.request_uri
  if ru:byte(-1) == 63 or var.is_args == "?" then
    var.upstream_uri = var.upstream_uri .. "?" .. (var.args or "")
  end
  local ok, err, code = balancer.execute(ctx)
  if not ok then
    return kong.response.error(code, err)
  end
end

function _M.access()
  local ctx = ngx.ctx
  if not ctx.KONG_ACCESS_START then
    ctx.KONG_ACCESS_START = now_ms()
    if ctx.KONG_REWRITE_START and not ctx.KONG_REWRITE_ENDED_AT then
      ctx.KONG_REWRITE_ENDED_AT = ctx.KONG_ACCESS_START
      ctx.KONG_REWRITE_TIME = ctx.KONG_REWRITE_ENDED_AT - ctx.KONG_REWRITE_START
    end
  end
  ctx.KONG_PHASE = PHASES.access

  access_before(ctx)

  run_collecting_access(ctx)

  if ctx.delayed_response then
    ctx.KONG_ACCESS_ENDED_AT = updated_now_ms()
    ctx.KONG_ACCESS_TIME = ctx.KONG_ACCESS_ENDED_AT - ctx.KONG_ACCESS_START
    ctx.KONG_RESPONSE_LATENCY = ctx.KONG_ACCESS_ENDED_AT - ctx.KONG_PROCESSING_START
    return flush_delayed_response(ctx)
  end

  if not ctx.service then
    ctx.KONG_ACCESS_ENDED_AT = updated_now_ms()
    ctx.KONG_ACCESS_TIME = ctx.KONG_ACCESS_ENDED_AT - ctx.KONG_ACCESS_START
    ctx.KONG_RESPONSE_LATENCY = ctx.KONG_ACCESS_ENDED_AT - ctx.KONG_PROCESSING_START
    ctx.buffered_proxying = nil
    -- 3.3.0: kong.response.error; 3.0-3.2 exit with a JSON table (kong/init.lua)
    if not era.ge("3.3") then
      return kong.response.exit(503, { message = "no Service found with those values" })
    end
    return kong.response.error(503, "no Service found with those values")
  end

  access_after(ctx)

  ctx.KONG_ACCESS_ENDED_AT = updated_now_ms()
  ctx.KONG_ACCESS_TIME = ctx.KONG_ACCESS_ENDED_AT - ctx.KONG_ACCESS_START
  ctx.KONG_PROXIED = true

  if ctx.buffered_proxying then
    local upgrade = var.upstream_upgrade or ""
    if upgrade == "" then
      return _M.response()
    end
    ngx.log(ngx.NOTICE, "response buffering was turned off: connection upgrade (", upgrade, ")")
    ctx.buffered_proxying = nil
  end
end

local METHODS = {
  GET = ngx.HTTP_GET, HEAD = ngx.HTTP_HEAD, PUT = ngx.HTTP_PUT, POST = ngx.HTTP_POST,
  DELETE = ngx.HTTP_DELETE, OPTIONS = ngx.HTTP_OPTIONS, PATCH = ngx.HTTP_PATCH,
  TRACE = ngx.HTTP_TRACE, MKCOL = ngx.HTTP_MKCOL, COPY = ngx.HTTP_COPY, MOVE = ngx.HTTP_MOVE,
  PROPFIND = ngx.HTTP_PROPFIND, PROPPATCH = ngx.HTTP_PROPPATCH, LOCK = ngx.HTTP_LOCK,
  UNLOCK = ngx.HTTP_UNLOCK,
}

function _M.response()
  local ctx = ngx.ctx

  ngx.req.read_body()
  local options = {
    always_forward_body = true,
    share_all_vars = true,
    method = METHODS[ngx.req.get_method()],
    ctx = ctx,
  }
  local res = ngx.location.capture("/kong_buffered_http", options)
  if res.truncated and options.method ~= ngx.HTTP_HEAD then
    ctx.KONG_PHASE = PHASES.error
    -- 3.5.0: the subrequest's status when it has one; 3.0-3.4 always 502 (kong/init.lua)
    ngx.status = era.ge("3.5") and res.status or 502
    return errors.handle(ctx)
  end

  ctx.KONG_PHASE = PHASES.response
  local status, headers, body = res.status, res.header, res.body
  ctx.buffered_status = status
  ctx.buffered_headers = headers
  ctx.buffered_body = body

  if not ctx.KONG_RESPONSE_START then
    ctx.KONG_RESPONSE_START = now_ms()
    if ctx.KONG_BALANCER_START and not ctx.KONG_BALANCER_ENDED_AT then
      ctx.KONG_BALANCER_ENDED_AT = ctx.KONG_RESPONSE_START
      ctx.KONG_BALANCER_TIME = ctx.KONG_BALANCER_ENDED_AT - ctx.KONG_BALANCER_START
    end
  end
  if not ctx.KONG_WAITING_TIME then
    ctx.KONG_WAITING_TIME = ctx.KONG_RESPONSE_START -
                            (ctx.KONG_BALANCER_ENDED_AT or ctx.KONG_ACCESS_ENDED_AT)
  end
  if not ctx.KONG_PROXY_LATENCY then
    ctx.KONG_PROXY_LATENCY = ctx.KONG_RESPONSE_START - ctx.KONG_PROCESSING_START
  end

  kong.response.set_status(status)
  kong.response.set_headers(headers)

  run_collected("response", ctx)

  ctx.KONG_RESPONSE_ENDED_AT = updated_now_ms()
  ctx.KONG_RESPONSE_TIME = ctx.KONG_RESPONSE_ENDED_AT - ctx.KONG_RESPONSE_START

  ngx.print(body)
  return ngx.exit(status)
end

function _M.balancer()
  balancer.balancer(ngx.ctx)
end

function _M.header_filter()
  local ctx = ngx.ctx
  if not ctx.KONG_PROCESSING_START then
    ctx.KONG_PROCESSING_START = ngx.req.start_time() * 1000
  end
  if not ctx.workspace then
    ctx.workspace = ws_id
  end
  if not ctx.KONG_HEADER_FILTER_START then
    ctx.KONG_HEADER_FILTER_START = now_ms()
    if ctx.KONG_REWRITE_START and not ctx.KONG_REWRITE_ENDED_AT then
      ctx.KONG_REWRITE_ENDED_AT = ctx.KONG_BALANCER_START or ctx.KONG_ACCESS_START or
                                  ctx.KONG_RESPONSE_START or ctx.KONG_HEADER_FILTER_START
      ctx.KONG_REWRITE_TIME = ctx.KONG_REWRITE_ENDED_AT - ctx.KONG_REWRITE_START
    end
    if ctx.KONG_ACCESS_START and not ctx.KONG_ACCESS_ENDED_AT then
      ctx.KONG_ACCESS_ENDED_AT = ctx.KONG_BALANCER_START or ctx.KONG_RESPONSE_START or
                                 ctx.KONG_HEADER_FILTER_START
      ctx.KONG_ACCESS_TIME = ctx.KONG_ACCESS_ENDED_AT - ctx.KONG_ACCESS_START
    end
    if ctx.KONG_BALANCER_START and not ctx.KONG_BALANCER_ENDED_AT then
      ctx.KONG_BALANCER_ENDED_AT = ctx.KONG_RESPONSE_START or ctx.KONG_HEADER_FILTER_START
      ctx.KONG_BALANCER_TIME = ctx.KONG_BALANCER_ENDED_AT - ctx.KONG_BALANCER_START
    end
    if ctx.KONG_RESPONSE_START and not ctx.KONG_RESPONSE_ENDED_AT then
      ctx.KONG_RESPONSE_ENDED_AT = ctx.KONG_HEADER_FILTER_START
      ctx.KONG_RESPONSE_TIME = ctx.KONG_RESPONSE_ENDED_AT - ctx.KONG_RESPONSE_START
    end
  end

  if ctx.KONG_PROXIED then
    if not ctx.KONG_WAITING_TIME then
      ctx.KONG_WAITING_TIME = (ctx.KONG_RESPONSE_START or ctx.KONG_HEADER_FILTER_START) -
                              (ctx.KONG_BALANCER_ENDED_AT or ctx.KONG_ACCESS_ENDED_AT)
    end
    if not ctx.KONG_PROXY_LATENCY then
      ctx.KONG_PROXY_LATENCY = (ctx.KONG_RESPONSE_START or ctx.KONG_HEADER_FILTER_START) -
                               ctx.KONG_PROCESSING_START
    end
  elseif not ctx.KONG_RESPONSE_LATENCY then
    ctx.KONG_RESPONSE_LATENCY = (ctx.KONG_RESPONSE_START or ctx.KONG_HEADER_FILTER_START) -
                                ctx.KONG_PROCESSING_START
  end

  ctx.KONG_PHASE = PHASES.header_filter

  local header = ngx.header
  if ctx.KONG_PROXIED then
    local status = ngx.status
    local bd = ctx.balancer_data
    if status > 499 and bd and bd.try_count > bd.retries then
      local current = bd.tries[bd.try_count]
      current.state = "failed"
      current.code = status
    end
  end

  run_collected("header_filter", ctx)

  if ctx.KONG_PROXIED then
    header["X-Kong-Upstream-Latency"] = ctx.KONG_WAITING_TIME
    header["X-Kong-Proxy-Latency"] = ctx.KONG_PROXY_LATENCY
    if era.ge("3.8") then
      -- 3.8.0: "1.1 kong/<version>" appended to the upstream's Via, and a
      -- Server header when the upstream sent none (kong/runloop/handler.lua)
      local outbound_via = "1.1 " .. server_header
      local resp_via = var.upstream_http_via
      header["Via"] = resp_via and (resp_via .. ", " .. outbound_via) or outbound_via
      if not header["Server"] then
        header["Server"] = server_header
      end
    else
      -- 3.0-3.7: Via is "kong/<version>", replacing the upstream's
      header["Via"] = server_header
    end
  else
    header["X-Kong-Response-Latency"] = ctx.KONG_RESPONSE_LATENCY
    header["Server"] = server_header
  end
  -- 3.5.0: X-Kong-Request-Id on every response (kong/runloop/handler.lua,
  -- `headers` default in kong/templates/kong_defaults.lua)
  if era.ge("3.5") then
    header["X-Kong-Request-Id"] = var.request_id
  end

  ctx.KONG_HEADER_FILTER_ENDED_AT = updated_now_ms()
  ctx.KONG_HEADER_FILTER_TIME = ctx.KONG_HEADER_FILTER_ENDED_AT - ctx.KONG_HEADER_FILTER_START
end

function _M.body_filter()
  local ctx = ngx.ctx
  if not ctx.KONG_BODY_FILTER_START then
    ctx.KONG_BODY_FILTER_START = now_ms()
  end
  ctx.KONG_PHASE = PHASES.body_filter
  run_collected("body_filter", ctx)
  if not ngx.arg[2] then
    return
  end
  ctx.KONG_BODY_FILTER_ENDED_AT = updated_now_ms()
  ctx.KONG_BODY_FILTER_TIME = ctx.KONG_BODY_FILTER_ENDED_AT - ctx.KONG_BODY_FILTER_START
  if ctx.KONG_PROXIED then
    ctx.KONG_RECEIVE_TIME = ctx.KONG_BODY_FILTER_ENDED_AT - (ctx.KONG_RESPONSE_START or
                                                             ctx.KONG_HEADER_FILTER_START or
                                                             ctx.KONG_BALANCER_ENDED_AT or
                                                             ctx.KONG_BALANCER_START or
                                                             ctx.KONG_ACCESS_ENDED_AT)
  end
end

function _M.log()
  local ctx = ngx.ctx
  if not ctx.KONG_LOG_START then
    ctx.KONG_LOG_START = now_ms()
    if ctx.KONG_PROXIED and not ctx.KONG_WAITING_TIME then
      ctx.KONG_WAITING_TIME = ctx.KONG_LOG_START -
                              (ctx.KONG_BALANCER_ENDED_AT or ctx.KONG_ACCESS_ENDED_AT or
                               ctx.KONG_LOG_START)
    end
  end
  ctx.KONG_PHASE = PHASES.log
  run_collected("log", ctx)
end

function _M.handle_error()
  ctx_ref.apply()
  local ctx = ngx.ctx
  ctx.KONG_PHASE = PHASES.error
  ctx.KONG_UNEXPECTED = true
  return errors.handle(ctx)
end

return _M
