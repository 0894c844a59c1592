-- DB-less configuration from a kong.yml (kong/db/declarative), parsed with
-- lyaml (Debian: lua-yaml), as Kong does.  Supported: _format_version
-- "1.1"/"2.1"/"3.0"; services (url or protocol/host/port/path) with nested
-- routes and plugins; top-level routes (service: <name|id>) and plugins
-- (route:/service: <name|id>, or global).  Entities get Kong's defaults;
-- ids are derived from names so they are stable across runs.

local lyaml = require "lyaml"
local json = require "gateway.json"

local null = json.null
local array = json.array

local _M = {}

local function to_null(v)
  if v == lyaml.null then
    return null
  end
  if type(v) == "table" then
    for k, x in pairs(v) do
      v[k] = to_null(x)
    end
  end
  return v
end

local function uuid_from(seed)
  local h = ngx.md5(seed)
  return string.format("%s-%s-4%s-a%s-%s", h:sub(1, 8), h:sub(9, 12), h:sub(14, 16),
                       h:sub(18, 20), h:sub(21, 32))
end
_M.uuid_from = uuid_from

-- a list field: absent/null -> {}, anything but a sequence -> error
local function list(v, what)
  if v == nil or v == null then
    return {}
  end
  if type(v) ~= "table" or (next(v) ~= nil and v[1] == nil) then
    error({ msg = what .. ": expected an array" })
  end
  return v
end

local function opt(v, default)
  if v == nil then
    return default
  end
  return v
end

local function nullable(v)
  if v == nil then
    return null
  end
  if type(v) == "table" and v ~= null then
    return array(v)
  end
  return v
end

local function parse_url(url)
  local scheme, rest = url:match("^(%a[%w+.-]*)://(.*)$")
  if not scheme then
    return nil, "invalid url: " .. url
  end
  local hostport, path = rest:match("^([^/]*)(/.*)$")
  if not hostport then
    hostport, path = rest, nil
  end
  local host, port = hostport:match("^%[(.+)%]:(%d+)$")
  if not host then
    host, port = hostport:match("^(.-):(%d+)$")
  end
  host = host or hostport
  port = tonumber(port) or (scheme == "https" and 443 or 80)
  return { protocol = scheme, host = host, port = port, path = path }
end

local function new_service(s, ws_id, now, idx)
  local name = s.name
  local fields = {}
  if s.url then
    local u, err = parse_url(s.url)
    if not u then
      return nil, err
    end
    fields = u
  end
  local service = {
    id = s.id or uuid_from("service:" .. (name or tostring(idx))),
    name = opt(name, null),
    protocol = s.protocol or fields.protocol or "http",
    host = s.host or fields.host,
    port = s.port or fields.port or 80,
    path = opt(s.path or fields.path, null),
    retries = opt(s.retries, 5),
    connect_timeout = opt(s.connect_timeout, 60000),
    write_timeout = opt(s.write_timeout, 60000),
    read_timeout = opt(s.read_timeout, 60000),
    enabled = opt(s.enabled, true),
    tags = nullable(s.tags),
    client_certificate = null,
    tls_verify = null,
    tls_verify_depth = null,
    ca_certificates = null,
    created_at = now,
    updated_at = now,
    ws_id = ws_id,
  }
  if not service.host then
    return nil, "service " .. tostring(name) .. " has no host"
  end
  return service
end

local function new_route(r, service, ws_id, now, idx)
  local name = r.name
  return {
    id = r.id or uuid_from("route:" .. (name or tostring(idx))),
    name = opt(name, null),
    protocols = array(r.protocols or { "http", "https" }),
    methods = nullable(r.methods),
    hosts = nullable(r.hosts),
    paths = nullable(r.paths),
    headers = opt(r.headers, null),
    https_redirect_status_code = opt(r.https_redirect_status_code, 426),
    regex_priority = opt(r.regex_priority, 0),
    strip_path = opt(r.strip_path, true),
    path_handling = opt(r.path_handling, "v0"),
    preserve_host = opt(r.preserve_host, false),
    request_buffering = opt(r.request_buffering, true),
    response_buffering = opt(r.response_buffering, true),
    snis = null,
    sources = null,
    destinations = null,
    tags = nullable(r.tags),
    service = service and { id = service.id } or null,
    created_at = now,
    updated_at = now,
    ws_id = ws_id,
  }
