/* l_data.c - datasets and loaders in Lua: sw.data.fashion_mnist{...}, mnist, cifar10, single
 * examples and slices as tensors, and a loader that iterates over shuffled mini-batches.
 *
 * A dataset userdata owns its sw_dataset. A loader borrows its dataset: the dataset userdata is
 * the loader's user value, so the collector keeps it while the loader lives, and every use
 * checks that nobody closed it early (`local ds <close> = ...` or a direct __gc call).
 * Labels are the datasets' class ids, 0-based (0..9), as in the files and in PyTorch.
 */
#include <string.h>

#include "binding.h"

typedef struct sw_lua_loader {
    sw_loader loader;
    bool ready; /* loader initialised, to deinit once */
} sw_lua_loader;

/* ---- datasets ----------------------------------------------------------------------------- */

static sw_lua_dataset *to_dataset(lua_State *L, int idx) {
    return luaL_checkudata(L, idx, SW_LUA_DATASET);
}

sw_lua_dataset *sw_lua_check_dataset(lua_State *L, int idx) {
    sw_lua_dataset *u = to_dataset(L, idx);
    if (!u->ds) luaL_error(L, "the dataset has been freed (used after it was closed)");
    return u;
}

sw_augment sw_lua_check_augment(lua_State *L, int idx) {
    sw_augment a = {0};
    idx = lua_absindex(L, idx);
    if (lua_isnoneornil(L, idx)) return a;
    if (lua_isboolean(L, idx)) {
        /* The customary augmentation for 28x28 and 32x32 images: 2- or 4-pixel shifts and
         * mirror images. */
        if (lua_toboolean(L, idx)) {
            a.crop_padding = 2;
            a.horizontal_flip = true;
        }
        return a;
    }
    luaL_checktype(L, idx, LUA_TTABLE);
    static const char *const known[] = {"crop_padding", "flip", NULL};
    sw_lua_check_keys(L, idx, known, "augment");
    lua_Integer pad = sw_lua_opt_int_field(L, idx, "crop_padding", 0);
    if (pad < 0 || pad > 16) luaL_error(L, "augment.crop_padding must be in [0, 16], got %I", pad);
    a.crop_padding = (int)pad;
    a.horizontal_flip = sw_lua_opt_bool_field(L, idx, "flip", 0);
    return a;
}

/* Loads one split of a dataset kind from the options table at 1:
 * {split='train'|'test', subset=n, dir=path, augment=...}. Returns ds | nil, message. */
static int load_dataset(lua_State *L, sw_dataset_kind kind, const char *what) {
    if (lua_isnoneornil(L, 1)) lua_newtable(L);
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    static const char *const known[] = {"split", "subset", "dir", "augment", NULL};
    sw_lua_check_keys(L, 1, known, what);
    const char *split_name = sw_lua_opt_str_field(L, 1, "split", "train");
    sw_split split;
    if (strcmp(split_name, "train") == 0)
        split = SW_SPLIT_TRAIN;
    else if (strcmp(split_name, "test") == 0)
        split = SW_SPLIT_TEST;
    else
        return luaL_error(L, "%s: split must be 'train' or 'test', got '%s'", what, split_name);
    lua_Integer subset = sw_lua_opt_int_field(L, 1, "subset", 0);
    if (subset < 0 || subset > INT32_MAX)
        return luaL_error(L, "%s: subset must be a positive count, got %I", what, subset);
    const char *dir = sw_lua_opt_str_field(L, 1, "dir", NULL);
    lua_getfield(L, 1, "augment");
    sw_augment augment = sw_lua_check_augment(L, -1);
    lua_pop(L, 1);

    sw_lua_dataset *u = lua_newuserdatauv(L, sizeof *u, 0);
    u->ds = NULL;
    u->augment = augment;
    u->busy = 0;
    luaL_setmetatable(L, SW_LUA_DATASET);
    sw_dataset *ds = NULL;
    if (sw_dataset_load(kind, dir, split, (int)subset, &ds) != SW_OK) return sw_lua_fail(L, what);
    u->ds = ds;
    sw_lua_ctx(L)->live_objects++;
    return 1;
}

static int l_fashion_mnist(lua_State *L) {
    return load_dataset(L, SW_DATASET_FASHION_MNIST, "sw.data.fashion_mnist");
}
static int l_mnist(lua_State *L) { return load_dataset(L, SW_DATASET_MNIST, "sw.data.mnist"); }
static int l_cifar10(lua_State *L) {
    return load_dataset(L, SW_DATASET_CIFAR10, "sw.data.cifar10");
}

