-- kong.response (kong/pdk/response.lua), http subsystem.
--
-- exit()/error() in access run while ctx.delay_response is set: the response
-- is stored in ctx.delayed_response and the plugin's coroutine yields for
-- good (so an external plugin's event gets no further Step); the runloop
-- flushes it after the plugin loop.  Elsewhere they send at once and
-- ngx.exit().

local phases = require "gateway.pdk.phases"
local checks = require "gateway.pdk.checks"
local json = require "gateway.json"
local errors = require "gateway.errors"

local ngx = ngx
local fmt, lower, find = string.format, string.lower, string.find
local check_phase = phases.check
local PHASES = phases.phases
local add_header = require("ngx.resp").add_header

local header_body_log = phases.new(PHASES.response, PHASES.header_filter,
                                   PHASES.body_filter, PHASES.log, PHASES.error,
                                   PHASES.admin_api)
local rewrite_access_header = phases.new(PHASES.rewrite, PHASES.access, PHASES.response,
                                         PHASES.balancer, PHASES.header_filter,
                                         PHASES.error, PHASES.admin_api)

local SOURCE = { ERROR = "error", EXIT = "exit", SERVICE = "service" }

return function(conf)
  local R = {}

  function R.get_status()
    check_phase(header_body_log)
    return ngx.status
  end

  function R.get_headers(max_headers)
    check_phase(header_body_log)
    if max_headers == nil then
      return ngx.resp.get_headers()
    end
    if type(max_headers) ~= "number" then
      error("max_headers must be a number", 2)
    elseif max_headers < 1 then
      error("max_headers must be >= 1", 2)
    elseif max_headers > 1000 then
      error("max_headers must be <= 1000", 2)
    end
    return ngx.resp.get_headers(max_headers)
  end

  function R.get_header(name)
    check_phase(header_body_log)
    if type(name) ~= "string" then
      error("header name must be a string", 2)
    end
    local v = R.get_headers()[name]
    if type(v) == "table" then
      return v[1]
    end
    return v
  end

  function R.get_source(ctx)
    if ctx == nil then
      check_phase(header_body_log)
      ctx = ngx.ctx
    end
    if ctx.KONG_UNEXPECTED then
      return SOURCE.ERROR
    end
    if ctx.KONG_EXITED then
      return SOURCE.EXIT
    end
    if ctx.KONG_PROXIED then
      return SOURCE.SERVICE
    end
    return "error"
  end

  function R.set_status(status)
    check_phase(rewrite_access_header)
    if ngx.headers_sent then
      error("headers have already been sent", 2)
    end
    if type(status) ~= "number" then
      error("code must be a number", 2)
    elseif status < 100 or status > 599 then
      error("code must be a number between 100 and 599", 2)
    end
    ngx.status = status
  end

  local function is_te(name)
    local l = lower(name)
    return l == "transfer-encoding" or l == "transfer_encoding"
  end

  function R.set_header(name, value)
    check_phase(rewrite_access_header)
    if ngx.headers_sent then
      error("headers have already been sent", 2)
    end
    checks.validate_header(name, value)
    if is_te(name) then
      kong.log.warn("manually setting Transfer-Encoding. Ignored.")
      return
    end
    ngx.header[name] = checks.normalize_multi_header(value)
  end

  function R.add_header(name, value)
    check_phase(rewrite_access_header)
    if ngx.headers_sent then
      error("headers have already been sent", 2)
    end
    checks.validate_header(name, value)
    add_header(name, checks.normalize_multi_header(value))
  end

  function R.clear_header(name)
    check_phase(rewrite_access_header)
    if ngx.headers_sent then
      error("headers have already been sent", 2)
    end
    if type(name) ~= "string" then
      error("header name must be a string", 2)
    end
    ngx.header[name] = nil
  end

  function R.set_headers(headers)
    check_phase(rewrite_access_header)
    if ngx.headers_sent then
      error("headers have already been sent", 2)
    end
    checks.validate_headers(headers)
    for name, value in pairs(headers) do
      if is_te(name) then
        kong.log.warn("manually setting Transfer-Encoding. Ignored.")
      else
        ngx.header[name] = checks.normalize_multi_header(value)
      end
    end
  end

  function R.get_raw_body()
    check_phase(PHASES.body_filter)
    return ngx.arg[1]     -- external plugins cannot reach body_filter
  end

  local function send(status, body, headers)
    if ngx.headers_sent then
      error("headers have already been sent", 2)
    end
    ngx.status = status
    local has_ct, has_cl
    if headers ~= nil then
      for name, value in pairs(headers) do
        local l = lower(name)
        if is_te(name) then
          kong.log.warn("manually setting Transfer-Encoding. Ignored.")
        else
          ngx.header[name] = checks.normalize_multi_header(value)
        end
        if l == "content-type" or l == "content_type" then
          has_ct = true
        elseif l == "content-length" or l == "content_length" then
          has_cl = true
        end
      end
    end

    local encoded
    if type(body) == "table" then
      local err
      encoded, err = json.encode(body)
      if err then
        error(fmt("body encoding failed while flushing response: %s", err), 2)
      end
    end

    if encoded ~= nil then
      if not has_ct then
        ngx.header["Content-Type"] = "application/json; charset=utf-8"
      end
      if not has_cl then
        ngx.header["Content-Length"] = #encoded
      end
      ngx.print(encoded)
    elseif body ~= nil then
      if not has_cl then
        ngx.header["Content-Length"] = #body
      end
      ngx.print(body)
    elseif not has_cl then
      ngx.header["Content-Length"] = 0
    end
    return ngx.exit(status)
  end

  local function flush(ctx)
    ctx = ctx or ngx.ctx
    local r = ctx.delayed_response
    return send(r.status_code, r.content, r.headers)
  end

  local function delay_or_send(status, body, headers)
    local ctx = ngx.ctx
    ctx.KONG_EXITED = true
    if ctx.delay_response and not ctx.delayed_response then
      ctx.delayed_response = { status_code = status, content = body, headers = headers }
      ctx.delayed_response_callback = flush
      coroutine.yield()
    else
      return send(status, body, headers)
    end
  end

  function R.exit(status, body, headers)
    check_phase(rewrite_access_header)
    if ngx.headers_sent then
      error("headers have already been sent", 2)
    end
    if type(status) ~= "number" then
      error("code must be a number", 2)
    elseif status < 100 or status > 599 then
      error("code must be a number between 100 and 599", 2)
    end
    if body ~= nil and type(body) ~= "string" and type(body) ~= "table" then
      error("body must be a nil, string or table", 2)
    end
    if headers ~= nil and type(headers) ~= "table" then
      error("headers must be a nil or table", 2)
    end
    if headers ~= nil then
      checks.validate_headers(headers)
    end
    return delay_or_send(status, body, headers)
  end

  function R.error(status, message, headers)
    check_phase(rewrite_access_header)
    if ngx.headers_sent then
      error("headers have already been sent", 2)
    end
    if type(status) ~= "number" then
      error("code must be a number", 2)
    elseif status < 400 or status > 599 then
      error("code must be a number between 400 and 599", 2)
    end
    if message ~= nil then
      if type(message) == "table" then
        local err
        message, err = json.encode(message)
        if err then
          error("could not JSON encode the error message: " .. err, 2)
        end
      end
      if type(message) ~= "string" then
        error("message must be a nil, a string or a table", 2)
      end
    end
    if headers ~= nil and type(headers) ~= "table" then
      error("headers must be a nil or table", 2)
    end
    if headers ~= nil then
      checks.validate_headers(headers)
    else
      headers = {}
    end
    local ct = headers["Content-Type"]
    ct = type(ct) == "table" and ct[1] or ct
    if ct == nil then
      ct = errors.response_type(ngx.req.get_headers()["Accept"])
    end
    headers["Content-Type"] = ct
    local body = errors.render(ct, message or errors.http_message(status))
    return delay_or_send(status, body, headers)
  end

  return R
end
