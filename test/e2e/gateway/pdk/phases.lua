-- Phase checks of the PDK (kong/pdk/private/phases.lua): ngx.ctx.KONG_PHASE
-- holds a bit; a PDK function called in a phase outside its mask raises
-- "function cannot be called in <phase> phase (only in: <list>)".

local bit = require "bit"

local band, bor = bit.band, bit.bor
local fmt = string.format

local PHASES = {
  init_worker      = 0x00000001,
  certificate      = 0x00000002,
  client_hello     = 0x00000008,
  rewrite          = 0x00000010,
  access           = 0x00000020,
  balancer         = 0x00000040,
  response         = 0x00000080,
  cluster_listener = 0x00000100,
  header_filter    = 0x00000200,
  body_filter      = 0x00000400,
  log              = 0x00002000,
  preread          = 0x00004000,
  error            = 0x01000000,
  admin_api        = 0x10000000,
}

local NAMES = {}
for k, v in pairs(PHASES) do
  NAMES[v] = k
end

local function names_of(mask)
  local out = {}
  local n = 1
  for _ = 1, 30 do
    if band(mask, n) ~= 0 and NAMES[n] then
      out[#out + 1] = NAMES[n]
    end
    n = bit.lshift(n, 1)
  end
  return table.concat(out, ", ")
end

local _M = { phases = PHASES, names = NAMES }

function _M.new(...)
  return bor(...)
end

PHASES.request = bor(PHASES.rewrite, PHASES.access, PHASES.balancer, PHASES.response,
                     PHASES.header_filter, PHASES.body_filter, PHASES.log,
                     PHASES.error, PHASES.admin_api, PHASES.cluster_listener)

function _M.check(accepted)
  local current = ngx.ctx.KONG_PHASE
  if not current then
    if ngx.get_phase() == "content" then
      current = PHASES.admin_api
    else
      error(fmt("no phase in ngx.ctx.KONG_PHASE, (need one of %s)", names_of(accepted)), 3)
    end
  end
  if band(current, accepted) ~= 0 then
    return
  end
  error(fmt("function cannot be called in %s phase (only in: %s)",
            NAMES[current] or "'unknown phase'", names_of(accepted)), 3)
end

function _M.check_not(rejected)
  local current = ngx.ctx.KONG_PHASE
  if not current then
    error("no phase in ngx.ctx.KONG_PHASE", 3)
  end
  if band(current, rejected) == 0 then
    return
  end
  error(fmt("function cannot be called in %s phase (can be called in any phases except: %s)",
            NAMES[current] or "'unknown phase'", names_of(rejected)), 3)
end

return _M
