-- Generated plugin configs for the conformance test (test/conformance):
-- from a plugin's -dump, configs at and beyond each declared rule, each
-- judged by Kong's own validation (test/e2e/gateway/schema.lua, after
-- kong/db/schema/init.lua), and, for the ones Kong accepts, the Config
-- JSON Kong would send in StartInstance.
--
-- Generic over Kong's schema language: it reads types, between, gt,
-- one_of, len_min/len_max, starts_with, elements, records, maps and the
-- entity_checks of the config record and of the plugin schema; nothing here
-- names a plugin or a field.  Deterministic: fixed value lists, schema order,
-- sorted JSON keys.
--
-- A case is { verdict, label, config_json, note }:
--   accept    Kong accepts; config_json is what Kong sends (defaults filled,
--             nulls dropped, Kong's keys added, cjson-encoded); note: the
--             values the server must then hold (_M.expectation)
--   noencode  Kong accepts but cannot encode the stored config (NaN, +-Inf):
--             Kong sends StartInstance with no Config; config_json is "-"
--   refuse    Kong refuses (note: Kong's error); config_json is the input
--             with Kong's keys, as a client other than Kong could send it
--             (NaN/Infinity written as such), to check the server survives it

local json = require "gateway.json"
local schema = require "gateway.schema"

local null = json.null
local fmt, rep, sub, byte = string.format, string.rep, string.sub, string.byte
local floor, huge, frexp = math.floor, math.huge, math.frexp
local concat = table.concat

local _M = {}

-- fixed ids of the Kong side (scopes rotate over the cases)
local WS_ID = "1b4e28ba-2fa1-4d2c-8c29-4f9e9a0e0001"
local ROUTE_ID = "1b4e28ba-2fa1-4d2c-8c29-4f9e9a0e0002"
local SERVICE_ID = "1b4e28ba-2fa1-4d2c-8c29-4f9e9a0e0003"
local CONSUMER_ID = "1b4e28ba-2fa1-4d2c-8c29-4f9e9a0e0004"
local SCOPES = {
  {},
  { service = true },
  { route = true, service = true, instance_name = true },
  { route = true },
  { consumer = true, instance_name = true },
}

-- Kong's reserved config keys (plugins_iterator.lua) and other names a
-- client might put in a config; Kong refuses each as an unknown field,
-- except `updated_at` (never validated, then dropped: 3.3+)
local RESERVED = {
  "route_id", "service_id", "consumer_id", "plugin_instance_name",
  "__plugin_id", "__ws_id", "__key__", "__seq__",
  "updated_at", "created_at", "ttl", "ws_id", "$refs", "id", "name",
  "enabled", "protocols", "config",
}

local NAN = 0 / 0

---------------------------------------------------------------------------
-- JSON with sorted keys (json.lua's numbers and strings: Kong's cjson)
---------------------------------------------------------------------------

local is_array = json.is_array

-- lenient: NaN and +-Infinity written as such (cjson's decoder reads them),
-- numbers with 17 significant digits (exact) instead of Kong's 16
local function enc(v, buf, lenient)
  local t = type(v)
  if v == nil or v == null then
    buf[#buf + 1] = "null"
  elseif t == "number" then
    if v ~= v or v == huge or v == -huge then
      if not lenient then
        error("Cannot serialise number: must not be NaN or Infinity", 0)
      end
      buf[#buf + 1] = v ~= v and "NaN" or (v > 0 and "Infinity" or "-Infinity")
    elseif lenient and (floor(v) ~= v or v > 1e15 or v < -1e15) then
      buf[#buf + 1] = fmt("%.17g", v)
    else
      buf[#buf + 1] = assert(json.encode(v))
    end
  elseif t == "string" or t == "boolean" then
    buf[#buf + 1] = assert(json.encode(v))
  elseif t == "table" then
    local arr, len = is_array(v)
    if arr then
      buf[#buf + 1] = "["
      for i = 1, len do
        if i > 1 then
          buf[#buf + 1] = ","
        end
        enc(v[i], buf, lenient)
      end
      buf[#buf + 1] = "]"
      return
    end
    local keys = schema.sorted_keys(v)
    buf[#buf + 1] = "{"
    for i, k in ipairs(keys) do
      if i > 1 then
        buf[#buf + 1] = ","
      end
      if type(k) == "number" then
        buf[#buf + 1] = '"' .. assert(json.encode(k)) .. '"'
      elseif type(k) == "string" then
        buf[#buf + 1] = assert(json.encode(k))
      else
        error("Cannot serialise " .. type(k) .. ": table key must be a number or string", 0)
      end
      buf[#buf + 1] = ":"
      enc(v[k], buf, lenient)
    end
    buf[#buf + 1] = "}"
  else
    error("Cannot serialise " .. t .. ": type not supported", 0)
  end
end

-- cjson.safe.encode as Kong configures it, keys sorted; nil, err on NaN/Inf
-- (lenient: see enc)
function _M.encode(v, lenient)
  local buf = {}
  local ok, err = pcall(enc, v, buf, lenient)
  if not ok then
    return nil, err
  end
  return concat(buf)
end

---------------------------------------------------------------------------
-- values
---------------------------------------------------------------------------

local function copy(v)
  if type(v) ~= "table" then
    return v
  end
  local t = {}
  for k, x in pairs(v) do
    t[k] = copy(x)
  end
  return setmetatable(t, getmetatable(v))
end

-- the next double above x (x + one ulp)
local function next_up(x)
  if x == 0 then
    return 2 ^ -1074
  end
  local _, e = frexp(x)
  local ulp = 2 ^ (e - 53)
  if x < 0 and x == -(2 ^ (e - 1)) then
    ulp = ulp / 2
  end
  return x + ulp
end

local function next_down(x)
  return -next_up(-x)
end

-- exactly n bytes of two-byte UTF-8 ("é"), plus "a" when n is odd
local function multibyte(n)
  return rep("\195\169", floor(n / 2)) .. (n % 2 == 1 and "a" or "")
end

local function fields_of(def)
  local out = {}
  for i, entry in ipairs(def.fields or {}) do
    local name, fdef = next(entry)
    out[i] = { name = name, def = fdef }
  end
  return out
end

local function valid(def, v)
  local ok = schema.validate_value(def, v)
  return ok == true
end

-- a value the field accepts, or nil
local synth
function synth(def, hint)
  local cands = {}
  local function add(v)
    cands[#cands + 1] = v
  end
  if hint ~= nil then
    add(hint)
  end
  if def.default ~= nil and def.default ~= null then
    add(copy(def.default))
  end
  local t = def.type
  if type(def.one_of) == "table" then
    for _, m in ipairs(def.one_of) do
      add(m)
    end
  end
  if t == "string" then
    local n = math.max(def.len_min or 1, 1)
    local sw = type(def.starts_with) == "string" and def.starts_with or ""
    add(sw .. rep("a", math.max(n - #sw, 0)))
    add(sw .. "example")
    add("127.0.0.1")
    add(rep("a", n))
    -- for patterns (match, match_all, match_any)
    for _, c in ipairs({ "0", "1", "a1", "A", "example.com", "/", "/a", "http://example.com",
                         "a-b_c", "a.b", "a b" }) do
      add(c)
    end
    for k = 2, 8 do
      add(rep("0", k))
      add(rep("a", k))
      add(rep("A", k))
    end
  elseif t == "integer" or t == "number" then
    if type(def.between) == "table" then
      add(def.between[1])
      add(floor((def.between[1] + def.between[2]) / 2))
    end
    if type(def.gt) == "number" then
      add(floor(def.gt) + 1)
    end
    add(1)
    add(0)
  elseif t == "boolean" then
    add(true)
    add(false)
  elseif t == "array" or t == "set" then
    local e = synth(def.elements)
    local n = def.len_min or def.len_eq or 0
    if e ~= nil then
      local a = {}
      for i = 1, n do
        a[i] = type(e) == "string" and (e .. (i > 1 and tostring(i) or "")) or copy(e)
      end
      add(a)
    end
    add({})
  elseif t == "map" then
    add({})
  elseif t == "record" then
    local r = {}
    for _, f in ipairs(fields_of(def)) do
      if f.def.required and f.def.default == nil then
        r[f.name] = synth(f.def)
      end
    end
    add(r)
  end
  for _, v in ipairs(cands) do
    if valid(def, v) then
      return v
    end
  end
  return nil
end

-- values of every type (Kong sees JSON and YAML decoded into Lua)
local function type_samples()
  return {
    { "type:string", "x" }, { "type:numeric-string", "1" }, { "type:bool-string", "true" },
    { "type:integer", 1 }, { "type:zero", 0 }, { "type:fraction", 1.5 },
    { "type:true", true }, { "type:false", false },
    { "type:array", { "x" } }, { "type:int-array", { 1 } }, { "type:empty-table", {} },
    { "type:object", { k = "v" } },
  }
end

local function number_values(def)
  local out = {}
  local function add(l, v)
    out[#out + 1] = { l, v }
  end
  local b = def.between
  if type(b) == "table" and type(b[1]) == "number" and type(b[2]) == "number" then
    local lo, hi = b[1], b[2]
    add("between:min", lo)
    add("between:max", hi)
    add("between:mid", floor((lo + hi) / 2))
    add("between:min-1", lo - 1)
    add("between:max+1", hi + 1)
    add("between:min+0.5", lo + 0.5)
    add("between:max-0.5", hi - 0.5)
    add("between:min-0.5", lo - 0.5)
    add("between:max+0.5", hi + 0.5)
    add("between:min-ulp", next_down(lo))
    add("between:min+ulp", next_up(lo))
    add("between:max-ulp", next_down(hi))
    add("between:max+ulp", next_up(hi))
    -- 5.0 in JSON or YAML is the Lua number 5 (deduplicated with min)
    add("between:min-as-float", lo + 0.0)
  end
  if type(def.gt) == "number" then
    local g = def.gt
    add("gt:equal", g)
    add("gt:+1", g + 1)
    add("gt:+0.5", g + 0.5)
    add("gt:+ulp", next_up(g))
    add("gt:-1", g - 1)
  end
  if type(def.one_of) == "table" then
    local maxm = -huge
    for i, m in ipairs(def.one_of) do
      add("one_of:member" .. i, m)
      if type(m) == "number" and m > maxm then
        maxm = m
      end
    end
    if maxm > -huge then
      add("one_of:non-member", maxm + 1)
    end
  end
  add("num:0", 0)
  add("num:-0", -0.0)
  add("num:1", 1)
  add("num:-1", -1)
  add("num:0.1", 0.1)
  add("num:1/3", 1 / 3)
  add("num:1e-300", 1e-300)
  add("num:1e300", 1e300)
  add("num:-1e300", -1e300)
  add("num:2^31-1", 2 ^ 31 - 1)
  add("num:2^31", 2 ^ 31)
  add("num:2^32", 2 ^ 32)
  add("num:2^53", 2 ^ 53)
  add("num:2^53+2", 2 ^ 53 + 2)
  add("num:-2^53", -(2 ^ 53))
  add("num:2^63", 2 ^ 63)
  add("num:-2^63", -(2 ^ 63))
  add("num:2^64", 2 ^ 64)
  add("num:NaN", NAN)
  add("num:+Inf", huge)
  add("num:-Inf", -huge)
  return out
end

local function string_values(def, base)
  local out = {}
  local function add(l, v)
    out[#out + 1] = { l, v }
  end
  base = type(base) == "string" and base or synth(def) or "a"
  local len_min = def.len_min or def.len_eq or 1
  local len_max = def.len_max or def.len_eq
  add("str:empty", "")
  if len_min > 1 then
    add("len:min-1", rep("a", len_min - 1))
  end
  add("len:min", rep("a", len_min))
  add("len:min-multibyte", multibyte(len_min))
  if len_min >= 2 then
    -- as many bytes as len_min, fewer characters: Kong counts bytes
    add("len:min-bytes-fewer-chars", rep("\195\169", math.ceil(len_min / 2)))
  end
  if len_max then
    add("len:max", rep("a", len_max))
    add("len:max+1", rep("a", len_max + 1))
    add("len:max-multibyte", multibyte(len_max))
    add("len:max+1-multibyte", multibyte(len_max + 1))
    -- len_max characters, twice the bytes: Kong refuses
    add("len:max-chars-double-bytes", rep("\195\169", len_max))
  else
    add("len:255", rep("a", 255))
    add("len:256", rep("a", 256))
    add("len:4096", rep("a", 4096))
    add("len:65537", rep("a", 65537))
  end
  local mid = floor(#base / 2)
  add("nul:only", "\0")
  add("nul:leading", "\0" .. base)
  add("nul:inner", sub(base, 1, mid) .. "\0" .. sub(base, mid + 1))
  add("nul:trailing", base .. "\0")
  add("bytes:ff-fe", "\255\254")
  add("bytes:trailing-80", base .. "\128")
  add("bytes:bad-2-byte", "\195\40")
  add("bytes:overlong", "\192\175")
  add("bytes:surrogate", "\237\160\128")
  add("utf8:e-acute", "\195\169")
  add("utf8:cjk", "\230\151\165\230\156\172")
  add("utf8:emoji", "\240\159\152\128")
  add("ctl:newline", "a\nb")
  add("ctl:tab", "a\tb")
  add("ctl:soh", "\1")
  add("ctl:del", "\127")
  add("str:quote-backslash-slash", "\"\\/")
  add("str:space", " ")
  add("str:null-word", "null")
  add("str:braces", "{}")
  if not def.referenceable then
    -- a vault reference is only special in referenceable fields (whose
    -- resolved value this test could not know)
    add("str:vault-like", "{vault://env/kps-test}")
  end
  if type(def.one_of) == "table" then
    for i, m in ipairs(def.one_of) do
      if type(m) == "string" then
        add("one_of:member" .. i, m)
        add("one_of:member" .. i .. "+space", m .. " ")
        add("one_of:member" .. i .. "-upper", m:upper())
        add("one_of:member" .. i .. "+nul", m .. "\0")
      end
    end
  end
  if def.match or def.match_all or def.match_any or def.match_none then
    -- Lua patterns: near the base value, class by class (judged by string.match)
    add("pattern:base-twice", base .. base)
    add("pattern:base-last-cut", sub(base, 1, -2))
    add("pattern:base-first-cut", sub(base, 2))
    add("pattern:base-upper", base:upper())
    add("pattern:base-lower", base:lower())
    add("pattern:base-reversed", base:reverse())
    add("pattern:base+space", base .. " ")
    add("pattern:space+base", " " .. base)
    add("pattern:base+newline", base .. "\n")
    for i, c in ipairs({ "0", "a", "A", "-", "_", ".", "/", ":", "%", " ", "\t", "\195\169" }) do
      add("pattern:first-char-" .. i, c .. sub(base, 2))
      add("pattern:last-char-" .. i, sub(base, 1, -2) .. c)
    end
  end
  if type(def.starts_with) == "string" then
    add("starts_with:prefix+x", def.starts_with .. "x")
    add("starts_with:prefix", def.starts_with)
    add("starts_with:x+prefix", "x" .. def.starts_with)
  end
  return out
end

-- the values to try in one field (labels are unique within the list)
local field_values

local function element_values(def)
  -- an element gets the full list of its type, without absent/null
  local out = {}
  for _, lv in ipairs(field_values(def, nil)) do
    if lv[1] ~= "absent" and lv[1] ~= "null" then
      out[#out + 1] = lv
    end
  end
  return out
end

function field_values(def, base)
  local out = {}
  local function add(l, v)
    out[#out + 1] = { l, v }
  end
  local t = def.type
  if t == "integer" or t == "number" then
    for _, lv in ipairs(number_values(def)) do
      add(lv[1], lv[2])
    end
  elseif t == "string" then
    for _, lv in ipairs(string_values(def, base)) do
      add(lv[1], lv[2])
    end
  elseif t == "boolean" then
    add("bool:true", true)
    add("bool:false", false)
  elseif t == "array" or t == "set" then
    local e = synth(def.elements)
    if e == nil then
      e = "a"
    end
    local function many(n)
      local a = {}
      for i = 1, n do
        a[i] = type(e) == "string" and (e .. tostring(i)) or copy(e)
      end
      return a
    end
    add("array:empty", {})
    add("array:one", { copy(e) })
    add("array:duplicates", { copy(e), copy(e) })
    add("array:100", many(100))
    if def.len_min then
      add("array:len_min-1", many(def.len_min - 1))
      add("array:len_min", many(def.len_min))
    end
    if def.len_max then
      add("array:len_max", many(def.len_max))
      add("array:len_max+1", many(def.len_max + 1))
    end
    add("array:null-element", { null })
    add("array:valid-then-null", { copy(e), null })
    add("array:nested", { { copy(e) } })
    add("array:object", { k = copy(e) })
    for _, lv in ipairs(element_values(def.elements)) do
      add("elem:" .. lv[1], { lv[2] })
    end
  elseif t == "map" then
    local v = synth(def.values)
    if v == nil then
      v = "a"
    end
    add("map:empty", {})
    add("map:one", { k = copy(v) })
    add("map:empty-key", { [""] = copy(v) })
    add("map:nul-key", { ["k\0"] = copy(v) })
    add("map:null-value", { k = null })
    for _, lv in ipairs(element_values(def.values)) do
      add("mapval:" .. lv[1], { k = lv[2] })
    end
  elseif t == "record" then
    add("record:empty", {})
  end
  -- every other type, and the three ways of not giving a value
  for _, lv in ipairs(type_samples()) do
    add(lv[1], lv[2])
  end
  add("null", null)
  add("absent", nil)
  return out
end

---------------------------------------------------------------------------
-- paths in a config
---------------------------------------------------------------------------

local function set_path(cfg, path, value)
  local t = cfg
  for i = 1, #path - 1 do
    if type(t[path[i]]) ~= "table" then
      t[path[i]] = {}
    end
    t = t[path[i]]
  end
  t[path[#path]] = value
end

local function get_path(cfg, path)
  local t = cfg
  for i = 1, #path do
    if type(t) ~= "table" then
      return nil
    end
    t = t[path[i]]
  end
  return t
end

local function split(name)
  local p = {}
  for seg in name:gmatch("[^.]+") do
    p[#p + 1] = seg
  end
  return p
end

-- field definition at a path below the config record
local function def_at(config_def, path)
  local d = config_def
  for i = 1, #path do
    if type(d) ~= "table" or d.type ~= "record" then
      return nil
    end
    local found
    for _, f in ipairs(fields_of(d)) do
      if f.name == path[i] then
        found = f.def
      end
    end
    d = found
  end
  return d
end

---------------------------------------------------------------------------
-- the generator
---------------------------------------------------------------------------

local function config_def_of(plugin_schema)
  for _, entry in ipairs(plugin_schema.fields) do
    local name, def = next(entry)
    if name == "config" then
      return def
    end
  end
  error("the schema has no config record", 0)
end

-- base config: the given base values, then the required fields without a
-- default get a synthesized valid value (nested records too)
local function make_base(config_def, given)
  local base = {}
  local used = {}
  local function fill(def, path)
    for _, f in ipairs(fields_of(def)) do
      local p = {}
      for i = 1, #path do
        p[i] = path[i]
      end
      p[#p + 1] = f.name
      local key = concat(p, ".")
      if given[key] ~= nil then
        set_path(base, p, copy(given[key]))
        used[key] = true
      elseif f.def.type == "record" then
        fill(f.def, p)
      elseif f.def.required and f.def.default == nil then
        local v = synth(f.def)
        if v == nil then
          error("cannot make a valid value for config." .. key .. "; give one with --base", 0)
        end
        set_path(base, p, v)
      end
    end
  end
  fill(config_def, {})
  for k in pairs(given) do
    if not used[k] then
      error("--base names " .. k .. ", which is not a config field", 0)
    end
  end
  return base
end

-- fields named by an entity check, relative to the config record; prefix
-- "config." at the plugin level, none inside a record
local function check_fields(name, arg)
  local names = {}
  local function add(v)
    if type(v) == "string" then
      names[#names + 1] = v
    elseif type(v) == "table" then
      for _, x in ipairs(v) do
        names[#names + 1] = x
      end
    end
  end
  if name == "conditional" then
    add(arg.if_field)
    add(arg.then_field)
  elseif name == "conditional_at_least_one_of" then
    add(arg.if_field)
    add(arg.then_at_least_one_of)
    add(arg.else_then_at_least_one_of)
  elseif name == "mutually_exclusive_sets" then
    add(arg.set1)
    add(arg.set2)
  elseif name == "custom_entity_check" then
    add(arg.field_sources)
  else
    add(arg)
  end
  local seen, out = {}, {}
  for _, n in ipairs(names) do
    if not seen[n] then
      seen[n] = true
      out[#out + 1] = n
    end
  end
  return out
end

-- values one field takes in the cross-field cases: absent, null, empty,
-- set (base or synthesized), false for booleans, 0 for numbers, and the
-- values an if_match/then_match names
local function check_states(def, base_value, matches)
  local states = { { "absent", nil }, { "null", null } }
  local t = def.type
  if t == "string" then
    states[#states + 1] = { "empty", "" }
  elseif t == "array" or t == "set" or t == "map" or t == "record" then
    states[#states + 1] = { "empty", {} }
  elseif t == "boolean" then
    states[#states + 1] = { "false", false }
    states[#states + 1] = { "true", true }
  elseif t == "integer" or t == "number" then
    states[#states + 1] = { "zero", 0 }
  end
  local set = base_value
  if set == nil then
    set = synth(def)
  end
  if set ~= nil and t ~= "boolean" then
    states[#states + 1] = { "set", copy(set) }
  end
  local seen = {}
  for _, m in ipairs(matches or {}) do
    if type(m) == "table" then
      local cands = {}
      if m.eq ~= nil then
        cands[#cands + 1] = m.eq
      end
      if type(m.one_of) == "table" then
        for _, x in ipairs(m.one_of) do
          cands[#cands + 1] = x
        end
      end
      if type(m.gt) == "number" then
        cands[#cands + 1] = m.gt
        cands[#cands + 1] = m.gt + 1
      end
      if type(m.between) == "table" then
        cands[#cands + 1] = m.between[1]
        cands[#cands + 1] = m.between[2]
        cands[#cands + 1] = m.between[2] + 1
      end
      if type(m.starts_with) == "string" then
        cands[#cands + 1] = m.starts_with .. "x"
      end
      for _, c in ipairs(cands) do
        local key = tostring(c)
        if not seen[key] and c ~= null then
          seen[key] = true
          states[#states + 1] = { "match:" .. key:gsub("[^%w%.%-]", "_"), c }
        end
      end
    end
  end
  return states
end

local MAX_COMBOS = 729

-- opts: { base = { ["a.b"] = value }, minor = 9 }
-- returns the list of cases { verdict, label, config_json, note }
function _M.generate(plugin_schema, opts)
  opts = opts or {}
  local vopts = { minor = opts.minor }
  local config_def = config_def_of(plugin_schema)
  local base = make_base(config_def, opts.base or {})
  do
    local ok, errs = schema.validate_config(plugin_schema, base, vopts)
    if not ok then
      error("the base config is refused: " .. schema.flat_errors(errs), 0)
    end
  end

  local inputs, seen = {}, {}
  local function add(label, cfg, absent)
    local key = absent and "<absent>" or assert(_M.encode(cfg, true))
    if seen[key] then
      return
    end
    seen[key] = label
    inputs[#inputs + 1] = { label = label, config = cfg, absent = absent }
  end

  -- whole configs
  add("config:base", copy(base))
  add("config:absent", nil, true)
  add("config:empty", {})
  add("config:null", null)
  add("config:string", "x")
  add("config:array", { 1, 2 })
  do
    local all_null, all_default = copy(base), copy(base)
    for _, f in ipairs(fields_of(config_def)) do
      if not f.def.required then
        all_null[f.name] = null
      end
      if f.def.default ~= nil then
        all_default[f.name] = copy(f.def.default)
      end
    end
    add("config:optional-all-null", all_null)
    add("config:all-defaults-explicit", all_default)
  end

  -- unknown and reserved keys
  local function with_key(label, k, v)
    local c = copy(base)
    c[k] = v
    add(label, c)
  end
  with_key("key:unknown", "kps_unknown_field", "x")
  with_key("key:unknown-null", "kps_unknown_field", null)
  with_key("key:empty-name", "", "x")
  for _, f in ipairs(fields_of(config_def)) do
    if f.name:upper() ~= f.name then
      with_key("key:" .. f.name .. ":uppercase", f.name:upper(), copy(get_path(base, { f.name }) or synth(f.def) or "x"))
      break
    end
  end
  for _, k in ipairs(RESERVED) do
    with_key("key:" .. k, k, "x")
    with_key("key:" .. k .. ":null", k, null)
  end

  -- each field, at every depth of records
  local function walk(def, path)
    for _, f in ipairs(fields_of(def)) do
      local p = {}
      for i = 1, #path do
        p[i] = path[i]
      end
      p[#p + 1] = f.name
      local name = concat(p, ".")
      local base_value = get_path(base, p)
      for _, lv in ipairs(field_values(f.def, base_value)) do
        local c = copy(base)
        set_path(c, p, copy(lv[2]))
        add(name .. "=" .. lv[1], c)
      end
      if f.def.type == "record" then
        walk(f.def, p)
      end
    end
  end
  walk(config_def, {})

  -- cross-field combinations for every entity check
  local checks = {}
  if type(plugin_schema.entity_checks) == "table" then
    for _, chk in ipairs(plugin_schema.entity_checks) do
      checks[#checks + 1] = { check = chk, prefix = "config." }
    end
  end
  local function record_checks(def, path)
    if type(def.entity_checks) == "table" then
      for _, chk in ipairs(def.entity_checks) do
        checks[#checks + 1] = { check = chk, relative = path }
      end
    end
    for _, f in ipairs(fields_of(def)) do
      if f.def.type == "record" then
        local p = {}
        for i = 1, #path do
          p[i] = path[i]
        end
        p[#p + 1] = f.name
        record_checks(f.def, p)
      end
    end
  end
  record_checks(config_def, {})

  for ci, c in ipairs(checks) do
    local cname, arg = next(c.check)
    if type(arg) == "table" then
      local names = check_fields(cname, arg)
      local paths, states = {}, {}
      local usable = true
      for i, n in ipairs(names) do
        local p
        if c.prefix then
          if n:sub(1, #c.prefix) ~= c.prefix then
            usable = false      -- names a plugin field outside config
            break
          end
          p = split(n:sub(#c.prefix + 1))
        else
          p = {}
          for j = 1, #c.relative do
            p[j] = c.relative[j]
          end
          for _, seg in ipairs(split(n)) do
            p[#p + 1] = seg
          end
        end
        local d = def_at(config_def, p)
        if not d then
          usable = false
          break
        end
        local matches
        if cname == "conditional" or cname == "conditional_at_least_one_of" then
          if n == arg.if_field then
            matches = { arg.if_match, arg.else_match }
          elseif n == arg.then_field then
            matches = { arg.then_match }
          end
        end
        paths[i] = p
        states[i] = check_states(d, get_path(base, p), matches)
      end
      if usable and #names > 0 then
        local total = 1
        for i = 1, #states do
          total = total * #states[i]
        end
        local step = total > MAX_COMBOS and math.ceil(total / MAX_COMBOS) or 1
        for n = 0, total - 1, step do
          local cfg = copy(base)
          local parts = {}
          local rest = n
          for i = 1, #states do
            local s = states[i][rest % #states[i] + 1]
            rest = floor(rest / #states[i])
            set_path(cfg, paths[i], copy(s[2]))
            parts[#parts + 1] = concat(paths[i], ".") .. "=" .. s[1]
          end
          add(fmt("check%d:%s:%s", ci, cname, concat(parts, ",")), cfg)
        end
      end
    end
  end

  -- verdicts and Config
  local cases = {}
  for i, input in ipairs(inputs) do
    local scope = SCOPES[(i - 1) % #SCOPES + 1]
    local keys = {
      name = plugin_schema.name,
      route_id = scope.route and ROUTE_ID or nil,
      service_id = scope.service and SERVICE_ID or nil,
      consumer_id = scope.consumer and CONSUMER_ID or nil,
      instance_name = scope.instance_name and fmt("%s-%d", plugin_schema.name, i) or nil,
      plugin_id = fmt("00000000-0000-4000-8000-%012d", i),
      ws_id = WS_ID,
      seq = i,
    }
    local processed, errs, schema_err = schema.validate_config(plugin_schema, input.config, vopts)
    if schema_err then
      error("case " .. input.label .. ": " .. schema.flat_errors(errs), 0)
    end
    if processed then
      local cfg, refs = schema.config_for_server(plugin_schema, processed, vopts)
      if refs then
        error("case " .. input.label .. ": a vault reference (Kong sends the secret)", 0)
      end
      schema.add_kong_keys(cfg, keys, vopts)
      local text, eerr = _M.encode(cfg)
      if text then
        cases[#cases + 1] = { "accept", input.label, text, _M.expectation(text) }
      else
        cases[#cases + 1] = { "noencode", input.label, "-", eerr }
      end
    else
      local raw = input.config
      if type(raw) == "table" then
        raw = copy(raw)
        local extra = schema.add_kong_keys({}, keys, vopts)
        for k, v in pairs(extra) do
          if raw[k] == nil then
            raw[k] = v
          end
        end
      end
      local text = input.absent and "{}" or assert(_M.encode(raw, true))
      cases[#cases + 1] = { "refuse", input.label, text, schema.flat_errors(errs) }
    end
  end
  return cases
end

-- What the server must hold after StartInstance, from the Config text as
-- Kong sends it (decoded again: numbers as the 16 digits give them back),
-- Kong's own keys left out; compared by conformance.c with the Config the
-- server returns (fields Kong leaves out get the server's default: not
-- compared).  One line, no tabs:
--   N null, T true, F false, n<%.17g>; number, s<hex>; string,
--   e empty table ({} and [] are one thing to Kong), a<count>; items,
--   o<count>; then <hex key>; value, keys sorted
local KONG_KEYS = {
  route_id = true, service_id = true, consumer_id = true, plugin_instance_name = true,
  __plugin_id = true, __ws_id = true, __key__ = true, __seq__ = true,
}

local function hex(s)
  return (s:gsub(".", function(c)
    return fmt("%02x", byte(c))
  end))
end

local function compact(v, out)
  local t = type(v)
  if v == nil or v == null then
    out[#out + 1] = "N"
  elseif t == "boolean" then
    out[#out + 1] = v and "T" or "F"
  elseif t == "number" then
    out[#out + 1] = fmt("n%.17g;", v)
  elseif t == "string" then
    out[#out + 1] = "s" .. hex(v) .. ";"
  elseif t == "table" then
    if next(v) == nil then
      out[#out + 1] = "e"
    elseif schema.is_sequence(v) then
      out[#out + 1] = fmt("a%d;", #v)
      for i = 1, #v do
        compact(v[i], out)
      end
    else
      local keys = schema.sorted_keys(v)
      out[#out + 1] = fmt("o%d;", #keys)
      for _, k in ipairs(keys) do
        out[#out + 1] = hex(tostring(k)) .. ";"
        compact(v[k], out)
      end
    end
  end
end

function _M.expectation(config_text)
  local v = json.decode(config_text)
  local fields = {}
  for k, x in pairs(v) do
    if not KONG_KEYS[k] then
      fields[k] = x
    end
  end
  if next(fields) == nil then
    return "o0;"
  end
  local out = {}
  compact(fields, out)
  return concat(out)
end

-- printable on one line: control bytes, tabs and bytes >= 0x80 as \xNN
function _M.printable(s)
  return (s:gsub("[%c\128-\255\\]", function(c)
    if c == "\\" then
      return "\\\\"
    end
    return fmt("\\x%02x", byte(c))
  end))
end

return _M
