-- External plugins, after kong/runloop/plugin_servers/plugin.lua and init.lua:
--   * the PDK surface exposed to plugin servers: an override table (saved data
--     in the log timer, JSON text for kong.log.serialize, ...) plus `kong`;
--   * one handler per listed phase; the log handler only schedules
--     ngx.timer.at(0) with a snapshot of the request (serialize output, clone
--     of ngx.ctx, kong.ctx.shared, request/response headers, status, start
--     time) and runs the event there;
--   * the per-worker instance cache keyed by plugin id (3.0-3.2: conf.__key__),
--     StartInstance when missing or when __seq__ changed (then CloseInstance
--     of the old one); the version differences are in get_instance_id and
--     reset_instance (kong/runloop/plugin_servers/init.lua up to 3.8);
--   * serverPid notifications: a new pid drops this plugin's instances.

local rpc = require "gateway.rpc"
local era = require "gateway.era"
local json = require "gateway.json"
local clone = require "table.clone"
local get_ctx_table = require("resty.core.ctx").get_ctx_table

local ngx = ngx
local ngx_var = ngx.var
local type = type
local coroutine_running = coroutine.running

local _M = {}

local running_instances = {}

local req_data = {}      -- coroutine -> saved request data (log timer)

local function get_saved_req_data()
  return req_data[coroutine_running()]
end

local exposed_api = setmetatable({
  get_saved_req_data = get_saved_req_data,

  ["kong.log.serialize"] = function()
    local saved = get_saved_req_data()
    return json.encode(saved and saved.serialize_data or kong.log.serialize())
  end,

  ["kong.nginx.get_var"] = function(v)
    return ngx_var[v]
  end,

  ["kong.nginx.get_tls1_version_str"] = function()
    return nil   -- the gateway listens without TLS
  end,

  ["kong.nginx.get_ctx"] = function(k)
    local saved = get_saved_req_data()
    local ngx_ctx = saved and saved.ngx_ctx or ngx.ctx
    return ngx_ctx[k]
  end,

  ["kong.nginx.set_ctx"] = function(k, v)
    local saved = get_saved_req_data()
    local ngx_ctx = saved and saved.ngx_ctx or ngx.ctx
    ngx_ctx[k] = v
  end,

  ["kong.ctx.shared.get"] = function(k)
    local saved = get_saved_req_data()
    local ctx_shared = saved and saved.ctx_shared or kong.ctx.shared
    return ctx_shared[k]
  end,

  ["kong.ctx.shared.set"] = function(k, v)
    local saved = get_saved_req_data()
    local ctx_shared = saved and saved.ctx_shared or kong.ctx.shared
    ctx_shared[k] = v
  end,

  ["kong.request.get_headers"] = function(max)
    local saved = get_saved_req_data()
    return saved and saved.request_headers or kong.request.get_headers(max)
  end,

  ["kong.request.get_header"] = function(name)
    local saved = get_saved_req_data()
    if not saved then
      return kong.request.get_header(name)
    end
    local v = saved.request_headers[name]
    if type(v) == "table" then
      v = v[1]
    end
    return v
  end,

  ["kong.request.get_uri_captures"] = function()
    local saved = get_saved_req_data()
    local ngx_ctx = saved and saved.ngx_ctx or ngx.ctx
    return kong.request.get_uri_captures(ngx_ctx)
  end,

  ["kong.response.get_status"] = function()
    local saved = get_saved_req_data()
    return saved and saved.response_status or kong.response.get_status()
  end,

  ["kong.response.get_headers"] = function(max)
    local saved = get_saved_req_data()
    return saved and saved.response_headers or kong.response.get_headers(max)
  end,

  ["kong.response.get_header"] = function(name)
    local saved = get_saved_req_data()
    if not saved then
      return kong.response.get_header(name)
    end
    local v = saved.response_headers and saved.response_headers[name]
    if type(v) == "table" then
      v = v[1]
    end
    return v
  end,

  ["kong.response.get_source"] = function()
    local saved = get_saved_req_data()
    return kong.response.get_source(saved and saved.ngx_ctx or nil)
  end,

  ["kong.nginx.req_start_time"] = function()
    local saved = get_saved_req_data()
    return saved and saved.req_start_time or ngx.req.start_time()
  end,
}, {
  -- `kong` is the global PDK, created in init (after this module loads)
  __index = function(_, k)
    if k == "kong" then
      return kong
    end
  end,
})

