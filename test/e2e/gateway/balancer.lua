-- Upstream peer selection, after kong/runloop/balancer and Kong.balancer():
-- one target per service (host must be an IP address or "localhost"),
-- `retries` more tries on failure, every try recorded in
-- ctx.balancer_data.tries (serialize's "tries"), timeouts from the service.

local ngx_balancer = require "ngx.balancer"
local json = require "gateway.json"

local ngx = ngx
local var = ngx.var

local _M = {}

local function now_ms()
  return ngx.now() * 1000
end

local function resolve(host)
  if host:match("^%d+%.%d+%.%d+%.%d+$") then
    return host
  end
  if host == "localhost" then
    return "127.0.0.1"
  end
  local f = io.open("/etc/hosts")
  if f then
    for line in f:lines() do
      local ip, names = line:match("^%s*(%d+%.%d+%.%d+%.%d+)%s+(.*)$")
      if ip then
        for n in names:gmatch("%S+") do
          if n == host then
            f:close()
            return ip
          end
        end
      end
    end
    f:close()
  end
  return nil, "name resolution failed"
end

-- runloop.access.before: balancer_prepare (kong/runloop/handler.lua, 3.0-3.9).
-- It runs before any access plugin, so a request a plugin ends in access is
-- serialized with "tries":[] (an array, also when empty: Kong's ARRAY_MT).
function _M.prepare(ctx, scheme, host, port, service)
  ctx.balancer_data = {
    scheme = scheme,
    type = "ipv4",
    host = host,
    port = port,
    try_count = 0,
    tries = json.array(),
    retries = service.retries or 5,
    connect_timeout = service.connect_timeout or 60000,
    send_timeout = service.write_timeout or 60000,
    read_timeout = service.read_timeout or 60000,
  }
end

-- runloop.access.after: balancer_execute + set_host_header
function _M.execute(ctx)
  local bd = ctx.balancer_data
  local ip, err = resolve(bd.host)
  if not ip then
    return nil, err, 503
  end
  bd.ip = ip
  local upstream_host = var.upstream_host
  if upstream_host == nil or upstream_host == "" then
    local default_port = (bd.scheme == "https") and 443 or 80
    if bd.port == default_port then
      var.upstream_host = bd.host
    else
      var.upstream_host = bd.host .. ":" .. bd.port
    end
  end
  return true
end

-- balancer_by_lua
function _M.balancer(ctx)
  local now = now_ms()
  if not ctx.KONG_BALANCER_START then
    ctx.KONG_BALANCER_START = now
    if ctx.KONG_ACCESS_START and not ctx.KONG_ACCESS_ENDED_AT then
      ctx.KONG_ACCESS_ENDED_AT = ctx.KONG_BALANCER_START
      ctx.KONG_ACCESS_TIME = ctx.KONG_ACCESS_ENDED_AT - ctx.KONG_ACCESS_START
    end
  end
  ctx.KONG_PHASE = require("gateway.pdk.phases").phases.balancer

  local bd = ctx.balancer_data
  local tries = bd.tries
  local try_count = bd.try_count + 1
  bd.try_count = try_count
  local current = { balancer_start = now, balancer_start_ns = now * 1e6 }
  tries[try_count] = current

  if try_count > 1 then
    local prev = tries[try_count - 1]
    prev.state, prev.code = ngx_balancer.get_last_failure()
  elseif bd.retries > 0 then
    ngx_balancer.set_more_tries(bd.retries)
  end

  current.ip = bd.ip
  current.port = bd.port
  local ok, err = ngx_balancer.set_current_peer(bd.ip, bd.port)
  if not ok then
    ngx.log(ngx.ERR, "failed to set the current peer (address: ", tostring(bd.ip),
            " port: ", tostring(bd.port), "): ", tostring(err))
    return ngx.exit(500)
  end
  ok, err = ngx_balancer.set_timeouts(bd.connect_timeout / 1000, bd.send_timeout / 1000,
                                      bd.read_timeout / 1000)
  if not ok then
    ngx.log(ngx.ERR, "could not set upstream timeouts: ", err)
  end

  ngx.update_time()
  ctx.KONG_BALANCER_ENDED_AT = now_ms()
  ctx.KONG_BALANCER_TIME = ctx.KONG_BALANCER_ENDED_AT - ctx.KONG_BALANCER_START
  current.balancer_latency = ctx.KONG_BALANCER_ENDED_AT - current.balancer_start
  current.balancer_latency_ns = current.balancer_latency * 1e6
  ctx.KONG_PROXY_LATENCY = ctx.KONG_BALANCER_ENDED_AT - ctx.KONG_PROCESSING_START
end

return _M
