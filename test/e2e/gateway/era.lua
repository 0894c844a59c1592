-- The emulated Kong version (`--kong-version`, 3.0 ... 3.9), set once in
-- init_by_lua (gateway/init.lua) before anything reads it, and inherited by
-- the workers.  Modules ask `era.ge("3.5")` (or compare `era.minor`) where
-- Kong's behaviour changed; each such place names the Kong version and file.

local _M = {
  version = "3.9",      -- "3.<minor>"
  minor = 9,
  full = "3.9.1",       -- kong.version, Server/Via tokens
}

-- the release each minor stands for (its kong.version)
_M.RELEASES = {
  ["3.0"] = "3.0.2", ["3.1"] = "3.1.1", ["3.2"] = "3.2.2", ["3.3"] = "3.3.1",
  ["3.4"] = "3.4.2", ["3.5"] = "3.5.0", ["3.6"] = "3.6.1", ["3.7"] = "3.7.1",
  ["3.8"] = "3.8.1", ["3.9"] = "3.9.1",
}

function _M.set(version)
  version = tostring(version)
  local full = _M.RELEASES[version]
  if not full then
    return nil, "unsupported kong version " .. version .. " (3.0 ... 3.9)"
  end
  _M.version = version
  _M.minor = tonumber(version:match("^3%.(%d+)$"))
  _M.full = full
  return true
end

-- is the emulated version at least "3.<n>"?
function _M.ge(want)
  return _M.minor >= tonumber(want:match("^3%.(%d+)$"))
end

return _M
