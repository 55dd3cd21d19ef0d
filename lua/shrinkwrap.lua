-- shrinkwrap.lua - the pure-Lua half of the `shrinkwrap` module: class sugar, configuration
-- helpers (optimizers, learning-rate schedules), printing helpers, the sw.nn DSL (lua/nn.lua)
-- and mask helpers (lua/compress.lua). It runs once, when `require "shrinkwrap"` has filled
-- the module table with the C half (tensors, models, data, training, compression) and passes
-- it here.
local sw = ...

-- sw.class([parent]) -> a class. Calling the class makes an instance and runs its init:
--   local Point = sw.class()
--   function Point:init(x, y) self.x, self.y = x, y end
--   local p = Point(1, 2)
-- A subclass finds its parent's methods through __index and inherits its metamethods
-- (__tostring, ...), which Lua looks up directly in the metatable and never through __index.
function sw.class(parent)
  local cls = {}
  if parent then
    for k, v in pairs(parent) do
      if type(k) == "string" and k:sub(1, 2) == "__" and k ~= "__index" then cls[k] = v end
    end
  end
  cls.__index = cls
  cls.super = parent
  return setmetatable(cls, {
    __index = parent,
    __call = function(c, ...)
      local obj = setmetatable({}, c)
      if c.init then c.init(obj, ...) end
      return obj
    end,
  })
end

-- sw.isinstance(obj, cls): true when obj was made by cls or one of its subclasses.
function sw.isinstance(obj, cls)
  if type(obj) ~= "table" then return false end
  local c = getmetatable(obj)
  while c do
    if c == cls then return true end
    c = c.super
  end
  return false
end

-- sw.error(fmt, ...): raises a formatted error blamed on the recipe line that called into
-- shrinkwrap (not on a line of the module's own Lua files).
function sw.error(fmt, ...)
  sw._raise(string.format(fmt, ...))
end

-- sw.check_options(t, known, what): raises for a string key of t that is not in the array
-- `known`; returns t (or an empty table for nil). Configuration mistakes are errors that name
-- the key, never silently ignored.
function sw.check_options(t, known, what)
  if t == nil then return {} end
  if type(t) ~= "table" then sw.error("%s: expected a table of options, got %s", what, type(t)) end
  local allowed = {}
  for _, k in ipairs(known) do allowed[k] = true end
  for k in pairs(t) do
    if type(k) == "string" and not allowed[k] then
      sw.error("%s: unknown option \"%s\" (known: %s)", what, k, table.concat(known, ", "))
    end
  end
  return t
end

-- A copy of the options t with kind set: what the C side reads.
local function with_kind(kind, t, known, what)
  sw.check_options(t, known, what)
  local cfg = { kind = kind }
  for k, v in pairs(t or {}) do cfg[k] = v end
  return cfg
end

-- Optimizers, with PyTorch's names and defaults (lr 0.01 for SGD, 1e-3 for Adam and AdamW).
sw.optim = {}
local sgd_keys = { "lr", "momentum", "dampening", "nesterov", "weight_decay" }
local adam_keys = { "lr", "betas", "eps", "weight_decay" }
function sw.optim.SGD(t) return with_kind("sgd", t, sgd_keys, "sw.optim.SGD") end
function sw.optim.Adam(t) return with_kind("adam", t, adam_keys, "sw.optim.Adam") end
function sw.optim.AdamW(t) return with_kind("adamw", t, adam_keys, "sw.optim.AdamW") end

-- Learning-rate schedules; each may start with a linear warm-up of `warmup` steps.
sw.schedule = {}
function sw.schedule.constant(t)
  return with_kind("constant", t, { "warmup" }, "sw.schedule.constant")
end
function sw.schedule.step(t)
  return with_kind("step", t, { "step_size", "gamma", "warmup" }, "sw.schedule.step")
end
function sw.schedule.cosine(t)
  return with_kind("cosine", t, { "min_lr", "total_steps", "warmup" }, "sw.schedule.cosine")
end

-- sw.human(12345678) -> "12.3M": counts of parameters and FLOPs for people.
function sw.human(n)
  local units = { "", "k", "M", "G", "T" }
  local u = 1
  while math.abs(n) >= 1000 and u < #units do
    n = n / 1000
    u = u + 1
  end
  if u == 1 then return string.format("%d", math.floor(n + 0.5)) end
  return string.format(n < 10 and "%.2f%s" or n < 100 and "%.1f%s" or "%.0f%s", n, units[u])
end

-- sw.printf(fmt, ...): string.format to standard output.
function sw.printf(fmt, ...)
  io.write(string.format(fmt, ...))
end

-- sw.print_table(header, rows): prints rows (arrays of values) under a header, in columns
-- as wide as their widest cell; numbers (and strings that start like one, "12.5%") are
-- right-aligned.
function sw.print_table(header, rows)
  local widths = {}
  local function measure(row)
    for i, v in ipairs(row) do widths[i] = math.max(widths[i] or 0, #tostring(v)) end
  end
  measure(header)
  for _, row in ipairs(rows) do measure(row) end
  local function line(row)
    local cells = {}
    for i, v in ipairs(row) do
      local numeric = type(v) == "number" or tostring(v):match("^[-+]?%.?%d") ~= nil
      local fmt = (numeric and "%" or "%-") .. widths[i] .. "s"
      cells[i] = string.format(fmt, tostring(v))
    end
    print((table.concat(cells, "  "):gsub("%s+$", "")))
  end
  line(header)
  local rule = {}
  for i, w in ipairs(widths) do rule[i] = string.rep("-", w) end
  print(table.concat(rule, "  "))
  for _, row in ipairs(rows) do line(row) end
end

sw.nn = require "shrinkwrap.nn"
require "shrinkwrap.compress" -- sw.mask_stats, sw.print_masks

return sw
