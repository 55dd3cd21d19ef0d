/* l_tensor.c - the tensor userdata: construction from Lua tables, element access, arithmetic,
 * reductions and conversion back to tables.
 *
 * A tensor userdata holds its floats inline (sw_lua_tensor), so Lua's collector sees its real
 * size and frees it with the userdata: there is no C object to free and no __gc. Tensors made
 * here are always copies; nothing in Lua ever points into a model's or a loader's memory, which
 * may move or be reused. Indices are 1-based, as everything in Lua.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "binding.h"

/* ---- construction ------------------------------------------------------------------------- */

sw_tensor *sw_lua_push_tensor(lua_State *L, const sw_shape *shape) {
    if (shape->ndim < 1 || shape->ndim > SW_MAX_DIMS)
        luaL_error(L, "a tensor has 1 to %d dimensions, not %d", SW_MAX_DIMS, shape->ndim);
    size_t numel = 1;
    for (int d = 0; d < shape->ndim; d++) {
        if (shape->dims[d] < 1)
            luaL_error(L, "tensor dimension %d has size %d; sizes must be at least 1", d + 1,
                       shape->dims[d]);
        /* Guard the byte count against overflow before multiplying. */
        if (numel > (SIZE_MAX / sizeof(float) - sizeof(sw_lua_tensor)) / (size_t)shape->dims[d])
            luaL_error(L, "tensor of that shape is too large");
        numel *= (size_t)shape->dims[d];
    }
    sw_lua_tensor *u = lua_newuserdatauv(L, sizeof *u + numel * sizeof(float), 0);
    memset(u->data, 0, numel * sizeof(float));
    u->t = sw_tensor_view(u->data, shape);
    luaL_setmetatable(L, SW_LUA_TENSOR);
    return &u->t;
}

sw_tensor *sw_lua_push_tensor_copy(lua_State *L, const sw_tensor *t) {
    sw_tensor *copy = sw_lua_push_tensor(L, &t->shape);
    memcpy(copy->data, t->data, t->numel * sizeof(float));
    return copy;
}

sw_tensor *sw_lua_test_tensor(lua_State *L, int idx) {
    sw_lua_tensor *u = luaL_testudata(L, idx, SW_LUA_TENSOR);
    return u ? &u->t : NULL;
}

sw_tensor *sw_lua_check_tensor(lua_State *L, int idx) {
    return &((sw_lua_tensor *)luaL_checkudata(L, idx, SW_LUA_TENSOR))->t;
}

static int check_dim_size(lua_State *L, lua_Integer v, int d) {
    if (v < 1 || v > INT32_MAX)
        luaL_error(L, "shape: dimension %d must be a positive integer, got %I", d + 1, v);
    return (int)v;
}

sw_shape sw_lua_check_shape(lua_State *L, int idx) {
    sw_shape shape = {0};
    if (lua_istable(L, idx)) {
        lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
        if (n < 1 || n > SW_MAX_DIMS)
            luaL_error(L, "shape: give 1 to %d sizes, e.g. {2, 3}; got %I", SW_MAX_DIMS, n);
        shape.ndim = (int)n;
        for (int d = 0; d < shape.ndim; d++) {
            lua_rawgeti(L, idx, d + 1);
            int ok = 0;
            lua_Integer v = lua_tointegerx(L, -1, &ok);
            if (!ok) luaL_error(L, "shape: dimension %d is not an integer", d + 1);
            shape.dims[d] = check_dim_size(L, v, d);
            lua_pop(L, 1);
        }
    } else {
        int top = lua_gettop(L);
        if (top < idx || top - idx + 1 > SW_MAX_DIMS)
            luaL_error(L, "shape: give 1 to %d sizes, e.g. {2, 3}", SW_MAX_DIMS);
        shape.ndim = top - idx + 1;
        for (int d = 0; d < shape.ndim; d++)
            shape.dims[d] = check_dim_size(L, luaL_checkinteger(L, idx + d), d);
    }
    return sw_shape_make(shape.ndim, shape.dims);
}

