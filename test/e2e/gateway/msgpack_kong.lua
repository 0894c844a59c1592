-- lua-MessagePack configured the way Kong's MsgPack:1 client uses it
-- (kong/runloop/plugin_servers/rpc/mp_rpc.lua):
--   * library defaults, set explicitly here so the installed version does not
--     matter: string_compat (fixstr, then str16/str32, never str8), unsigned
--     integers for integral numbers, double for the rest, arrays only without
--     holes (an empty table is an empty array);
--   * cjson.null / ngx.null packed as nil;
--   * a function value packs itself (used for forced empty array/map and bin);
--   * must_fix: the four multimap getters become maps of arrays (true -> [],
--     string -> {s}, empty -> empty MAP), the three raw-body getters are sent
--     as bin.  A nil raw body makes the bin packer raise, as in Kong <= 3.7.

local mp = require "MessagePack"
local cjson = require "cjson.safe"

mp.set_string("string_compat")
mp.set_integer("unsigned")
mp.set_number("double")
mp.set_array("without_hole")

local nil_pack = mp.packers["nil"]

mp.packers.userdata = function(buffer, u)
  if u == cjson.null then
    return nil_pack(buffer)
  end
  error "pack 'userdata' is unimplemented"
end

mp.packers["function"] = function(buffer, f)
  f(buffer)
end

local function empty_array(buffer)
  mp.packers["array"](buffer, {}, 0)
end

local function empty_map(buffer)
  mp.packers["map"](buffer, {}, 0)
end

local function fix_mmap(t)
  local o, empty = {}, true
  for k, v in pairs(t) do
    empty = false
    if v == true then
      o[k] = empty_array
    elseif type(v) == "string" then
      o[k] = { v }
    else
      o[k] = v
    end
  end
  if empty then
    return empty_map
  end
  return o
end

local function fix_raw(bin)
  return function(buffer)
    mp.packers["binary"](buffer, bin)
  end
end

local _M = {
  pack = mp.pack,
  unpacker = mp.unpacker,
  empty_array = empty_array,
  empty_map = empty_map,
  must_fix = {
    ["kong.request.get_query"] = fix_mmap,
    ["kong.request.get_headers"] = fix_mmap,
    ["kong.response.get_headers"] = fix_mmap,
    ["kong.service.response.get_headers"] = fix_mmap,
    ["kong.request.get_raw_body"] = fix_raw,
    ["kong.response.get_raw_body"] = fix_raw,
    ["kong.service.response.get_raw_body"] = fix_raw,
  },
}

return _M
