-- compress.lua - pure-Lua helpers around the compression API (the C half, src/lua/l_*.c, binds
-- the pruners, quantizers, distillers, masks and ModelSpeedup): what a recipe wants to know
-- about masks, and a printout of them.
--
--   local rows, total = sw.mask_stats(pruner)        -- or a masks table
--   print(("%.1f%% of the masked weights are pruned"):format(100 * total.sparsity))
--   sw.print_masks(pruner:get_masks())
local sw = require "shrinkwrap"

-- The masks table of `masks`, which may be a compressor (its chain's masks).
local function masks_of(masks, what)
  if type(masks) == "table" then return masks end
  local ok, m = pcall(function() return masks:get_masks() end)
  if not ok then
    sw.error("%s: expected a masks table {module = {target = tensor}} or a compressor, got %s",
             what, tostring(masks))
  end
  return m
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

-- sw.mask_stats(masks_or_compressor) -> rows, total.
-- rows: one {module, target, kept, total, sparsity} per mask, sorted by module then target;
-- total: {kept, total, sparsity} over every mask (sparsity = pruned fraction, in [0, 1]).
function sw.mask_stats(masks)
  masks = masks_of(masks, "sw.mask_stats")
  local rows, kept, count = {}, 0, 0
  for _, module in ipairs(sorted_keys(masks)) do
    for _, target in ipairs(sorted_keys(masks[module])) do
      local m = masks[module][target]
      local k, n = m:count_nonzero(), m:numel()
      rows[#rows + 1] = { module = module, target = target, kept = k, total = n,
                          sparsity = n > 0 and 1 - k / n or 0 }
      kept, count = kept + k, count + n
    end
  end
  return rows, { kept = kept, total = count, sparsity = count > 0 and 1 - kept / count or 0 }
end

-- sw.print_masks(masks_or_compressor): one line per mask (module, target, shape, kept,
-- sparsity), then the total.
function sw.print_masks(masks)
  masks = masks_of(masks, "sw.print_masks")
  local rows, total = sw.mask_stats(masks)
  local out = {}
  for _, r in ipairs(rows) do
    local shape = masks[r.module][r.target]:shape()
    out[#out + 1] = { r.module, r.target, "[" .. table.concat(shape, ", ") .. "]",
                      ("%d/%d"):format(r.kept, r.total), ("%.1f%%"):format(100 * r.sparsity) }
  end
  out[#out + 1] = { "total", "", "", ("%d/%d"):format(total.kept, total.total),
                    ("%.1f%%"):format(100 * total.sparsity) }
  sw.print_table({ "module", "target", "shape", "kept", "pruned" }, out)
end

return true
