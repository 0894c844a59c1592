-- Loaded plugins and their configurations, after kong/db/dao/plugins.lua
-- (loading, sorting by PRIORITY) and kong/runloop/plugins_iterator.lua
-- (config keys, lookup by route/service/global, collecting iterator).
--
-- `plugins = bundled,<Name>` (kong.conf): Lua plugins of gateway/lua_plugins
-- win over plugin-server plugins of the same name, as in Kong.

local process = require "gateway.process"
local plugin_servers = require "gateway.plugin_servers"
local schema = require "gateway.schema"
local era = require "gateway.era"
local declarative = require "gateway.declarative"

local _M = {}

-- the gateway's bundled Lua plugins (gateway/lua_plugins/<name>.lua)
local BUNDLED = { "deny", "request-termination", "lua-body-log" }

local loaded = {}          -- sorted { name = , handler = , external = bool }
local by_name = {}
local combos = {}          -- name -> { ["route:service:consumer"] = cfg }
local globals = {}         -- phase -> { plugin, cfg, plugin, cfg, ... }

local DOWNSTREAM_PHASES = { "response", "header_filter", "body_filter", "log" }
local NON_COLLECTING = { "rewrite", "response", "header_filter", "body_filter", "log" }

local function sort_by_priority(a, b)
  local pa, pb = a.handler.PRIORITY or 0, b.handler.PRIORITY or 0
  if pa == pb and not (pa == 0 or pb == 0) then
    return a.name > b.name
  end
  return pa > pb
end

