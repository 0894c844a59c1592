-- kong.log.serialize() and kong.log.set_serialize_value(), http subsystem
-- (kong/pdk/log.lua), in the shape of the emulated Kong version (gateway/era.lua):
--
--   3.0-3.2  request{uri,url,querystring,method,headers,size,tls?}, upstream_uri,
--            response{status,headers,size}, tries, latencies{kong,proxy,request},
--            authenticated_entity?, route, service, consumer?, client_ip, started_at
--   3.3-3.4  + upstream_status
--   3.5      + request.id
--   3.6      + source
--   3.7      + latencies.receive, workspace, workspace_name
--   3.8-3.9  same keys, some values differ (upstream_status, request.uri)
--
-- plus whatever set_serialize_value added.  The comments below name the first
-- Kong tag with each difference; the file is always kong/pdk/log.lua.

local phases = require "gateway.pdk.phases"
local era = require "gateway.era"

local ngx = ngx
local check_phase = phases.check
local PHASES = phases.phases
local byte, find, sub = string.byte, string.find, string.sub

local _M = {}

local phases_with_ctx = phases.new(PHASES.rewrite, PHASES.access, PHASES.header_filter,
                                   PHASES.response, PHASES.body_filter, PHASES.log)

-- service -> "upstream", error/exit -> "kong" (constants.RESPONSE_SOURCE.NAMES)
local SOURCE_NAMES = { error = "kong", exit = "kong", service = "upstream" }

