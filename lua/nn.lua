-- nn.lua - sw.nn: describe a network the way PyTorch code does, then build it into a model.
--
--   local net = sw.nn.Sequential{
--     sw.nn.Conv2d(1, 16, 3, {padding = 1}), sw.nn.BatchNorm2d(16), sw.nn.ReLU(),
--     sw.nn.Residual{ sw.nn.Conv2d(16, 16, 3, {padding = 1}), sw.nn.BatchNorm2d(16) },
--     sw.nn.AdaptiveAvgPool2d(1), sw.nn.Flatten(), sw.nn.Linear(16, 10),
--   }
--   local model = net:build{input_shape = {1, 28, 28}, seed = 0}
--
-- Names follow PyTorch's module names: children of a container are "0", "1", ... unless given
-- a name (every constructor takes {name = "conv1"} in its options), and nesting joins names
-- with dots ("layer1.0.conv1"). Graph-shaped blocks become the graph's join nodes: a Residual
-- adds its body's output to its input (or to its shortcut's output) in a node "<block>.add";
-- a Concat runs its branches on the same input and concatenates their channels in a node
-- "<block>.cat". build compiles the description to nodes and hands them to sw._build_model,
-- which creates the layers in C (sw_layer_new, sw_model_add, sw_model_finalize) and
-- initialises the parameters as PyTorch does from the seed.
local sw = require "shrinkwrap"

local nn = {}

local Module = sw.class()
nn.Module = Module

local function is_module(v) return sw.isinstance(v, Module) end

local function join(prefix, name)
  if prefix == "" then return name end
  return prefix .. "." .. name
end

local function check_count(v, what, arg)
  if math.type(v) ~= "integer" or v < 1 then
    sw.error("sw.nn.%s: %s must be a positive integer, got %s", what, arg, tostring(v))
  end
end

-- A size that is an integer or {height, width}.
local function check_size(v, what, arg)
  local ok = math.type(v) == "integer"
      or (type(v) == "table" and #v == 2 and math.type(v[1]) == "integer"
          and math.type(v[2]) == "integer")
  if not ok then
    sw.error("sw.nn.%s: %s must be an integer or {height, width}, got %s", what, arg,
             tostring(v))
  end
end

-- ---- description and compilation -----------------------------------------------------------

-- The nodes of this module, in execution order: {name=, type=, inputs={...}, <hparams>}.
-- The root has no name, as a PyTorch model's root module has none: a root container's
-- children are "0", "1", ...; a lone layer becomes node "0" unless it is named.
function Module:graph()
  local nodes = {}
  local top = self.children and "" or (self.name or "0")
  self:emit(nodes, top, "input")
  return nodes
end

-- Builds the model: opts = {input_shape = {1, 28, 28} (default), seed = 0, arch = "custom"}.
function Module:build(opts)
  opts = sw.check_options(opts, { "input_shape", "seed", "arch" }, "build")
  local ok, model = pcall(sw._build_model, {
    arch = opts.arch or "custom",
    input_shape = opts.input_shape or { 1, 28, 28 },
    seed = opts.seed or 0,
    nodes = self:graph(),
  })
  -- A shape that does not fit is the recipe's mistake: blame its line, not this one.
  if not ok then sw.error("%s", (tostring(model):gsub("^lua/[%w_]+%.lua:%d+: ", ""))) end
  return model
end

