/* tree.c - the module tree pane's state. */
#include "tree.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

sw_status sw_tui_tree_init(sw_tui_tree *t, const sw_model *model) {
    memset(t, 0, sizeof *t);
    t->model = model;
    t->cursor = -1;
    SW_TRY(sw_module_tree_build(model, &t->mt));
    size_t n = (size_t)(t->mt.n > 0 ? t->mt.n : 1);
    t->expanded = calloc(n, sizeof *t->expanded);
    t->marked = calloc(n, sizeof *t->marked);
    t->zeros = calloc(n, sizeof *t->zeros);
    t->weights = calloc(n, sizeof *t->weights);
    t->visible = calloc(n, sizeof *t->visible);
    if (!t->expanded || !t->marked || !t->zeros || !t->weights || !t->visible) {
        sw_tui_tree_deinit(t);
        return SW_FAIL(SW_ERR_NOMEM, "module tree: no memory for %d entries", t->mt.n);
    }
    for (int i = 0; i < t->mt.n; i++) t->expanded[i] = t->mt.entries[i].depth == 0;
    t->cursor = t->mt.n > 0 ? 0 : -1;
    sw_tui_tree_refresh(t);
    sw_tui_tree_update_zeros(t);
    return SW_OK;
}

void sw_tui_tree_deinit(sw_tui_tree *t) {
    sw_module_tree_deinit(&t->mt);
    free(t->expanded);
    free(t->marked);
    free(t->zeros);
    free(t->weights);
    free(t->visible);
    memset(t, 0, sizeof *t);
    t->cursor = -1;
}

/* True when every ancestor of `entry` is expanded. */
static bool shown(const sw_tui_tree *t, int entry) {
    for (int p = t->mt.entries[entry].parent; p >= 0; p = t->mt.entries[p].parent)
        if (!t->expanded[p]) return false;
    return true;
}

void sw_tui_tree_refresh(sw_tui_tree *t) {
    t->n_visible = 0;
    for (int i = 0; i < t->mt.n; i++)
        if (shown(t, i)) t->visible[t->n_visible++] = i;
    /* A cursor hidden by a collapse moves up to its nearest visible ancestor. */
    while (t->cursor >= 0 && !shown(t, t->cursor)) t->cursor = t->mt.entries[t->cursor].parent;
    if (t->cursor < 0 && t->mt.n > 0) t->cursor = 0;
}

int sw_tui_tree_cursor_row(const sw_tui_tree *t) {
    for (int r = 0; r < t->n_visible; r++)
        if (t->visible[r] == t->cursor) return r;
    return -1;
}

void sw_tui_tree_move(sw_tui_tree *t, int delta) {
    if (t->n_visible == 0) return;
    int r = sw_tui_tree_cursor_row(t) + delta;
    if (r < 0) r = 0;
    if (r >= t->n_visible) r = t->n_visible - 1;
    t->cursor = t->visible[r];
}

void sw_tui_tree_home(sw_tui_tree *t) {
    if (t->n_visible) t->cursor = t->visible[0];
}

void sw_tui_tree_end(sw_tui_tree *t) {
    if (t->n_visible) t->cursor = t->visible[t->n_visible - 1];
}

void sw_tui_tree_set_expanded(sw_tui_tree *t, int entry, bool on) {
    if (entry < 0 || entry >= t->mt.n || t->mt.entries[entry].n_children == 0) return;
    t->expanded[entry] = on;
    sw_tui_tree_refresh(t);
}

void sw_tui_tree_toggle(sw_tui_tree *t) {
    if (t->cursor >= 0) sw_tui_tree_set_expanded(t, t->cursor, !t->expanded[t->cursor]);
}

void sw_tui_tree_left(sw_tui_tree *t) {
    if (t->cursor < 0) return;
    const sw_module_entry *e = &t->mt.entries[t->cursor];
    if (e->n_children > 0 && t->expanded[t->cursor])
        sw_tui_tree_set_expanded(t, t->cursor, false);
    else if (e->parent >= 0)
        t->cursor = e->parent;
}

void sw_tui_tree_right(sw_tui_tree *t) {
    if (t->cursor < 0) return;
    const sw_module_entry *e = &t->mt.entries[t->cursor];
    if (e->n_children == 0) return;
    if (!t->expanded[t->cursor])
        sw_tui_tree_set_expanded(t, t->cursor, true);
    else
        t->cursor = t->cursor + 1; /* pre-order: the first child follows its parent */
}

void sw_tui_tree_expand_all(sw_tui_tree *t, bool on) {
    for (int i = 0; i < t->mt.n; i++)
        if (t->mt.entries[i].n_children > 0) t->expanded[i] = on;
    sw_tui_tree_refresh(t);
}