/* The shape of a nested table, read along its first elements: {{1,2,3},{4,5,6}} -> [2, 3]. */
static sw_shape nested_shape(lua_State *L, int idx) {
    sw_shape s = {0};
    lua_pushvalue(L, idx);
    while (lua_istable(L, -1)) {
        if (s.ndim == SW_MAX_DIMS) luaL_error(L, "sw.tensor: more than %d levels", SW_MAX_DIMS);
        lua_Unsigned n = lua_rawlen(L, -1);
        if (n == 0) luaL_error(L, "sw.tensor: empty table at level %d", s.ndim + 1);
        if (n > INT32_MAX) luaL_error(L, "sw.tensor: table too long");
        s.dims[s.ndim++] = (int)n;
        lua_rawgeti(L, -1, 1);
        lua_remove(L, -2);
    }
    lua_pop(L, 1);
    if (s.ndim == 0) luaL_error(L, "sw.tensor: expected a table of numbers");
    return sw_shape_make(s.ndim, s.dims);
}

/* Copies the nested table at idx (level `d` of `shape`) into out[*at...], checking that every
 * row has the same length and every leaf is a number. */
static void fill_nested(lua_State *L, int idx, const sw_shape *shape, int d, float *out,
                        size_t *at) {
    luaL_checkstack(L, 2, "sw.tensor: nesting too deep");
    if ((lua_Unsigned)shape->dims[d] != lua_rawlen(L, idx))
        luaL_error(L, "sw.tensor: ragged table: a row at level %d has %d entries, expected %d",
                   d + 1, (int)lua_rawlen(L, idx), shape->dims[d]);
    for (int i = 1; i <= shape->dims[d]; i++) {
        int type = lua_rawgeti(L, idx, i);
        if (d + 1 < shape->ndim) {
            if (type != LUA_TTABLE)
                luaL_error(L, "sw.tensor: expected a table at level %d, got %s", d + 2,
                           lua_typename(L, type));
            fill_nested(L, lua_gettop(L), shape, d + 1, out, at);
        } else {
            if (type != LUA_TNUMBER)
                luaL_error(L, "sw.tensor: element %d at level %d is %s, not a number", i, d + 1,
                           lua_typename(L, type));
            out[(*at)++] = (float)lua_tonumber(L, -1);
        }
        lua_pop(L, 1);
    }
}

/* sw.tensor{...}: a tensor from nested tables of numbers, or a copy of a tensor. */
static int l_tensor_new(lua_State *L) {
    sw_tensor *src = sw_lua_test_tensor(L, 1);
    if (src) {
        sw_lua_push_tensor_copy(L, src);
        return 1;
    }
    luaL_checktype(L, 1, LUA_TTABLE);
    sw_shape shape = nested_shape(L, 1);
    sw_tensor *t = sw_lua_push_tensor(L, &shape);
    size_t at = 0;
    fill_nested(L, 1, &shape, 0, t->data, &at);
    return 1;
}

static int l_zeros(lua_State *L) {
    sw_shape shape = sw_lua_check_shape(L, 1);
    sw_lua_push_tensor(L, &shape);
    return 1;
}

static int l_ones(lua_State *L) {
    sw_shape shape = sw_lua_check_shape(L, 1);
    sw_tensor_fill(sw_lua_push_tensor(L, &shape), 1.0f);
    return 1;
}

/* sw.full(shape, value) */
static int l_full(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    float value = (float)luaL_checknumber(L, 2);
    sw_shape shape = sw_lua_check_shape(L, 1);
    sw_tensor_fill(sw_lua_push_tensor(L, &shape), value);
    return 1;
}

/* sw.randn / sw.rand draw from the state's generator (sw.manual_seed), so a recipe that seeds
 * it gets the same numbers on every run. */
static int l_randn(lua_State *L) {
    sw_shape shape = sw_lua_check_shape(L, 1);
    sw_tensor *t = sw_lua_push_tensor(L, &shape);
    sw_rng *rng = &sw_lua_ctx(L)->rng;
    for (size_t i = 0; i < t->numel; i++) t->data[i] = sw_rng_normal(rng);
    return 1;
}

static int l_rand(lua_State *L) {
    sw_shape shape = sw_lua_check_shape(L, 1);
    sw_tensor *t = sw_lua_push_tensor(L, &shape);
    sw_rng *rng = &sw_lua_ctx(L)->rng;
    for (size_t i = 0; i < t->numel; i++) t->data[i] = sw_rng_uniform(rng);
    return 1;
}

static int l_manual_seed(lua_State *L) {
    lua_Integer seed = luaL_checkinteger(L, 1);
    sw_rng_init(&sw_lua_ctx(L)->rng, (uint64_t)seed, 0x1a);
    return 0;
}

/* ---- element access ----------------------------------------------------------------------- */

/* Offset of the element whose 1-based indices are the `n` integers at idx..idx+n-1, or in the
 * table at idx when `in_table`. Raises on a wrong count or an index out of range. */
