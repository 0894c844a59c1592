-- JSON text the way Kong produces it.
--
-- Kong encodes with OpenResty's lua-cjson (kong/tools/cjson.lua): numbers with
-- 16 significant digits, "/" escaped as "\/", tables carrying `array_mt`
-- encoded as arrays even when empty, empty plain tables as {}.  Debian's
-- lua-cjson is the upstream 2.1.0 (no array_mt, precision <= 14), so the
-- encoder is written here; decoding uses lua-cjson (null -> cjson.null,
-- which is the same lightuserdata as ngx.null).

local cjson = require "cjson.safe"

local type, pairs, next, tostring = type, pairs, next, tostring
local fmt, gsub, byte = string.format, string.gsub, string.byte
local concat = table.concat
local floor = math.floor
local huge = math.huge

local _M = {}

-- tables with this metatable are arrays, also when empty (cjson.array_mt)
_M.array_mt = { __name = "array" }
_M.null = cjson.null

function _M.array(t)
  return setmetatable(t or {}, _M.array_mt)
end

local ESC = {
  ['"'] = '\\"', ["\\"] = "\\\\", ["/"] = "\\/",
  ["\b"] = "\\b", ["\f"] = "\\f", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t",
}
for c = 0, 31 do
  local ch = string.char(c)
  if not ESC[ch] then
    ESC[ch] = fmt("\\u%04x", c)
  end
end
ESC["\127"] = "\\u007f"

local function enc_string(s)
  return '"' .. gsub(s, '[%c"\\/]', ESC) .. '"'
end

local function enc_number(n)
  if n ~= n or n == huge or n == -huge then
    error("Cannot serialise number: must not be NaN or Infinity")
  end
  if floor(n) == n and n >= -1e15 and n <= 1e15 then
    return fmt("%d", n)
  end
  return fmt("%.16g", n)
end

local encode_value

local function is_array(t)
  if getmetatable(t) == _M.array_mt then
    return true, #t
  end
  local max, n = 0, 0
  for k in pairs(t) do
    if type(k) ~= "number" or k < 1 or floor(k) ~= k then
      return false
    end
    if k > max then
      max = k
    end
    n = n + 1
  end
  if n == 0 then
    return false             -- empty plain table: {}
  end
  if max > 10 and max > n * 2 then
    error("Cannot serialise table: excessively sparse array")
  end
  return true, max
end

-- (is_array, max index) as Kong's cjson decides it; errors on sparse arrays
_M.is_array = is_array

local function enc_table(t, buf, depth)
  if depth > 1000 then
    error("Cannot serialise, excessive nesting (1001)")
  end
  local arr, len = is_array(t)
  if arr then
    buf[#buf + 1] = "["
    for i = 1, len do
      if i > 1 then
        buf[#buf + 1] = ","
      end
      encode_value(t[i], buf, depth + 1)
    end
    buf[#buf + 1] = "]"
    return
  end
  buf[#buf + 1] = "{"
  local first = true
  for k, v in pairs(t) do
    local tk = type(k)
    if tk == "number" then
      k = enc_number(k)
    elseif tk ~= "string" then
      error("Cannot serialise " .. tk .. ": table key must be a number or string")
    end
    if not first then
      buf[#buf + 1] = ","
    end
    first = false
    buf[#buf + 1] = enc_string(k)
    buf[#buf + 1] = ":"
    encode_value(v, buf, depth + 1)
  end
  buf[#buf + 1] = "}"
end

function encode_value(v, buf, depth)
  local t = type(v)
  if t == "string" then
    buf[#buf + 1] = enc_string(v)
  elseif t == "number" then
    buf[#buf + 1] = enc_number(v)
  elseif t == "boolean" then
    buf[#buf + 1] = v and "true" or "false"
  elseif t == "nil" or v == cjson.null then
    buf[#buf + 1] = "null"
  elseif t == "table" then
    enc_table(v, buf, depth)
  else
    error("Cannot serialise " .. t .. ": type not supported")
  end
end

-- like cjson.safe.encode: returns nil, err instead of raising
function _M.encode(v)
  local buf = {}
  local ok, err = pcall(encode_value, v, buf, 0)
  if not ok then
    return nil, err
  end
  return concat(buf)
end

function _M.decode(s)
  return cjson.decode(s)
end

return _M
