/* masks_io.c - masks <-> safetensors files.
 *
 * Module names contain dots ("layer1.0.conv1") and target names do not, so a tensor name is
 * split at its last dot. */
#include "masks_io.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../io/safetensors.h"

sw_status sw_masks_save(const sw_masks *masks, const char *path, const char *const *extra_meta) {
    sw_st_writer *w = NULL;
    SW_TRY(sw_st_writer_new(&w));
    sw_status st = sw_st_writer_meta(w, "format", "shrinkwrap-masks");
    if (st == SW_OK) st = sw_st_writer_meta(w, "format_version", "1");
    for (int i = 0; extra_meta && extra_meta[i] && extra_meta[i + 1] && st == SW_OK; i += 2)
        st = sw_st_writer_meta(w, extra_meta[i], extra_meta[i + 1]);
    /* Names live until the write: the writer copies them, the data stays borrowed. */
    for (int i = 0; i < masks->n && st == SW_OK; i++) {
        const sw_masks_entry *e = &masks->items[i];
        char name[512];
        snprintf(name, sizeof name, "%s.%s", e->module, e->target);
        st = sw_st_writer_add_tensor(w, name, &e->mask);
    }
    if (st == SW_OK) st = sw_st_writer_write(w, path);
    sw_st_writer_free(w);
    if (st != SW_OK) sw_error_prefix("writing masks to %s", path);
    return st;
}

sw_status sw_masks_load(const char *path, sw_masks *out) {
    sw_masks_init(out);
    sw_safetensors *st = NULL;
    SW_TRY(sw_safetensors_read_file(path, &st));
    sw_status s = SW_OK;
    for (int i = 0; i < st->n_entries && s == SW_OK; i++) {
        const char *name = st->entries[i].name;
        const char *dot = strrchr(name, '.');
        if (!dot || dot == name || !dot[1]) {
            s = SW_FAIL(SW_ERR_FORMAT, "%s: tensor \"%s\" is not named <module>.<target>", path,
                        name);
            break;
        }
        sw_tensor t = {0};
        s = sw_safetensors_get_f32(st, name, &t);
        if (s != SW_OK) break;
        for (size_t k = 0; k < t.numel; k++) t.data[k] = t.data[k] != 0.0f ? 1.0f : 0.0f;
        char module[512];
        snprintf(module, sizeof module, "%.*s", (int)(dot - name), name);
        s = sw_masks_add(out, module, dot + 1, &t);
        sw_tensor_deinit(&t);
    }
    sw_safetensors_free(st);
    if (s != SW_OK) {
        sw_error_prefix("reading masks from %s", path);
        sw_masks_deinit(out);
    }
    return s;
}
