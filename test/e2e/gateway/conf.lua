-- kong.conf loading, after kong/conf_loader/init.lua (+ parse.lua):
--   * `key = value` lines, `#` starts a comment unless escaped as `\#`;
--   * every KONG_<UPPERCASE_KEY> environment variable overrides `key`;
--   * `plugins` and `pluginserver_names` are comma-separated lists;
--   * each pluginserver entry gets socket / start_cmd / query_cmd with
--     Kong's defaults (3.9, kong/conf_loader/init.lua: <prefix>/<name>.socket,
--     /usr/local/bin/<name>, "/usr/local/bin/<name> -dump", query_cmd
--     required; 3.0-3.8, get_server_defs in kong/runloop/plugin_servers/
--     process.lua, identical in every tag: /usr/local/kong/<name>.socket
--     whatever the prefix, /usr/local/bin/<name>, /usr/local/bin/query_<name>,
--     each only if the file exists, nothing required).

local ffi = require "ffi"

local _M = {}

ffi.cdef [[ extern char **environ; ]]

local DEFAULT_PLUGINSERVER_PATH = "/usr/local/bin"

local function trim(s)
  return (s:gsub("^%s+", ""):gsub("%s+$", ""))
end

local function strip_comment(v)
  -- "\s*(?<!\\)#.*$" -> "", then "\#" -> "#"
  local i = 1
  while true do
    local p = v:find("#", i, true)
    if not p then
      break
    end
    if p == 1 or v:sub(p - 1, p - 1) ~= "\\" then
      v = v:sub(1, p - 1)
      break
    end
    i = p + 1
  end
  return trim(v:gsub("\\#", "#"))
end

local function read_file(path)
  local f, err = io.open(path, "rb")
  if not f then
    return nil, err
  end
  local s = f:read("*a")
  f:close()
  return s
end

local function parse_text(text)
  local conf = {}
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    line = trim(line)
    if line ~= "" and line:sub(1, 1) ~= "#" then
      local k, v = line:match("^([%w_%.%-]+)%s*=%s*(.-)$")
      if k then
        v = strip_comment(v)
        if v ~= "" then       -- Penlight drops empty values
          conf[k:lower()] = v
        end
      end
    end
  end
  return conf
end

local function env_overrides(conf)
  local env = ffi.C.environ
  local i = 0
  while env[i] ~= nil do
    local kv = ffi.string(env[i])
    local k, v = kv:match("^KONG_([^=]+)=(.*)$")
    if k then
      conf[k:lower()] = v
    end
    i = i + 1
  end
end

local function split_list(v)
  local out = {}
  if type(v) ~= "string" then
    return out
  end
  for item in v:gmatch("[^,]+") do
    item = trim(item)
    if item ~= "" then
      out[#out + 1] = item
    end
  end
  return out
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then
    f:close()
    return path
  end
end

local function version_ge(v, want)
  local a1, a2 = tostring(v):match("^(%d+)%.(%d+)")
  local b1, b2 = want:match("^(%d+)%.(%d+)")
  a1, a2, b1, b2 = tonumber(a1), tonumber(a2), tonumber(b1), tonumber(b2)
  return a1 > b1 or (a1 == b1 and a2 >= b2)
end
_M.version_ge = version_ge

local function pluginservers(conf, log_warn)
  local list = {}
  local modern = version_ge(conf.kong_version, "3.9")
  for i, name in ipairs(split_list(conf.pluginserver_names)) do
    name = name:lower()
    local key = "pluginserver_" .. name:gsub("-", "_")
    local default_path = exists(DEFAULT_PLUGINSERVER_PATH .. "/" .. name)
    local socket = conf[key .. "_socket"]
    local start_command = conf[key .. "_start_cmd"]
    local query_command = conf[key .. "_query_cmd"]

    if modern then
      socket = socket or (conf.prefix .. "/" .. name .. ".socket")
      start_command = start_command or default_path
      if not query_command and default_path then
        query_command = default_path .. " -dump"
      end
      if not query_command then
        return nil, "query_command undefined for pluginserver " .. name
      end
    else
      socket = socket or ("/usr/local/kong/" .. name .. ".socket")
      start_command = start_command or default_path
      query_command = query_command
        or exists(DEFAULT_PLUGINSERVER_PATH .. "/query_" .. name)
    end

    -- 3.9 (conf_loader) warns; 3.0-3.8 say nothing
    if not start_command and modern then
      log_warn("start_command undefined for pluginserver " .. name ..
               "; assuming external process management")
    end

    list[i] = {
      name = name,
      socket = socket,
      start_command = start_command,
      query_command = query_command,
    }
  end
  return list
end

-- opts: conf (path or nil), prefix, kong_version, declarative_config (path)
function _M.load(opts, log_warn)
  log_warn = log_warn or function() end
  local conf = {}
  if opts.conf and opts.conf ~= "" then
    local text, err = read_file(opts.conf)
    if not text then
      return nil, "could not read kong.conf: " .. tostring(err)
    end
    conf = parse_text(text)
  end
  env_overrides(conf)

  conf.prefix = conf.prefix or opts.prefix
  conf.prefix = conf.prefix:gsub("/+$", "")
  conf.kong_version = opts.kong_version or conf.kong_version or "3.9"
  if opts.declarative_config and opts.declarative_config ~= "" then
    conf.declarative_config = opts.declarative_config
  end
  conf.plugins = split_list(conf.plugins or "bundled")
  conf.lua_max_req_headers = tonumber(conf.lua_max_req_headers) or 100
  conf.lua_max_resp_headers = tonumber(conf.lua_max_resp_headers) or 100

  local ps, err = pluginservers(conf, log_warn)
  if not ps then
    return nil, err
  end
  conf.pluginservers = ps
  return conf
end

_M.parse_text = parse_text
_M.split_list = split_list

return _M