static size_t element_offset(lua_State *L, const sw_tensor *t, int idx, int n, bool in_table) {
    if (n != t->shape.ndim)
        luaL_error(L, "tensor of %d dimension(s) indexed with %d index(es)", t->shape.ndim, n);
    size_t off = 0;
    for (int d = 0; d < n; d++) {
        lua_Integer i;
        int ok = 0;
        if (in_table) {
            lua_rawgeti(L, idx, d + 1);
            i = lua_tointegerx(L, -1, &ok);
            lua_pop(L, 1);
        } else {
            i = lua_tointegerx(L, idx + d, &ok);
        }
        if (!ok) luaL_error(L, "tensor index %d is not an integer", d + 1);
        if (i < 1 || i > t->shape.dims[d])
            luaL_error(L, "tensor index %I out of range [1, %d] in dimension %d", i,
                       t->shape.dims[d], d + 1);
        off = off * (size_t)t->shape.dims[d] + (size_t)(i - 1);
    }
    return off;
}

/* t:get(i, j, ...) or t:get{i, j, ...} */
static int m_get(lua_State *L) {
    sw_tensor *t = sw_lua_check_tensor(L, 1);
    size_t off = lua_istable(L, 2) ? element_offset(L, t, 2, (int)lua_rawlen(L, 2), true)
                                   : element_offset(L, t, 2, lua_gettop(L) - 1, false);
    lua_pushnumber(L, t->data[off]);
    return 1;
}

/* t:set(i, j, ..., value) or t:set({i, j, ...}, value); returns t. */
static int m_set(lua_State *L) {
    sw_tensor *t = sw_lua_check_tensor(L, 1);
    int top = lua_gettop(L);
    float v = (float)luaL_checknumber(L, top);
    size_t off = lua_istable(L, 2) ? element_offset(L, t, 2, (int)lua_rawlen(L, 2), true)
                                   : element_offset(L, t, 2, top - 2, false);
    t->data[off] = v;
    lua_settop(L, 1);
    return 1;
}

/* __index: methods by name, elements by t[{i, j}] (or t[i] for a 1-D tensor). */
static int mm_index(lua_State *L) {
    sw_tensor *t = sw_lua_check_tensor(L, 1);
    switch (lua_type(L, 2)) {
    case LUA_TSTRING:
        lua_pushvalue(L, 2);
        lua_rawget(L, lua_upvalueindex(1));
        return 1;
    case LUA_TTABLE:
        lua_pushnumber(L, t->data[element_offset(L, t, 2, (int)lua_rawlen(L, 2), true)]);
        return 1;
    case LUA_TNUMBER:
        lua_pushnumber(L, t->data[element_offset(L, t, 2, 1, false)]);
        return 1;
    default:
        return luaL_error(L, "tensors are indexed by a method name or {i, j, ...}, not %s",
                          luaL_typename(L, 2));
    }
}

static int mm_newindex(lua_State *L) {
    sw_tensor *t = sw_lua_check_tensor(L, 1);
    float v = (float)luaL_checknumber(L, 3);
    size_t off;
    if (lua_istable(L, 2))
        off = element_offset(L, t, 2, (int)lua_rawlen(L, 2), true);
    else if (lua_type(L, 2) == LUA_TNUMBER)
        off = element_offset(L, t, 2, 1, false);
    else
        return luaL_error(L, "tensor elements are set with t[{i, j, ...}] = value");
    t->data[off] = v;
    return 0;
}

/* ---- shape -------------------------------------------------------------------------------- */

static int m_shape(lua_State *L) {
    sw_lua_push_shape(L, &sw_lua_check_tensor(L, 1)->shape);
    return 1;
}

static int m_dim(lua_State *L) {
    lua_pushinteger(L, sw_lua_check_tensor(L, 1)->shape.ndim);
    return 1;
}

static int m_numel(lua_State *L) {
    lua_pushinteger(L, (lua_Integer)sw_lua_check_tensor(L, 1)->numel);
    return 1;
}

/* t:size(d): size of dimension d (1-based). */
static int m_size(lua_State *L) {
    sw_tensor *t = sw_lua_check_tensor(L, 1);
    lua_Integer d = luaL_checkinteger(L, 2);
    luaL_argcheck(L, d >= 1 && d <= t->shape.ndim, 2, "dimension out of range");
    lua_pushinteger(L, t->shape.dims[d - 1]);
    return 1;
}

