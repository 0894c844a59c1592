-- Header argument checks of the PDK (kong/pdk/private/checks.lua).

local fmt = string.format

local _M = {}

function _M.normalize_multi_header(value)
  local t = type(value)
  if t == "string" then
    return value == "" and " " or value
  end
  if t == "table" then
    local out = {}
    for i, v in ipairs(value) do
      out[i] = v == "" and " " or v
    end
    return out
  end
  return tostring(value)
end

function _M.validate_header(name, value)
  local tname = type(name)
  if tname ~= "string" then
    error(fmt("invalid header name %q: got %s, expected string", tostring(name), tname), 3)
  end
  local tv = type(value)
  if tv == "table" then
    for _, v in ipairs(value) do
      if type(v) ~= "string" then
        error(fmt("invalid header value in array %q: got %s, expected string", name, type(v)), 3)
      end
    end
  elseif tv ~= "string" and tv ~= "number" and tv ~= "boolean" then
    error(fmt("invalid header value for %q: got %s, expected array of string, string, number or boolean",
              name, tv), 3)
  end
  return value
end

function _M.validate_headers(headers)
  if type(headers) ~= "table" then
    error("headers must be a table", 3)
  end
  for k, v in pairs(headers) do
    if type(k) ~= "string" then
      error(fmt("invalid header name %q: got %s, expected string", tostring(k), type(k)), 3)
    end
    local tv = type(v)
    if tv == "table" then
      for _, vv in ipairs(v) do
        if type(vv) ~= "string" then
          error(fmt("invalid header value in array %q: got %s, expected string", k, type(vv)), 3)
        end
      end
    elseif tv ~= "string" and tv ~= "number" and tv ~= "boolean" then
      error(fmt("invalid header value for %q: got %s, expected string, number, boolean or array of strings",
                k, tv), 3)
    end
  end
end

return _M