function _M.load(conf)
  local is_bundled = {}
  for _, n in ipairs(BUNDLED) do
    is_bundled[n] = true
  end

  local external, err = process.load_external_plugins_info(conf)
  if not external then
    return nil, "failed loading external plugins: " .. err
  end

  local function add(name)
    if by_name[name] then
      return true
    end
    local entry
    if is_bundled[name] then
      entry = { name = name, handler = require("gateway.lua_plugins." .. name), external = false }
    elseif external[name] then
      local info = external[name]
      local ok, verr = schema.validate_info(info, era.minor)
      if not ok then
        return nil, "error loading plugin schemas: " .. verr
      end
      local handler, perr = plugin_servers.new(info)
      if not handler then
        return nil, perr
      end
      entry = { name = name, handler = handler, external = true }
    else
      return nil, "plugin '" .. name .. "' is enabled but not installed"
    end
    by_name[name] = entry
    loaded[#loaded + 1] = entry
    return true
  end

  for _, name in ipairs(conf.plugins) do
    local ok, aerr
    if name == "bundled" then
      for _, b in ipairs(BUNDLED) do
        ok, aerr = add(b)
        if not ok then
          return nil, aerr
        end
      end
    elseif name ~= "off" then
      ok, aerr = add(name)
      if not ok then
        return nil, aerr
      end
    end
  end
  table.sort(loaded, sort_by_priority)
  return true
end

-- the emulated Kong version's minor (gateway/era.lua when present)
local function kong_minor()
  local ok, era = pcall(require, "gateway.era")
  if ok and type(era) == "table" and type(era.minor) == "number" then
    return era.minor
  end
  return schema.DEFAULT_MINOR
end

-- where a plugin entry sits, for start-up errors
local function declarative_where(e)
  local where = "in plugin '" .. e.name .. "'"
  if e.service then
    where = where .. " of service '" .. tostring(e.service.name ~= ngx.null and e.service.name or e.service.id) .. "'"
  end
  if e.route then
    where = where .. " of route '" .. tostring(e.route.name ~= ngx.null and e.route.name or e.route.id) .. "'"
  end
  return where .. ":"
end

local function compound_key(route_id, service_id, consumer_id)
  return (route_id or "") .. ":" .. (service_id or "") .. ":" .. (consumer_id or "")
end

-- entries: declarative.load(...).plugins
function _M.configure(entries, ws_id)
  local dict = ngx.shared.kong
  for _, e in ipairs(entries) do
    local p = by_name[e.name]
    if not p then
      return nil, "plugin '" .. e.name .. "' not enabled; add it to the 'plugins' configuration property"
    end
    -- Kong validates every plugin config while it loads kong.yml (disabled
    -- ones too) and refuses to start on the first error (kong/db/declarative)
    local h = p.handler
    local pschema = p.external and h.schema
                    or schema.lua_plugin_schema(e.name, h.schema_fields or {})
    local vopts = { minor = kong_minor() }
    local processed, errs = schema.validate_config(pschema, e.config, vopts)
    if not processed then
      return nil, "error parsing declarative config file:\n" .. declarative_where(e) ..
                  "\n" .. schema.pretty_errors(errs, nil, "  ")
    end
    if e.enabled then
      -- what the plugins iterator reads back: defaults, no nulls
      local cfg = schema.config_for_server(pschema, processed, vopts)
      local route_id = e.route and e.route.id or nil
      local service_id = e.service and e.service.id or nil
      local id = e.id or declarative.uuid_from("plugin:" .. e.name .. ":" .. compound_key(route_id, service_id))

      schema.add_kong_keys(cfg, {
        name = e.name, route_id = route_id, service_id = service_id,
        instance_name = e.instance_name, plugin_id = id, ws_id = ws_id,
        seq = dict:incr("plugins_iterator:__seq__", 1, 0, 0) or 0,
      }, vopts)

      combos[e.name] = combos[e.name] or {}
      local key = compound_key(route_id, service_id)
      if combos[e.name][key] then
        return nil, "duplicate plugin " .. e.name .. " for the same route/service"
      end
      combos[e.name][key] = cfg
    end
  end

  for _, phase in ipairs(NON_COLLECTING) do
    local list = { [0] = 0 }
    for _, p in ipairs(loaded) do
      local cfg = combos[p.name] and combos[p.name]["::"]
      if cfg and p.handler[phase] then
        list[#list + 1] = p
        list[#list + 1] = cfg
      end
    end
    list[0] = #list
    globals[phase] = list
  end
  return true
end

local function lookup_cfg(c, route_id, service_id)
  if route_id and service_id then
    local cfg = c[compound_key(route_id, service_id)]
    if cfg then
      return cfg
    end
  end
  if route_id then
    local cfg = c[compound_key(route_id, nil)]
    if cfg then
      return cfg
    end
  end
  if service_id then
    local cfg = c[compound_key(nil, service_id)]
    if cfg then
      return cfg
    end
  end
  return c["::"]
end

local function next_pair(list, i)
  i = i + 2
  if i > list[0] then
    return nil
  end
  return i, list[i - 1], list[i]
end

function _M.global_iterator(phase)
  local list = globals[phase]
  if not list or list[0] == 0 then
    return nil
  end
  return next_pair, list
end

-- access: walk every loaded plugin, collect the configured ones per
-- downstream phase (a "response" handler turns buffered proxying on) and
-- return those with an access handler
local function next_and_collect(ctx, i)
  while true do
    i = i + 1
    local p = loaded[i]
    if not p then
      return nil
    end
    local c = combos[p.name]
    if c then
      local route_id = ctx.route and ctx.route.id
      local service_id = ctx.service and ctx.service.id
      local cfg = lookup_cfg(c, route_id, service_id)
      if cfg then
        local collected = ctx.plugins
        for _, phase in ipairs(DOWNSTREAM_PHASES) do
          if p.handler[phase] then
            local list = collected[phase]
            list[#list + 1] = p
            list[#list + 1] = cfg
            list[0] = #list
            if phase == "response" and not ctx.buffered_proxying then
              ctx.buffered_proxying = true
            end
          end
        end
        if p.handler.access then
          return i, p, cfg
        end
      end
    end
  end
end

function _M.collecting_iterator(ctx)
  local collected = {}
  for _, phase in ipairs(DOWNSTREAM_PHASES) do
    collected[phase] = { [0] = 0 }
  end
  ctx.plugins = collected
  return next_and_collect, ctx
end

function _M.collected_iterator(phase, ctx)
  local collected = ctx.plugins
  if collected then
    local list = collected[phase]
    if not list or list[0] == 0 then
      return nil
    end
    return next_pair, list
  end
  return _M.global_iterator(phase)
end

function _M.external_names()
  local names = {}
  for _, p in ipairs(loaded) do
    if p.external then
      names[#names + 1] = p.name
    end
  end
  return names
end

function _M.loaded()
  return loaded
end

return _M