/* #t: the size of the first dimension, as len() of a torch tensor. */
static int mm_len(lua_State *L) {
    lua_pushinteger(L, sw_lua_check_tensor(L, 1)->shape.dims[0]);
    return 1;
}

static int m_clone(lua_State *L) {
    sw_lua_push_tensor_copy(L, sw_lua_check_tensor(L, 1));
    return 1;
}

/* t:reshape{...}: a copy with a new shape of the same number of elements. */
static int m_reshape(lua_State *L) {
    sw_tensor *t = sw_lua_check_tensor(L, 1);
    sw_shape shape = sw_lua_check_shape(L, 2);
    if (sw_shape_numel(&shape) != t->numel) {
        char a[64], b[64];
        return luaL_error(L, "reshape: %s has %d elements, %s would need %d",
                          sw_shape_format(&t->shape, a, sizeof a), (int)t->numel,
                          sw_shape_format(&shape, b, sizeof b), (int)sw_shape_numel(&shape));
    }
    sw_tensor *out = sw_lua_push_tensor(L, &shape);
    memcpy(out->data, t->data, t->numel * sizeof(float));
    return 1;
}

static int m_fill(lua_State *L) {
    sw_tensor *t = sw_lua_check_tensor(L, 1);
    sw_tensor_fill(t, (float)luaL_checknumber(L, 2));
    lua_settop(L, 1);
    return 1;
}

/* ---- arithmetic --------------------------------------------------------------------------- */

typedef enum { OP_ADD, OP_SUB, OP_MUL, OP_DIV } arith_op;

static float apply(arith_op op, float a, float b) {
    switch (op) {
    case OP_ADD: return a + b;
    case OP_SUB: return a - b;
    case OP_MUL: return a * b;
    case OP_DIV: return a / b;
    }
    return 0;
}

/* Elementwise a op b where each side is a tensor or a number (not both numbers: Lua handles
 * that itself). Two tensors must have the same shape: no broadcasting, so a mistake in a
 * recipe shows up as an error instead of a silently different result. */
static int arith(lua_State *L, arith_op op) {
    static const char *const names[] = {"+", "-", "*", "/"};
    sw_tensor *a = sw_lua_test_tensor(L, 1), *b = sw_lua_test_tensor(L, 2);
    if (a && b) {
        if (!sw_shape_equal(&a->shape, &b->shape)) {
            char sa[64], sb[64];
            return luaL_error(L, "tensor %s tensor: shapes %s and %s differ (elementwise "
                              "operations need equal shapes)", names[op],
                              sw_shape_format(&a->shape, sa, sizeof sa),
                              sw_shape_format(&b->shape, sb, sizeof sb));
        }
        sw_tensor *out = sw_lua_push_tensor(L, &a->shape);
        for (size_t i = 0; i < out->numel; i++) out->data[i] = apply(op, a->data[i], b->data[i]);
        return 1;
    }
    int num_idx = a ? 2 : 1;
    if (lua_type(L, num_idx) != LUA_TNUMBER)
        return luaL_error(L, "tensor %s %s: expected a number or a tensor", names[op],
                          luaL_typename(L, num_idx));
    float s = (float)lua_tonumber(L, num_idx);
    sw_tensor *t = a ? a : b;
    sw_tensor *out = sw_lua_push_tensor(L, &t->shape);
    for (size_t i = 0; i < out->numel; i++)
        out->data[i] = a ? apply(op, t->data[i], s) : apply(op, s, t->data[i]);
    return 1;
}

static int mm_add(lua_State *L) { return arith(L, OP_ADD); }
static int mm_sub(lua_State *L) { return arith(L, OP_SUB); }
static int mm_mul(lua_State *L) { return arith(L, OP_MUL); }
static int mm_div(lua_State *L) { return arith(L, OP_DIV); }

static int mm_unm(lua_State *L) {
    sw_tensor *t = sw_lua_check_tensor(L, 1);
    sw_tensor *out = sw_lua_push_tensor(L, &t->shape);
    for (size_t i = 0; i < out->numel; i++) out->data[i] = -t->data[i];
    return 1;
}

static int m_abs(lua_State *L) {
    sw_tensor *t = sw_lua_check_tensor(L, 1);
    sw_tensor *out = sw_lua_push_tensor(L, &t->shape);
    for (size_t i = 0; i < out->numel; i++) out->data[i] = fabsf(t->data[i]);
    return 1;
}