function _M.set_serialize_value(key, value, options)
  check_phase(phases_with_ctx)
  if type(key) ~= "string" then
    error("key must be a string", 2)
  end
  local mode = options and options.mode or "set"
  if mode ~= "set" and mode ~= "add" and mode ~= "replace" then
    error("mode must be 'set', 'add' or 'replace'", 2)
  end
  local ctx = ngx.ctx
  local list = ctx.serialize_values
  if not list then
    list = {}
    ctx.serialize_values = list
  end
  list[#list + 1] = { key = key, value = value, mode = mode }
end

local function is_valid_value(v, visited)
  local t = type(v)
  if v == nil or t == "number" or t == "string" or t == "boolean" then
    return true
  end
  -- 3.8.0: ngx.null is accepted (before, it is a userdata: invalid)
  if v == ngx.null and era.ge("3.8") then
    return true
  end
  if t ~= "table" then
    return false
  end
  visited = visited or {}
  if visited[v] then
    return false
  end
  visited[v] = true
  for k, x in pairs(v) do
    local tk = type(k)
    if (tk ~= "string" and tk ~= "number" and tk ~= "boolean") or not is_valid_value(x, visited) then
      return false
    end
  end
  return true
end

-- "a.b.c" creates sub-tables: every "." separates keys (no escape in
-- 3.0-3.9; Kong's master branch later added "\." for a literal dot)
local function edit_result(root, values)
  for _, item in ipairs(values) do
    if not is_valid_value(item.value) then
      error("value must be nil, a number, string, boolean or a non-self-referencial table " ..
            "containing numbers, string and booleans", 3)
    end
    local key, mode = item.key, item.mode
    local set_or_add = mode == "set" or mode == "add"
    local node, start = root, 1
    for i = 2, #key do
      if byte(key, i) == 46 then
        local subkey = sub(key, start, i - 1)
        start = i + 1
        if node[subkey] == nil then
          if set_or_add then
            node[subkey] = {}
          else
            node = nil
            break
          end
        elseif type(node[subkey]) ~= "table" then
          error("The key '" .. key .. "' could not be used as a serialize value. " ..
                "Subkey '" .. subkey .. "' is not a table. It's " .. tostring(node[subkey]))
        end
        node = node[subkey]
      end
    end
    if type(node) == "table" then
      local last = sub(key, start)
      local existing = node[last]
      if mode == "set" or (mode == "add" and existing == nil)
         or (mode == "replace" and existing ~= nil) then
        node[last] = item.value
      end
    end
  end
  return root
end

local function deep_copy(v, seen)
  if type(v) ~= "table" then
    return v
  end
  seen = seen or {}
  if seen[v] then
    return seen[v]
  end
  local t = {}
  seen[v] = t
  for k, x in pairs(v) do
    t[deep_copy(k, seen)] = deep_copy(x, seen)
  end
  return setmetatable(t, getmetatable(v))
end

local function to_decimal(s)
  return tonumber(s, 10) or s
end

local function authenticated_entity(ctx)
  local cred = ctx.authenticated_credential
  if cred ~= nil then
    local consumer_id = cred.consumer_id
    -- 3.8.0: falls back to the id of ctx.authenticate_consumer
    if not consumer_id and ctx.authenticate_consumer and era.ge("3.8") then
      consumer_id = ctx.authenticate_consumer.id
    end
    return { id = cred.id, consumer_id = consumer_id }
  end
end

function _M.serialize(options)
  check_phase(PHASES.log)

  local ctx = ngx.ctx
  local var = ngx.var
  local okong = kong

  -- 3.8.0: request.uri prefers ctx.request_uri (3.0-3.7: var.request_uri);
  -- (the gateway sets ctx.request_uri from $request_uri: equal here)
  local request_uri
  if era.ge("3.8") then
    request_uri = ctx.request_uri or var.request_uri or ""
  else
    request_uri = var.request_uri or ""
  end

  local upstream_uri = var.upstream_uri or ""
  if upstream_uri ~= "" and not find(upstream_uri, "?", nil, true) then
    if byte(ctx.request_uri or var.request_uri, -1) == 63 then
      upstream_uri = upstream_uri .. "?"
    elseif var.is_args == "?" then
      upstream_uri = upstream_uri .. "?" .. (var.args or "")
    end
  end

  -- every version redacts these two (3.0-3.7 through default serialize values
  -- in "replace" mode applied before the plugin's own, 3.8+ directly): same result
  local request_headers = okong.request.get_headers()
  if request_headers["authorization"] ~= nil then
    request_headers["authorization"] = "REDACTED"
  end
  if request_headers["proxy-authorization"] ~= nil then
    request_headers["proxy-authorization"] = "REDACTED"
  end

  local url
  if era.ge("3.7") then
    -- 3.7.0: host_port is a number and the ":port" is left out when there is none
    local host_port = ctx.host_port or tonumber(var.server_port, 10)
    if host_port then
      url = var.scheme .. "://" .. var.host .. ":" .. host_port .. request_uri
    else
      url = var.scheme .. "://" .. var.host .. request_uri
    end
  else
    -- 3.0-3.6: always ":" .. (ctx.host_port or var.server_port)
    url = var.scheme .. "://" .. var.host .. ":" .. (ctx.host_port or var.server_port) .. request_uri
  end

  local latencies = {
    kong = ctx.KONG_PROXY_LATENCY or ctx.KONG_RESPONSE_LATENCY or 0,
    proxy = ctx.KONG_WAITING_TIME or -1,
    request = tonumber(var.request_time) * 1000,
  }
  if era.ge("3.7") then
    -- 3.7.0: the time spent receiving the response is latencies.receive ...
    latencies.receive = ctx.KONG_RECEIVE_TIME or 0
  else
    -- ... before, it is added to latencies.kong
    latencies.kong = latencies.kong + (ctx.KONG_RECEIVE_TIME or 0)
  end

  -- 3.5.0: route, service and consumer are deep copies (before: ctx's tables)
  local copy = era.ge("3.5") and deep_copy or function(v) return v end

  local root = {
    request = {
      uri = request_uri,
      url = url,
      querystring = okong.request.get_query(),
      method = okong.request.get_method(),
      headers = request_headers,
      size = to_decimal(var.request_length),
      tls = nil,                      -- the gateway listens without TLS
    },
    upstream_uri = upstream_uri,
    response = {
      status = ngx.status,
      headers = ngx.resp.get_headers(),
      size = to_decimal(var.bytes_sent),
    },
    latencies = latencies,
    tries = ctx.balancer_data and ctx.balancer_data.tries,
    authenticated_entity = authenticated_entity(ctx),
    route = copy(ctx.route),
    service = copy(ctx.service),
    consumer = copy(ctx.authenticated_consumer),
    client_ip = var.remote_addr,
    started_at = okong.request.get_start_time(),
  }

  if era.ge("3.8") then
    -- 3.8.0: falls back to ctx.buffered_status (a number) when Kong proxied
    -- through its buffered subrequest, where the main request has no $upstream_status
    root.upstream_status = var.upstream_status or ctx.buffered_status or ""
  elseif era.ge("3.3") then
    -- 3.3.0: upstream_status appears, "" when buffered (3.0-3.2: no such key)
    root.upstream_status = var.upstream_status or ""
  end

  if era.ge("3.5") then
    -- 3.5.0: request.id (kong.tracing.request_id: the $kong_request_id of the request)
    root.request.id = ctx.request_id or var.request_id or ""
  end

  if era.ge("3.6") then
    -- 3.6.0: source, RESPONSE_SOURCE.NAMES of kong.response.get_source(ctx)
    root.source = SOURCE_NAMES[okong.response.get_source(ctx)]
  end

  if era.ge("3.7") then
    -- 3.7.0: workspace (id) and workspace_name
    root.workspace = ctx.workspace
    root.workspace_name = "default"
  end

  if ctx.serialize_values then
    root = edit_result(root, ctx.serialize_values)
  end
  return root
end

return _M
