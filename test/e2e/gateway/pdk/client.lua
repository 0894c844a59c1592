-- kong.client (kong/pdk/client.lua), http subsystem, no trusted IPs.

local phases = require "gateway.pdk.phases"

local ngx = ngx
local check_phase = phases.check
local check_not_phase = phases.check_not
local PHASES = phases.phases

local AUTH_AND_LATER = phases.new(PHASES.access, PHASES.header_filter, PHASES.response,
                                  PHASES.body_filter, PHASES.log)

return function()
  local C = {}

  function C.get_ip()
    check_not_phase(PHASES.init_worker)
    return ngx.var.realip_remote_addr or ngx.var.remote_addr
  end

  function C.get_forwarded_ip()
    check_not_phase(PHASES.init_worker)
    return ngx.var.remote_addr
  end

  function C.get_port()
    check_not_phase(PHASES.init_worker)
    return tonumber(ngx.var.realip_remote_port or ngx.var.remote_port)
  end

  function C.get_forwarded_port()
    check_not_phase(PHASES.init_worker)
    return tonumber(ngx.var.remote_port)
  end

  function C.get_credential()
    check_phase(AUTH_AND_LATER)
    return ngx.ctx.authenticated_credential
  end

  function C.get_consumer()
    check_phase(AUTH_AND_LATER)
    return ngx.ctx.authenticated_consumer
  end

  function C.get_protocol(allow_terminated)
    check_phase(AUTH_AND_LATER)
    local route = ngx.ctx.route
    if not route then
      return nil, "No active route found"
    end
    return ngx.var.scheme
  end

  return C
end