/* ---- reductions (accumulated in double) ---------------------------------------------------- */

static int m_sum(lua_State *L) {
    sw_tensor *t = sw_lua_check_tensor(L, 1);
    double s = 0;
    for (size_t i = 0; i < t->numel; i++) s += t->data[i];
    lua_pushnumber(L, s);
    return 1;
}

static int m_mean(lua_State *L) {
    sw_tensor *t = sw_lua_check_tensor(L, 1);
    double s = 0;
    for (size_t i = 0; i < t->numel; i++) s += t->data[i];
    lua_pushnumber(L, s / (double)t->numel);
    return 1;
}

/* t:norm(): the Frobenius (L2) norm of all elements. */
static int m_norm(lua_State *L) {
    sw_tensor *t = sw_lua_check_tensor(L, 1);
    double s = 0;
    for (size_t i = 0; i < t->numel; i++) s += (double)t->data[i] * t->data[i];
    lua_pushnumber(L, sqrt(s));
    return 1;
}

/* Index of the largest (sign = 1) or smallest (sign = -1) of n values `stride` apart; the first
 * one wins ties, as torch's argmax. */
static size_t extreme_index(const float *x, size_t n, size_t stride, int sign) {
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (sign * x[i * stride] > sign * x[best * stride]) best = i;
    return best;
}

static int m_max(lua_State *L) {
    sw_tensor *t = sw_lua_check_tensor(L, 1);
    lua_pushnumber(L, t->data[extreme_index(t->data, t->numel, 1, 1)]);
    return 1;
}

static int m_min(lua_State *L) {
    sw_tensor *t = sw_lua_check_tensor(L, 1);
    lua_pushnumber(L, t->data[extreme_index(t->data, t->numel, 1, -1)]);
    return 1;
}

/* t:argmax(): 1-based position of the largest element in the flattened tensor.
 * t:argmax(dim) for a 2-D tensor: a Lua array of 1-based positions along dim (2 = per row, the
 * predicted class + 1 of a batch of logits; 1 = per column). */
