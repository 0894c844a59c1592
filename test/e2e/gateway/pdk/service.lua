-- kong.service, kong.service.request and kong.service.response
-- (kong/pdk/service.lua, service/request.lua, service/response.lua), the part
-- external plugins use.
--
-- service.response reads what Kong.response buffered (ctx.buffered_status,
-- _headers, _body).  As in Kong, get_headers() on a buffered response returns
-- a table whose entries are only reachable by name (an __index function), so
-- iterating it - which is what the RPC layer does - yields nothing; and
-- get_raw_body() raises unless ctx.buffered_proxying is still set.

local phases = require "gateway.pdk.phases"
local checks = require "gateway.pdk.checks"

local ngx = ngx
local lower, sub = string.lower, string.sub
local check_phase = phases.check
local PHASES = phases.phases

local access_rewrite_balancer = phases.new(PHASES.rewrite, PHASES.access, PHASES.balancer)
local access_and_rewrite = phases.new(PHASES.rewrite, PHASES.access)
local header_body_log = phases.new(PHASES.response, PHASES.header_filter,
                                   PHASES.body_filter, PHASES.log)

local function service_request()
  local R = {}

  function R.enable_buffering()
    check_phase(access_rewrite_balancer)
    ngx.ctx.buffered_proxying = true
  end

  function R.set_header(header, value)
    check_phase(access_rewrite_balancer)
    checks.validate_header(header, value)
    if lower(header) == "host" then
      ngx.var.upstream_host = value
    end
    ngx.req.set_header(header, checks.normalize_multi_header(value))
  end

  function R.add_header(header, value)
    check_phase(access_and_rewrite)
    checks.validate_header(header, value)
    if lower(header) == "host" then
      ngx.var.upstream_host = value
    end
    local cur = ngx.req.get_headers()[header]
    if type(cur) ~= "table" then
      cur = { cur }
    end
    cur[#cur + 1] = checks.normalize_multi_header(value)
    ngx.req.set_header(header, cur)
  end

  function R.clear_header(header)
    check_phase(access_and_rewrite)
    if type(header) ~= "string" then
      error("header must be a string", 2)
    end
    ngx.req.clear_header(header)
  end

  function R.set_headers(headers)
    check_phase(access_and_rewrite)
    if type(headers) ~= "table" then
      error("headers must be a table", 2)
    end
    checks.validate_headers(headers)
    for k, v in pairs(headers) do
      if lower(k) == "host" then
        ngx.var.upstream_host = v
      end
      ngx.req.set_header(k, checks.normalize_multi_header(v))
    end
  end

  function R.set_raw_body(body)
    check_phase(access_rewrite_balancer)
    if type(body) ~= "string" then
      error("body must be a string", 2)
    end
    ngx.req.read_body()
    ngx.req.set_body_data(body)
  end

  function R.set_path(path)
    check_phase(access_rewrite_balancer)
    if type(path) ~= "string" then
      error("path must be a string", 2)
    end
    if path:byte(1) ~= 47 then
      error("path must start with /", 2)
    end
    ngx.var.upstream_uri = require("gateway.uri").escape(path)
  end

  function R.set_method(method)
    check_phase(access_rewrite_balancer)
    local m = ngx["HTTP_" .. tostring(method)]
    if type(method) ~= "string" or not m then
      error("invalid method: " .. tostring(method), 2)
    end
    ngx.req.set_method(m)
  end

  return R
end

local function buffered_headers(h, max_headers)
  if not h then
    return {}
  end
  return setmetatable({}, { __index = function(_, name)
    if type(name) ~= "string" then
      return nil
    end
    if h[name] then
      return h[name]
    end
    name = lower(name)
    if h[name] then
      return h[name]
    end
    name = name:gsub("-", "_")
    if h[name] then
      return h[name]
    end
    local i = 1
    for n, v in pairs(h) do
      if i > max_headers then
        return nil
      end
      if lower(n):gsub("-", "_") == name then
        return v
      end
      i = i + 1
    end
  end })
end

local function service_response(conf)
  local R = {}
  local max_resp_headers = conf.lua_max_resp_headers or 100

  function R.get_status()
    check_phase(header_body_log)
    local ctx = ngx.ctx
    if ctx.buffered_status then
      return ctx.buffered_status
    end
    return tonumber(sub(ngx.var.upstream_status or "", -3))
  end

  function R.get_headers(max_headers)
    check_phase(header_body_log)
    local buffered = ngx.ctx.buffered_headers
    if max_headers ~= nil then
      if type(max_headers) ~= "number" then
        error("max_headers must be a number", 2)
      elseif max_headers < 1 then
        error("max_headers must be >= 1", 2)
      elseif max_headers > 1000 then
        error("max_headers must be <= 1000", 2)
      end
    end
    if buffered then
      return buffered_headers(buffered, max_headers or max_resp_headers)
    end
    -- unbuffered: Kong returns the response headers table, hiding names the
    -- upstream did not send only on lookups by a name that misses
    return ngx.resp.get_headers(max_headers)
  end

  function R.get_header(name)
    check_phase(header_body_log)
    if type(name) ~= "string" then
      error("name must be a string", 2)
    end
    local v = R.get_headers()[name]
    if type(v) == "table" then
      return v[1]
    end
    return v
  end

  function R.get_raw_body()
    check_phase(header_body_log)
    local ctx = ngx.ctx
    if not ctx.buffered_proxying then
      error("service body is only available with buffered proxying " ..
            "(see: kong.service.request.enable_buffering function)", 2)
    end
    return ctx.buffered_body or ""
  end

  function R.get_body(mimetype, max_args)
    check_phase(header_body_log)
    local ctx = ngx.ctx
    if not ctx.buffered_proxying then
      error("service body is only available with buffered proxying " ..
            "(see: kong.service.request.enable_buffering function)", 2)
    end
    local ct = mimetype or R.get_header("Content-Type")
    if not ct then
      return nil, "missing content type"
    end
    if lower(ct):find("application/json", 1, true) == 1 then
      local t = require("gateway.json").decode(ctx.buffered_body or "")
      if type(t) ~= "table" then
        return nil, "invalid json body", "application/json"
      end
      return t, nil, "application/json"
    end
    return nil, "unsupported content type '" .. ct .. "'", lower(ct)
  end

  return R
end

return function(conf)
  return {
    request = service_request(),
    response = service_response(conf),
  }
end
