-- Plugin schemas of external plugins: Kong's checks of the dumped plugin info
-- and Kong's validation of a plugin config, written for this project after
-- reading Kong's code (no Kong code copied):
--
--   kong/db/schema/metaschema.lua   MetaSubSchema (validate_info: attributes,
--                                   attribute/type pairs, default validates)
--   kong/db/schema/entity.lua       make_records_required (new_subschema)
--   kong/db/schema/init.lua         validate_field, validators and their
--                                   order, validate_fields, Schema:validate,
--                                   run_entity_check and the entity checkers,
--                                   process_auto_fields / adjust_field_for_context /
--                                   handle_missing_field ("insert" and "select")
--   kong/runloop/plugins_iterator.lua  get_plugin_config (the keys Kong adds)
--   kong/db/declarative/init.lua    pretty_print_error (kong start's message)
--
-- Checked against the tags 3.0.0, 3.4.2 and 3.9.3 of Kong's repository;
-- where they differ the code says so and follows opts.minor (3.<minor>).
--
-- Pure Lua (LuaJIT 2.1, the engine Kong runs, plus lua-cjson through
-- gateway/json.lua), so it runs inside the gateway and under plain `luajit`
-- (test/conformance/gen_cases.lua).  Patterns are Lua patterns, matched with
-- string.match exactly as Kong does.
--
-- What a config goes through in Kong, and the functions here:
--   1. the plugin entity is processed ("insert": defaults filled, unset
--      optional fields become null, an explicit null stays null) and
--      validated (types, validators, required, unknown keys, the config
--      record's and the plugin schema's entity_checks)  -> validate_config
--   2. it is stored, and read back by the plugins iterator through the DAO
--      (process_auto_fields "select" without `nulls`: every null is dropped,
--      a null required field takes its default, "" in a string field with
--      len_min > 0 is dropped, unknown keys are dropped) -> config_for_server
--   3. get_plugin_config adds route_id, service_id, consumer_id,
--      plugin_instance_name, __plugin_id, __ws_id, __key__, __seq__
--                                                        -> add_kong_keys
--   4. rpc/mp_rpc.lua sends cjson.encode(conf) as Config; cjson refuses NaN
--      and +-Inf, and then Config is nil (no Config key at all).

local json = require "gateway.json"

local null = json.null
local array_mt = json.array_mt

local type, pairs, ipairs, next, tostring = type, pairs, ipairs, next, tostring
local getmetatable, setmetatable, rawget = getmetatable, setmetatable, rawget
local floor, huge = math.floor, math.huge
local fmt, sub, find, byte = string.format, string.sub, string.find, string.byte
local concat, insert, sort = table.concat, table.insert, table.sort

local _M = {}

-- the Kong version followed when opts.minor is not given (3.<minor>)
_M.DEFAULT_MINOR = 9

---------------------------------------------------------------------------
-- plugin info (metaschema.lua MetaSubSchema, dao/plugins.lua)
---------------------------------------------------------------------------

local FIELD_TYPES = {
  string = true, number = true, integer = true, boolean = true, array = true,
  set = true, map = true, record = true, foreign = true, json = true,
}

-- field attributes MetaSubSchema knows (field_schema + validators +
-- the recursive ones), metaschema.lua 3.9.3; anything else: unknown field
local FIELD_ATTRS = {
  type = true, required = true, reference = true, description = true,
  examples = true, auto = true, unique = true, unique_across_ws = true,
  on_delete = true, default = true, abstract = true, generate_admin_api = true,
  immutable = true, err = true, encrypted = true, referenceable = true,
  json_schema = true, transient = true, deprecation = true,
  between = true, eq = true, ne = true, gt = true, len_eq = true,
  len_min = true, len_max = true, match = true, not_match = true,
  match_all = true, match_none = true, match_any = true, starts_with = true,
  one_of = true, not_one_of = true, contains = true, is_regex = true,
  timestamp = true, uuid = true, custom_validator = true,
  mutually_exclusive_subsets = true,
  elements = true, keys = true, values = true, fields = true,
  entity_checks = true, shorthand_fields = true,
  -- not in MetaSubSchema, kept because earlier gateway versions allowed them
  nilable = true, indexed = true, legacy = true, translate_backwards = true,
  coerce = true,
}

-- attributes later metaschemas added (metaschema.lua at each tag): an older
-- Kong refuses them as unknown fields; 3.0-3.3 refuse `description`
local ATTR_SINCE = {
  description = 4, json_schema = 5, examples = 6, deprecation = 7, transient = 8,
}
local attr_minor = 9 -- of the validate_info in progress

-- metaschema.lua attribute_types: attribute -> the types that may carry it
local ATTR_TYPES = {
  between = { integer = true, number = true },
  len_eq = { array = true, set = true, string = true, map = true },
  match = { string = true },
  one_of = { string = true, number = true, integer = true },
  contains = { array = true, set = true },
  is_regex = { string = true },
  timestamp = { number = true, integer = true },
  uuid = { string = true },
  unique = { string = true, number = true, integer = true, foreign = true },
  unique_across_ws = { string = true, number = true, integer = true, foreign = true },
  abstract = { string = true, number = true, integer = true, record = true,
               array = true, set = true, map = true },
  json_schema = { json = true },
  transient = { string = true, number = true, integer = true, array = true,
                set = true, boolean = true },
}

-- the top-level keys of a plugin schema (MetaSubSchema's fields)
local SCHEMA_KEYS = {
  name = true, fields = true, entity_checks = true, shorthand_fields = true,
  transformations = true, check = true,
}

-- fields of the plugins entity a plugin schema may specialize
-- (kong/db/schema/entities/plugins.lua; Entity.new_subschema refuses others)
local PLUGIN_TOP_FIELDS = {
  config = true, protocols = true, consumer = true, route = true,
  service = true, consumer_group = true, instance_name = true, id = true,
  name = true, enabled = true, tags = true, ordering = true,
  created_at = true, updated_at = true,
}

local ENTITY_CHECK_NAMES = {
  at_least_one_of = true, conditional_at_least_one_of = true,
  only_one_of = true, distinct = true, conditional = true,
  custom_entity_check = true, mutually_required = true,
  mutually_exclusive = true, mutually_exclusive_sets = true,
}

local function each_field(fields)
  local i = 0
  return function()
    i = i + 1
    local entry = fields[i]
    if entry == nil then
      return nil
    end
    local name, def = next(entry)
    return name, def, entry
  end
end

local check_fields

local function check_field(def, path)
  if type(def) ~= "table" then
    return nil, path .. ": field definition must be a table"
  end
  if not FIELD_TYPES[def.type] then
    return nil, path .. ": unknown type " .. tostring(def.type)
  end
  for k in pairs(def) do
    if not FIELD_ATTRS[k] or (ATTR_SINCE[k] and attr_minor < ATTR_SINCE[k]) then
      return nil, path .. ": unknown attribute '" .. tostring(k) .. "'"
    end
    if ATTR_TYPES[k] and not ATTR_TYPES[k][def.type] then
      return nil, path .. ": field of type '" .. def.type .. "' cannot have attribute '" .. k .. "'"
    end
  end
  if def.description ~= nil then
    if type(def.description) ~= "string" or #def.description < 10 or #def.description > 500 then
      return nil, path .. ": description must be a string of 10 to 500 characters"
    end
  end
  if (def.type == "array" or def.type == "set") and type(def.elements) ~= "table" then
    return nil, path .. ": field of type '" .. def.type .. "' must declare 'elements'"
  end
  if def.type == "map" and (type(def.keys) ~= "table" or type(def.values) ~= "table") then
    return nil, path .. ": field of type 'map' must declare 'keys' and 'values'"
  end
  for _, nested in ipairs({ "elements", "keys", "values" }) do
    if def[nested] ~= nil then
      local ok, err = check_field(def[nested], path .. "." .. nested)
      if not ok then
        return nil, err
      end
    end
  end
  if def.entity_checks ~= nil then
    local ok, err = _M.check_entity_checks(def.entity_checks, path)
    if not ok then
      return nil, err
    end
  end
  if def.type == "record" then
    return check_fields(def.fields, path)
  end
  return true
end

function check_fields(fields, path)
  if type(fields) ~= "table" then
    return nil, path .. ": field of type 'record' must declare 'fields'"
  end
  for i, entry in ipairs(fields) do
    if type(entry) ~= "table" then
      return nil, path .. ": each entry in fields must be a sub-table (#" .. i .. ")"
    end
    local n = 0
    for _ in pairs(entry) do n = n + 1 end
    if n ~= 1 then
      return nil, path .. ": field #" .. i .. " must have exactly one key"
    end
    local name, def = next(entry)
    local ok, err = check_field(def, path .. "." .. tostring(name))
    if not ok then
      return nil, err
    end
  end
  return true
end

-- entity_checks: an array of single-key tables naming a known checker
function _M.check_entity_checks(checks, path)
  if type(checks) ~= "table" then
    return nil, path .. ": entity_checks must be an array"
  end
  for i, check in ipairs(checks) do
    local n = 0
    if type(check) == "table" then
      for _ in pairs(check) do n = n + 1 end
    end
    if n ~= 1 then
      return nil, path .. ": entity_checks[" .. i .. "] must have exactly one key"
    end
    local name = next(check)
    if not ENTITY_CHECK_NAMES[name] then
      return nil, path .. ": entity_checks[" .. i .. "]: unknown entity check '" .. tostring(name) .. "'"
    end
  end
  return true
end

-- info: {name, PRIORITY, VERSION, schema, phases} as built by process.lua;
-- minor: the Kong 3.<minor> whose metaschema applies (default: the newest)
function _M.validate_info(info, minor)
  attr_minor = minor or _M.DEFAULT_MINOR
  if type(info.name) ~= "string" or info.name == "" then
    return nil, "plugin info has no Name"
  end
  local p = info.PRIORITY
  if type(p) ~= "number" or p ~= math.floor(p) then
    return nil, "Priority of " .. info.name .. " must be an integer"
  end
  local v = info.VERSION
  if type(v) ~= "string" or not (v:match("^%d+$") or v:match("^%d+%.%d+$")
                                or v:match("^%d+%.%d+%.%d+$")) then
    return nil, "Version of " .. info.name .. " must be a string like \"1.2.3\""
  end
  if type(info.phases) ~= "table" then
    return nil, "Phases of " .. info.name .. " must be an array"
  end
  local s = info.schema
  if type(s) ~= "table" or type(s.name) ~= "string" or type(s.fields) ~= "table" then
    return nil, "Schema of " .. info.name .. " needs 'name' and 'fields'"
  end
  for k in pairs(s) do
    if not SCHEMA_KEYS[k] then
      return nil, "schema of " .. info.name .. ": in '" .. tostring(k) .. "': unknown field"
    end
  end
  local has_config = false
  for name, def in each_field(s.fields) do
    if not PLUGIN_TOP_FIELDS[name] then
      return nil, "schema of " .. info.name .. ": cannot create a new field '" .. tostring(name) .. "'"
    end
    if name == "config" then
      has_config = true
      if type(def) ~= "table" or def.type ~= "record" then
        return nil, "schema of " .. info.name .. ": config must be a record"
      end
    end
  end
  if not has_config then
    return nil, "schema of " .. info.name .. " has no config record"
  end
  if s.entity_checks ~= nil then
    local ok, err = _M.check_entity_checks(s.entity_checks, info.name)
    if not ok then
      return nil, err
    end
  end
  local ok, err = check_fields(s.fields, info.name)
  if not ok then
    return nil, err
  end
  return true
end

---------------------------------------------------------------------------
-- values (init.lua: validation_errors, is_nonempty, is_sequence, ...)
---------------------------------------------------------------------------

-- Kong's messages (validation_errors), the ones config validation can produce
local E = {
  ARRAY = "expected an array",
  SET = "expected a set",
  MAP = "expected a map",
  RECORD = "expected a record",
  STRING = "expected a string",
  NUMBER = "expected a number",
  BOOLEAN = "expected a boolean",
  INTEGER = "expected an integer",
  FUNCTION = "expected a function",
  EQ = "value must be %s",
  NE = "value must not be %s",
  GT = "value must be greater than %s",
  BETWEEN = "value should be between %d and %d",
  LEN_EQ = "length must be %d",
  LEN_MIN = "length must be at least %d",
  LEN_MAX = "length must be at most %d",
  MATCH = "invalid value: %s",
  NOT_MATCH = "invalid value: %s",
  MATCH_ALL = "invalid value: %s",
  MATCH_NONE = "invalid value: %s",
  MATCH_ANY = "invalid value: %s",
  STARTS_WITH = "should start with: %s",
  CONTAINS = "expected to contain: %s",
  ONE_OF = "expected one of: %s",
  NOT_ONE_OF = "must not be one of: %s",
  IS_REGEX = "not a valid regex: %s",
  TIMESTAMP = "expected a valid timestamp",
  UUID = "expected a valid UUID",
  VALIDATION = "failed validating: %s",
  REQUIRED = "required field missing",
  UNKNOWN = "unknown field",
  REQUIRED_FOR_ENTITY_CHECK = "field required for entity check",
  ENTITY_CHECK = "failed entity check: %s(%s)",
  CONDITIONAL = "failed conditional validation given value of field '%s'",
  AT_LEAST_ONE_OF = "at least one of these fields must be non-empty: %s",
  CONDITIONAL_AT_LEAST_ONE_OF = "at least one of these fields must be non-empty: %s",
  ONLY_ONE_OF = "exactly one of these fields must be non-empty: %s",
  DISTINCT = "values of these fields must be distinct: %s",
  MUTUALLY_REQUIRED = "all or none of these fields must be set: %s",
  MUTUALLY_EXCLUSIVE = "only one or none of these fields must be set: %s",
  MUTUALLY_EXCLUSIVE_SETS = "these sets are mutually exclusive: %s",
  SUBSCHEMA_ABSTRACT_FIELD = "error in schema definition: abstract field was not specialized",
  SCHEMA_TYPE = "invalid type: %s",
}
_M.ERRORS = E

-- A schema feature that cannot be judged here (functions, JSON schemas,
-- auto fields...): raised, and reported by validate_config as a schema error.
local function unsupported(what)
  error({ unsupported = what }, 0)
end

-- nil, null, {} and "" are empty; false and 0 are not
local function is_nonempty(value)
  if value == nil or value == null
     or (type(value) == "table" and not next(value))
     or (type(value) == "string" and value == "") then
    return false
  end
  return true
end
_M.is_nonempty = is_nonempty

-- keys 1..n and nothing else; the empty table is a sequence
local function is_sequence(t)
  if type(t) ~= "table" then
    return false
  end
  local m, c = 0, 0
  for k in pairs(t) do
    c = c + 1
    if t[c] == nil then
      return false
    end
    if type(k) ~= "number" or k < 0 or floor(k) ~= k then
      return false
    end
    if k > m then
      m = k
    end
  end
  return c == m
end
_M.is_sequence = is_sequence

-- "{vault://...}" (kong/pdk/vault.lua is_reference)
local function is_reference(s)
  return type(s) == "string" and sub(s, 1, 9) == "{vault://" and byte(s, -1) == 125
end

-- t.a.b.c for "a.b.c"; nil through null or a missing level
local function get_field(tbl, name)
  if tbl == nil or tbl == null then
    return nil
  end
  if type(tbl) ~= "table" then
    -- Kong indexes the value anyway (a string yields string.* functions);
    -- only reached when the parent already failed its type check
    return nil
  end
  local dot = find(name, ".", 1, true)
  if not dot then
    return tbl[name]
  end
  return get_field(tbl[sub(name, 1, dot - 1)], sub(name, dot + 1))
end

local function set_field(tbl, name, value)
  local dot = find(name, ".", 1, true)
  if not dot then
    tbl[name] = value
    return
  end
  local hd, tl = sub(name, 1, dot - 1), sub(name, dot + 1)
  local subtbl = tbl[hd]
  if subtbl == nil then
    subtbl = {}
    tbl[hd] = subtbl
  end
  if type(subtbl) ~= "table" then
    -- Kong raises here (a string error already sits at this level)
    return
  end
  set_field(subtbl, tl, value)
end

local function deep_copy(v, keep_mt)
  if type(v) ~= "table" then
    return v
  end
  local t = {}
  for k, x in pairs(v) do
    t[k] = deep_copy(x, keep_mt)
  end
  if keep_mt then
    setmetatable(t, getmetatable(v))
  end
  return t
end

-- "'a', 'b'"; nested lists as "('a', 'b')"
local function quoted_list(words)
  local out = {}
  for i = 1, #words do
    local w = words[i]
    if type(w) == "table" then
      out[#out + 1] = "(" .. quoted_list(w) .. ")"
    else
      out[#out + 1] = "'" .. tostring(w) .. "'"
    end
  end
  return concat(out, ", ")
end

---------------------------------------------------------------------------
-- records: a field list by name, like Schema.new
---------------------------------------------------------------------------

local compiled = setmetatable({}, { __mode = "k" })

local function compile_record(def)
  local c = compiled[def]
  if c then
    return c
  end
  c = { def = def, names = {}, by_name = {}, entity_checks = def.entity_checks, ttl = def.ttl }
  local fields = def.fields
  if type(fields) ~= "table" then
    unsupported("a record without fields")
  end
  for i, entry in ipairs(fields) do
    local name, fdef = next(entry)
    c.names[i] = name
    c.by_name[name] = fdef
  end
  if def.shorthand_fields then
    unsupported("shorthand_fields (functions)")
  end
  if def.transformations then
    unsupported("transformations (functions)")
  end
  compiled[def] = c
  return c
end

-- field definition for "a.b.c" (get_schema_field)
local function get_schema_field(rec, name)
  if rec == nil then
    return nil
  end
  local dot = find(name, ".", 1, true)
  if not dot then
    return rec.by_name[name]
  end
  local hd = rec.by_name[sub(name, 1, dot - 1)]
  if type(hd) ~= "table" or hd.type ~= "record" then
    return nil
  end
  return get_schema_field(compile_record(hd), sub(name, dot + 1))
end

-- validate_elements / the map branch set `required = true` on elements,
-- keys and values (Kong writes it into the definition)
local required_views = setmetatable({}, { __mode = "k" })
local function required_view(def)
  if def.required == true then
    return def
  end
  local v = required_views[def]
  if not v then
    v = setmetatable({ required = true }, { __index = def })
    required_views[def] = v
  end
  return v
end

---------------------------------------------------------------------------
-- validators (Schema.validators, Schema.validators_order)
---------------------------------------------------------------------------

local function length_of(value, field)
  local len = #value
  if field.type == "map" then
    for _ in pairs(value) do
      len = len + 1
    end
  end
  return len
end

local V = {}

function V.between(value, limits)
  if value < limits[1] or value > limits[2] then
    return nil, fmt(E.BETWEEN, limits[1], limits[2])
  end
  return true
end

function V.eq(value, wanted)
  if value == wanted then
    return true
  end
  return nil, fmt(E.EQ, wanted == null and "null" or tostring(wanted))
end

function V.ne(value, wanted)
  if value ~= wanted then
    return true
  end
  return nil, fmt(E.NE, wanted == null and "null" or tostring(value))
end

function V.gt(value, limit)
  if value > limit then
    return true
  end
  return nil, fmt(E.GT, tostring(limit))
end

function V.len_eq(value, n, field)
  if length_of(value, field) == n then
    return true
  end
  return nil, fmt(E.LEN_EQ, n)
end

function V.len_min(value, n, field)
  if length_of(value, field) >= n then
    return true
  end
  return nil, fmt(E.LEN_MIN, n)
end

function V.len_max(value, n, field)
  if length_of(value, field) <= n then
    return true
  end
  return nil, fmt(E.LEN_MAX, n)
end

function V.match(value, pattern)
  if not value:match(pattern) then
    return nil, fmt(E.MATCH, value)
  end
  return true
end

function V.is_regex(value)
  -- PCRE (ngx.re); not available under plain luajit
  if not (ngx and ngx.re) then
    unsupported("is_regex outside nginx")
  end
  local _, err = ngx.re.match("any string", value)
  return err == nil
end

function V.not_match(value, pattern)
  if value:match(pattern) then
    return nil, fmt(E.NOT_MATCH, value)
  end
  return true
end

function V.match_all(value, list)
  for i = 1, #list do
    if not value:match(list[i].pattern) then
      return nil, list[i].err
    end
  end
  return true
end

function V.match_none(value, list)
  for i = 1, #list do
    if value:match(list[i].pattern) then
      return nil, list[i].err
    end
  end
  return true
end

function V.match_any(value, arg)
  local patterns = arg.patterns
  for i = 1, #patterns do
    if value:match(patterns[i]) then
      return true
    end
  end
  return nil, arg.err
end

function V.starts_with(value, expected)
  if sub(value, 1, #expected) ~= expected then
    return nil, fmt(E.STARTS_WITH, expected)
  end
  return true
end

function V.one_of(value, options)
  for i = 1, #options do
    if value == options[i] then
      return true
    end
  end
  return nil, fmt(E.ONE_OF, concat(options, ", "))
end

function V.not_one_of(value, options)
  for i = 1, #options do
    if value == options[i] then
      return nil, fmt(E.NOT_ONE_OF, concat(options, ", "))
    end
  end
  return true
end

function V.timestamp(value)
  return value > 0 or nil
end

-- Kong: #value == 36 and ngx.re.find(uuid_regex, "ioj")
local UUID_PATTERN = "^" .. ("%x"):rep(8) .. "%-" .. ("%x"):rep(4) .. "%-" .. ("%x"):rep(4)
                     .. "%-" .. ("%x"):rep(4) .. "%-" .. ("%x"):rep(12) .. "$"
function V.uuid(value)
  if #value ~= 36 then
    return nil
  end
  return value:find(UUID_PATTERN) and true or nil
end

function V.contains(array, wanted)
  for i = 1, #array do
    if array[i] == wanted then
      return true
    end
  end
  return nil, fmt(E.CONTAINS, tostring(wanted))
end

function V.mutually_exclusive_subsets(value, subsets)
  local union = {}
  for i = 1, #subsets do
    for j = 1, #subsets[i] do
      union[subsets[i][j]] = subsets[i]
    end
  end
  local member_of = {}
  for i = 1, #value do
    local s = union[value[i]]
    if s and not member_of[s] then
      member_of[s] = true
      member_of[#member_of + 1] = s
    end
  end
  if #member_of <= 1 then
    return true
  end
  return nil, fmt(E.MUTUALLY_EXCLUSIVE_SETS, quoted_list(member_of))
end

function V.custom_validator()
  unsupported("custom_validator (a function)")
end

local VALIDATORS_ORDER = {
  "eq", "ne", "not_one_of", "one_of",
  "gt", "timestamp", "uuid", "is_regex", "between",
  "len_eq", "len_min", "len_max",
  "starts_with", "not_match", "match_none", "match", "match_all", "match_any",
  "contains",
  "custom_validator", "mutually_exclusive_subsets",
}

---------------------------------------------------------------------------
-- process_auto_fields (insert and select contexts)
---------------------------------------------------------------------------

local set_mt = { __name = "set" }       -- Kong's Set_mt: encodes as an array

local process_auto_fields

local function make_array(t)
  if is_sequence(t) then
    return setmetatable(t, array_mt)
  end
  return t
end

local function make_set(t)
  if not is_sequence(t) then
    return t
  end
  if #t == 0 then
    return setmetatable(t, array_mt)
  end
  local o, seen = {}, {}
  for i = 1, #t do
    local v = t[i]
    if not seen[v] then
      seen[v] = true
      o[#o + 1] = v
    end
  end
  return setmetatable(o, set_mt)
end

local function handle_missing_field(field, value, ctx)
  if field.default ~= nil then
    local copy = deep_copy(field.default, true)
    if (field.type == "array" or field.type == "set") and type(copy) == "table"
       and not getmetatable(copy) then
      setmetatable(copy, array_mt)
    end
    return copy
  end
  if field.nilable then
    return value
  end
  if field.required ~= true then
    return null            -- not required: nullable
  end
  if field.abstract then
    return nil
  end
  if field.type == "record" then
    -- a missing required record is expanded to get its nested defaults
    return process_auto_fields(compile_record(field), {}, "insert", ctx)
  end
  return nil               -- required: fails later
end

local function should_recurse_record(context, value, field)
  if context == "update" then
    return value ~= null and value ~= nil
  end
  return value ~= null and (value ~= nil or field.required == true)
end

local function adjust_field_for_context(field, value, context, ctx)
  if context == "select" and value == null and field.required == true then
    return handle_missing_field(field, value, ctx)
  end
  if field.abstract then
    return value
  end
  if field.type == "record" then
    if should_recurse_record(context, value, field) then
      value = value or handle_missing_field(field, value, ctx)
      if type(value) == "table" then
        return process_auto_fields(compile_record(field), value, context, ctx)
      end
    end
  elseif type(value) == "table" then
    local subfield
    if field.type == "array" then
      value = make_array(value)
      subfield = field.elements
    elseif field.type == "set" then
      value = make_set(value)
      subfield = field.elements
    elseif field.type == "map" then
      subfield = field.values
    end
    if subfield then
      -- 3.9.3 walks with pairs (holes too); 3.0.0 walked 1..#value for
      -- arrays and sets: the same for the sequences validation lets through
      for k, v in pairs(value) do
        value[k] = adjust_field_for_context(subfield, v, context, ctx)
      end
    end
  end
  if value == nil and context ~= "update" then
    return handle_missing_field(field, value, ctx)
  end
  return value
end

function process_auto_fields(rec, data, context, ctx)
  local is_select = context == "select"
  if not is_select then
    data = deep_copy(data, true)
  end
  for _, key in ipairs(rec.names) do
    local field = rec.by_name[key]
    if field.auto and not is_select then
      unsupported("auto fields (generated values)")
    end
    local value = adjust_field_for_context(field, data[key], context, ctx)
    if is_select then
      if value == null then
        value = nil                        -- no `nulls` option on this path
      elseif field.type == "integer" and type(value) == "number" then
        value = floor(value)
      end
      if field.referenceable and is_reference(value) then
        ctx.references = true              -- resolved through kong.vault here
      end
    end
    data[key] = value
  end
  if is_select then
    for key in pairs(data) do
      local field = rec.by_name[key]
      if field then
        if field.type == "string" and (field.len_min or 1) > 0 and data[key] == "" then
          data[key] = nil
        end
      elseif not ((key == "ttl" and rec.ttl) or (key == "ws_id" and ctx.show_ws_id)) then
        data[key] = nil
      end
    end
  end
  return data
end

---------------------------------------------------------------------------
-- validate_field, Schema:validate, entity checks
---------------------------------------------------------------------------

local validate_record

local function validate_field(field, value, ctx)
  if value == null then
    if field.ne == null then
      return nil, field.err or fmt(E.NE, "null")
    end
    if field.eq ~= nil and field.eq ~= null then
      return nil, fmt(E.EQ, tostring(field.eq))
    end
    if field.required then
      return nil, E.REQUIRED
    end
    return true
  end

  if field.eq == null then
    return nil, field.err or fmt(E.EQ, "null")
  end
  if field.abstract then
    return nil, E.SUBSCHEMA_ABSTRACT_FIELD
  end

  local ftype = field.type
  local len_min = field.len_min
  if ftype == "array" or ftype == "set" then
    if not is_sequence(value) then
      return nil, ftype == "array" and E.ARRAY or E.SET
    end
    local elements = required_view(field.elements)
    local errs, all_ok = {}, true
    for i = 1, #value do
      local ok, err = validate_field(elements, value[i], ctx)
      if not ok then
        errs[i] = err
        all_ok = false
      end
    end
    if not all_ok then
      return nil, errs
    end

  elseif ftype == "map" then
    if type(value) ~= "table" then
      return nil, E.MAP
    end
    local keys, values = required_view(field.keys), required_view(field.values)
    -- Kong returns the first error pairs() meets; the verdict is the same
    -- in any order, the message may differ
    for k, v in pairs(value) do
      local ok, err = validate_field(keys, k, ctx)
      if not ok then
        return nil, err
      end
      ok, err = validate_field(values, v, ctx)
      if not ok then
        return nil, err
      end
    end

  elseif ftype == "record" then
    if type(value) ~= "table" then
      return nil, E.RECORD
    end
    local rec = compile_record(field)
    local copy = process_auto_fields(rec, value, "insert", ctx)
    local ok, err = validate_record(rec, copy, true, ctx)
    if not ok then
      return nil, err
    end

  elseif ftype == "integer" then
    -- NaN fails value == floor(value); +-inf are excluded by name
    if not (type(value) == "number" and value == floor(value)
            and value ~= huge and value ~= -huge) then
      return nil, E.INTEGER
    end

  elseif ftype == "string" then
    if type(value) ~= "string" then
      return nil, E.STRING
    end
    -- empty strings are refused by default: Kong sets len_min = 1
    if len_min == nil then
      len_min = 1
    end
    if field.referenceable and is_reference(value) then
      return true
    end

  elseif ftype == "number" or ftype == "boolean" then
    -- any Lua number, NaN and +-inf included
    if type(value) ~= ftype then
      return nil, E[ftype:upper()]
    end

  elseif ftype == "foreign" or ftype == "json" or ftype == "function" then
    unsupported("fields of type " .. ftype)

  elseif ftype ~= "any" then
    return nil, fmt(E.SCHEMA_TYPE, tostring(ftype))
  end

  for i = 1, #VALIDATORS_ORDER do
    local k = VALIDATORS_ORDER[i]
    local arg
    if k == "len_min" then
      arg = len_min
    else
      arg = field[k]
    end
    if arg ~= nil then
      local ok, err = V[k](value, arg, field)
      if not ok then
        if not err then
          err = fmt(E[k:upper()] or E.VALIDATION, tostring(value))
        end
        return nil, field.err or err
      end
    end
  end
  return true
end

local function insert_entity_error(errors, err)
  errors["@entity"] = errors["@entity"] or {}
  insert(errors["@entity"], err)
end

-- a view of if_match/then_match/else_match: its own attributes first, then
-- the named field's (Kong sets the field as the table's __index)
local function match_view(match, field)
  local v = {}
  for k, x in pairs(match) do
    v[k] = x
  end
  return setmetatable(v, { __index = field })
end

local function schema_field_or_fail(rec, name)
  local f = get_schema_field(rec, name)
  if f == nil then
    unsupported("an entity check naming the unknown field '" .. tostring(name) .. "'")
  end
  return f
end

-- Schema.entity_checkers: flags and functions (fn(entity, arg, rec, errors, ctx))
local CHECKERS = {}

CHECKERS.at_least_one_of = {
  run_with_missing_fields = true,
  run_with_invalid_fields = true,
  fn = function(entity, names)
    for i = 1, #names do
      if is_nonempty(get_field(entity, names[i])) then
        return true
      end
    end
    return nil, quoted_list(names)
  end,
}

CHECKERS.conditional_at_least_one_of = {
  run_with_missing_fields = true,
  run_with_invalid_fields = true,
  field_sources = { "if_field", "then_at_least_one_of", "else_then_at_least_one_of" },
  -- Kong writes this one as the list { "if_field" }, so that no field is
  -- looked up as required by name
  required_fields = { "if_field" },
  fn = function(entity, arg, rec, errors, ctx)
    local if_value = get_field(entity, arg.if_field)
    if if_value == nil then
      return true
    end
    local if_def = schema_field_or_fail(rec, arg.if_field)
    if not validate_field(match_view(arg.if_match, if_def), if_value, ctx) then
      if arg.else_match == nil then
        return true
      end
      if not validate_field(match_view(arg.else_match, if_def), if_value, ctx) then
        return true
      end
      local names = arg.else_then_at_least_one_of
      for i = 1, #names do
        if is_nonempty(get_field(entity, names[i])) then
          return true
        end
      end
      local list = quoted_list(names)
      return nil, list, arg.else_then_err and fmt(arg.else_then_err, list) or nil
    end
    local names = arg.then_at_least_one_of
    for i = 1, #names do
      if is_nonempty(get_field(entity, names[i])) then
        return true
      end
    end
    local list = quoted_list(names)
    return nil, list, arg.then_err and fmt(arg.then_err, list) or nil
  end,
}

CHECKERS.only_one_of = {
  run_with_missing_fields = false,
  run_with_invalid_fields = true,
  fn = function(entity, names)
    local found, ok = false, false
    for i = 1, #names do
      if is_nonempty(get_field(entity, names[i])) then
        if not found then
          found, ok = true, true
        else
          ok = false
        end
      end
    end
    if ok then
      return true
    end
    return nil, quoted_list(names)
  end,
}

CHECKERS.distinct = {
  run_with_missing_fields = false,
  run_with_invalid_fields = true,
  fn = function(entity, names)
    local seen = {}
    for i = 1, #names do
      local value = get_field(entity, names[i])
      if is_nonempty(value) then
        if seen[value] then
          return nil, quoted_list(names)
        end
        seen[value] = true
      end
    end
    return true
  end,
}

CHECKERS.conditional = {
  run_with_missing_fields = false,
  run_with_invalid_fields = true,
  field_sources = { "if_field", "then_field" },
  required_fields = { if_field = true },
  fn = function(entity, arg, rec, errors, ctx)
    local if_value = get_field(entity, arg.if_field)
    local then_value = get_field(entity, arg.then_field)
    if then_value == nil then
      then_value = null
    end
    local if_def = schema_field_or_fail(rec, arg.if_field)
    if not validate_field(match_view(arg.if_match, if_def), if_value, ctx) then
      return true
    end
    -- `required` in then_match, read before Kong gives then_match its
    -- __index: the then_match's own attribute (on a first validation; Kong
    -- keeps the metatable afterwards, so later validations also see the
    -- field's own `required`, which already refuses null by itself)
    if rawget(arg.then_match, "required") == true and then_value == null then
      set_field(errors, arg.then_field, E.REQUIRED)
      return nil, arg.if_field
    end
    local then_def = schema_field_or_fail(rec, arg.then_field)
    local ok, err = validate_field(match_view(arg.then_match, then_def), then_value, ctx)
    if not ok then
      set_field(errors, arg.then_field, err)
      return nil, arg.if_field, arg.then_err and fmt(arg.then_err, arg.if_field) or nil
    end
    return true
  end,
}

CHECKERS.custom_entity_check = {
  fn = function()
    unsupported("custom_entity_check (a function)")
  end,
}

CHECKERS.mutually_required = {
  run_with_missing_fields = true,
  fn = function(entity, names)
    local n = 0
    for i = 1, #names do
      if is_nonempty(get_field(entity, names[i])) then
        n = n + 1
      end
    end
    if n == 0 or n == #names then
      return true
    end
    return nil, quoted_list(names)
  end,
}

CHECKERS.mutually_exclusive = {
  run_with_missing_fields = true,
  fn = function(entity, names)
    local n = 0
    for i = 1, #names do
      if is_nonempty(get_field(entity, names[i])) then
        n = n + 1
      end
    end
    if n <= 1 then
      return true
    end
    return nil, quoted_list(names)
  end,
}

CHECKERS.mutually_exclusive_sets = {
  run_with_missing_fields = true,
  field_sources = { "set1", "set2" },
  required_fields = { "set1", "set2" },     -- a list in Kong too
  fn = function(entity, arg)
    local ne1, ne2 = {}, {}
    for i = 1, #arg.set1 do
      if is_nonempty(get_field(entity, arg.set1[i])) then
        ne1[#ne1 + 1] = arg.set1[i]
      end
    end
    for i = 1, #arg.set2 do
      if is_nonempty(get_field(entity, arg.set2[i])) then
        ne2[#ne2 + 1] = arg.set2[i]
      end
    end
    if #ne1 > 0 and #ne2 > 0 then
      return nil, fmt("(%s), (%s)", quoted_list(ne1), quoted_list(ne2))
    end
    return true
  end,
}

-- run_entity_check: gives the checker only the fields it names; skips it
-- when a required one is missing (then "field required for entity check"),
-- when all are missing (unless run_with_missing_fields on a full check), or
-- when one has an error (unless run_with_invalid_fields)
local function run_entity_check(rec, name, input, arg, full_check, errors, ctx)
  local checker = CHECKERS[name]
  if not checker then
    unsupported("the entity check " .. tostring(name))
  end
  if type(arg) ~= "table" then
    unsupported("entity check " .. name .. " with a non-table argument")
  end
  -- run_with_missing_fields / run_with_invalid_fields in the argument: 3.2+
  local arg_flags = ctx.minor >= 2
  local fields_to_check, required_fields = {}, {}
  if checker.field_sources then
    for _, source in ipairs(checker.field_sources) do
      local v = arg[source]
      if type(v) == "string" then
        fields_to_check[#fields_to_check + 1] = v
        if checker.required_fields[source] then
          required_fields[v] = true
        end
      elseif type(v) == "table" then
        for j = 1, #v do
          fields_to_check[#fields_to_check + 1] = v[j]
          if checker.required_fields[source] then
            required_fields[v[j]] = true
          end
        end
      end
    end
  else
    fields_to_check = arg
    for i = 1, #arg do
      required_fields[arg[i]] = true
    end
  end

  local check_input = {}
  local missing
  local all_nil, all_ok = true, true
  for i = 1, #fields_to_check do
    local fname = fields_to_check[i]
    local value = get_field(input, fname)
    if value == nil then
      if not checker.run_with_missing_fields
         and not (arg_flags and arg.run_with_missing_fields)
         and required_fields[fname]
         and not schema_field_or_fail(rec, fname).nilable then
        missing = missing or {}
        missing[#missing + 1] = fname
      end
    else
      all_nil = false
      local field = get_schema_field(rec, fname)
      if field and field.type == "string" and field.referenceable and is_reference(value) then
        return
      end
    end
    -- the flat key: a dotted name ("config.x") never has an error here
    if errors[fname] then
      all_ok = false
    end
    set_field(check_input, fname, value)
  end

  if not all_ok and not checker.run_with_invalid_fields
     and not (arg_flags and arg.run_with_invalid_fields) then
    return
  end
  if all_nil and not (checker.run_with_missing_fields and full_check) then
    return
  end
  if missing then
    for i = 1, #missing do
      set_field(errors, missing[i], E.REQUIRED_FOR_ENTITY_CHECK)
    end
    return
  end

  local ok, err, err2 = checker.fn(check_input, arg, rec, errors, ctx)
  if ok then
    return
  end
  if err2 then
    insert_entity_error(errors, err2)
  else
    local efmt = E[name:upper()]
    err = efmt and fmt(efmt, err) or err
    if not err then
      err = fmt(E.ENTITY_CHECK, name, "...")
    end
    insert_entity_error(errors, err)
  end
end

local function run_entity_checks(rec, input, full_check, errors, ctx)
  local checks = rec.entity_checks
  if checks == nil or checks == null then
    return
  end
  for i = 1, #checks do
    local check = checks[i]
    local name = next(check)
    local arg = check[name]
    if arg and arg ~= null then
      run_entity_check(rec, name, input, arg, full_check, errors, ctx)
    end
  end
end

-- keys validate_fields skips: `ttl` when the schema has ttl (all versions),
-- `updated_at` always (unvalidated_fields, 3.3+): such a key is neither
-- validated nor refused as unknown
local function unvalidated(rec, k, ctx)
  if k == "ttl" and rec.ttl then
    return true
  end
  return k == "updated_at" and ctx.minor >= 3
end

-- Schema:validate (validate_fields, required, entity checks)
function validate_record(rec, input, full_check, ctx)
  local errors = {}
  for k, v in pairs(input) do
    local field = rec.by_name[tostring(k)]
    if field and field.type == "json" then
      unsupported("fields of type json")
    elseif not unvalidated(rec, k, ctx) then
      if field then
        local ok, err = validate_field(field, v, ctx)
        if not ok then
          errors[k] = err
        end
      elseif v == null and ctx.role == "data_plane" then -- luacheck: ignore
        -- hybrid data planes ignore unknown keys set to null
      else
        errors[k] = E.UNKNOWN
      end
    end
  end
  for _, name in ipairs(rec.names) do
    local field = rec.by_name[name]
    if field.required and (input[name] == null or (full_check and input[name] == nil)) then
      errors[name] = E.REQUIRED
    end
  end
  run_entity_checks(rec, input, full_check, errors, ctx)
  if next(errors) then
    return nil, errors
  end
  return true
end

---------------------------------------------------------------------------
-- the plugin schema (Entity.new_subschema)
---------------------------------------------------------------------------

-- records are required unless they say otherwise (entity.lua
-- make_records_required), through record fields, not through elements
local function make_records_required(def)
  if def.required == nil then
    def.required = true
  end
  for _, entry in ipairs(def.fields or {}) do
    local _, f = next(entry)
    if type(f) == "table" and f.type == "record" then
      make_records_required(f)
    end
  end
end

local plugins = setmetatable({}, { __mode = "k" })

local function compile_plugin(plugin_schema)
  local p = plugins[plugin_schema]
  if p then
    return p
  end
  if type(plugin_schema) ~= "table" or type(plugin_schema.fields) ~= "table" then
    unsupported("a plugin schema without fields")
  end
  local def = deep_copy(plugin_schema, true)
  make_records_required(def)
  def.required = nil
  local rec = compile_record(def)
  local config = rec.by_name.config
  if type(config) ~= "table" or config.type ~= "record" then
    unsupported("a plugin schema without a config record")
  end
  p = { def = def, rec = rec, config = config }
  plugins[plugin_schema] = p
  return p
end

local function make_ctx(opts)
  opts = opts or {}
  return {
    minor = opts.minor or _M.DEFAULT_MINOR,
    role = opts.role,                 -- "data_plane": see validate_record
    show_ws_id = true,                -- plugins_iterator's GLOBAL_QUERY_OPTS
  }
end

local function pcall_schema(fn, ...)
  local ok, a, b = pcall(fn, ...)
  if ok then
    return a, b
  end
  if type(a) == "table" and a.unsupported then
    return nil, { ["@schema"] = "not supported here: " .. a.unsupported }, true
  end
  return nil, { ["@schema"] = "schema error: " .. tostring(a) }, true
end

-- The plugin entity { config = config } processed for insert and validated
-- as Kong does for kong.yml, POST /config and the Admin API (DAO insert).
-- config: the decoded config (nil = absent).  Returns the processed config
-- (defaults filled; unset optional fields and explicit nulls are null) or
-- nil, errors (Kong's nested error table: { config = { port = "..." },
-- ["@entity"] = { "..." } }) and, third, true when the schema itself could
-- not be judged (errors["@schema"]).
function _M.validate_config(plugin_schema, config, opts)
  local ctx = make_ctx(opts)
  return pcall_schema(function()
    local p = compile_plugin(plugin_schema)
    local entity = process_auto_fields(p.rec, { config = config }, "insert", ctx)
    local ok, errors = validate_record(p.rec, entity, true, ctx)
    if not ok then
      return nil, errors
    end
    return entity.config
  end)
end

-- Validates one value against one field definition (the dump's, as is).
function _M.validate_value(field, value, opts)
  local ctx = make_ctx(opts)
  return validate_field(field, value, ctx)
end

-- What the plugins iterator reads back from storage (the DAO's "select"
-- without `nulls`): processed = validate_config's result.  Metatables do not
-- survive storage; arrays and sets get array_mt again.  Returns the config
-- table, and true when a field holds a vault reference (Kong would send the
-- resolved secret instead).
function _M.config_for_server(plugin_schema, processed, opts)
  local ctx = make_ctx(opts)
  local p = compile_plugin(plugin_schema)
  local stored = deep_copy({ config = processed }, false)
  local entity = process_auto_fields(p.rec, stored, "select", ctx)
  return entity.config, ctx.references
end

-- The keys get_plugin_config adds (kong/runloop/plugins_iterator.lua):
--   3.0-3.1  route_id, service_id, consumer_id, __key__, __seq__
--   3.2      + plugin_instance_name (only when the plugin has instance_name)
--   3.3-3.8  + __plugin_id
--   3.9      + __ws_id
-- __key__ is plugins:<name>:<route>:<service>:<consumer>::<ws_id> (DAO
-- cache_key); __seq__ counts from 1 across all plugins (shm incr).
-- p: { name, route_id, service_id, consumer_id, instance_name, plugin_id,
--      ws_id, seq }, absent ids as nil.
function _M.add_kong_keys(cfg, p, opts)
  local minor = (opts and opts.minor) or _M.DEFAULT_MINOR
  cfg.route_id = p.route_id
  cfg.service_id = p.service_id
  cfg.consumer_id = p.consumer_id
  if minor >= 2 then
    cfg.plugin_instance_name = p.instance_name
  end
  if minor >= 3 then
    cfg.__plugin_id = p.plugin_id
  end
  if minor >= 9 then
    cfg.__ws_id = p.ws_id
  end
  cfg.__key__ = fmt("plugins:%s:%s:%s:%s::%s", p.name, p.route_id or "", p.service_id or "",
                    p.consumer_id or "", p.ws_id or "")
  cfg.__seq__ = p.seq
  return cfg
end

-- t's keys in a stable order (by their text), for output that must not
-- depend on hash order
function _M.sorted_keys(t)
  local keys = {}
  for k in pairs(t) do
    keys[#keys + 1] = k
  end
  sort(keys, function(a, b)
    return tostring(a) < tostring(b)
  end)
  return keys
end

-- The error table as `kong start` prints it (declarative pretty_print_error),
-- keys sorted so that the text is stable.
function _M.pretty_errors(err_t, item, indent)
  indent = indent or ""
  local keys = {}
  for k in pairs(err_t) do
    keys[#keys + 1] = k
  end
  sort(keys, function(a, b)
    if type(a) == type(b) then
      return a < b
    end
    return type(a) == "number"
  end)
  local out = {}
  for _, k in ipairs(keys) do
    local v = err_t[k]
    local key = type(k) == "number" and ("- in entry " .. k .. " of '" .. tostring(item) .. "'")
                or ("in '" .. tostring(k) .. "'")
    if type(v) == "table" then
      out[#out + 1] = indent .. key .. ":"
      out[#out + 1] = _M.pretty_errors(v, k, indent .. "  ")
    else
      out[#out + 1] = indent .. key .. ": " .. tostring(v)
    end
  end
  return concat(out, "\n")
end

-- One line: "config.port: value should be between 1 and 65535; @entity: ..."
function _M.flat_errors(err_t)
  local out = {}
  local function walk(t, path)
    for _, k in ipairs(_M.sorted_keys(t)) do
      local v = t[k]
      local p = path == "" and tostring(k) or (path .. "." .. tostring(k))
      if k == "@entity" and type(v) == "table" then
        for _, m in ipairs(v) do
          out[#out + 1] = p .. ": " .. tostring(m)
        end
      elseif type(v) == "table" then
        walk(v, p)
      else
        out[#out + 1] = p .. ": " .. tostring(v)
      end
    end
  end
  walk(err_t, "")
  return concat(out, "; ")
end

-- Lua plugins of the gateway declare their config fields directly
-- ({ {name = def}, ... }); this wraps them as a plugin schema (cached).
local lua_schemas = setmetatable({}, { __mode = "k" })
function _M.lua_plugin_schema(name, fields)
  local s = lua_schemas[fields]
  if not s then
    s = { name = name, fields = { { config = { type = "record", fields = fields } } } }
    lua_schemas[fields] = s
  end
  return s
end

-- Kept for callers of the earlier gateway: defaults filled, no validation.
function _M.fill_config(plugin_schema, config)
  local processed = _M.validate_config(plugin_schema, config)
  return processed and _M.config_for_server(plugin_schema, processed) or (config or {})
end

function _M.fill_lua_config(fields, config)
  return _M.fill_config(_M.lua_plugin_schema("lua", fields), config)
end

return _M
