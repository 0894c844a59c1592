-- Plugin schema handling for external plugins, after
-- kong/db/schema/metaschema.lua, kong/db/schema/init.lua
-- (process_auto_fields / handle_missing_field) and kong/db/dao/plugins.lua.
--
-- Only what the plugin-server path needs: a minimal validation of the dumped
-- info (Kong refuses to start on these errors) and filling config defaults.

local json = require "gateway.json"

local null = json.null
local array_mt = json.array_mt

local _M = {}

local FIELD_TYPES = {
  string = true, number = true, integer = true, boolean = true, array = true,
  set = true, map = true, record = true, foreign = true, json = true,
}

local FIELD_ATTRS = {
  type = true, required = true, default = true, between = true, one_of = true,
  len_eq = true, len_min = true, len_max = true, gt = true, match = true,
  starts_with = true, contains = true, uuid = true, referenceable = true,
  encrypted = true, elements = true, keys = true, values = true, fields = true,
  entity_checks = true, description = true, not_one_of = true, match_all = true,
  match_none = true, match_any = true, custom_validator = true, unique = true,
  auto = true, immutable = true, timestamp = true, indexed = true,
  nilable = true, reference = true, on_delete = true, shorthand_fields = true,
  deprecation = true, is_regex = true, ne = true, eq = true, abstract = true,
  translate_backwards = true, legacy = true, coerce = true,
}

local PLUGIN_TOP_FIELDS = {
  config = true, protocols = true, consumer = true, route = true,
  service = true, consumer_group = true, instance_name = true, id = true,
  name = true, enabled = true, tags = true, ordering = true,
}

-- iterate an array of single-key objects: { {name = field}, ... }
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

local validate_field

local function validate_fields(fields, path)
  if type(fields) ~= "table" then
    return nil, path .. ": 'fields' must be an array"
  end
  for i, entry in ipairs(fields) do
    if type(entry) ~= "table" then
      return nil, path .. ": field #" .. i .. " must be a table"
    end
    local n = 0
    for _ in pairs(entry) do n = n + 1 end
    if n ~= 1 then
      return nil, path .. ": field #" .. i .. " must have exactly one key"
    end
    local name, def = next(entry)
    local ok, err = validate_field(def, path .. "." .. tostring(name))
    if not ok then
      return nil, err
    end
  end
  return true
end

function validate_field(def, path)
  if type(def) ~= "table" then
    return nil, path .. ": field definition must be a table"
  end
  if not FIELD_TYPES[def.type] then
    return nil, path .. ": unknown type " .. tostring(def.type)
  end
  for k in pairs(def) do
    if not FIELD_ATTRS[k] then
      return nil, path .. ": unknown attribute '" .. tostring(k) .. "'"
    end
  end
  if def.description ~= nil then
    if type(def.description) ~= "string" or #def.description < 10 or #def.description > 500 then
      return nil, path .. ": description must be a string of 10 to 500 characters"
    end
  end
  if (def.type == "array" or def.type == "set") and type(def.elements) ~= "table" then
    return nil, path .. ": " .. def.type .. " needs 'elements'"
  end
  if def.type == "map" and (type(def.keys) ~= "table" or type(def.values) ~= "table") then
    return nil, path .. ": map needs 'keys' and 'values'"
  end
  if def.type == "record" then
    return validate_fields(def.fields, path)
  end
  return true
end

-- info: {name, PRIORITY, VERSION, schema, phases} as built by process.lua
function _M.validate_info(info)
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
  return validate_fields(s.fields, info.name)
end

local function deep_copy(v)
  if type(v) ~= "table" then
    return v
  end
  local t = {}
  for k, x in pairs(v) do
    t[k] = deep_copy(x)
  end
  return setmetatable(t, getmetatable(v))
end

local fill_record

local function fill_value(def, value)
  if value == nil then
    -- handle_missing_field
    if def.default ~= nil and def.default ~= null then
      local copy = deep_copy(def.default)
      if (def.type == "array" or def.type == "set") and type(copy) == "table" then
        setmetatable(copy, array_mt)
      end
      return copy
    end
    if def.type == "record" and def.required ~= false then
      return fill_record(def.fields, {})    -- records are required by default
    end
    if def.required ~= true then
      return null
    end
    return nil
  end
  if def.type == "record" and type(value) == "table" then
    return fill_record(def.fields, value)
  end
  if (def.type == "array" or def.type == "set") and type(value) == "table" then
    setmetatable(value, array_mt)
    if type(def.elements) == "table" and def.elements.type == "record" then
      for i, e in ipairs(value) do
        value[i] = fill_value(def.elements, e)
      end
    end
  end
  return value
end

function fill_record(fields, value)
  local out = {}
  for k, v in pairs(value) do
    out[k] = v
  end
  for name, def in each_field(fields or {}) do
    out[name] = fill_value(def, value[name])
  end
  return out
end

-- config: table from kong.yml (may be nil); returns the filled config table
function _M.fill_config(schema, config)
  local config_def
  for name, def in each_field(schema.fields) do
    if name == "config" then
      config_def = def
    end
  end
  return fill_record(config_def and config_def.fields, config or {})
end

-- Lua plugins declare their config fields directly: { {name = def}, ... }
function _M.fill_lua_config(fields, config)
  return fill_record(fields, config or {})
end

return _M
