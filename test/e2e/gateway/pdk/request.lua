-- kong.request (kong/pdk/request.lua), the part external plugins use.
--
-- get_raw_body follows the selected Kong version:
--   3.0-3.7: a body spooled to a file returns nil, err (the RPC layer then
--           fails packing it as bin: HTTP 500, like Kong); the same in every
--           tag from 3.0.0 to 3.7.1 (3.3 only localised the ngx.req calls);
--   >= 3.8: get_raw_body(max_allowed_file_size) reads the file when the
--           argument is >= 0 (0 = no limit); without it, nil, err as before.

local phases = require "gateway.pdk.phases"
local era = require "gateway.era"
local uri = require "gateway.uri"
local json = require "gateway.json"

local ngx = ngx
local var = ngx.var
local req = ngx.req
local check_phase = phases.check
local check_not_phase = phases.check_not
local PHASES = phases.phases
local find, sub, lower = string.find, string.sub, string.lower

local before_content = phases.new(PHASES.rewrite, PHASES.access, PHASES.response,
                                  PHASES.error, PHASES.admin_api)

return function(conf)
  local R = {}
  local reads_body_file = require("gateway.conf").version_ge(conf.kong_version, "3.8")

  local function header_var(name)
    return "http_" .. lower(name):gsub("-", "_")
  end

  function R.get_scheme()
    check_phase(PHASES.request)
    return ngx.ctx.scheme or var.scheme
  end

  function R.get_host()
    check_phase(PHASES.request)
    return ngx.ctx.host or var.host
  end

  function R.get_port()
    check_not_phase(PHASES.init_worker)
    return tonumber(var.server_port, 10)
  end

  function R.get_forwarded_scheme()
    return R.get_scheme()        -- no trusted_ips configured
  end

  function R.get_forwarded_host()
    return R.get_host()
  end

  function R.get_forwarded_port()
    check_phase(PHASES.request)
    return ngx.ctx.host_port or R.get_port()
  end

  function R.get_http_version()
    check_phase(PHASES.request)
    return req.http_version()
  end

  function R.get_method()
    check_phase(PHASES.request)
    if ngx.ctx.KONG_UNEXPECTED and R.get_http_version() < 2 then
      local line = var.request
      local i = find(line, " ", 1, true)
      if i then
        return sub(line, 1, i - 1)
      end
    end
    return req.get_method()
  end

  function R.get_raw_path()
    check_phase(PHASES.request)
    local u = ngx.ctx.request_uri or var.request_uri or ""
    local s = find(u, "?", 2, true)
    return s and sub(u, 1, s - 1) or u
  end

  function R.get_path()
    return uri.normalize(R.get_raw_path(), true)
  end

  function R.get_path_with_query()
    check_phase(PHASES.request)
    return ngx.ctx.request_uri or var.request_uri or ""
  end

  function R.get_raw_query()
    check_phase(PHASES.request)
    return var.args or ""
  end

  function R.get_query(max_args)
    check_phase(PHASES.request)
    if max_args == nil and not era.ge("3.3") then
      -- 3.0-3.2: MAX_QUERY_ARGS_DEFAULT; 3.3.0 passes nil on (the error path
      -- below then raises in ngx.decode_args, as in Kong)
      max_args = 100
    elseif max_args ~= nil then
      if type(max_args) ~= "number" then
        error("max_args must be a number", 2)
      elseif max_args < 1 then
        error("max_args must be >= 1", 2)
      elseif max_args > 1000 then
        error("max_args must be <= 1000", 2)
      end
    end
    local ctx = ngx.ctx
    if ctx.KONG_UNEXPECTED and R.get_http_version() < 2 then
      local line = var.request
      local q = find(line, "?", 1, true)
      if not q then
        return {}
      end
      local e = find(line, " ", q + 1, true)
      if not e then
        return {}
      end
      return ngx.decode_args(sub(line, q + 1, e - 1), max_args)
    end
    local args, err = req.get_uri_args(max_args)
    return args, err
  end

  function R.get_query_arg(name)
    check_phase(PHASES.request)
    if type(name) ~= "string" then
      error("query argument name must be a string", 2)
    end
    local v = R.get_query()[name]
    if type(v) == "table" then
      return v[1]
    end
    return v
  end

  function R.get_header(name)
    check_phase(PHASES.request)
    if type(name) ~= "string" then
      error("header name must be a string", 2)
    end
    local v = var[header_var(name)]
    if not v or not find(v, ", ", 1, true) then
      return v
    end
    v = req.get_headers()[name]
    return type(v) == "table" and v[1] or v
  end

  function R.get_headers(max_headers)
    check_phase(PHASES.request)
    if max_headers == nil then
      return req.get_headers()
    end
    if type(max_headers) ~= "number" then
      error("max_headers must be a number", 2)
    elseif max_headers < 1 then
      error("max_headers must be >= 1", 2)
    elseif max_headers > 1000 then
      error("max_headers must be <= 1000", 2)
    end
    return req.get_headers(max_headers)
  end

  local function read_body_file(path, max)
    local f, err = io.open(path, "r")
    if not f then
      return nil, "failed to open cached request body '" .. path .. "': " .. err
    end
    local size = f:seek("end") or 0
    if max > 0 and size > max then
      f:close()
      return nil, ("request body file too big: %d > %d"):format(size, max)
    end
    f:seek("set")
    local chunks = {}
    while true do
      local data, rerr = f:read(1048576)
      if not data then
        if rerr then
          f:close()
          return nil, "failed to read cached request body '" .. path .. "': " .. rerr
        end
        break
      end
      chunks[#chunks + 1] = data
      ngx.sleep(0)           -- yield between 1 MiB reads, as Kong does
    end
    f:close()
    return table.concat(chunks)
  end

  function R.get_raw_body(max_allowed_file_size)
    check_phase(before_content)
    req.read_body()
    local body = req.get_body_data()
    if body then
      return body
    end
    local path = req.get_body_file()
    if not path then
      return ""
    end
    if not reads_body_file or type(max_allowed_file_size) ~= "number"
       or max_allowed_file_size < 0 then
      return nil, "request body did not fit into client body buffer, consider raising 'client_body_buffer_size'"
    end
    return read_body_file(path, max_allowed_file_size)
  end

  function R.get_body(mimetype, max_args, max_allowed_file_size)
    check_phase(before_content)
    local content_type = mimetype or R.get_header("Content-Type")
    if not content_type then
      return nil, "missing content type"
    end
    local ct = lower(content_type)
    local s = find(ct, ";", 1, true)
    if s then
      ct = sub(ct, 1, s - 1)
    end
    if find(ct, "application/x-www-form-urlencoded", 1, true) == 1 then
      req.read_body()
      local pargs, err = req.get_post_args(max_args)
      if not pargs then
        return nil, err, "application/x-www-form-urlencoded"
      end
      return pargs, nil, "application/x-www-form-urlencoded"
    elseif find(ct, "application/json", 1, true) == 1 then
      local body, err = R.get_raw_body(max_allowed_file_size)
      if not body then
        return nil, err, "application/json"
      end
      local t = json.decode(body)
      if type(t) ~= "table" then
        return nil, "invalid json body", "application/json"
      end
      return t, nil, "application/json"
    end
    return nil, "unsupported content type '" .. content_type .. "'", ct
  end

  function R.get_start_time()
    check_phase(PHASES.request)
    return ngx.ctx.KONG_PROCESSING_START or (req.start_time() * 1000)
  end

  local EMPTY = {}

  function R.get_uri_captures(ctx)
    check_phase(PHASES.request)
    ctx = ctx or ngx.ctx
    local captures = ctx.router_matches and ctx.router_matches.uri_captures or EMPTY
    local named, unnamed = {}, {}
    for k, v in pairs(captures) do
      if type(k) == "number" then
        unnamed[k] = v
      elseif type(k) == "string" then
        named[k] = v
      end
    end
    return { unnamed = json.array(unnamed), named = named }
  end

  return R
end
