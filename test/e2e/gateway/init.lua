-- Entry points of the test gateway, called from the nginx.conf that
-- test/e2e/gateway.sh renders (the counterpart of Kong.init/init_worker/
-- exit_worker and the phase handlers in kong/init.lua).
--
--   init({conf=, yml=, prefix=, kong_version=, workdir=})  -- init_by_lua
--   init_worker() / exit_worker()
--   rewrite() access() balancer() header_filter() body_filter() log()
--   handle_error()

local conf_loader = require "gateway.conf"
local plugins = require "gateway.plugins"
local declarative = require "gateway.declarative"
local router = require "gateway.router"
local phases = require "gateway.phases"
local process = require "gateway.process"
local worker_events = require "gateway.worker_events"
local plugin_servers = require "gateway.plugin_servers"
local era = require "gateway.era"

local _M = {}

local conf

local function random_uuid()
  local f = io.open("/dev/urandom", "rb")
  local b = f:read(16)
  f:close()
  local h = b:gsub(".", function(c) return string.format("%02x", c:byte()) end)
  return string.format("%s-%s-4%s-8%s-%s", h:sub(1, 8), h:sub(9, 12), h:sub(14, 16),
                       h:sub(18, 20), h:sub(21, 32))
end

function _M.init(opts)
  local err
  conf, err = conf_loader.load({
    conf = opts.conf,
    prefix = opts.prefix,
    kong_version = opts.kong_version,
    declarative_config = opts.yml,
  }, function(msg) ngx.log(ngx.WARN, msg) end)
  if not conf then
    error(err, 0)
  end
  local ok
  ok, err = era.set(conf.kong_version)
  if not ok then
    error(err, 0)
  end
  conf.gateway_workdir = opts.workdir
  conf.kong_version_full = era.full

  local ws_id = declarative.uuid_from("workspace:default")
  _G.kong = require("gateway.pdk").new(conf, random_uuid())

  ok, err = plugins.load(conf)
  if not ok then
    error(err, 0)
  end

  if not conf.declarative_config then
    error("no declarative_config (kong.yml) given", 0)
  end
  local dc
  dc, err = declarative.load(conf.declarative_config, ws_id)
  if not dc then
    error(err, 0)
  end
  router.build(dc.routes)
  ok, err = plugins.configure(dc.plugins, ws_id)
  if not ok then
    error(err, 0)
  end

  phases.init({ ws_id = ws_id, version = conf.kong_version_full })
  ngx.log(ngx.NOTICE, "[gateway] kong ", conf.kong_version_full, " emulation: ",
          #dc.services, " services, ", #dc.routes, " routes, ", #dc.plugins, " plugins")
end

function _M.init_worker()
  worker_events.init_worker(plugins.external_names(), plugin_servers.reset_instances_for_plugin)
  process.start_pluginservers(conf)
end

function _M.exit_worker()
  process.stop_pluginservers(conf)
end

-- not part of Kong: readiness for gateway.sh (200 when every plugin server
-- that the gateway starts accepts connections)
function _M.status()
  local json = require "gateway.json"
  local out, ready = { pluginservers = json.array() }, true
  for _, s in ipairs(conf.pluginservers) do
    local entry = { name = s.name, socket = s.socket, managed = s.start_command ~= nil }
    local ok, err
    local f, ferr = io.open(s.socket, "rb")     -- ENXIO: a socket is there
    if f then
      f:close()
    end
    if f or (ferr and ferr:find("No such device or address", 1, true)) then
      local sock = ngx.socket.tcp()
      sock:settimeout(500)
      ok, err = sock:connect("unix:" .. s.socket)
      if ok then
        sock:close()
      end
    else
      err = ferr
    end
    entry.accepting = ok and true or false
    entry.error = err
    if entry.managed and not ok then
      ready = false
    end
    out.pluginservers[#out.pluginservers + 1] = entry
  end
  out.ready = ready
  ngx.status = ready and 200 or 503
  ngx.header["Content-Type"] = "application/json"
  ngx.say(json.encode(out))
end

_M.rewrite = phases.rewrite
_M.access = phases.access
_M.balancer = phases.balancer
_M.header_filter = phases.header_filter
_M.body_filter = phases.body_filter
_M.log = phases.log
_M.handle_error = phases.handle_error

return _M
