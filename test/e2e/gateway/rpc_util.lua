-- Helpers of the RPC client (kong/runloop/plugin_servers/rpc/util.lua):
-- PDK method lookup by dotted name, with a per-worker cache, and the JSON
-- text of a plugin config for StartInstance.

local json = require "gateway.json"

local _M = {}

-- exact key first (the override table), then walk \w+ segments
local function index_table(tbl, field)
  if tbl[field] then
    return tbl[field]
  end
  local res = tbl
  for segment in ngx.re.gmatch(field, [[\w+]], "jo") do
    if res[segment[0]] then
      res = res[segment[0]]
    else
      return nil
    end
  end
  return res
end

local method_cache = {}

function _M.get_field(pdk, method)
  local m = method_cache[method]
  if m then
    return m
  end
  m = index_table(pdk, method)
  method_cache[method] = m
  return m
end

function _M.encode_config(conf)
  return json.encode(conf)
end

return _M
