-- Plugin-server processes, after kong/runloop/plugin_servers/process.lua:
--   * query_command run with io.popen (through /bin/sh), stdout parsed as JSON,
--     {"Protocol":..,"Plugins":[..]} or a bare array; Kong 3.9 keeps only the
--     first entry, 3.0-3.8 registered every entry (see query_plugin_info_3_0
--     for their other differences);
--   * worker 0 spawns "exec <start_command>" with stdout+stderr merged, logs
--     each line at INFO as "[<name>:<pid>] <line>", respawns after any exit at
--     most once per second, stops respawning while the worker exits;
--   * exit_worker sends SIGTERM.
-- The spawning itself is gateway/spawn.lua (Debian's nginx has no ngx.pipe).

local json = require "gateway.json"
local spawn = require "gateway.spawn"
local conf_mod = require "gateway.conf"

local raw_log = require("ngx.errlog").raw_log

local ngx = ngx
local SIGTERM = 15
local POLL = 0.05

local _M = {}

local server_rt = {}     -- name -> { proc = Proc }

-- Kong 3.9 (process.lua query_external_plugin_info): the first plugin of
-- the dump; every failure is a start-up error.
local function query_plugin_info_3_9(server_def)
  if not server_def.query_command then
    return nil, "no info query for " .. server_def.name
  end
  local fd, err = io.popen(server_def.query_command)
  if not fd then
    return nil, string.format("error loading plugins info from [%s]: %s", server_def.name, err)
  end
  local dump_text = fd:read("*a")
  fd:close()
  local dump, derr = json.decode(dump_text)
  if derr or dump == nil then
    return nil, "failed decoding plugin info: " .. tostring(derr)
  end
  if type(dump) ~= "table" then
    return nil, string.format("not a plugin info table: \n%s\n%s", server_def.query_command, dump_text)
  end

  server_def.protocol = dump.Protocol or "MsgPack:1"
  local list = dump.Plugins or dump
  if type(list) ~= "table" or list[1] == nil then
    -- Kong indexes nil here and fails to start
    return nil, "no plugin in the info dump of " .. server_def.name
  end
  return { list[1] }
end

-- Kong 3.0-3.8 (process.lua ask_info, the same in every tag from 3.0.0 to
-- 3.8.1): every plugin of the dump; no query command or a failed popen is
-- only logged (the plugin is then "enabled but not installed"), an undecodable
-- or non-table dump raises "Not a plugin info table".
local function query_plugin_info_3_0(server_def)
  if not server_def.query_command then
    ngx.log(ngx.INFO, string.format("No info query for %s", server_def.name))
    return {}
  end
  local fd, err = io.popen(server_def.query_command)
  if not fd then
    ngx.log(ngx.ERR, string.format("loading plugins info from [%s]:\n", server_def.name), err)
    return {}
  end
  local dump_text = fd:read("*a")
  fd:close()
  local dump = json.decode(dump_text)
  if type(dump) ~= "table" then
    return nil, string.format("Not a plugin info table: \n%s\n%s", server_def.query_command, dump_text)
  end
  server_def.protocol = dump.Protocol or "MsgPack:1"
  local list = dump.Plugins or dump
  local out = {}
  for i, info in ipairs(type(list) == "table" and list or {}) do
    out[i] = info
  end
  return out
end

-- returns name -> info (for every pluginserver entry)
function _M.load_external_plugins_info(conf)
  local v39 = conf_mod.version_ge(conf.kong_version, "3.9")
  local available = {}
  for _, server_def in ipairs(conf.pluginservers) do
    local list, err
    if v39 then
      list, err = query_plugin_info_3_9(server_def)
    else
      list, err = query_plugin_info_3_0(server_def)
    end
    if not list then
      return nil, err
    end
    for _, info in ipairs(list) do
      local name = info.Name
      if available[name] and not v39 then
        -- 3.0-3.8 (register_plugin_info): the first registration wins; 3.9
        -- silently keeps the last one
        ngx.log(ngx.ERR, string.format("Duplicate plugin name [%s] by %s and %s",
                tostring(name), available[name].server_def.name, server_def.name))
      else
        available[name] = {
          server_def = server_def,
          name = name,
          PRIORITY = info.Priority,
          VERSION = info.Version,
          schema = info.Schema,
          phases = info.Phases,
        }
      end
    end
  end
  return available
end

local function write_pidfile(conf, name, pid)
  local dir = conf.gateway_workdir .. "/pluginservers"
  os.execute("mkdir -p '" .. dir .. "'")
  local f = io.open(dir .. "/" .. name .. ".pid", "w")
  if f then
    f:write(tostring(pid), "\n")
    f:close()
  end
end

local function grab_logs(proc, prefix)
  for _, line in ipairs(proc:read_lines()) do
    if line ~= "" then
      raw_log(ngx.INFO, prefix .. line)
    end
  end
end

local function pluginserver_timer(premature, server_def, conf)
  if premature then
    return
  end

  local next_spawn = 0
  while not ngx.worker.exiting() do
    if ngx.now() < next_spawn then
      ngx.sleep(next_spawn - ngx.now())
    end
    ngx.update_time()

    ngx.log(ngx.NOTICE, "[pluginserver] starting pluginserver process for ", server_def.name or "")
    local proc, err = spawn.spawn("exec " .. server_def.start_command)
    if not proc then
      ngx.log(ngx.ERR, "[pluginserver] could not spawn ", server_def.name, ": ", err)
      next_spawn = ngx.now() + 1
    else
      server_rt[server_def.name] = { proc = proc }
      write_pidfile(conf, server_def.name, proc:pid())
      next_spawn = ngx.now() + 1
      ngx.log(ngx.NOTICE, "[pluginserver] started, pid ", proc:pid())
      local prefix = string.format("[%s:%d] ", server_def.name, proc:pid())

      while true do
        grab_logs(proc, prefix)
        local how, status = proc:wait()
        if how then
          grab_logs(proc, prefix)
          if how == "exit" and status == 127 then
            ngx.log(ngx.ERR, string.format(
              "[pluginserver] external pluginserver %q start command %q exited with \"command not found\"",
              server_def.name, server_def.start_command))
          else
            ngx.log(ngx.NOTICE, "external pluginserver '", server_def.name, "' terminated: ",
                    tostring(how), " ", tostring(status))
          end
          break
        end
        if ngx.worker.exiting() then
          break
        end
        ngx.sleep(POLL)
      end
    end
  end

  ngx.log(ngx.NOTICE, "[pluginserver] exiting: pluginserver '", server_def.name, "' not respawned.")
end

function _M.start_pluginservers(conf)
  if ngx.worker.id() ~= 0 then
    return true
  end
  for _, server_def in ipairs(conf.pluginservers) do
    if server_def.start_command then
      local ok, err = ngx.timer.at(0, pluginserver_timer, server_def, conf)
      if not ok then
        ngx.log(ngx.ERR, "[pluginserver] could not start timer: ", err)
      end
    end
  end
  return true
end

function _M.stop_pluginservers(conf)
  if ngx.worker.id() ~= 0 then
    return true
  end
  for _, server_def in ipairs(conf.pluginservers) do
    local server = server_rt[server_def.name]
    if server and server.proc then
      local ok, err = server.proc:kill(SIGTERM)
      if not ok then
        ngx.log(ngx.ERR, "[pluginserver] failed to stop pluginserver '", server_def.name, ": ", err)
      end
      ngx.log(ngx.NOTICE, "[pluginserver] successfully stopped pluginserver '", server_def.name,
              "', pid ", server.proc:pid())
    end
  end
  return true
end

return _M
