-- The small PDK modules: kong.ctx (kong/pdk/ctx.lua), kong.nginx,
-- kong.router, kong.node, kong.plugin.

local phases = require "gateway.pdk.phases"
local get_request = require("resty.core.base").get_request

local ngx = ngx
local check_phase = phases.check
local PHASES = phases.phases

local _M = {}

local SHARED_KEY, CORE_KEY = {}, {}

function _M.ctx()
  return setmetatable({}, { __index = function(_, k)
    if not get_request() then
      return nil
    end
    local nctx = ngx.ctx
    local key
    if k == "shared" then
      key = SHARED_KEY
    elseif k == "core" then
      key = CORE_KEY
    elseif k == "plugin" then
      local ns = nctx.KONG_NAMESPACES
      key = ns and ns[nctx.KONG_LOG_NAMESPACE]
    end
    if key then
      local t = nctx[key]
      if not t then
        t = {}
        nctx[key] = t
      end
      return t
    end
  end })
end

function _M.nginx()
  return {
    get_subsystem = function() return ngx.config.subsystem end,
  }
end

local ROUTER_PHASES = phases.new(PHASES.access, PHASES.header_filter, PHASES.response,
                                 PHASES.body_filter, PHASES.log)

function _M.router()
  return {
    get_route = function()
      check_phase(ROUTER_PHASES)
      return ngx.ctx.route
    end,
    get_service = function()
      check_phase(ROUTER_PHASES)
      return ngx.ctx.service
    end,
  }
end

function _M.node(node_id)
  local hostname
  return {
    get_id = function()
      return node_id
    end,
    get_hostname = function()
      if not hostname then
        local f = io.open("/proc/sys/kernel/hostname")
        hostname = f and f:read("*l") or "localhost"
        if f then f:close() end
      end
      return hostname
    end,
  }
end

function _M.plugin()
  return {
    get_id = function()
      return ngx.ctx.plugin_id
    end,
  }
end

return _M
