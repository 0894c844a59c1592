-- URI path helpers with the behaviour of kong/tools/uri.lua:
-- normalize() decodes percent-escapes of unreserved characters (uppercasing
-- the reserved ones), removes dot segments (RFC 3986 5.2.4) and optionally
-- merges repeated slashes; escape() percent-encodes what may not appear in a
-- path.

local ngx_re = ngx.re

local _M = {}

local RESERVED = {}
for c in ("!*'();:@&=+$,/?%#[]"):gmatch(".") do
  RESERVED[c:byte()] = true
end

local function decode_one(m)
  local n = tonumber(m[1], 16)
  if RESERVED[n] then
    return m[0]:upper()
  end
  return string.char(n)
end

function _M.normalize(uri, merge_slashes)
  if uri == "" or uri == "/" then
    return uri
  end
  if uri:find("%", 1, true) then
    uri = ngx_re.gsub(uri, [[%([\dA-F]{2})]], decode_one, "joi")
  end
  if not uri:find(".", 1, true) and (not merge_slashes or not uri:find("//", 1, true)) then
    return uri
  end

  -- split into segments; "" segments come from leading/repeated slashes
  local out = {}
  local leading = uri:sub(1, 1) == "/"
  local trailing = false
  local segs = {}
  for seg in (uri .. "/"):gmatch("([^/]*)/") do
    segs[#segs + 1] = seg
  end
  if leading then
    table.remove(segs, 1)
  end
  for i, seg in ipairs(segs) do
    local last = (i == #segs)
    if seg == "." then
      trailing = last
    elseif seg == ".." then
      if #out > 0 then
        out[#out] = nil
      end
      trailing = last
    elseif seg == "" and merge_slashes and not last then
      -- "//" collapses
    else
      out[#out + 1] = seg
      trailing = false
    end
  end
  local res = table.concat(out, "/")
  if leading then
    res = "/" .. res
  end
  if trailing and res:sub(-1) ~= "/" then
    res = res .. "/"
  end
  return res
end

local ESCAPE = [=[[^!#$&'()*+,/:;=?@[\]A-Z\d\-_.~%]]=]

function _M.escape(uri)
  if ngx_re.find(uri, ESCAPE, "joi") then
    return (ngx_re.gsub(uri, ESCAPE, function(m)
      return string.format("%%%02X", m[0]:byte())
    end, "joi"))
  end
  return uri
end

return _M
