-- Error responses, after kong/error_handlers.lua and the templates of
-- kong/tools/http.lua: the body format follows the Accept header (JSON by
-- default) and, from Kong 3.5, carries the request id.

local era = require "gateway.era"

local ngx = ngx
local fmt = string.format

local _M = {}

local MESSAGES = {
  [400] = "Bad request", [401] = "Unauthorized", [403] = "Forbidden",
  [404] = "Not found", [405] = "Method not allowed", [408] = "Request timeout",
  [411] = "Length required", [412] = "Precondition failed",
  [413] = "Payload too large", [414] = "URI too long", [417] = "Expectation failed",
  [429] = "Too many requests", [494] = "Request header or cookie too large",
  [500] = "An unexpected error occurred", [501] = "Not implemented",
  [502] = "An invalid response was received from the upstream server",
  [503] = "The upstream server is currently unavailable",
  [504] = "The upstream server is timing out",
}

function _M.http_message(status)
  return MESSAGES[status] or fmt("The upstream server responded with %d", status)
end

local JSON = "application/json; charset=utf-8"
local TYPES = {
  ["application/json"] = JSON,
  ["text/html"] = "text/html; charset=utf-8",
  ["application/xml"] = "application/xml; charset=utf-8",
  ["text/plain"] = "text/plain; charset=utf-8",
}

-- 3.5.0: request_id in every template (kong/tools/utils.lua ERROR_TEMPLATES)
local TEMPLATES = {
  [JSON] = '{\n  "message":"%s",\n  "request_id":"%s"\n}',
  ["text/html; charset=utf-8"] = '<!doctype html>\n<html>\n  <head>\n    <meta charset="utf-8">\n' ..
    '    <title>Error</title>\n  </head>\n  <body>\n    <h1>Error</h1>\n    <p>%s.</p>\n' ..
    '    <p>request_id: %s</p>\n  </body>\n</html>\n',
  ["application/xml; charset=utf-8"] = '<?xml version="1.0" encoding="UTF-8"?>\n<error>\n' ..
    '  <message>%s</message>\n  <requestid>%s</requestid>\n</error>\n',
  ["text/plain; charset=utf-8"] = "%s\nrequest_id: %s\n",
}

-- 3.0-3.4: the same templates without the request id
local TEMPLATES_NO_ID = {
  [JSON] = '{\n  "message":"%s"\n}',
  ["text/html; charset=utf-8"] = '<!doctype html>\n<html>\n  <head>\n    <meta charset="utf-8">\n' ..
    '    <title>Error</title>\n  </head>\n  <body>\n    <h1>Error</h1>\n    <p>%s.</p>\n' ..
    '  </body>\n</html>\n',
  ["application/xml; charset=utf-8"] = '<?xml version="1.0" encoding="UTF-8"?>\n<error>\n' ..
    '  <message>%s</message>\n</error>\n',
  ["text/plain; charset=utf-8"] = "%s\n",
}

-- highest-q media type of Accept that Kong knows; JSON otherwise
function _M.response_type(accept)
  if type(accept) == "table" then
    accept = table.concat(accept, ",")
  end
  local best, best_q = JSON, 0
  if accept then
    for item in accept:gmatch("[^,]+") do
      local mt = item:match("^%s*([^;%s]+)")
      local q = tonumber(item:match(";%s*q=([%d%.]+)")) or 1
      if mt and q > best_q then
        best_q = q
        best = TYPES[mt:lower()] or best
      end
    end
  end
  return best
end

function _M.render(content_type, message)
  if not era.ge("3.5") then
    return fmt(TEMPLATES_NO_ID[content_type] or TEMPLATES_NO_ID[JSON], message)
  end
  local tpl = TEMPLATES[content_type] or TEMPLATES[JSON]
  return fmt(tpl, message, ngx.var.request_id or "")
end

-- Kong.handle_error + kong_error_handlers: runs in /kong_error_handler
function _M.handle(ctx)
  local accept = kong.request.get_header("Accept")
  if accept == nil then
    accept = kong.request.get_header("Content-Type")
  end
  local status = kong.response.get_status()
  local message = _M.http_message(status)
  if status == 494 then
    status = 400
  end
  local ct = _M.response_type(accept)
  local body = _M.render(ct, message)
  ctx.buffered_proxying = nil
  ctx.response_body = nil
  ctx.delay_response = nil
  ctx.delayed_response = nil
  ctx.delayed_response_callback = nil
  return kong.response.exit(status, body, { ["Content-Type"] = ct })
end

return _M