end

-- returns { services = {...}, routes = { {route=, service=} ... },
--           plugins = { {name=, config=, route=, service=, id=, ...} } }
local load_doc

function _M.load(path, ws_id)
  local ok, res, err = pcall(load_doc, path, ws_id)
  if not ok then
    if type(res) == "table" and res.msg then
      return nil, "declarative config: " .. res.msg
    end
    error(res, 0)
  end
  return res, err
end

function load_doc(path, ws_id)
  local f, err = io.open(path, "rb")
  if not f then
    return nil, "could not read declarative config: " .. tostring(err)
  end
  local text = f:read("*a")
  f:close()

  local ok, doc = pcall(lyaml.load, text)
  if not ok then
    return nil, "failed parsing declarative configuration: " .. tostring(doc)
  end
  doc = to_null(doc or {})
  if type(doc) ~= "table" then
    return nil, "declarative config is not a map"
  end
  local fv = doc._format_version
  if fv ~= "1.1" and fv ~= "2.1" and fv ~= "3.0" then
    return nil, "_format_version: expected one of: 1.1, 2.1, 3.0"
  end

  local now = ngx.time()
  local out = { services = {}, routes = {}, plugins = {} }
  local by_ref = { service = {}, route = {} }

  local function add_plugins(plist, scope)
    for _, p in ipairs(list(plist, "plugins")) do
      if type(p) ~= "table" or type(p.name) ~= "string" then
        return nil, "plugin entry without a name"
      end
      local e = {
        name = p.name,
        config = p.config,
        enabled = opt(p.enabled, true),
        instance_name = p.instance_name,
        id = p.id,
        protocols = p.protocols,
        route = scope and scope.route or p.route,
        service = scope and scope.service or p.service,
      }
      out.plugins[#out.plugins + 1] = e
    end
    return true
  end

  local function add_route(r, service, idx)
    local route = new_route(r, service, ws_id, now, idx)
    out.routes[#out.routes + 1] = { route = route, service = service }
    by_ref.route[route.id] = route
    if route.name ~= null then
      by_ref.route[route.name] = route
    end
    return add_plugins(r.plugins, { route = route })
  end

  for i, s in ipairs(list(doc.services, "services")) do
    local service, serr = new_service(s, ws_id, now, i)
    if not service then
      return nil, serr
    end
    out.services[#out.services + 1] = service
    by_ref.service[service.id] = service
    if service.name ~= null then
      by_ref.service[service.name] = service
    end
    for j, r in ipairs(list(s.routes, "services.routes")) do
      local rok, rerr = add_route(r, service, i .. "." .. j)
      if not rok then
        return nil, rerr
      end
    end
    local pok, perr = add_plugins(s.plugins, { service = service })
    if not pok then
      return nil, perr
    end
  end

  for i, r in ipairs(list(doc.routes, "routes")) do
    local service = r.service
    if service ~= nil and service ~= null then
      local ref = type(service) == "table" and (service.id or service.name) or service
      service = by_ref.service[ref]
      if not service then
        return nil, "route references unknown service " .. tostring(ref)
      end
    else
      service = nil
    end
    local rok, rerr = add_route(r, service, "top." .. i)
    if not rok then
      return nil, rerr
    end
  end

  local pok, perr = add_plugins(doc.plugins, nil)
  if not pok then
    return nil, perr
  end

  -- resolve top-level references (a name, an id, or {id=..}/{name=..})
  for _, p in ipairs(out.plugins) do
    for _, kind in ipairs({ "route", "service" }) do
      local ref = p[kind]
      if ref == nil or ref == null then
        p[kind] = nil
      elseif not (type(ref) == "table" and ref.ws_id) then
        local key = ref
        if type(ref) == "table" then
          key = ref.id or ref.name
        end
        local ent = by_ref[kind][key]
        if not ent then
          return nil, "plugin " .. p.name .. " references unknown " .. kind .. " " .. tostring(key)
        end
        p[kind] = ent
      end
    end
  end

  return out
end

return _M