local function build_phases(plugin)
  for _, phase in ipairs(plugin.phases) do
    if phase == "log" then
      plugin[phase] = function(self, conf)
        local ok, err = ngx.timer.at(0, function(premature, saved)
          if premature then
            return
          end
          get_ctx_table(saved.ngx_ctx)
          local co = coroutine_running()
          req_data[co] = saved
          plugin.rpc:handle_event(conf, phase)
          req_data[co] = nil
        end, {
          plugin_name = self.name,
          serialize_data = kong.log.serialize(),
          ngx_ctx = clone(ngx.ctx),
          ctx_shared = kong.ctx.shared,
          request_headers = ngx.req.get_headers(),
          response_headers = ngx.resp.get_headers(),
          response_status = ngx.status,
          req_start_time = ngx.req.start_time(),
        })
        if not ok then
          kong.log.err("could not create log timer: ", err)
        end
      end
    else
      plugin[phase] = function(self, conf)
        plugin.rpc:handle_event(conf, phase)
      end
    end
  end
  return plugin
end

-- serverPid: a changed pid drops every instance tied to this RPC object
local rpc_notifications = {}

function rpc_notifications:serverPid(n)
  n = tonumber(n)
  if self.pluginserver_pid and n ~= self.pluginserver_pid then
    for key, instance in pairs(running_instances) do
      if instance.rpc == self then
        running_instances[key] = nil
      end
    end
  end
  self.pluginserver_pid = n
end

local function reset_instances_for_plugin(plugin_name)
  for k, instance in pairs(running_instances) do
    if instance.plugin_name == plugin_name then
      running_instances[k] = nil
    end
  end
end

-- the instance cache key: 3.3.0 switched from conf.__key__ (3.0-3.2 have no
-- plugin id) to kong.plugin.get_id()
local function instance_key(plugin_name, conf)
  if era.ge("3.3") then
    return type(conf) == "table" and kong.plugin.get_id() or plugin_name
  end
  return type(conf) == "table" and conf.__key__ or plugin_name
end

local function reset_instance(plugin_name, conf)
  if not era.ge("3.6") then
    -- 3.0-3.5: only this instance, only in this worker
    running_instances[instance_key(plugin_name, conf)] = nil
    return
  end
  -- 3.6.0: every instance of the plugin, and Kong broadcasts
  -- "plugin_server/reset_instances" to the other workers
  reset_instances_for_plugin(plugin_name)
  local events = require "gateway.worker_events"
  events.post_reset(plugin_name)
end

local SLEEP_STEP = 0.1
local MAX_WAIT_STEPS = 10 / SLEEP_STEP

local function get_instance_id(plugin, conf)
  local plugin_name = plugin.name
  local key = instance_key(plugin_name, conf)
  local instance_info = running_instances[key]

  local wait_count = 0
  while instance_info and not instance_info.id do
    if not era.ge("3.3") then
      -- 3.0-3.2: another thread is starting it; wait without a limit
      ngx.sleep(0)
    else
      -- 3.3.0: 0.1 s steps, at most 10 s
      ngx.sleep(SLEEP_STEP)
      wait_count = wait_count + 1
      if wait_count > MAX_WAIT_STEPS then
        -- 3.6.0: the stale claim is released (before, it stays)
        if era.ge("3.6") then
          running_instances[key] = nil
        end
        return nil, "Could not claim instance_id for " .. plugin_name .. " (key: " .. key .. ")"
      end
    end
    instance_info = running_instances[key]
  end

  -- 3.6.0: the cached instance must also belong to this plugin id
  if instance_info and instance_info.id
     and instance_info.seq == conf.__seq__
     and (not era.ge("3.6") or (instance_info.conf and instance_info.conf.__plugin_id == key))
  then
    return instance_info.id
  end

  local old_instance_id = instance_info and instance_info.id
  if not instance_info then
    instance_info = { conf = conf, seq = conf.__seq__ }
    running_instances[key] = instance_info
  else
    instance_info.id = nil
  end

  local new_info, err = plugin.rpc:call_start_instance(plugin_name, conf)
  if new_info == nil then
    kong.log.err("starting instance: ", err)
    running_instances[key] = nil
    error(err)
  end

  instance_info.id = new_info.id
  instance_info.plugin_name = plugin_name
  instance_info.conf = new_info.conf
  instance_info.seq = new_info.seq
  instance_info.Config = new_info.Config
  instance_info.rpc = new_info.rpc

  if old_instance_id then
    plugin.rpc:call_close_instance(old_instance_id)
  end

  return instance_info.id
end

local instance_callbacks = {
  reset_instance = reset_instance,
  get_instance_id = get_instance_id,
}

-- info: { name, PRIORITY, VERSION, schema, phases, server_def }
function _M.new(info)
  local self = build_phases(info)
  self.instance_callbacks = instance_callbacks
  self.exposed_api = exposed_api
  self.rpc_notifications = rpc_notifications
  local r, err = rpc.new(self)
  if not r then
    return nil, err
  end
  self.rpc = r
  return self
end

_M.reset_instances_for_plugin = reset_instances_for_plugin
_M.exposed_api = exposed_api

return _M
