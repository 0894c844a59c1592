-- The one worker event the plugin-server code uses:
-- "plugin_server/reset_instances" (kong/runloop/plugin_servers/init.lua).
-- Kong delivers it to the other workers asynchronously; here a counter per
-- plugin in a shared dict is bumped, and every worker compares it with what
-- it last saw at the start of each request and on a 1 s timer.

local ngx = ngx

local _M = {}

local DICT = "kong"
local seen = {}          -- plugin name -> last seen counter (this worker)
local names = {}         -- plugin names to watch
local on_reset

local function key(name)
  return "plugin_server:reset_instances:" .. name
end

function _M.post_reset(plugin_name)
  local dict = ngx.shared[DICT]
  local v = dict:incr(key(plugin_name), 1, 0)
  if v then
    seen[plugin_name] = v    -- already reset locally
  end
end

function _M.poll()
  local dict = ngx.shared[DICT]
  for i = 1, #names do
    local name = names[i]
    local v = dict:get(key(name)) or 0
    if v ~= (seen[name] or 0) then
      seen[name] = v
      on_reset(name)
    end
  end
end

function _M.init_worker(plugin_names, handler)
  names = plugin_names
  on_reset = handler
  local dict = ngx.shared[DICT]
  for i = 1, #names do
    seen[names[i]] = dict:get(key(names[i])) or 0
  end
  if #names > 0 then
    ngx.timer.every(1, function(premature)
      if not premature then
        _M.poll()
      end
    end)
  end
end

return _M
