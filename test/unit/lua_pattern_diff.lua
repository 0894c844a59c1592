-- lua_pattern_diff.lua: LuaJIT's own string.match verdicts on a fixed,
-- pseudo-random set of (pattern, subject) pairs, for lua_pattern_diff.c to
-- compare with src/lua_pattern.c.  Run as `luajit lua_pattern_diff.lua`.
--
-- Output, one record a line, bytes in hex ("" for an empty string):
--   # <jit.version>
--   P <pattern>                 a pattern; the S lines after it are its cases
--   S <subject> 1|0             string.match(subject, pattern) is non-nil / nil
--   S <subject> E <message>     string.match raised an error
-- Patterns and subjects use an alphabet rich in what patterns treat
-- specially, and the sequence is the same on every run and platform
-- (Park-Miller generator, exact in doubles).

local seed = 20240611
local function rnd(n) -- 0 .. n-1
  seed = (seed * 16807) % 2147483647
  return seed % n
end
local function pick(t) return t[rnd(#t) + 1] end

local function hex(s)
  return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

local function emit_case(subject, pattern)
  local ok, r = pcall(string.match, subject, pattern)
  if ok then
    io.write("S ", hex(subject), " ", r ~= nil and "1" or "0", "\n")
  else
    io.write("S ", hex(subject), " E ", (tostring(r):gsub("\n", " ")), "\n")
  end
end

-- Subjects: bytes patterns care about, NUL, high bytes, controls.
local subject_bytes = {
  "a", "A", "0", "z", "b", "x", "F", "5", "_", " ", "\t", "\n", "\0", "\255", "\128", "\127",
  "%", "[", "]", "^", "$", "-", "*", "+", "?", ".", ",", "!", "~", "(", ")", "a", "a", "b",
}
local function random_subject(maxlen)
  local t = {}
  for _ = 1, rnd(maxlen + 1) do t[#t + 1] = pick(subject_bytes) end
  return table.concat(t)
end

-- Pattern pieces.  Each token is {text, item}: item is the single-byte
-- item it repeats (nil for anchors and raw specials), used to build
-- subjects that get far into the pattern.
local literals = { "a", "A", "0", "z", "b", " ", ",", "!", "_", "\255", "\128", ".", "~" }
local class_letters = { "a", "c", "d", "g", "l", "p", "s", "u", "w", "x", "z",
                        "A", "C", "D", "G", "L", "P", "S", "U", "W", "X", "Z" }
local punct_escapes = { "%", "[", "]", "^", "$", "-", "*", "+", "?", ".", "(", ")", "!", ",", " ", "\255" }
local odd_escapes = { "b", "f", "q", "1", "0", "B", "9", "e" }
local raw = { "^", "$", "(", ")", "*", "+", "-", "?", "]", "[", "%", "\0" }
local set_members = {
  "a", "b", "z", "0", "A", " ", ",", "\255", "\0", "]", "-", "^", "%", "[", ".",
  "a-z", "0-9", "A-Z", "]-a", "a-%", "--", "-a", "a-", "z-a", "\128-\255", "!-/", "+--",
}
local quantifiers = { "*", "+", "-", "?" }

local function set_token()
  local t = { "[" }
  if rnd(3) == 0 then t[#t + 1] = "^" end
  for _ = 1, rnd(4) + 1 do
    if rnd(3) == 0 then t[#t + 1] = "%" .. pick(rnd(2) == 0 and class_letters or punct_escapes)
    else t[#t + 1] = pick(set_members) end
  end
  if rnd(12) ~= 0 then t[#t + 1] = "]" end
  return table.concat(t)
end

local function item_token()
  local r = rnd(20)
  if r < 6 then return pick(literals)
  elseif r < 10 then return "%" .. pick(class_letters)
  elseif r < 12 then return "%" .. pick(punct_escapes)
  elseif r == 12 then return "%" .. pick(odd_escapes)
  elseif r < 16 then return set_token()
  elseif r < 18 then return "."
  else return nil end
end

local function token_pattern()
  local tokens, text = {}, {}
  if rnd(3) == 0 then text[#text + 1] = "^" end
  for _ = 1, rnd(6) do
    local item = item_token()
    if item == nil then
      text[#text + 1] = pick(raw)
    else
      local q = rnd(5) < 2 and pick(quantifiers) or ""
      tokens[#tokens + 1] = { item = item, q = q }
      text[#text + 1] = item .. q
    end
  end
  if rnd(3) == 0 then text[#text + 1] = "$" end
  return table.concat(text), tokens
end

local pattern_bytes = {
  "%", "[", "]", "^", "$", "-", "*", "+", "?", ".", "a", "A", "0", " ", "\0", "\255",
  ",", "!", "(", ")", "a", "d", "b", "z", "%", "[", "]", "-",
}
local function raw_pattern()
  local t = {}
  for _ = 1, rnd(9) do t[#t + 1] = pick(pattern_bytes) end
  return table.concat(t)
end

-- A byte the single item matches, if one turns up quickly.
local function sample(item)
  for _ = 1, 24 do
    local c = rnd(3) == 0 and string.char(rnd(256)) or pick(subject_bytes)
    local ok, r = pcall(string.match, c, "^" .. item .. "$")
    if ok and r ~= nil then return c end
    if not ok then return nil end
  end
  return nil
end

-- A subject walking the tokens, repeating each as its quantifier allows.
local function guided_subject(tokens)
  local t = {}
  if rnd(3) == 0 then t[#t + 1] = random_subject(2) end
  for _, tok in ipairs(tokens) do
    local reps = 1
    if tok.q == "?" then reps = rnd(2)
    elseif tok.q == "*" or tok.q == "-" then reps = rnd(4)
    elseif tok.q == "+" then reps = rnd(3) + 1 end
    for _ = 1, reps do
      local c = sample(tok.item)
      if c == nil then c = pick(subject_bytes) end
      t[#t + 1] = c
    end
  end
  if rnd(3) == 0 then t[#t + 1] = random_subject(2) end
  return table.concat(t)
end

local function mutate(s)
  if #s == 0 then return pick(subject_bytes) end
  local i = rnd(#s) + 1
  local r = rnd(3)
  if r == 0 then return s:sub(1, i - 1) .. s:sub(i + 1) end
  if r == 1 then return s:sub(1, i - 1) .. pick(subject_bytes) .. s:sub(i + 1) end
  return s:sub(1, i) .. pick(subject_bytes) .. s:sub(i + 1)
end

io.write("# ", jit and jit.version or _VERSION, "\n")

-- 1. Random patterns: 4000 built from tokens, 1500 from raw bytes.
for n = 1, 5500 do
  local pattern, tokens
  if n <= 4000 then pattern, tokens = token_pattern() else pattern, tokens = raw_pattern(), {} end
  io.write("P ", hex(pattern), "\n")
  for _ = 1, 3 do emit_case(random_subject(8), pattern) end
  local g = guided_subject(tokens)
  emit_case(g, pattern)
  emit_case(mutate(g), pattern)
  emit_case(guided_subject(tokens), pattern)
  emit_case(pattern, pattern)
end

-- 2. Every class, its complement, and both as sets, on every byte.
for _, cl in ipairs(class_letters) do
  for _, pattern in ipairs({ "%" .. cl, "[%" .. cl .. "]", "[^%" .. cl .. "]" }) do
    io.write("P ", hex(pattern), "\n")
    for c = 0, 255 do emit_case(string.char(c), pattern) end
  end
end

-- 3. % before every byte but NUL (alphanumerics included: LuaJIT takes
--    %q as 'q' and %1 as a back-reference), on a few subjects each.
for c = 1, 255 do
  local pattern = "%" .. string.char(c)
  io.write("P ", hex(pattern), "\n")
  emit_case(string.char(c), pattern)
  emit_case("a" .. string.char(c) .. "b", pattern)
  emit_case("x", pattern)
  emit_case("", pattern)
end

-- 4. Long patterns: the longest we accept, and LuaJIT's recursion limit
--    ("pattern too complex" past 200 nested quantifiers), which only
--    patterns longer than our cap can reach.  Only subjects LuaJIT settles
--    fast: string.rep("a+", 128) against 128 a's backtracks for ages (it
--    tries every way of sharing the a's among the items before the one
--    that works), which is why src/lua_pattern.c does not backtrack.
for _, case in ipairs({
  { string.rep("a?", 128), string.rep("a", 128) },
  { string.rep("a*", 128), string.rep("a", 128) },
  { string.rep("a+", 128), "bbbbb" },
  { "^" .. string.rep("%a?", 85), string.rep("b", 85) },
  { string.rep("a?", 201), string.rep("a", 201) },
  { string.rep("a?", 150), string.rep("a", 150) },
}) do
  io.write("P ", hex(case[1]), "\n")
  emit_case(case[2], case[1])
  emit_case("", case[1])
end