-- PyTorch-style printing: "Sequential(\n  (0): Conv2d(1, 32, kernel_size=3)\n ...)".
function Module:describe(indent)
  indent = indent or ""
  if not self.children then return self.repr end
  local lines = { self.kind .. "(" }
  local function add(label, child)
    lines[#lines + 1] = string.format("%s  (%s): %s", indent, label,
                                      child:describe(indent .. "  "))
  end
  for i, child in ipairs(self.children) do add(child.name or tostring(i - 1), child) end
  if self.shortcut then add(self.shortcut.name or "shortcut", self.shortcut) end
  lines[#lines + 1] = indent .. ")"
  return table.concat(lines, "\n")
end

function Module:__tostring() return self:describe() end

-- ---- layers ----------------------------------------------------------------------------------

local Layer = sw.class(Module)

-- type: the layer type name known to C; hp: its hyper-parameters; opts: the user's options
-- (name and the layer's own keys, checked against `keys`); repr: the printed form.
function Layer:init(type_name, hp, opts, keys, repr)
  local known = { "name" }
  for _, k in ipairs(keys) do known[#known + 1] = k end
  sw.check_options(opts, known, "sw.nn." .. type_name)
  self.type = type_name
  self.hp = hp
  for _, k in ipairs(keys) do
    if opts and opts[k] ~= nil then hp[k] = opts[k] end
  end
  self.name = opts and opts.name
  self.repr = repr
end

function Layer:emit(nodes, path, input)
  local node = { name = path, type = self.type, inputs = { input } }
  for k, v in pairs(self.hp) do node[k] = v end
  nodes[#nodes + 1] = node
  return path
end

local function fmt_size(v)
  if type(v) == "table" then return string.format("(%s, %s)", v[1], v[2]) end
  return tostring(v)
end

function nn.Linear(in_features, out_features, opts)
  check_count(in_features, "Linear", "in_features")
  check_count(out_features, "Linear", "out_features")
  return Layer("Linear", { in_features = in_features, out_features = out_features }, opts,
               { "bias" }, string.format("Linear(%d, %d)", in_features, out_features))
end

function nn.Conv2d(in_channels, out_channels, kernel_size, opts)
  check_count(in_channels, "Conv2d", "in_channels")
  check_count(out_channels, "Conv2d", "out_channels")
  check_size(kernel_size, "Conv2d", "kernel_size")
  local repr = string.format("Conv2d(%d, %d, kernel_size=%s", in_channels, out_channels,
                             fmt_size(kernel_size))
  for _, k in ipairs({ "stride", "padding", "dilation", "groups" }) do
    if opts and opts[k] then repr = repr .. string.format(", %s=%s", k, fmt_size(opts[k])) end
  end
  if opts and opts.bias == false then repr = repr .. ", bias=False" end
  return Layer("Conv2d", { in_channels = in_channels, out_channels = out_channels,
                           kernel_size = kernel_size }, opts,
               { "stride", "padding", "dilation", "groups", "bias" }, repr .. ")")
end

local function batchnorm(type_name, num_features, opts)
  check_count(num_features, type_name, "num_features")
  return Layer(type_name, { num_features = num_features }, opts, { "eps", "momentum" },
               string.format("%s(%d)", type_name, num_features))
end
function nn.BatchNorm2d(n, opts) return batchnorm("BatchNorm2d", n, opts) end
function nn.BatchNorm1d(n, opts) return batchnorm("BatchNorm1d", n, opts) end

-- Layers without hyper-parameters: ReLU(), or ReLU{name = "relu1"}.
local function simple(type_name)
  return function(opts) return Layer(type_name, {}, opts, {}, type_name .. "()") end
end
nn.ReLU = simple("ReLU")
nn.ReLU6 = simple("ReLU6")
nn.Flatten = simple("Flatten")
nn.Identity = simple("Identity")

-- Dropout(p = 0.5 [, opts]) or Dropout{p = 0.3, name = ...}.
function nn.Dropout(p, opts)
  if type(p) == "table" then p, opts = p.p, p end
  p = p or 0.5
  if type(p) ~= "number" or p < 0 or p >= 1 then
    sw.error("sw.nn.Dropout: p must be a number in [0, 1), got %s", tostring(p))
  end
  return Layer("Dropout", { p = p }, opts, { "p" }, string.format("Dropout(p=%g)", p))
end

-- Pools: stride defaults to the kernel size, as in PyTorch.
local function pool(type_name, kernel_size, opts)
  check_size(kernel_size, type_name, "kernel_size")
  local hp = { kernel_size = kernel_size, stride = kernel_size }
  return Layer(type_name, hp, opts, { "stride", "padding" },
               string.format("%s(kernel_size=%s)", type_name, fmt_size(kernel_size)))
end
function nn.MaxPool2d(k, opts) return pool("MaxPool2d", k, opts) end
function nn.AvgPool2d(k, opts) return pool("AvgPool2d", k, opts) end

-- AdaptiveAvgPool2d(1): global average pooling, the only output size the engine has.
function nn.AdaptiveAvgPool2d(output_size, opts)
  if output_size ~= 1 then
    sw.error("sw.nn.AdaptiveAvgPool2d: only output_size 1 (global average pooling) exists")
  end
  return Layer("AdaptiveAvgPool2d", {}, opts, {}, "AdaptiveAvgPool2d(output_size=1)")
end

-- ---- containers ------------------------------------------------------------------------------

local Container = sw.class(Module)

-- spec: an array of modules plus options; `extra` lists the container's own option keys.
function Container:init(kind, spec, extra)
  if type(spec) ~= "table" then sw.error("sw.nn.%s: expected a table of modules", kind) end
  local known = { "name" }
  for _, k in ipairs(extra) do known[#known + 1] = k end
  local opts, n_entries = {}, 0
  for k, v in pairs(spec) do
    if type(k) == "string" then opts[k] = v else n_entries = n_entries + 1 end
  end
  sw.check_options(opts, known, "sw.nn." .. kind)
  if n_entries ~= #spec then sw.error("sw.nn.%s: the modules must form an array", kind) end
  self.kind = kind
  self.name = opts.name
  self.children = {}
  for i, child in ipairs(spec) do
    if not is_module(child) then
      sw.error("sw.nn.%s: entry %d is not a module (a %s)", kind, i, type(child))
    end
    self.children[i] = child
  end
end

-- Runs the children one after the other; returns the name of the last node.
function Container:emit_chain(nodes, path, input)
  local x = input
  for i, child in ipairs(self.children) do
    x = child:emit(nodes, join(path, child.name or tostring(i - 1)), x)
  end
  return x
end

local Sequential = sw.class(Container)
function Sequential:emit(nodes, path, input) return self:emit_chain(nodes, path, input) end

-- Sequential{ m1, m2, ..., name = "features" }
function nn.Sequential(spec)
  local s = Sequential("Sequential", spec, {})
  if #s.children == 0 then sw.error("sw.nn.Sequential: no modules") end
  return s
end

local Residual = sw.class(Container)

function Residual:emit(nodes, path, input)
  local body = self:emit_chain(nodes, path, input)
  local shortcut = input
  if self.shortcut then
    shortcut = self.shortcut:emit(nodes, join(path, self.shortcut.name or "shortcut"), input)
  end
  local add = join(path, "add")
  nodes[#nodes + 1] = { name = add, type = "Add", inputs = { body, shortcut } }
  return add
end

-- Residual{ body modules..., shortcut = module (default: identity), name = ... }:
-- output = body(x) + shortcut(x); the body must keep the shape, or the shortcut match it.
function nn.Residual(spec)
  local r = Residual("Residual", spec, { "shortcut" })
  if #r.children == 0 then sw.error("sw.nn.Residual: the body has no modules") end
  if spec.shortcut ~= nil and not is_module(spec.shortcut) then
    sw.error("sw.nn.Residual: shortcut must be a module")
  end
  r.shortcut = spec.shortcut
  return r
end

local Concat = sw.class(Container)

function Concat:emit(nodes, path, input)
  local outs = {}
  for i, branch in ipairs(self.children) do
    outs[i] = branch:emit(nodes, join(path, branch.name or tostring(i - 1)), input)
  end
  local cat = join(path, "cat")
  nodes[#nodes + 1] = { name = cat, type = "Concat", inputs = outs }
  return cat
end

-- Concat{ branch1, branch2, ..., name = ... }: every branch sees the same input; the outputs
-- are concatenated along the channels (same height and width).
function nn.Concat(spec)
  local c = Concat("Concat", spec, {})
  if #c.children < 2 then sw.error("sw.nn.Concat: give at least two branches") end
  return c
end

-- sw.nn.build(module, opts): the same as module:build(opts).
function nn.build(module, opts)
  if not is_module(module) then sw.error("sw.nn.build: expected a sw.nn module") end
  return module:build(opts)
end

return nn
