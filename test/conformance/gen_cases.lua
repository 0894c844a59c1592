-- luajit test/conformance/gen_cases.lua --dump FILE [options]
--
-- Reads a plugin server's -dump output (the first plugin, as Kong 3.9 does),
-- generates configs at and beyond each rule of its schema, judges each with
-- Kong's validation (test/e2e/gateway/schema.lua) and prints one line per
-- case:
--
--   <verdict> TAB <label> TAB <config JSON> TAB <note>
--
-- verdict accept | noencode | refuse (see cases.lua); the last line is
-- "END TAB <number of cases>".  Output is deterministic.
--
-- Options:
--   --base NAME=STRING       base value of config field NAME ("a.b" nested);
--                            the generator mutates around the base config
--   --base-json NAME=JSON    the same with a JSON value
--   --kong-minor N           follow Kong 3.N (default 9)
--   --plugin NAME            take this plugin from a -dump-all-plugins output

local here = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = here .. "/?.lua;" .. here .. "/../e2e/?.lua;" .. package.path

local json = require "gateway.json"
local cases = require "cases"

local function die(msg)
  io.stderr:write("gen_cases: ", msg, "\n")
  os.exit(2)
end

local dump_path, plugin_name, minor
local base = {}
local i = 1
while i <= #arg do
  local a = arg[i]
  local v = arg[i + 1]
  if a == "--dump" then
    dump_path = v
  elseif a == "--plugin" then
    plugin_name = v
  elseif a == "--kong-minor" then
    minor = tonumber(v)
  elseif a == "--base" or a == "--base-json" then
    local k, val = (v or ""):match("^([^=]+)=(.*)$")
    if not k then
      die(a .. " wants NAME=VALUE")
    end
    if a == "--base-json" then
      local decoded = json.decode(val)
      if decoded == nil then
        die("--base-json " .. k .. ": not JSON")
      end
      val = decoded
    end
    base[k] = val
  else
    die("unknown argument " .. tostring(a))
  end
  i = i + 2
end
if not dump_path then
  die("--dump FILE is required")
end

local f, err = io.open(dump_path, "rb")
if not f then
  die(err)
end
local dump = json.decode(f:read("*a"))
f:close()
if type(dump) ~= "table" or type(dump.Plugins) ~= "table" or not dump.Plugins[1] then
  die("not a -dump output: " .. dump_path)
end
local info = dump.Plugins[1]
if plugin_name then
  info = nil
  for _, p in ipairs(dump.Plugins) do
    if p.Name == plugin_name then
      info = p
    end
  end
  if not info then
    die("no plugin " .. plugin_name .. " in " .. dump_path)
  end
end

local ok, res = pcall(cases.generate, info.Schema, { base = base, minor = minor })
if not ok then
  die(tostring(res))
end
local out = {}
for _, c in ipairs(res) do
  out[#out + 1] = c[1] .. "\t" .. c[2] .. "\t" .. c[3] .. "\t" .. cases.printable(c[4]) .. "\n"
end
io.stdout:write(table.concat(out))
io.stdout:write("END\t", #res, "\n")