static int m_argmax(lua_State *L) {
    sw_tensor *t = sw_lua_check_tensor(L, 1);
    if (lua_isnoneornil(L, 2)) {
        lua_pushinteger(L, (lua_Integer)extreme_index(t->data, t->numel, 1, 1) + 1);
        return 1;
    }
    lua_Integer dim = luaL_checkinteger(L, 2);
    if (t->shape.ndim != 2)
        return luaL_error(L, "argmax(dim) needs a 2-D tensor, this one is %d-D; use argmax() "
                          "for the flat position", t->shape.ndim);
    luaL_argcheck(L, dim == 1 || dim == 2, 2, "dimension must be 1 or 2");
    int rows = t->shape.dims[0], cols = t->shape.dims[1];
    int n_out = dim == 2 ? rows : cols;
    lua_createtable(L, n_out, 0);
    for (int i = 0; i < n_out; i++) {
        size_t best = dim == 2 ? extreme_index(t->data + (size_t)i * cols, (size_t)cols, 1, 1)
                               : extreme_index(t->data + i, (size_t)rows, (size_t)cols, 1);
        lua_pushinteger(L, (lua_Integer)best + 1);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static int m_count_nonzero(lua_State *L) {
    sw_tensor *t = sw_lua_check_tensor(L, 1);
    lua_Integer n = 0;
    for (size_t i = 0; i < t->numel; i++) n += t->data[i] != 0.0f;
    lua_pushinteger(L, n);
    return 1;
}

/* t:equal(u): same shape and bit-for-bit equal values. */
static int m_equal(lua_State *L) {
    sw_tensor *a = sw_lua_check_tensor(L, 1), *b = sw_lua_check_tensor(L, 2);
    bool eq = sw_shape_equal(&a->shape, &b->shape);
    for (size_t i = 0; eq && i < a->numel; i++) eq = a->data[i] == b->data[i];
    lua_pushboolean(L, eq);
    return 1;
}

/* t:allclose(u [, atol=1e-5 [, rtol=1e-5]]): |a - b| <= atol + rtol * |b| everywhere. */
static int m_allclose(lua_State *L) {
    sw_tensor *a = sw_lua_check_tensor(L, 1), *b = sw_lua_check_tensor(L, 2);
    double atol = luaL_optnumber(L, 3, 1e-5), rtol = luaL_optnumber(L, 4, 1e-5);
    bool ok = sw_shape_equal(&a->shape, &b->shape);
    for (size_t i = 0; ok && i < a->numel; i++)
        ok = fabs((double)a->data[i] - b->data[i]) <= atol + rtol * fabs((double)b->data[i]);
    lua_pushboolean(L, ok);
    return 1;
}

/* ---- conversion --------------------------------------------------------------------------- */

static void push_nested(lua_State *L, const sw_tensor *t, int d, size_t *at) {
    luaL_checkstack(L, 2, "totable");
    int n = t->shape.dims[d];
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        if (d + 1 < t->shape.ndim)
            push_nested(L, t, d + 1, at);
        else
            lua_pushnumber(L, t->data[(*at)++]);
        lua_rawseti(L, -2, i + 1);
    }
}

/* t:totable(): nested Lua arrays of numbers. */
static int m_totable(lua_State *L) {
    sw_tensor *t = sw_lua_check_tensor(L, 1);
    size_t at = 0;
    push_nested(L, t, 0, &at);
    return 1;
}

/* Appends dimension d to the buffer, eliding the middle of long rows ("1, 2, 3, ..., 9"). */
static void format_nested(luaL_Buffer *b, const sw_tensor *t, int d, size_t offset) {
    enum { EDGE = 3 };
    int n = t->shape.dims[d];
    size_t stride = 1;
    for (int k = d + 1; k < t->shape.ndim; k++) stride *= (size_t)t->shape.dims[k];
    luaL_addchar(b, '[');
    for (int i = 0; i < n; i++) {
        if (n > 2 * EDGE && i == EDGE) {
            luaL_addstring(b, "..., ");
            i = n - EDGE;
        }
        if (d + 1 < t->shape.ndim) {
            format_nested(b, t, d + 1, offset + (size_t)i * stride);
        } else {
            char num[32];
            snprintf(num, sizeof num, "%.4g", (double)t->data[offset + (size_t)i]);
            luaL_addstring(b, num);
        }
        if (i + 1 < n) luaL_addstring(b, ", ");
    }
    luaL_addchar(b, ']');
}

/* "tensor([[1, 2], [3, 4]], shape [2, 2])" */
static int mm_tostring(lua_State *L) {
    sw_tensor *t = sw_lua_check_tensor(L, 1);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addstring(&b, "tensor(");
    format_nested(&b, t, 0, 0);
    char shape[64];
    sw_shape_format(&t->shape, shape, sizeof shape);
    luaL_addstring(&b, ", shape ");
    luaL_addstring(&b, shape);
    luaL_addchar(&b, ')');
    luaL_pushresult(&b);
    return 1;
}

/* ---- registration ------------------------------------------------------------------------- */

static const luaL_Reg meth[] = {
    {"get", m_get},         {"set", m_set},           {"shape", m_shape},
    {"dim", m_dim},         {"numel", m_numel},       {"size", m_size},
    {"clone", m_clone},     {"reshape", m_reshape},   {"fill", m_fill},
    {"abs", m_abs},         {"sum", m_sum},           {"mean", m_mean},
    {"norm", m_norm},       {"max", m_max},           {"min", m_min},
    {"argmax", m_argmax},   {"count_nonzero", m_count_nonzero},
    {"equal", m_equal},     {"allclose", m_allclose}, {"totable", m_totable},
    {NULL, NULL},
};

static const luaL_Reg metameth[] = {
    {"__newindex", mm_newindex}, {"__len", mm_len}, {"__add", mm_add},
    {"__sub", mm_sub},           {"__mul", mm_mul}, {"__div", mm_div},
    {"__unm", mm_unm},           {"__tostring", mm_tostring},
    {NULL, NULL},
};

static const luaL_Reg functions[] = {
    {"tensor", l_tensor_new}, {"zeros", l_zeros},   {"ones", l_ones},
    {"full", l_full},         {"randn", l_randn},   {"rand", l_rand},
    {"manual_seed", l_manual_seed},
    {NULL, NULL},
};

int sw_lua_open_tensor(lua_State *L) {
    /* The metatable's __index is a closure over the method table, because element access
     * (t[{i, j}]) and methods (t:sum()) share the one __index. */
    luaL_newmetatable(L, SW_LUA_TENSOR);
    luaL_setfuncs(L, metameth, 0);
    luaL_newlibtable(L, meth);
    luaL_setfuncs(L, meth, 0);
    lua_pushcclosure(L, mm_index, 1);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    luaL_setfuncs(L, functions, 0); /* into the module table on top */
    return 0;
}
