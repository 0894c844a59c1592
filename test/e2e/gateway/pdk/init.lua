-- The global `kong` PDK table (kong/pdk/init.lua), with the modules external
-- plugins reach through the RPC bridge.

local misc = require "gateway.pdk.misc"

local _M = {}

-- conf: gateway configuration (kong_version, ...); node_id: a uuid string
function _M.new(conf, node_id)
  local service = require("gateway.pdk.service")(conf)
  local version = conf.kong_version_full or (conf.kong_version .. ".0")

  local kong = {
    version = version,
    configuration = setmetatable({}, { __index = conf, __newindex = function()
      error("cannot write to kong.configuration", 2)
    end }),
    request = require("gateway.pdk.request")(conf),
    response = require("gateway.pdk.response")(conf),
    client = require("gateway.pdk.client")(),
    log = require("gateway.pdk.log")(),
    service = service,
    ctx = misc.ctx(),
    nginx = misc.nginx(),
    router = misc.router(),
    node = misc.node(node_id),
    plugin = misc.plugin(),
  }

  local major, minor, patch = version:match("^(%d+)%.(%d+)%.?(%d*)")
  kong.version_num = tonumber(major) * 10000 + tonumber(minor) * 100 + (tonumber(patch) or 0)

  -- kong.global.set_namespaced_log: kong.log.* lines carry "[<plugin>]"
  function kong.set_namespaced_log(name, ctx)
    (ctx or ngx.ctx).KONG_LOG_NAMESPACE = name
  end

  function kong.reset_log(ctx)
    (ctx or ngx.ctx).KONG_LOG_NAMESPACE = nil
  end

  return kong
end

return _M
