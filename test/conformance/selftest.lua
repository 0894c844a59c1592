-- luajit test/conformance/selftest.lua
--
-- Kong's validation as written in test/e2e/gateway/schema.lua, checked
-- against behaviours read in Kong's kong/db/schema/init.lua (3.9.3, 3.4.2,
-- 3.0.0; each check names what it stands for), and the generator's output
-- for a fixed schema (exact counts and verdicts).  Exits 1 on the first
-- failed check.

local here = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = here .. "/?.lua;" .. here .. "/../e2e/?.lua;" .. package.path

local json = require "gateway.json"
local schema = require "gateway.schema"
local cases = require "cases"

local null = json.null
local NAN, INF = 0 / 0, math.huge
local checks = 0

local function fail(what, got)
  io.stderr:write("FAIL: ", what, "\n  got: ", tostring(got), "\n")
  os.exit(1)
end

local function eq(got, want, what)
  checks = checks + 1
  if got ~= want then
    fail(what .. " (want " .. tostring(want) .. ")", got)
  end
end

local function plugin(fields, entity_checks, record_checks)
  return {
    name = "t",
    fields = { { config = { type = "record", fields = fields, entity_checks = record_checks } } },
    entity_checks = entity_checks,
  }
end

-- accepted: the Config JSON (sorted keys, Kong's keys left out); refused:
-- "REFUSE " .. Kong's errors on one line
local function judge(s, config, opts)
  local processed, errs, schema_err = schema.validate_config(s, config, opts)
  if schema_err then
    return "SCHEMA " .. schema.flat_errors(errs)
  end
  if not processed then
    return "REFUSE " .. schema.flat_errors(errs)
  end
  local out = schema.config_for_server(s, processed, opts)
  return cases.encode(out) or "NOENCODE"
end

-- types ------------------------------------------------------------------

local S = plugin({
  { i = { type = "integer" } },
  { n = { type = "number" } },
  { nb = { type = "number", between = { 1, 10 } } },
  { ng = { type = "number", gt = 0 } },
  { s = { type = "string" } },
  { s0 = { type = "string", len_min = 0 } },
  { b = { type = "boolean" } },
})

-- integer: a number equal to its floor and not +-inf
eq(judge(S, { i = 5 }), '{"i":5}', "integer 5")
eq(judge(S, { i = 5.5 }), "REFUSE config.i: expected an integer", "integer 5.5")
eq(judge(S, { i = NAN }), "REFUSE config.i: expected an integer", "integer NaN")
eq(judge(S, { i = INF }), "REFUSE config.i: expected an integer", "integer +inf")
eq(judge(S, { i = -INF }), "REFUSE config.i: expected an integer", "integer -inf")
eq(judge(S, { i = 2 ^ 53 }), '{"i":9007199254740992}', "integer 2^53, no bounds")
-- cjson's 16 significant digits: Kong sends 2^54 as another integer
eq(judge(S, { i = 2 ^ 54 }), '{"i":1.801439850948198e+16}', "integer 2^54 loses its last digit")
eq(judge(S, { i = "5" }), "REFUSE config.i: expected an integer", "integer as a string")
-- number: any Lua number; between lets NaN through, gt does not
eq(judge(S, { n = NAN }), "NOENCODE", "number NaN accepted, not encodable")
eq(judge(S, { n = INF }), "NOENCODE", "number +inf accepted, not encodable")
eq(judge(S, { nb = NAN }), "NOENCODE", "number NaN passes between")
eq(judge(S, { nb = INF }), "REFUSE config.nb: value should be between 1 and 10", "number +inf vs between")
eq(judge(S, { nb = 10.5 }), "REFUSE config.nb: value should be between 1 and 10", "between max+0.5")
eq(judge(S, { ng = NAN }), "REFUSE config.ng: value must be greater than 0", "gt refuses NaN")
eq(judge(S, { ng = 0 }), "REFUSE config.ng: value must be greater than 0", "gt equal")
eq(judge(S, { n = 1 / 3 }), '{"n":0.3333333333333333}', "number with 16 significant digits")
-- strings: len_min 1 unless declared, lengths in bytes
eq(judge(S, { s = "" }), "REFUSE config.s: length must be at least 1", "empty string")
eq(judge(S, { s0 = "" }), '{"s0":""}', "len_min 0 keeps the empty string")
eq(judge(S, { s = "a\0b" }), '{"s":"a\\u0000b"}', "NUL accepted without not_match")
eq(judge(S, { s = 5 }), "REFUSE config.s: expected a string", "string given a number")
eq(judge(S, { b = 0 }), "REFUSE config.b: expected a boolean", "boolean given 0")
eq(judge(S, { b = false }), '{"b":false}', "boolean false")

-- defaults and nulls -------------------------------------------------------

local D = plugin({
  { d = { type = "integer", default = 3 } },
  { o = { type = "string" } },
  { r = { type = "string", required = true, default = "x" } },
  { a = { type = "array", elements = { type = "string" }, default = {} } },
  { st = { type = "set", elements = { type = "string" } } },
  { rec = { type = "record", fields = { { x = { type = "integer", default = 1 } },
                                         { y = { type = "string" } } } } },
})
-- process_auto_fields "insert": an explicit null stays null (only nil gets the
-- default: adjust_field_for_context `value == nil`), unset optional -> null
do
  local p = schema.validate_config(D, { d = null })
  eq(p.d, null, "insert: explicit null on a field with a default stays null")
  eq(p.o, null, "insert: unset optional field becomes null")
  eq(p.r, "x", "insert: default of a required field")
  eq(p.rec.x, 1, "insert: nested record defaults (records are required by default)")
  eq(p.rec.y, null, "insert: nested optional field null")
end
-- the plugins iterator reads through the DAO ("select", no nulls option):
-- every null dropped, so the explicit null reaches the server as an absent key
eq(judge(D, { d = null }), '{"a":[],"r":"x","rec":{"x":1}}', "select: explicit null dropped (no default)")
eq(judge(D, {}), '{"a":[],"d":3,"r":"x","rec":{"x":1}}', "select: defaults, nulls dropped, [] for arrays")
eq(judge(D, { r = null }), "REFUSE config.r: required field missing", "required with default, explicit null")
eq(judge(D, { rec = null }), "REFUSE config.rec: required field missing", "record null (required by default)")
eq(judge(D, { a = { "x", null } }), "REFUSE config.a.2: required field missing", "null array element")
eq(judge(D, { a = { k = "x" } }), "REFUSE config.a: expected an array", "object for an array")
eq(judge(D, { st = { "b", "a", "b" } }), '{"a":[],"d":3,"r":"x","rec":{"x":1},"st":["b","a"]}',
   "set: duplicates removed (make_set)")
eq(judge(D, { rec = { z = 1 } }), "REFUSE config.rec.z: unknown field", "unknown key in a nested record")

-- unknown keys ---------------------------------------------------------------
eq(judge(D, { nope = 1 }), "REFUSE config.nope: unknown field", "unknown key")
eq(judge(D, { route_id = "x" }), "REFUSE config.route_id: unknown field", "Kong's own key in a config")
-- unvalidated_fields (3.3+): updated_at is never validated, then dropped
eq(judge(D, { updated_at = "x" }), judge(D, {}), "updated_at ignored on 3.9")
eq(judge(D, { updated_at = "x" }, { minor = 2 }), "REFUSE config.updated_at: unknown field",
   "updated_at unknown on 3.2")
eq(judge(D, { ttl = 1 }), "REFUSE config.ttl: unknown field", "ttl unknown (the record has no ttl)")
eq(judge(D, { k = null }, { role = "data_plane" }), judge(D, {}), "data plane ignores unknown nulls")

-- validators -----------------------------------------------------------------

local Vd = plugin({
  { oo = { type = "string", one_of = { "a", "b" } } },
  { no = { type = "string", not_one_of = { "c" } } },
  { sw = { type = "string", starts_with = "/" } },
  { m = { type = "string", match = "^%d+$" } },
  { nm = { type = "string", not_match = "%z" } },
  { le = { type = "string", len_eq = 2 } },
  { lm = { type = "string", len_max = 3 } },
  { ma = { type = "string", match_all = { { pattern = "a", err = "needs a" }, { pattern = "b", err = "needs b" } } } },
  { mn = { type = "string", match_none = { { pattern = "x", err = "no x" } } } },
  { many = { type = "string", match_any = { patterns = { "^a", "^b" }, err = "a or b first" } } },
  { ct = { type = "array", elements = { type = "string" }, contains = "must" } },
  { u = { type = "string", uuid = true } },
  { ts = { type = "integer", timestamp = true } },
  { e = { type = "integer", eq = 7 } },
  { ne = { type = "integer", ne = 7 } },
  { io = { type = "integer", one_of = { 1, 2 } } },
  { al = { type = "array", elements = { type = "string" }, len_min = 1, len_max = 2 } },
  { mp = { type = "map", keys = { type = "string" }, values = { type = "integer" } } },
})
-- eq on a null value fails too (validate_field's null branch): e is always set
local function vd(t)
  if t.e == nil then
    t.e = 7
  end
  local r = judge(Vd, t)
  return (r:gsub('"e":7,?', ""):gsub(",}", "}"))
end
eq(vd({ e = null }), "REFUSE config.e: value must be 7", "eq refuses null")
eq(vd({ oo = "c" }), "REFUSE config.oo: expected one of: a, b", "one_of")
eq(vd({ no = "c" }), "REFUSE config.no: must not be one of: c", "not_one_of")
eq(vd({ sw = "x/" }), "REFUSE config.sw: should start with: /", "starts_with")
eq(vd({ m = "12a" }), "REFUSE config.m: invalid value: 12a", "match (Lua pattern)")
eq(vd({ m = "12" }), '{"m":"12"}', "match ok")
eq(vd({ nm = "a\0" }), "REFUSE config.nm: invalid value: a\0", "not_match %z refuses NUL")
eq(vd({ nm = "a\255" }), '{"nm":"a\255"}', "not_match %z lets other bytes through")
eq(vd({ le = "\195\169" }), '{"le":"\195\169"}', "len_eq counts bytes")
eq(vd({ lm = "\195\169\195\169" }), "REFUSE config.lm: length must be at most 3", "len_max counts bytes")
eq(vd({ ma = "a" }), "REFUSE config.ma: needs b", "match_all")
eq(vd({ mn = "axe" }), "REFUSE config.mn: no x", "match_none")
eq(vd({ many = "c" }), "REFUSE config.many: a or b first", "match_any")
eq(vd({ ct = { "x" } }), "REFUSE config.ct: expected to contain: must", "contains")
eq(vd({ u = "0000000-0000-0000-0000-000000000000" }), "REFUSE config.u: expected a valid UUID", "uuid")
eq(vd({ u = "ABCDEF00-0000-4000-8000-000000000000" }), '{"u":"ABCDEF00-0000-4000-8000-000000000000"}',
   "uuid, case-insensitive")
eq(vd({ ts = 0 }), "REFUSE config.ts: expected a valid timestamp", "timestamp")
eq(vd({ e = 8 }), "REFUSE config.e: value must be 7", "eq")
eq(vd({ ne = 7 }), "REFUSE config.ne: value must not be 7", "ne")
eq(vd({ io = 3 }), "REFUSE config.io: expected one of: 1, 2", "one_of on an integer")
eq(vd({ al = {} }), "REFUSE config.al: length must be at least 1", "array len_min")
eq(vd({ al = { "a", "b", "c" } }), "REFUSE config.al: length must be at most 2", "array len_max")
eq(vd({ mp = { [""] = 1 } }), "REFUSE config.mp: length must be at least 1", "map keys: len_min 1")
eq(vd({ mp = { k = 1.5 } }), "REFUSE config.mp: expected an integer", "map values")
eq(vd({ mp = {} }), '{"mp":{}}', "empty map sent as {}")

-- entity checks (plugin level, config.-prefixed, and in the record) ----------

local MR = plugin({ { c = { type = "string" } }, { k = { type = "string" } }, { f = { type = "boolean" } },
                    { t = { type = "array", elements = { type = "string" } } } },
                  { { mutually_required = { "config.c", "config.k" } },
                    { mutually_required = { "config.f", "config.t" } } })
eq(judge(MR, { c = "x", k = "y" }), '{"c":"x","k":"y"}', "mutually_required: both")
eq(judge(MR, {}), "{}", "mutually_required: neither")
eq(judge(MR, { c = "x" }),
   "REFUSE @entity: all or none of these fields must be set: 'config.c', 'config.k'", "mutually_required: one")
eq(judge(MR, { c = "x", k = null }),
   "REFUSE @entity: all or none of these fields must be set: 'config.c', 'config.k'", "null is empty")
-- is_nonempty: false is not empty, {} is
eq(judge(MR, { f = false }),
   "REFUSE @entity: all or none of these fields must be set: 'config.f', 'config.t'", "false is not empty")
eq(judge(MR, { f = false, t = {} }),
   "REFUSE @entity: all or none of these fields must be set: 'config.f', 'config.t'", "{} is empty")

local CK = plugin({
  { a = { type = "string" } }, { b = { type = "string" } },
  { mode = { type = "string", one_of = { "x", "y" } } }, { other = { type = "integer" } },
  { p = { type = "string" } }, { q = { type = "string" } },
}, {
  { only_one_of = { "config.a", "config.b" } },
  { conditional = { if_field = "config.mode", if_match = { eq = "x" },
                    then_field = "config.other", then_match = { required = true } } },
}, {
  { conditional_at_least_one_of = { if_field = "mode", if_match = { one_of = { "y" } },
                                    then_at_least_one_of = { "p", "q" }, then_err = "with y: %s" } },
  { distinct = { "p", "q" } },
})
-- only_one_of does not run with missing fields, but processed fields are
-- null, not missing.  An unset if_field (null) passes an if_match without
-- required/eq (validate_field's null branch), so conditional_at_least_one_of
-- demands p or q while mode is unset.
eq(judge(CK, {}), "REFUSE @entity: exactly one of these fields must be non-empty: 'config.a', 'config.b'; "
   .. "config.@entity: with y: 'p', 'q'", "only_one_of with both unset; null if_field matches one_of")
eq(judge(CK, { a = "1", b = "2", mode = "x", other = 1 }),
   "REFUSE @entity: exactly one of these fields must be non-empty: 'config.a', 'config.b'", "only_one_of both")
eq(judge(CK, { a = "1", mode = "x", other = 1 }), '{"a":"1","mode":"x","other":1}', "only_one_of one")
eq(judge(CK, { a = "1", mode = "x" }),
   "REFUSE @entity: failed conditional validation given value of field 'config.mode'; config.other: required field missing",
   "conditional: then_match required")
eq(judge(CK, { a = "1", mode = "y" }), "REFUSE config.@entity: with y: 'p', 'q'",
   "conditional_at_least_one_of in the record, then_err")
eq(judge(CK, { a = "1", mode = "y", q = "z" }), '{"a":"1","mode":"y","q":"z"}', "conditional_at_least_one_of ok")
eq(judge(CK, { a = "1", mode = "y", p = "z", q = "z" }),
   "REFUSE config.@entity: values of these fields must be distinct: 'p', 'q'", "distinct")

local MX = plugin({ { a = { type = "string" } }, { b = { type = "string" } }, { c = { type = "string" } } },
                  { { mutually_exclusive = { "config.a", "config.b" } },
                    { at_least_one_of = { "config.a", "config.b", "config.c" } },
                    { mutually_exclusive_sets = { set1 = { "config.a" }, set2 = { "config.c" } } } })
eq(judge(MX, { a = "1", b = "2" }), "REFUSE @entity: only one or none of these fields must be set: 'config.a', 'config.b'",
   "mutually_exclusive")
eq(judge(MX, {}), "REFUSE @entity: at least one of these fields must be non-empty: 'config.a', 'config.b', 'config.c'",
   "at_least_one_of")
eq(judge(MX, { a = "1", c = "2" }), "REFUSE @entity: these sets are mutually exclusive: ('config.a'), ('config.c')",
   "mutually_exclusive_sets")

-- conditional needs its if_field: a required field left unset is missing
-- (nil after processing) -> "field required for entity check"
local CR = plugin({ { mode = { type = "string", required = true } }, { v = { type = "integer" } } },
                  { { conditional = { if_field = "config.mode", if_match = { eq = "x" },
                                      then_field = "config.v", then_match = { gt = 5 } } } })
eq(judge(CR, {}), "REFUSE config.mode: field required for entity check", "missing if_field")
eq(judge(CR, { mode = "x", v = 5 }),
   "REFUSE @entity: failed conditional validation given value of field 'config.mode'; config.v: value must be greater than 5",
   "then_match validated through validate_field")

-- a check naming no field of the schema: Kong raises; here a schema error
eq(judge(plugin({ { a = { type = "string" } } }, { { conditional = { if_field = "config.zz", if_match = {},
   then_field = "config.a", then_match = {} } } }), {}):sub(1, 7), "SCHEMA ", "unknown field in a check")

-- Kong's keys per version (plugins_iterator.lua get_plugin_config) ------------
do
  local p = { name = "t", route_id = "r", service_id = "s", instance_name = "i", plugin_id = "p",
              ws_id = "w", seq = 4 }
  eq(cases.encode(schema.add_kong_keys({}, p, { minor = 9 })),
     '{"__key__":"plugins:t:r:s:::w","__plugin_id":"p","__seq__":4,"__ws_id":"w","plugin_instance_name":"i",'
     .. '"route_id":"r","service_id":"s"}', "keys on 3.9")
  eq(cases.encode(schema.add_kong_keys({}, p, { minor = 4 })),
     '{"__key__":"plugins:t:r:s:::w","__plugin_id":"p","__seq__":4,"plugin_instance_name":"i",'
     .. '"route_id":"r","service_id":"s"}', "keys on 3.4")
  eq(cases.encode(schema.add_kong_keys({}, p, { minor = 0 })),
     '{"__key__":"plugins:t:r:s:::w","__seq__":4,"route_id":"r","service_id":"s"}', "keys on 3.0")
end

-- validate_info: the attributes the server's dump carries ---------------------
do
  local info = { name = "t", PRIORITY = 1, VERSION = "1.0", phases = {}, schema = MR }
  eq(schema.validate_info(info), true, "entity_checks beside fields, not_match, gt")
  local bad = { name = "t", PRIORITY = 1, VERSION = "1.0", phases = {},
                schema = plugin({ { s = { type = "string", between = { 1, 2 } } } }) }
  local ok, err = schema.validate_info(bad)
  eq(ok, nil, "between on a string refused")
  eq(err, "t.config.s: field of type 'string' cannot have attribute 'between'", "its message")
end

-- the generator: a fixed schema, exact output ----------------------------------
do
  local G = plugin({
    { name = { type = "string", required = true, len_min = 2, len_max = 4, not_match = "%z" } },
    { n = { type = "integer", default = 2, between = { 1, 3 } } },
    { ratio = { type = "number", between = { 0, 1 } } },
    { tags = { type = "array", elements = { type = "string" }, default = {} } },
    { c = { type = "string" } }, { k = { type = "string" } },
  }, { { mutually_required = { "config.c", "config.k" } } })
  local list = cases.generate(G, { base = { name = "ab" } })
  local again = cases.generate(G, { base = { name = "ab" } })
  local by, count = {}, { accept = 0, refuse = 0, noencode = 0 }
  for i, c in ipairs(list) do
    by[c[2]] = c
    count[c[1]] = count[c[1]] + 1
    eq(table.concat(c, "\t"), table.concat(again[i], "\t"), "deterministic case " .. i)
  end
  eq(#list, 309, "number of cases")
  eq(count.accept, 70, "accepted")
  eq(count.refuse, 238, "refused")
  eq(count.noencode, 1, "accepted but not encodable")
  eq(by["ratio=num:NaN"][1], "noencode", "NaN in a number with between")
  eq(by["ratio=num:NaN"][3], "-", "no Config for it")
  eq(by["ratio=num:+Inf"][1], "refuse", "+Inf in a number with between")
  eq(by["n=num:NaN"][1], "refuse", "NaN in an integer")
  eq(by["name=nul:inner"][1], "refuse", "NUL refused by not_match")
  eq(by["name=len:max-multibyte"][1], "accept", "4 bytes, 2 characters")
  eq(by["name=len:max"][3],
     '{"__key__":"plugins:t:1b4e28ba-2fa1-4d2c-8c29-4f9e9a0e0002:1b4e28ba-2fa1-4d2c-8c29-4f9e9a0e0003:::'
     .. '1b4e28ba-2fa1-4d2c-8c29-4f9e9a0e0001","__plugin_id":"00000000-0000-4000-8000-000000000053",'
     .. '"__seq__":53,"__ws_id":"1b4e28ba-2fa1-4d2c-8c29-4f9e9a0e0001","n":2,"name":"aaaa",'
     .. '"plugin_instance_name":"t-53","route_id":"1b4e28ba-2fa1-4d2c-8c29-4f9e9a0e0002",'
     .. '"service_id":"1b4e28ba-2fa1-4d2c-8c29-4f9e9a0e0003","tags":[]}', "Config of an accepted case")
  eq(by["name=len:max+1"][4], "config.name: length must be at most 4", "Kong's error kept")
  eq(by["tags=array:duplicates"][1], "accept", "an array keeps duplicates")
  eq(by["c=len:min"][1], "refuse", "c without k")
  eq(by["check1:mutually_required:c=set,k=absent"], nil, "deduplicated with c=len:min (same config)")
  eq(by["check1:mutually_required:c=null,k=empty"][1], "refuse", "empty string refused by len_min")
  eq(by["check1:mutually_required:c=set,k=set"][1], "accept", "both set")
  eq(by["check1:mutually_required:c=null,k=null"][1], "accept", "both null")
  eq(by["check1:mutually_required:c=set,k=null"][4],
     "@entity: all or none of these fields must be set: 'config.c', 'config.k'", "one null")
  eq(by["key:updated_at"][1], "accept", "updated_at accepted (3.9)")
end

io.stdout:write("ok: ", checks, " checks\n")
