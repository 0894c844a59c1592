-- Route matching and the upstream URI (kong/router/*, path_handling "v0").
--
-- A route matches when each of its set criteria matches: hosts (Host header
-- without port, exact or "*.suffix"), methods, paths.  Paths are plain string
-- prefixes of the normalized request path, or anchored regexes when they
-- start with "~" (named/unnamed captures become uri_captures).  Among
-- matches: more criteria first, then regex paths (by regex_priority), then
-- the longest prefix.

local uri = require "gateway.uri"

local ngx = ngx
local sub, byte, lower = string.sub, string.byte, string.lower

local _M = {}

local routes = {}     -- { route = entity, service = entity, paths = {...} }

function _M.build(route_list)
  routes = {}
  for _, r in ipairs(route_list) do
    local entry = { route = r.route, service = r.service, paths = {}, weight = 0 }
    local rt = r.route
    if type(rt.hosts) == "table" and #rt.hosts > 0 then
      entry.hosts = {}
      for _, h in ipairs(rt.hosts) do
        entry.hosts[#entry.hosts + 1] = lower(h)
      end
      entry.weight = entry.weight + 1
    end
    if type(rt.methods) == "table" and #rt.methods > 0 then
      entry.methods = {}
      for _, m in ipairs(rt.methods) do
        entry.methods[m:upper()] = true
      end
      entry.weight = entry.weight + 1
    end
    if type(rt.paths) == "table" and #rt.paths > 0 then
      for _, p in ipairs(rt.paths) do
        if sub(p, 1, 1) == "~" then
          entry.paths[#entry.paths + 1] = { regex = "^" .. sub(p, 2), raw = p }
        else
          entry.paths[#entry.paths + 1] = { prefix = p, raw = p }
        end
      end
      entry.weight = entry.weight + 1
    end
    routes[#routes + 1] = entry
  end
end

local function host_matches(entry, host)
  if not entry.hosts then
    return true
  end
  for _, h in ipairs(entry.hosts) do
    if h == host then
      return true
    end
    if sub(h, 1, 2) == "*." and #host > #h - 1 and sub(host, -(#h - 1)) == sub(h, 2) then
      return true
    end
  end
  return false
end

-- returns match score parts: is_regex, regex_priority, prefix length, captures, prefix
local function path_matches(entry, path)
  if #entry.paths == 0 then
    return true, false, 0, 0, nil, "/"
  end
  local best
  for _, p in ipairs(entry.paths) do
    if p.regex then
      local m = ngx.re.match(path, p.regex, "jo")
      if m then
        local cand = { true, true, entry.route.regex_priority or 0, #m[0], m, m[0] }
        if not best or not best[2] then
          best = cand
        end
      end
    elseif sub(path, 1, #p.prefix) == p.prefix then
      if not best or (not best[2] and #p.prefix > best[4]) then
        best = { true, false, 0, #p.prefix, nil, p.prefix }
      end
    end
  end
  if not best then
    return false
  end
  return best[1], best[2], best[3], best[4], best[5], best[6]
end

local function better(a, b)
  if a.weight ~= b.weight then
    return a.weight > b.weight
  end
  if a.is_regex ~= b.is_regex then
    return a.is_regex
  end
  if a.is_regex and a.regex_priority ~= b.regex_priority then
    return a.regex_priority > b.regex_priority
  end
  return a.length > b.length
end

-- get_upstream_uri_v0 of kong/router/utils.lua
local function upstream_uri_v0(route, postfix, req_uri, base)
  local strip = route.strip_path
  if byte(base, -1) == 47 then
    if strip then
      if postfix == "" then
        if base == "/" then
          return "/"
        end
        if byte(req_uri, -1) == 47 then
          return base
        end
        return sub(base, 1, -2)
      end
      if byte(postfix, 1) == 47 then
        return sub(base, 1, -2) .. postfix
      end
      return base .. postfix
    end
    return base .. sub(req_uri, 2)
  end
  if strip then
    if postfix == "" then
      if #req_uri > 1 and byte(req_uri, -1) == 47 then
        return base .. "/"
      end
      return base
    end
    if byte(postfix, 1) == 47 then
      return base .. postfix
    end
    return base .. "/" .. postfix
  end
  if req_uri == "/" then
    return base
  end
  return base .. req_uri
end

-- ctx.request_uri, ctx.host are set by the caller; returns match_t or nil
function _M.exec(ctx)
  local req_uri = ctx.request_uri or "/"
  local q = req_uri:find("?", 1, true)
  local raw_path = q and sub(req_uri, 1, q - 1) or req_uri
  local path = uri.normalize(raw_path, true)
  local host = lower((ctx.host or ""):gsub(":%d+$", ""))
  local method = ngx.req.get_method()

  local best
  for _, e in ipairs(routes) do
    if host_matches(e, host) and (not e.methods or e.methods[method]) then
      local ok, is_regex, regex_priority, length, captures, prefix = path_matches(e, path)
      if ok then
        local cand = { entry = e, weight = e.weight, is_regex = is_regex,
                       regex_priority = regex_priority, length = length,
                       captures = captures, prefix = prefix }
        if not best or better(cand, best) then
          best = cand
        end
      end
    end
  end
  if not best then
    return nil
  end

  local route, service = best.entry.route, best.entry.service
  local matched = best.captures and best.captures[0] or best.prefix or ""
  local captures
  if best.captures then
    captures = {}
    for k, v in pairs(best.captures) do
      if k ~= 0 then
        captures[k] = v
      end
    end
  end
  local postfix = sub(path, #matched + 1)
  local base = (service and service.path ~= ngx.null and service.path) or "/"
  return {
    route = route,
    service = service,
    prefix = best.is_regex and matched or best.prefix,
    matches = { uri_captures = captures },
    upstream_uri = upstream_uri_v0(route, postfix, path, base),
    upstream_scheme = service and service.protocol or "http",
  }
end

return _M