static int ds_gc(lua_State *L) {
    sw_lua_dataset *u = to_dataset(L, 1);
    if (u->busy) return luaL_error(L, "the dataset is in use by a running evaluator");
    if (u->ds) {
        sw_dataset_free(u->ds);
        u->ds = NULL;
        sw_lua_ctx(L)->live_objects--;
    }
    return 0;
}

static int ds_tostring(lua_State *L) {
    sw_lua_dataset *u = to_dataset(L, 1);
    if (!u->ds)
        lua_pushliteral(L, "dataset (freed)");
    else
        lua_pushfstring(L, "dataset %s: %d images [%d, %d, %d], %d classes", u->ds->name,
                        u->ds->n, u->ds->channels, u->ds->height, u->ds->width,
                        u->ds->n_classes);
    return 1;
}

static int ds_len(lua_State *L) {
    lua_pushinteger(L, sw_lua_check_dataset(L, 1)->ds->n);
    return 1;
}

/* ds:info() -> {name, n, channels, height, width, classes} */
static int ds_info(lua_State *L) {
    const sw_dataset *ds = sw_lua_check_dataset(L, 1)->ds;
    lua_createtable(L, 0, 6);
    lua_pushstring(L, ds->name);
    lua_setfield(L, -2, "name");
    lua_pushinteger(L, ds->n);
    lua_setfield(L, -2, "n");
    lua_pushinteger(L, ds->channels);
    lua_setfield(L, -2, "channels");
    lua_pushinteger(L, ds->height);
    lua_setfield(L, -2, "height");
    lua_pushinteger(L, ds->width);
    lua_setfield(L, -2, "width");
    lua_pushinteger(L, ds->n_classes);
    lua_setfield(L, -2, "classes");
    return 1;
}

/* ds:batch(first, count) -> x [count, C, H, W], labels {...}: examples first..first+count-1
 * (1-based), as stored (normalised, not augmented). */
static int ds_batch(lua_State *L) {
    const sw_dataset *ds = sw_lua_check_dataset(L, 1)->ds;
    lua_Integer first = luaL_checkinteger(L, 2), count = luaL_optinteger(L, 3, 1);
    if (first < 1 || count < 1 || first > ds->n || count > ds->n - first + 1)
        return luaL_error(L, "ds:batch(%I, %I): the dataset has examples 1..%d", first, count,
                          ds->n);
    size_t per = (size_t)ds->channels * (size_t)ds->height * (size_t)ds->width;
    sw_shape shape = sw_shape_4d((int)count, ds->channels, ds->height, ds->width);
    sw_tensor *x = sw_lua_push_tensor(L, &shape);
    memcpy(x->data, ds->images + (size_t)(first - 1) * per, (size_t)count * per * sizeof(float));
    lua_createtable(L, (int)count, 0);
    for (lua_Integer i = 0; i < count; i++) {
        lua_pushinteger(L, ds->labels[first - 1 + i]);
        lua_rawseti(L, -2, i + 1);
    }
    return 2;
}

/* ds:get(i) -> image [C, H, W], label */
static int ds_get(lua_State *L) {
    const sw_dataset *ds = sw_lua_check_dataset(L, 1)->ds;
    lua_Integer i = luaL_checkinteger(L, 2);
    if (i < 1 || i > ds->n)
        return luaL_error(L, "ds:get(%I): the dataset has examples 1..%d", i, ds->n);
    size_t per = (size_t)ds->channels * (size_t)ds->height * (size_t)ds->width;
    sw_shape shape = sw_shape_3d(ds->channels, ds->height, ds->width);
    sw_tensor *x = sw_lua_push_tensor(L, &shape);
    memcpy(x->data, ds->images + (size_t)(i - 1) * per, per * sizeof(float));
    lua_pushinteger(L, ds->labels[i - 1]);
    return 2;
}

/* ---- loaders ------------------------------------------------------------------------------ */

static sw_lua_loader *check_loader(lua_State *L, int idx) {
    sw_lua_loader *u = luaL_checkudata(L, idx, SW_LUA_LOADER);
    if (!u->ready) luaL_error(L, "the loader has been freed");
    /* The borrowed dataset must still be open. */
    lua_getiuservalue(L, idx, 1);
    sw_lua_check_dataset(L, -1);
    lua_pop(L, 1);
    return u;
}

