-- MsgPack:1 RPC client, after kong/runloop/plugin_servers/rpc/mp_rpc.lua.
--
-- One Rpc object per external plugin per worker.  Every call:
--   msg_id += 1; connect("unix:<socket>") (pooled); send [0,id,method,{arg}]
--   in one write; read with receiveany(4096) into a streaming unpacker until
--   a type-1 object, dispatching type-2 notifications on the way; assert the
--   msgid; setkeepalive().  No socket timeouts are set (nginx defaults).
-- Events: HandleEvent, then one Step per PDK call until Data == "ret".
-- An error containing "no plugin instance" resets the plugin's instances and
-- re-runs the whole phase handler; any other error is logged at error level.

local mpk = require "gateway.msgpack_kong"
local util = require "gateway.rpc_util"

local ngx = ngx
local str_find = string.find
local unpack = unpack

local Rpc = {}
Rpc.__index = Rpc

local must_fix = mpk.must_fix

local by_pdk_method = {
  ["kong.client.get_credential"] = "plugin.StepCredential",
  ["kong.client.load_consumer"] = "plugin.StepConsumer",
  ["kong.client.get_consumer"] = "plugin.StepConsumer",
  ["kong.client.authenticate"] = "plugin.StepCredential",
  ["kong.node.get_memory_stats"] = "plugin.StepMemoryStats",
  ["kong.router.get_route"] = "plugin.StepRoute",
  ["kong.router.get_service"] = "plugin.StepService",
  ["kong.request.get_query"] = "plugin.StepMultiMap",
  ["kong.request.get_headers"] = "plugin.StepMultiMap",
  ["kong.response.get_headers"] = "plugin.StepMultiMap",
  ["kong.service.response.get_headers"] = "plugin.StepMultiMap",
}

local function get_step_method(step_in, pdk_res, pdk_err)
  if not pdk_res and pdk_err then
    -- unreachable since 3.0 (only the first return value is kept); kept to
    -- mirror Kong's code path
    return "plugin.StepError", pdk_err
  end
  return ((type(pdk_res) == "table" and pdk_res._method)
          or by_pdk_method[step_in.Data.Method]
          or "plugin.Step"), pdk_res
end

local function call_pdk_method(api, cmd, args)
  local method = util.get_field(api, cmd)
  if not method then
    kong.log.err("could not find pdk method: ", cmd)
    return
  end

  local saved = api.get_saved_req_data()
  if saved and saved.plugin_name then
    kong.set_namespaced_log(saved.plugin_name)
  end

  local ret
  if type(args) == "table" then
    ret = method(unpack(args))
  else
    ret = method(args)
  end

  local fix = must_fix[cmd]
  if fix then
    ret = fix(ret)
  end
  return ret
end

function Rpc:call(method, ...)
  self.msg_id = self.msg_id + 1
  local msg_id = self.msg_id

  local c, err = ngx.socket.connect("unix:" .. self.plugin.server_def.socket)
  if not c then
    kong.log.err("trying to connect: ", err)
    return nil, err
  end

  local bytes
  bytes, err = c:send(mpk.pack({ 0, msg_id, method, { ... } }))
  if not bytes then
    c:setkeepalive()
    return nil, err
  end

  local reader = mpk.unpacker(function()
    return c:receiveany(4096)
  end)

  while true do
    local ok, data = reader()
    if not ok then
      c:setkeepalive()
      return nil, "no data"
    end

    if data[1] == 2 then
      self:notification(data[2], data[3])
    else
      assert(data[1] == 1, "RPC response expected from Go plugin server")
      assert(data[2] == msg_id, "unexpected RPC response ID from Go plugin server")
      c:setkeepalive()
      if data[3] ~= nil then
        return nil, data[3]
      end
      return data[4]
    end
  end
end

function Rpc:call_start_instance(plugin_name, conf)
  local status, err = self:call("plugin.StartInstance", {
    Name = plugin_name,
    Config = util.encode_config(conf),
  })
  if status == nil then
    return nil, err
  end
  return {
    id = status.Id,
    conf = conf,
    seq = conf.__seq__,
    Config = status.Config,
    rpc = self,
  }
end

function Rpc:call_close_instance(instance_id)
  return self:call("plugin.CloseInstance", instance_id)
end

function Rpc:notification(label, args)
  local f = self.plugin.rpc_notifications[label]
  if f then
    f(self, args)
  end
end

local function bridge_loop(instance_rpc, instance_id, phase)
  local step_in, err = instance_rpc:call("plugin.HandleEvent", {
    InstanceId = instance_id,
    EventName = phase,
  })
  if not step_in then
    return step_in, err
  end

  local event_id = step_in.EventId

  while true do
    if step_in.Data == "ret" then
      break
    end

    local pdk_res, pdk_err = call_pdk_method(instance_rpc.plugin.exposed_api,
                                             step_in.Data.Method,
                                             step_in.Data.Args)

    local step_method, step_res = get_step_method(step_in, pdk_res, pdk_err)

    step_in, err = instance_rpc:call(step_method, {
      EventId = event_id,
      Data = step_res,
    })
    if not step_in then
      return step_in, err
    end
  end
end

function Rpc:handle_event(conf, phase)
  local plugin_name = self.plugin.name

  local instance_id, err = self.plugin.instance_callbacks.get_instance_id(self.plugin, conf)
  if not err then
    local _
    _, err = bridge_loop(self, instance_id, phase)
  end

  if err then
    local err_lowered = err:lower()   -- a non-string error raises, as in Kong
    if str_find(err_lowered, "no plugin instance", 1, true) then
      self.plugin.instance_callbacks.reset_instance(plugin_name, conf)
      kong.log.warn(err)
      return self:handle_event(conf, phase)
    end
    kong.log.err(err)
  end
end

local _M = {}

function _M.new(plugin)
  if (plugin.server_def.protocol or "MsgPack:1") ~= "MsgPack:1" then
    return nil, "unknown protocol implementation: " .. tostring(plugin.server_def.protocol)
  end
  return setmetatable({ msg_id = 0, plugin = plugin }, Rpc)
end

return _M