void sw_tui_tree_toggle_mark(sw_tui_tree *t) {
    if (t->cursor >= 0) t->marked[t->cursor] = !t->marked[t->cursor];
}

void sw_tui_tree_clear_marks(sw_tui_tree *t) {
    for (int i = 0; i < t->mt.n; i++) t->marked[i] = false;
}

int sw_tui_tree_marked_count(const sw_tui_tree *t) {
    int n = 0;
    for (int i = 0; i < t->mt.n; i++) n += t->marked[i];
    return n;
}

/* True when `entry` is `anc` or lies below it. */
static bool within(const sw_tui_tree *t, int entry, int anc) {
    for (int e = entry; e >= 0; e = t->mt.entries[e].parent)
        if (e == anc) return true;
    return false;
}

int sw_tui_tree_selection(const sw_tui_tree *t, int *nodes, int cap) {
    bool any = sw_tui_tree_marked_count(t) > 0;
    int n = 0;
    if (!any && t->cursor < 0) return 0;
    /* Walk the graph nodes in order so the result is in execution order. */
    for (int node = 0; node < t->model->n_nodes; node++) {
        int leaf = -1;
        for (int i = 0; i < t->mt.n; i++)
            if (t->mt.entries[i].node == node) {
                leaf = i;
                break;
            }
        if (leaf < 0) continue;
        bool take = false;
        if (any) {
            for (int e = leaf; e >= 0 && !take; e = t->mt.entries[e].parent) take = t->marked[e];
        } else {
            take = within(t, leaf, t->cursor);
        }
        if (!take) continue;
        if (n < cap) nodes[n] = node;
        n++;
    }
    return n;
}

bool sw_tui_tree_matches(const sw_tui_tree *t, int entry, const char *query) {
    if (!query || !*query || entry < 0 || entry >= t->mt.n) return false;
    const char *path = t->mt.entries[entry].path;
    size_t m = strlen(query);
    for (const char *p = path; *p; p++) {
        size_t k = 0;
        while (k < m && p[k] && tolower((unsigned char)p[k]) == tolower((unsigned char)query[k]))
            k++;
        if (k == m) return true;
    }
    return false;
}

bool sw_tui_tree_search(sw_tui_tree *t, const char *query, int dir, bool include_cursor) {
    if (query != t->query) {
        size_t n = strlen(query);
        if (n >= sizeof t->query) n = sizeof t->query - 1;
        memmove(t->query, query, n);
        t->query[n] = '\0';
    }
    int n = t->mt.n;
    if (n == 0 || !t->query[0]) return false;
    int start = t->cursor < 0 ? 0 : t->cursor;
    for (int k = include_cursor ? 0 : 1; k <= n; k++) {
        int e = ((start + dir * k) % n + n) % n;
        if (!sw_tui_tree_matches(t, e, t->query)) continue;
        for (int p = t->mt.entries[e].parent; p >= 0; p = t->mt.entries[p].parent)
            t->expanded[p] = true;
        t->cursor = e;
        sw_tui_tree_refresh(t);
        return true;
    }
    return false;
}

void sw_tui_tree_scroll(sw_tui_tree *t, int height) {
    if (height < 1) height = 1;
    int r = sw_tui_tree_cursor_row(t);
    if (r < 0) r = 0;
    if (r < t->top) t->top = r;
    if (r >= t->top + height) t->top = r - height + 1;
    if (t->top > t->n_visible - height) t->top = t->n_visible - height;
    if (t->top < 0) t->top = 0;
}

void sw_tui_tree_update_zeros(sw_tui_tree *t) {
    for (int i = 0; i < t->mt.n; i++) t->zeros[i] = t->weights[i] = 0;
    for (int i = 0; i < t->mt.n; i++) {
        int node = t->mt.entries[i].node;
        if (node < 0) continue;
        const sw_layer *layer = t->model->nodes[node].layer;
        size_t z = 0, n = 0;
        for (int p = 0; p < layer->n_params; p++) {
            const sw_param *prm = &layer->params[p];
            if (!prm->trainable || !prm->value.data || strcmp(prm->name, "weight") != 0) continue;
            for (size_t k = 0; k < prm->value.numel; k++) z += prm->value.data[k] == 0.0f;
            n += prm->value.numel;
        }
        /* Every ancestor container sums what its leaves hold. */
        for (int e = i; e >= 0; e = t->mt.entries[e].parent) {
            t->zeros[e] += z;
            t->weights[e] += n;
        }
    }
}

double sw_tui_tree_sparsity(const sw_tui_tree *t, int entry) {
    if (entry < 0 || entry >= t->mt.n || t->weights[entry] == 0) return 0;
    return (double)t->zeros[entry] / (double)t->weights[entry];
}