/* ds:loader{batch_size=64, shuffle=false, drop_last=false, augment=<the dataset's>, seed=0} */
static int ds_loader(lua_State *L) {
    sw_lua_dataset *d = sw_lua_check_dataset(L, 1);
    if (lua_isnoneornil(L, 2)) lua_newtable(L);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    static const char *const known[] = {"batch_size", "shuffle", "drop_last", "augment", "seed",
                                        NULL};
    sw_lua_check_keys(L, 2, known, "ds:loader");
    lua_Integer bs = sw_lua_opt_int_field(L, 2, "batch_size", 64);
    if (bs < 1 || bs > INT32_MAX) return luaL_error(L, "ds:loader: batch_size must be >= 1");
    bool shuffle = sw_lua_opt_bool_field(L, 2, "shuffle", 0);
    bool drop_last = sw_lua_opt_bool_field(L, 2, "drop_last", 0);
    lua_Integer seed = sw_lua_opt_int_field(L, 2, "seed", 0);
    sw_augment augment = d->augment;
    if (lua_getfield(L, 2, "augment") != LUA_TNIL) augment = sw_lua_check_augment(L, -1);
    lua_pop(L, 1);

    sw_lua_loader *u = lua_newuserdatauv(L, sizeof *u, 1);
    u->ready = false;
    luaL_setmetatable(L, SW_LUA_LOADER);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1); /* the loader borrows the dataset: keep it alive */
    if (sw_loader_init(&u->loader, d->ds, (int)bs, shuffle, drop_last, &augment,
                       (uint64_t)seed) != SW_OK)
        return sw_lua_raise(L, "ds:loader");
    u->ready = true;
    sw_lua_ctx(L)->live_objects++;
    return 1;
}

static int loader_gc(lua_State *L) {
    sw_lua_loader *u = luaL_checkudata(L, 1, SW_LUA_LOADER);
    if (u->ready) {
        sw_loader_deinit(&u->loader);
        u->ready = false;
        sw_lua_ctx(L)->live_objects--;
    }
    return 0;
}

static int loader_len(lua_State *L) {
    lua_pushinteger(L, sw_loader_batches_per_epoch(&check_loader(L, 1)->loader));
    return 1;
}

/* The iterator of one epoch: returns x [b, C, H, W], labels {...} (0-based classes), or nil
 * at the end of the epoch. */
static int loader_next(lua_State *L) {
    sw_lua_loader *u = check_loader(L, lua_upvalueindex(1));
    sw_batch batch;
    if (!sw_loader_next(&u->loader, &batch)) return 0;
    sw_lua_push_tensor_copy(L, &batch.x);
    lua_createtable(L, batch.size, 0);
    for (int i = 0; i < batch.size; i++) {
        lua_pushinteger(L, batch.y[i]);
        lua_rawseti(L, -2, i + 1);
    }
    return 2;
}

/* loader:epoch() -> an iterator over one (reshuffled) epoch: for x, y in loader:epoch() do */
static int loader_epoch(lua_State *L) {
    sw_lua_loader *u = check_loader(L, 1);
    sw_loader_reset(&u->loader);
    lua_pushvalue(L, 1);
    lua_pushcclosure(L, loader_next, 1);
    return 1;
}

/* ---- registration ------------------------------------------------------------------------- */

static const luaL_Reg ds_meth[] = {
    {"info", ds_info}, {"get", ds_get}, {"batch", ds_batch}, {"loader", ds_loader},
    {NULL, NULL},
};
static const luaL_Reg ds_metameth[] = {
    {"__gc", ds_gc}, {"__close", ds_gc}, {"__len", ds_len}, {"__tostring", ds_tostring},
    {NULL, NULL},
};
static const luaL_Reg loader_meth[] = {
    {"epoch", loader_epoch}, {"batches_per_epoch", loader_len}, {NULL, NULL},
};
static const luaL_Reg loader_metameth[] = {
    {"__gc", loader_gc}, {"__close", loader_gc}, {"__len", loader_len}, {NULL, NULL},
};
static const luaL_Reg data_functions[] = {
    {"fashion_mnist", l_fashion_mnist}, {"mnist", l_mnist}, {"cifar10", l_cifar10},
    {NULL, NULL},
};

int sw_lua_open_data(lua_State *L) {
    sw_lua_new_type(L, SW_LUA_DATASET, ds_meth, ds_metameth);
    sw_lua_new_type(L, SW_LUA_LOADER, loader_meth, loader_metameth);
    luaL_newlib(L, data_functions);
    lua_setfield(L, -2, "data");
    return 0;
}
