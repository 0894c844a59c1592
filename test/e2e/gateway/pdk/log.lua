-- kong.log (kong/pdk/log.lua): level functions writing raw error-log lines
-- "[kong] <file>:<line> [<plugin>] <message>" (the plugin namespace is set
-- while a plugin runs, as Kong's set_namespaced_log does), plus
-- set_serialize_value / serialize from gateway/serialize.lua.

local raw_log = require("ngx.errlog").raw_log
local serialize = require "gateway.serialize"

local ngx = ngx
local concat = table.concat
local select, tostring = select, tostring

local LEVELS = {
  debug = ngx.DEBUG, info = ngx.INFO, notice = ngx.NOTICE, warn = ngx.WARN,
  err = ngx.ERR, crit = ngx.CRIT, alert = ngx.ALERT, emerg = ngx.EMERG,
}

local function namespace()
  local ok, ctx = pcall(function() return ngx.ctx end)
  return ok and ctx and ctx.KONG_LOG_NAMESPACE
end

local function src(level)
  local info = debug.getinfo(level, "Sl")
  if not info then
    return "?"
  end
  local file = (info.short_src or "?"):match("([^/]+)$") or "?"
  return file .. ":" .. tostring(info.currentline)
end

return function()
  local L = {}

  for name, lvl in pairs(LEVELS) do
    L[name] = function(...)
      local n = select("#", ...)
      local parts = {}
      for i = 1, n do
        parts[i] = tostring((select(i, ...)))
      end
      local ns = namespace()
      raw_log(lvl, "[kong] " .. src(3) .. (ns and (" [" .. ns .. "] ") or " ") .. concat(parts))
    end
  end

  L.set_serialize_value = serialize.set_serialize_value
  L.serialize = serialize.serialize

  return L
end
