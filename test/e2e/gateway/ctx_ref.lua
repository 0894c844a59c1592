-- Keep ngx.ctx across nginx internal redirects (error_page), as
-- kong/resty/ctx.lua does: rewrite stores the ctx's registry reference in
-- $ctx_ref, /kong_error_handler puts that table back as ngx.ctx.

local ffi = require "ffi"
local base = require "resty.core.base"
require "resty.core.ctx"     -- declares the ffi functions, creates the table registry

local C = ffi.C
local registry = debug.getregistry()
local get_request = base.get_request
local FFI_NO_REQ_CTX = base.FFI_NO_REQ_CTX

local _M = {}

local in_ssl_phase = ffi.new("int[1]")
local ssl_ctx_ref = ffi.new("int[1]")

function _M.stash(ctx)
  local r = get_request()
  if not r then
    return
  end
  local cur = ngx.var.ctx_ref
  if not cur or cur ~= "" then
    return
  end
  if not ctx then
    local _ = ngx.ctx
  end
  local ref = C.ngx_http_lua_ffi_get_ctx_ref(r, in_ssl_phase, ssl_ctx_ref)
  if ref == FFI_NO_REQ_CTX then
    ngx.log(ngx.WARN, "could not stash ngx.ctx ref: no ctx found")
    return
  end
  ngx.var.ctx_ref = ref
end

function _M.apply()
  if not get_request() then
    return
  end
  local ref = tonumber(ngx.var.ctx_ref or "")
  if not ref then
    return
  end
  local orig = registry.ngx_lua_ctx_tables[ref]
  if not orig then
    ngx.log(ngx.WARN, "could not apply ngx.ctx: no ctx found")
    return
  end
  ngx.ctx = orig
  ngx.var.ctx_ref = ""
end

return _M
