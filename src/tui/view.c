/* view.c - the workbench's screen, drawn into a canvas. */
#include "view.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "chart.h"

/* Glyphs with an ASCII stand-in for terminals without UTF-8. */
typedef struct glyphs {
    uint32_t vbar, hbar, tl, tr, bl, br, open, closed, full, empty, mark, dot;
} glyphs;

static const glyphs utf8_glyphs = {0x2502, 0x2500, 0x250C, 0x2510, 0x2514, 0x2518,
                                   0x25BE, 0x25B8, 0x2588, 0x2591, 0x25CF, 0x00B7};
static const glyphs ascii_glyphs = {'|', '-', '+', '+', '+', '+', '-', '+', '#', '.', '*', '.'};

static const glyphs *g_of(const sw_tui_state *st) {
    return st->utf8 ? &utf8_glyphs : &ascii_glyphs;
}

/* ---- layout ------------------------------------------------------------------------------- */

void sw_tui_layout_compute(const sw_tui_state *st, int w, int h, sw_tui_layout *l) {
    memset(l, 0, sizeof *l);
    l->too_small = w < SW_TUI_MIN_W || h < SW_TUI_MIN_H;
    if (l->too_small) return;
    int log_h = h >= 40 ? 9 : h >= 30 ? 6 : 4;
    int main_y = 1, main_h = h - 2 - log_h;
    int left_w = w >= 120 ? w * 2 / 5 : w / 2;
    l->header = (sw_tui_rect){0, 0, w, 1};
    l->status = (sw_tui_rect){0, h - 1, w, 1};
    l->log = (sw_tui_rect){0, h - 1 - log_h, w, log_h};
    int chain_h = 0;
    if (st->n_chain > 0) {
        chain_h = st->n_chain + 1;
        if (chain_h > main_h / 3) chain_h = main_h / 3;
    }
    l->tree = (sw_tui_rect){0, main_y, left_w, main_h - chain_h};
    l->chain = (sw_tui_rect){0, main_y + main_h - chain_h, left_w, chain_h};
    l->sep = (sw_tui_rect){left_w, main_y, 1, main_h};
    int right_x = left_w + 1, right_w = w - right_x;
    int insp_h = main_h * 2 / 5;
    if (insp_h < 6) insp_h = 6;
    if (insp_h > 20) insp_h = 20;
    l->inspector = (sw_tui_rect){right_x, main_y, right_w, insp_h};
    l->metrics = (sw_tui_rect){right_x, main_y + insp_h, right_w, main_h - insp_h};
}

/* ---- small helpers ------------------------------------------------------------------------ */

/* A pane title line: reverse video across the pane, text at the left. */
static void title_line(sw_tui_canvas *c, sw_tui_rect r, bool focus, const char *text) {
    sw_tui_style s = focus ? SW_STYLE_TITLE_FOCUS : SW_STYLE_TITLE;
    sw_tui_canvas_fill(c, (sw_tui_rect){r.x, r.y, r.w, 1}, ' ', s);
    sw_tui_canvas_text(c, r.x + 1, r.y, r.w - 1, text, s);
}

/* Text right-aligned to end at column x_end (exclusive). */
static void text_right(sw_tui_canvas *c, int x_end, int y, int max, const char *text,
                       sw_tui_style s) {
    int n = sw_tui_utf8_width(text);
    if (n > max) n = max;
    sw_tui_canvas_text(c, x_end - n, y, n, text, s);
}

static void box(sw_tui_canvas *c, sw_tui_rect r, const glyphs *g, const char *title) {
    sw_tui_canvas_fill(c, r, ' ', SW_STYLE_BOX);
    for (int x = r.x + 1; x < r.x + r.w - 1; x++) {
        sw_tui_canvas_put(c, x, r.y, g->hbar, SW_STYLE_BOX);
        sw_tui_canvas_put(c, x, r.y + r.h - 1, g->hbar, SW_STYLE_BOX);
    }
    for (int y = r.y + 1; y < r.y + r.h - 1; y++) {
        sw_tui_canvas_put(c, r.x, y, g->vbar, SW_STYLE_BOX);
        sw_tui_canvas_put(c, r.x + r.w - 1, y, g->vbar, SW_STYLE_BOX);
    }
    sw_tui_canvas_put(c, r.x, r.y, g->tl, SW_STYLE_BOX);
    sw_tui_canvas_put(c, r.x + r.w - 1, r.y, g->tr, SW_STYLE_BOX);
    sw_tui_canvas_put(c, r.x, r.y + r.h - 1, g->bl, SW_STYLE_BOX);
    sw_tui_canvas_put(c, r.x + r.w - 1, r.y + r.h - 1, g->br, SW_STYLE_BOX);
    if (title && *title)
        sw_tui_canvas_printf(c, r.x + 2, r.y, r.w - 4, SW_STYLE_TITLE_FOCUS, " %s ", title);
}

static sw_tui_rect centered(const sw_tui_canvas *c, int w, int h) {
    if (w > c->w - 2) w = c->w - 2;
    if (h > c->h - 2) h = c->h - 2;
    return (sw_tui_rect){(c->w - w) / 2, (c->h - h) / 2, w, h};
}

static const char *fmt_value(double v, char *buf, int size) {
    if (!isfinite(v))
        snprintf(buf, (size_t)size, "-");
    else if (fabs(v) >= 1000)
        sw_tui_human(v, buf, size);
    else if (fabs(v) >= 0.01 || v == 0)
        snprintf(buf, (size_t)size, "%.4g", v);
    else
        snprintf(buf, (size_t)size, "%.2e", v);
    return buf;
}

/* ---- header and status -------------------------------------------------------------------- */

static const char *work_word(const sw_tui_state *st) {
    switch (st->work) {
    case SW_TUI_WORK_RUNNING:
        return "running";
    case SW_TUI_WORK_PAUSED:
        return "PAUSED";
    case SW_TUI_WORK_STOPPING:
        return "stopping";
    default:
        return "idle";
    }
}

static void draw_header(sw_tui_state *st, sw_tui_canvas *c, sw_tui_rect r) {
    char p[32], f[32], line[256];
    sw_tui_canvas_fill(c, r, ' ', SW_STYLE_HEADER);
    snprintf(line, sizeof line, " shrinkwrap | %s | %s params | %s FLOPs | %s", st->title,
             sw_tui_human((double)sw_model_param_count(st->model), p, sizeof p),
             sw_tui_human(sw_model_flops(st->model), f, sizeof f), st->data_desc);
    char right[64];
    if (st->eval_total > 0)
        snprintf(right, sizeof right, " evaluating %.0f%% ",
                 100.0 * st->eval_done / st->eval_total);
    else if (st->work != SW_TUI_WORK_IDLE)
        snprintf(right, sizeof right, " %s %.0f%% ", work_word(st),
                 100.0 * sw_tui_history_fraction(&st->history));
    else
        snprintf(right, sizeof right, " idle ");
    int rw = sw_tui_utf8_width(right);
    sw_tui_canvas_text(c, r.x, r.y, r.w - rw, line, SW_STYLE_HEADER);
    text_right(c, r.x + r.w, r.y, rw, right,
               st->work == SW_TUI_WORK_PAUSED ? SW_STYLE_WARN : SW_STYLE_HEADER);
}

typedef struct hint {
    const char *key, *what;
} hint;

static void draw_hints(sw_tui_canvas *c, sw_tui_rect r, const hint *h, int n) {
    int x = r.x;
    for (int i = 0; i < n; i++) {
        int need = sw_tui_utf8_width(h[i].key) + sw_tui_utf8_width(h[i].what) + 2;
        if (x + need > r.x + r.w) break;
        x += sw_tui_canvas_text(c, x, r.y, r.w, h[i].key, SW_STYLE_KEY);
        x += sw_tui_canvas_text(c, x, r.y, r.w, h[i].what, SW_STYLE_NORMAL);
        x += 1;
    }
}

static void draw_status(sw_tui_state *st, sw_tui_canvas *c, sw_tui_rect r) {
    sw_tui_canvas_fill(c, r, ' ', SW_STYLE_NORMAL);
    if (st->mode == SW_TUI_MODE_SEARCH) {
        int n = sw_tui_canvas_printf(c, r.x, r.y, r.w, SW_STYLE_KEY, "/%s", st->search);
        sw_tui_canvas_put(c, r.x + n, r.y, ' ', SW_STYLE_CURSOR);
        int matches = 0;
        for (int i = 0; i < st->tree.mt.n; i++)
            matches += sw_tui_tree_matches(&st->tree, i, st->search);
        char tail[80];
        snprintf(tail, sizeof tail, "%d match%s  Enter keep  Esc cancel", matches,
                 matches == 1 ? "" : "es");
        if (n + 3 + (int)strlen(tail) <= r.w)
            text_right(c, r.x + r.w, r.y, r.w, tail, SW_STYLE_DIM);
        return;
    }
    if (st->mode == SW_TUI_MODE_FORM) {
        static const hint h[] = {{"Tab", " next field"},
                                 {"Enter", " apply"},
                                 {"Esc", " cancel"},
                                 {"Ctrl-U", " clear field"}};
        draw_hints(c, r, h, 4);
        return;
    }
    if (st->work != SW_TUI_WORK_IDLE) {
        hint h[] = {{"p", st->work == SW_TUI_WORK_PAUSED ? " resume" : " pause"},
                    {"s", " stop"},
                    {"?", " help"},
                    {"/", " search"},
                    {"e", " export"},
                    {"Tab", " log"},
                    {"q", " quit"}};
        draw_hints(c, r, h, 7);
        return;
    }
    static const hint h[] = {{"?", " help"},     {"t", " train"},    {"a", " attach"},
                             {"c", " compress"}, {"o", " open log"}, {"e", " export"},
                             {"/", " search"},   {"Tab", " log"},    {"q", " quit"}};
    draw_hints(c, r, h, 9);
}

/* ---- module tree ------------------------------------------------------------------------- */

static void draw_tree(sw_tui_state *st, sw_tui_canvas *c, sw_tui_rect r) {
    const glyphs *g = g_of(st);
    sw_tui_tree *t = &st->tree;
    bool focus = st->focus == SW_TUI_FOCUS_TREE && st->mode != SW_TUI_MODE_FORM;
    bool wide = r.w >= 70;
    int marked = sw_tui_tree_marked_count(t);
    char title[96];
    if (marked)
        snprintf(title, sizeof title, "Modules (%d marked)", marked);
    else
        snprintf(title, sizeof title, "Modules");
    title_line(c, r, focus, title);
    /* Columns from the right: [sparsity FLOPs shape] type params. */
    const int w_params = 7, w_type = 12, w_shape = 15, w_flops = 7, w_sparse = 6;
    int right = r.x + r.w - 1;
    int x_params = right - w_params, x_type = x_params - 1 - w_type;
    int x_flops = x_type - 1 - w_flops, x_shape = x_flops - 1 - w_shape,
        x_sparse = x_shape - 1 - w_sparse;
    int name_end = wide ? x_sparse - 1 : x_type - 1;
    sw_tui_style ts = focus ? SW_STYLE_TITLE_FOCUS : SW_STYLE_TITLE;
    text_right(c, x_params + w_params, r.y, w_params, "params", ts);
    text_right(c, x_type + w_type, r.y, w_type, "type", ts);
    if (wide) {
        text_right(c, x_flops + w_flops, r.y, w_flops, "FLOPs", ts);
        text_right(c, x_shape + w_shape, r.y, w_shape, "output", ts);
        text_right(c, x_sparse + w_sparse, r.y, w_sparse, "zero", ts);
    }
    int rows = r.h - 1;
    sw_tui_tree_scroll(t, rows);
    for (int i = 0; i < rows; i++) {
        int vr = t->top + i;
        if (vr >= t->n_visible) break;
        int entry = t->visible[vr];
        const sw_module_entry *e = &t->mt.entries[entry];
        int y = r.y + 1 + i;
        bool is_cursor = entry == t->cursor;
        sw_tui_style base = is_cursor          ? (focus ? SW_STYLE_CURSOR : SW_STYLE_CURSOR_DIM)
                            : t->marked[entry] ? SW_STYLE_MARKED
                                               : SW_STYLE_NORMAL;
        sw_tui_canvas_fill(c, (sw_tui_rect){r.x, y, r.w, 1}, ' ', base);
        if (t->marked[entry]) sw_tui_canvas_put(c, r.x, y, g->mark, base);
        int x = r.x + 1 + 2 * e->depth;
        if (e->n_children > 0)
            sw_tui_canvas_put(c, x, y, t->expanded[entry] ? g->open : g->closed, base);
        x += 2;
        int name_w = name_end - x;
        int n = sw_tui_canvas_text(c, x, y, name_w, e->label, base);
        /* Highlight the search match inside the label. */
        if (t->query[0] && sw_tui_tree_matches(t, entry, t->query) && !is_cursor)
            sw_tui_canvas_restyle(c, (sw_tui_rect){x, y, n, 1}, SW_STYLE_MATCH);
        const char *badge = e->node >= 0 ? st->badges[e->node] : "";
        if (badge[0] && x + n + 2 < name_end)
            sw_tui_canvas_text(c, x + n + 1, y, name_end - (x + n + 1), badge,
                               is_cursor ? base : SW_STYLE_OK);
        char buf[64];
        text_right(c, x_params + w_params, y, w_params,
                   e->param_count ? sw_tui_human((double)e->param_count, buf, sizeof buf) : "-",
                   base);
        const char *type =
            e->node >= 0 ? sw_layer_kind_name(st->model->nodes[e->node].layer->kind) : "";
        text_right(c, x_type + w_type, y, w_type, type, is_cursor ? base : SW_STYLE_DIM);
        if (wide) {
            text_right(c, x_flops + w_flops, y, w_flops, sw_tui_human(e->flops, buf, sizeof buf),
                       base);
            if (e->node >= 0)
                text_right(c, x_shape + w_shape, y, w_shape,
                           sw_shape_format(&st->model->nodes[e->node].out_shape, buf, sizeof buf),
                           base);
            double sp = sw_tui_tree_sparsity(t, entry);
            if (t->weights[entry]) {
                snprintf(buf, sizeof buf, "%.0f%%", 100 * sp);
                text_right(c, x_sparse + w_sparse, y, w_sparse, buf,
                           sp > 0 && !is_cursor ? SW_STYLE_WARN : base);
            }
        }
    }
    if (t->n_visible > rows) { /* a scroll position at the right edge */
        int pos = rows > 1 ? (int)((double)t->top / (t->n_visible - rows) * (rows - 1)) : 0;
        sw_tui_canvas_put(c, r.x + r.w - 1, r.y + 1 + pos, g->full, SW_STYLE_DIM);
    }
}

static void draw_chain(sw_tui_state *st, sw_tui_canvas *c, sw_tui_rect r) {
    if (r.h <= 0) return;
    char title[64];
    snprintf(title, sizeof title, "Chain (%d, oldest first)", st->n_chain);
    title_line(c, r, false, title);
    for (int i = 0; i < st->n_chain && i < r.h - 1; i++)
        sw_tui_canvas_printf(c, r.x + 1, r.y + 1 + i, r.w - 1, SW_STYLE_NORMAL, "%d %s", i + 1,
                             st->chain[i]);
}

/* ---- inspector ---------------------------------------------------------------------------- */

static void draw_inspector(sw_tui_state *st, sw_tui_canvas *c, sw_tui_rect r) {
    const sw_tui_inspector *in = sw_tui_state_inspector(st);
    char title[160];
    const char *what = in->title[0] ? in->title : "(empty model)";
    /* The module's name matters more than the pane's. */
    snprintf(title, sizeof title, sw_tui_utf8_width(what) + 12 <= r.w ? "Inspector: %s" : "%s",
             what);
    title_line(c, r, false, title);
    int label_w = 9, shown = in->n < r.h - 1 ? in->n : r.h - 2;
    if (in->n > shown)
        sw_tui_canvas_printf(c, r.x + 1, r.y + r.h - 1, r.w - 1, SW_STYLE_DIM, "+%d more rows",
                             in->n - shown);
    for (int i = 0; i < shown; i++) {
        const sw_tui_inspect_row *row = &in->rows[i];
        int y = r.y + 1 + i;
        sw_tui_canvas_text(c, r.x + 1, y, label_w, row->label, SW_STYLE_DIM);
        sw_tui_canvas_text(c, r.x + 2 + label_w, y, r.w - 3 - label_w, row->value, row->style);
    }
}

/* ---- metrics ------------------------------------------------------------------------------ */

static void draw_progress(sw_tui_state *st, sw_tui_canvas *c, int x, int y, int w) {
    const glyphs *g = g_of(st);
    const sw_tui_history *h = &st->history;
    char eta[16], el[16], tail[128];
    if (h->status == SW_TUI_RUN_NONE) {
        sw_tui_canvas_text(c, x, y, w, "no run yet: t trains, o opens a log", SW_STYLE_DIM);
        return;
    }
    double frac = sw_tui_history_fraction(h);
    if (h->status == SW_TUI_RUN_ACTIVE)
        snprintf(tail, sizeof tail, " %3.0f%% %ld/%ld ep %d/%d ETA %s", 100 * frac, h->step,
                 h->total_steps, h->epoch + 1 > h->total_epochs ? h->total_epochs : h->epoch + 1,
                 h->total_epochs, sw_tui_format_duration(sw_tui_history_eta(h), eta, sizeof eta));
    else
        snprintf(tail, sizeof tail, " %3.0f%% %ld/%ld %s in %s", 100 * frac, h->step,
                 h->total_steps, h->end_reason, sw_tui_format_duration(h->elapsed, el, sizeof el));
    int bar = w - sw_tui_utf8_width(tail);
    if (bar > 40) bar = 40;
    if (bar < 5) bar = 0;
    int filled = (int)(frac * bar + 0.5);
    for (int i = 0; i < bar; i++)
        sw_tui_canvas_put(c, x + i, y, i < filled ? g->full : g->empty,
                          i < filled ? SW_STYLE_BAR : SW_STYLE_DIM);
    sw_tui_style s = h->status == SW_TUI_RUN_FAILED    ? SW_STYLE_ERROR
                     : h->status == SW_TUI_RUN_STOPPED ? SW_STYLE_WARN
                                                       : SW_STYLE_NORMAL;
    if (st->work == SW_TUI_WORK_PAUSED) s = SW_STYLE_WARN;
    sw_tui_canvas_text(c, x + bar, y, w - bar, tail, s);
}

static void draw_chart(sw_tui_state *st, sw_tui_canvas *c, sw_tui_rect r, int index,
                       sw_tui_style style) {
    const sw_tui_series *s = &st->history.series[index];
    char v[32], lo[32], hi[32];
    double last = NAN;
    sw_tui_series_last(s, &last);
    bool pct = index == SW_TUI_SERIES_ACCURACY;
    if (pct && isfinite(last))
        snprintf(v, sizeof v, "%.2f%%", 100 * last);
    else
        fmt_value(last, v, sizeof v);
    sw_tui_canvas_printf(c, r.x, r.y, r.w, style, "%s %s", s->name, v);
    if (r.h < 2 || r.w < 4) return;
    sw_tui_rect plot_r = {r.x, r.y + 1, r.w, r.h - 1};
    int cols, rows;
    sw_tui_plot_dots(plot_r.w, plot_r.h, st->utf8, &cols, &rows);
    sw_tui_plot plot;
    sw_tui_plot_scale(s, cols, rows, 0, 0, &plot);
    if (plot.empty) {
        sw_tui_canvas_text(c, plot_r.x + 1, plot_r.y + plot_r.h / 2, plot_r.w - 1, "no data yet",
                           SW_STYLE_DIM);
        return;
    }
    if (pct)
        snprintf(hi, sizeof hi, "%.1f-%.1f%%", 100 * plot.y_lo, 100 * plot.y_hi);
    else
        snprintf(hi, sizeof hi, "%s-%s", fmt_value(plot.y_lo, lo, sizeof lo),
                 fmt_value(plot.y_hi, v, sizeof v));
    int used = sw_tui_utf8_width(s->name) + 12;
    if (used + (int)strlen(hi) < r.w) text_right(c, r.x + r.w, r.y, r.w - used, hi, SW_STYLE_DIM);
    sw_tui_plot_draw(c, plot_r, &plot, st->utf8, style);
}

static void draw_metrics(sw_tui_state *st, sw_tui_canvas *c, sw_tui_rect r) {
    const sw_tui_history *h = &st->history;
    char title[128];
    if (st->replay[0])
        snprintf(title, sizeof title, "Metrics: %s (replay, %ld run%s)", st->replay, h->runs,
                 h->runs == 1 ? "" : "s");
    else if (h->status == SW_TUI_RUN_NONE)
        snprintf(title, sizeof title, "Metrics");
    else
        snprintf(title, sizeof title, "Metrics: %s, run %ld", h->phase, h->runs);
    title_line(c, r, false, title);
    if (r.h < 3) return;
    draw_progress(st, c, r.x + 1, r.y + 1, r.w - 2);
    char a[32], b[32], d[32], e[32];
    if (r.h >= 4)
        sw_tui_canvas_printf(
            c, r.x + 1, r.y + 2, r.w - 2, SW_STYLE_NORMAL, "loss %s  acc %s  lr %s  %s img/s",
            fmt_value(h->loss, a, sizeof a),
            isfinite(h->accuracy) ? (snprintf(b, sizeof b, "%.2f%%", 100 * h->accuracy), b) : "-",
            fmt_value(h->lr, d, sizeof d),
            isfinite(h->images_per_sec) ? sw_tui_human(h->images_per_sec, e, sizeof e) : "-");
    /* The chart grid below. */
    sw_tui_rect g = {r.x + 1, r.y + 3, r.w - 2, r.h - 3};
    if (g.h < 3) return;
    int n_charts = h->n_series;
    /* Charts are at least 18x4 cells. When all fit, pick the grid whose cells come closest to
     * 3:1 (wide enough to read a trend, tall enough to see it); else page through them. */
    int max_cols = g.w / 18 < 1 ? 1 : g.w / 18, max_rows = g.h / 4 < 1 ? 1 : g.h / 4;
    int ncols = 0, nrows = 0, slots;
    double best = 1e9;
    for (int nc = 1; nc <= max_cols && nc <= n_charts; nc++) {
        int nr = (n_charts + nc - 1) / nc;
        if (nr > max_rows) continue;
        double aspect = (double)(g.w / nc) / (double)(g.h / nr);
        double off = fabs(log(aspect / 3.0));
        if (off < best) {
            best = off;
            ncols = nc;
            nrows = nr;
        }
    }
    if (ncols > 0) {
        slots = n_charts;
    } else {
        ncols = max_cols < n_charts ? max_cols : n_charts;
        nrows = max_rows;
        slots = ncols * nrows;
    }
    int pages = (n_charts + slots - 1) / slots;
    int first = (st->chart_page % pages) * slots;
    int cw = (g.w - (ncols - 1) * 2) / ncols, ch = g.h / nrows;
    static const sw_tui_style styles[4] = {SW_STYLE_CHART1, SW_STYLE_CHART2, SW_STYLE_CHART3,
                                           SW_STYLE_CHART4};
    for (int k = 0; k < slots && first + k < n_charts; k++) {
        int col = k % ncols, row = k / ncols;
        sw_tui_rect cr = {g.x + col * (cw + 2), g.y + row * ch, cw, ch - (row < nrows - 1 ? 1 : 0)};
        draw_chart(st, c, cr, first + k, styles[(first + k) % 4]);
    }
    if (pages > 1) {
        char more[48];
        snprintf(more, sizeof more, " ] charts %d/%d ", st->chart_page % pages + 1, pages);
        text_right(c, r.x + r.w, r.y, 16, more, SW_STYLE_TITLE);
    }
}

/* ---- log ---------------------------------------------------------------------------------- */

static sw_tui_style log_style(sw_tui_log_level l) {
    switch (l) {
    case SW_TUI_LOG_OK:
        return SW_STYLE_OK;
    case SW_TUI_LOG_WARN:
        return SW_STYLE_WARN;
    case SW_TUI_LOG_ERROR:
        return SW_STYLE_ERROR;
    default:
        return SW_STYLE_NORMAL;
    }
}

static void draw_log(sw_tui_state *st, sw_tui_canvas *c, sw_tui_rect r) {
    bool focus = st->focus == SW_TUI_FOCUS_LOG;
    char title[64];
    if (st->log.scroll > 0)
        snprintf(title, sizeof title, "Log (%d lines back, End follows)", st->log.scroll);
    else
        snprintf(title, sizeof title, "Log");
    title_line(c, r, focus, title);
    int w = r.w - 2;
    if (w < 8) return;
    /* Fill from the bottom up with the newest lines, wrapping long ones. */
    int y = r.y + r.h - 1;
    for (int i = st->log.n - 1 - st->log.scroll; i >= 0 && y > r.y; i--) {
        const sw_tui_log_line *line = sw_tui_log_at(&st->log, i);
        int len = sw_tui_utf8_width(line->text);
        int parts = len == 0 ? 1 : (len + w - 1) / w;
        for (int p = parts - 1; p >= 0 && y > r.y; p--, y--) {
            /* Skip p*w code points to the start of this part. */
            const char *s = line->text;
            for (int k = 0; k < p * w && *s; k++) {
                uint32_t cp;
                s += sw_tui_utf8_decode(s, &cp);
            }
            sw_tui_canvas_text(c, r.x + 1, y, w, s, log_style(line->level));
        }
    }
}

/* ---- overlays ----------------------------------------------------------------------------- */

static void draw_form(sw_tui_state *st, sw_tui_canvas *c) {
    const glyphs *g = g_of(st);
    const sw_tui_form *f = &st->form;
    int rows = 0;
    for (int i = 0; i < f->n_fields; i++) rows += 1 + (f->fields[i].error[0] ? 1 : 0);
    int h = rows + 6, w = c->w - 8 < 72 ? c->w - 8 : 72;
    sw_tui_rect r = centered(c, w, h);
    box(c, r, g, f->title);
    int label_w = 14, y = r.y + 2;
    int field_x = r.x + 3 + label_w, field_w = r.w - (field_x - r.x) - 2;
    for (int i = 0; i < f->n_fields && y < r.y + r.h - 3; i++) {
        const sw_tui_field *fd = &f->fields[i];
        bool focus = i == f->focus;
        text_right(c, r.x + 2 + label_w, y, label_w, fd->label,
                   focus ? SW_STYLE_KEY : SW_STYLE_BOX);
        sw_tui_style fs = focus ? SW_STYLE_FIELD_FOCUS : SW_STYLE_FIELD;
        sw_tui_canvas_fill(c, (sw_tui_rect){field_x, y, field_w, 1}, ' ', fs);
        int len = (int)strlen(fd->text), skip = 0;
        if (focus && fd->cursor >= field_w)
            skip = fd->cursor - field_w + 1; /* keep the caret in view */
        sw_tui_canvas_text(c, field_x, y, field_w, fd->text + (skip < len ? skip : len), fs);
        if (fd->type == SW_FIELD_CHOICE)
            text_right(c, field_x + field_w, y, 12, "<Left Right>", SW_STYLE_DIM);
        if (focus)
            sw_tui_canvas_restyle(c, (sw_tui_rect){field_x + fd->cursor - skip, y, 1, 1},
                                  SW_STYLE_CURSOR);
        y++;
        if (fd->error[0]) {
            sw_tui_canvas_printf(c, field_x, y, field_w, SW_STYLE_ERROR, "^ %s", fd->error);
            y++;
        }
    }
    const sw_tui_field *cur = f->n_fields ? &f->fields[f->focus] : NULL;
    if (f->error[0])
        sw_tui_canvas_text(c, r.x + 2, r.y + r.h - 2, r.w - 4, f->error, SW_STYLE_ERROR);
    else if (cur && cur->hint)
        sw_tui_canvas_text(c, r.x + 2, r.y + r.h - 2, r.w - 4, cur->hint, SW_STYLE_DIM);
}

static void draw_help(sw_tui_state *st, sw_tui_canvas *c) {
    int n;
    const sw_tui_help_line *lines = sw_tui_help_lines(&n);
    int w = c->w - 4 < 76 ? c->w - 4 : 76, h = c->h - 2 < n + 4 ? c->h - 2 : n + 4;
    sw_tui_rect r = centered(c, w, h);
    box(c, r, g_of(st), "Keys (any other key closes)");
    int rows = r.h - 3;
    if (st->help_scroll > n - rows) st->help_scroll = n - rows > 0 ? n - rows : 0;
    for (int i = 0; i < rows && st->help_scroll + i < n; i++) {
        const sw_tui_help_line *l = &lines[st->help_scroll + i];
        int y = r.y + 2 + i;
        if (!l->keys)
            sw_tui_canvas_text(c, r.x + 2, y, r.w - 4, l->text, SW_STYLE_TITLE_FOCUS);
        else {
            sw_tui_canvas_text(c, r.x + 3, y, 16, l->keys, SW_STYLE_KEY);
            sw_tui_canvas_text(c, r.x + 20, y, r.w - 22, l->text, SW_STYLE_BOX);
        }
    }
    if (n > rows)
        sw_tui_canvas_printf(c, r.x + r.w - 16, r.y + r.h - 1, 14, SW_STYLE_DIM, " j/k %d/%d ",
                             st->help_scroll + rows < n ? st->help_scroll + rows : n, n);
}

static void draw_pick(sw_tui_state *st, sw_tui_canvas *c) {
    int sel[64];
    int n_sel = sw_tui_tree_selection(&st->tree, sel, 64);
    int h = st->n_algos + 6, w = c->w - 8 < 72 ? c->w - 8 : 72;
    sw_tui_rect r = centered(c, w, h);
    char title[96];
    snprintf(title, sizeof title, "Attach to %d module%s", n_sel, n_sel == 1 ? "" : "s");
    box(c, r, g_of(st), title);
    /* Scrolled so the highlighted row stays in view on short terminals. */
    int rows = r.h - 4, first = st->pick >= rows ? st->pick - rows + 1 : 0;
    for (int i = first; i < st->n_algos && i - first < rows; i++) {
        sw_tui_style s = i == st->pick ? SW_STYLE_CURSOR : SW_STYLE_BOX;
        int y = r.y + 2 + i - first;
        sw_tui_canvas_fill(c, (sw_tui_rect){r.x + 2, y, r.w - 4, 1}, ' ', s);
        sw_tui_canvas_printf(c, r.x + 3, y, r.w - 5, s, "%-10s %-9s %s", st->algos[i].name,
                             st->algos[i].kind, st->algos[i].summary ? st->algos[i].summary : "");
    }
    sw_tui_canvas_text(c, r.x + 2, r.y + r.h - 2, r.w - 4, "Enter parameters  Esc cancel",
                       SW_STYLE_DIM);
}

/* "12.3 ms", "850 us" */
static const char *fmt_seconds(double t, char *buf, size_t size) {
    if (t < 0)
        snprintf(buf, size, "-");
    else if (t >= 1)
        snprintf(buf, size, "%.2f s", t);
    else if (t >= 1e-3)
        snprintf(buf, size, "%.2f ms", 1e3 * t);
    else
        snprintf(buf, size, "%.0f us", 1e6 * t);
    return buf;
}

/* One row of the before/after table: label, dense, sped up, and the ratio before / after. */
static void compare_row(sw_tui_canvas *c, sw_tui_rect r, int y, const char *label, const char *a,
                        const char *b, const char *ratio) {
    sw_tui_canvas_text(c, r.x + 2, y, 16, label, SW_STYLE_KEY);
    text_right(c, r.x + 32, y, 14, a, SW_STYLE_BOX);
    text_right(c, r.x + 48, y, 14, b, SW_STYLE_BOX);
    if (ratio) sw_tui_canvas_text(c, r.x + 50, y, r.w - 52, ratio, SW_STYLE_OK);
}

static void draw_compare(sw_tui_state *st, sw_tui_canvas *c) {
    const sw_tui_compare *m = &st->compare;
    sw_tui_rect r = centered(c, 66, 13);
    char title[128];
    snprintf(title, sizeof title, "Before / after speedup: %s", m->path);
    box(c, r, g_of(st), title);
    int y = r.y + 2;
    text_right(c, r.x + 32, y, 14, "masked", SW_STYLE_TITLE_FOCUS);
    text_right(c, r.x + 48, y, 14, "sped up", SW_STYLE_TITLE_FOCUS);
    sw_tui_canvas_text(c, r.x + 50, y++, r.w - 52, "before/after", SW_STYLE_TITLE_FOCUS);
    char a[32], b[32], q[48];
    snprintf(q, sizeof q, "%.2fx", m->params[1] > 0 ? m->params[0] / m->params[1] : 0.0);
    compare_row(c, r, y++, "parameters", sw_tui_human(m->params[0], a, sizeof a),
                sw_tui_human(m->params[1], b, sizeof b), q);
    snprintf(q, sizeof q, "%.2fx", m->flops[1] > 0 ? m->flops[0] / m->flops[1] : 0.0);
    compare_row(c, r, y++, "FLOPs / image", sw_tui_human(m->flops[0], a, sizeof a),
                sw_tui_human(m->flops[1], b, sizeof b), q);
    const double *lat[2] = {m->lat1, m->lat64};
    const char *lat_label[2] = {"latency batch 1", "latency batch 64"};
    for (int i = 0; i < 2; i++) {
        if (lat[i][0] > 0 && lat[i][1] > 0)
            snprintf(q, sizeof q, "%.2fx", lat[i][0] / lat[i][1]);
        else
            snprintf(q, sizeof q, "-");
        compare_row(c, r, y++, lat_label[i], fmt_seconds(lat[i][0], a, sizeof a),
                    fmt_seconds(lat[i][1], b, sizeof b), q);
    }
    if (m->acc[0] >= 0 && m->acc[1] >= 0) {
        snprintf(a, sizeof a, "%.2f%%", 100 * m->acc[0]);
        snprintf(b, sizeof b, "%.2f%%", 100 * m->acc[1]);
        snprintf(q, sizeof q, "%+.2f points", 100 * (m->acc[1] - m->acc[0]));
        compare_row(c, r, y++, "accuracy", a, b, q);
    } else {
        compare_row(c, r, y++, "accuracy", "-", "-", "no data");
    }
    if (m->test_n > 0)
        sw_tui_canvas_printf(c, r.x + 2, y + 1, r.w - 4, SW_STYLE_DIM,
                             "accuracy on %d test images; latency: medians of timed forwards",
                             m->test_n);
    else
        sw_tui_canvas_text(c, r.x + 2, y + 1, r.w - 4,
                           "no test data; latency: medians of timed forwards", SW_STYLE_DIM);
    sw_tui_canvas_printf(c, r.x + 2, y + 2, r.w - 4, SW_STYLE_DIM,
                         "self-check: relative difference %.3g; any key closes", m->rel_diff);
}

/* The accuracy drop of one cell as a heat: dim when harmless, warn, then error. */
static sw_tui_style heat(double drop) {
    if (drop < 1) return SW_STYLE_OK;
    if (drop < 5) return SW_STYLE_WARN;
    return SW_STYLE_ERROR;
}

static void draw_sens(sw_tui_state *st, sw_tui_canvas *c) {
    const sw_tui_sensitivity *sn = &st->sens;
    int h = sn->n + 6, w = c->w - 4 < 72 ? c->w - 4 : 72;
    sw_tui_rect r = centered(c, w, h);
    char title[96];
    snprintf(title, sizeof title, "Sensitivity: L1Norm alone, accuracy drop (%d/%d)", sn->done,
             sn->total);
    /* Cells: points of accuracy lost against the unpruned model (negative: gained). */
    box(c, r, g_of(st), title);
    int name_w = r.w - 4 - 9 * SW_TUI_SENS_RATIOS;
    if (name_w < 8) name_w = 8;
    int y = r.y + 2;
    if (isnan(sn->baseline))
        sw_tui_canvas_text(c, r.x + 2, y, name_w, "module", SW_STYLE_TITLE_FOCUS);
    else
        sw_tui_canvas_printf(c, r.x + 2, y, name_w, SW_STYLE_TITLE_FOCUS, "base %.2f%%",
                             100 * sn->baseline);
    for (int j = 0; j < SW_TUI_SENS_RATIOS; j++) {
        char head[16];
        snprintf(head, sizeof head, "%.0f%%", 100 * sn->ratios[j]);
        text_right(c, r.x + 2 + name_w + 9 * (j + 1), y, 8, head, SW_STYLE_TITLE_FOCUS);
    }
    y++;
    for (int i = 0; i < sn->n && y < r.y + r.h - 3; i++, y++) {
        sw_tui_canvas_text(c, r.x + 2, y, name_w - 1, sn->names[i], SW_STYLE_BOX);
        for (int j = 0; j < SW_TUI_SENS_RATIOS; j++) {
            char cell[16];
            double acc = sn->acc[i][j];
            sw_tui_style style = SW_STYLE_DIM;
            if (isnan(acc)) {
                snprintf(cell, sizeof cell, ".");
            } else {
                double drop = 100 * (sn->baseline - acc);
                snprintf(cell, sizeof cell, "%.1f", drop);
                style = heat(drop);
            }
            text_right(c, r.x + 2 + name_w + 9 * (j + 1), y, 8, cell, style);
        }
    }
    const char *foot = st->work != SW_TUI_WORK_IDLE ? "s stops after this cell"
                       : sn->stopped                ? "stopped; any key closes"
                                                    : "done; any key closes";
    sw_tui_canvas_printf(c, r.x + 2, r.y + r.h - 2, r.w - 4, SW_STYLE_DIM,
                         "points lost on %d test images; %s", sn->test_n, foot);
}

static void draw_confirm(sw_tui_state *st, sw_tui_canvas *c) {
    sw_tui_rect r = centered(c, 50, 5);
    box(c, r, g_of(st), "Quit?");
    sw_tui_canvas_text(c, r.x + 2, r.y + 2, r.w - 4, "Work is running: stop it and quit? (y/n)",
                       SW_STYLE_BOX);
}

static void draw_too_small(sw_tui_canvas *c) {
    char a[96], b[96];
    snprintf(a, sizeof a, "terminal too small: %dx%d", c->w, c->h);
    snprintf(b, sizeof b, "the workbench needs at least %dx%d", SW_TUI_MIN_W, SW_TUI_MIN_H);
    const char *lines[] = {a, b, "enlarge the window, or press q to quit"};
    int y = c->h / 2 - 1;
    for (int i = 0; i < 3; i++) {
        int n = (int)strlen(lines[i]);
        int x = (c->w - n) / 2;
        sw_tui_canvas_text(c, x < 0 ? 0 : x, y + i, c->w, lines[i],
                           i == 0 ? SW_STYLE_WARN : SW_STYLE_NORMAL);
    }
}

void sw_tui_render(sw_tui_state *st, sw_tui_canvas *c) {
    sw_tui_canvas_clear(c);
    st->dirty = false;
    sw_tui_layout l;
    sw_tui_layout_compute(st, c->w, c->h, &l);
    if (l.too_small) {
        draw_too_small(c);
        if (st->mode == SW_TUI_MODE_CONFIRM && c->h >= 1)
            sw_tui_canvas_text(c, 0, 0, c->w, "work is running: stop it and quit? (y/n)",
                               SW_STYLE_WARN);
        return;
    }
    const glyphs *g = g_of(st);
    draw_header(st, c, l.header);
    draw_tree(st, c, l.tree);
    draw_chain(st, c, l.chain);
    for (int y = l.sep.y; y < l.sep.y + l.sep.h; y++)
        sw_tui_canvas_put(c, l.sep.x, y, g->vbar, SW_STYLE_DIM);
    draw_inspector(st, c, l.inspector);
    draw_metrics(st, c, l.metrics);
    draw_log(st, c, l.log);
    draw_status(st, c, l.status);
    switch (st->mode) {
    case SW_TUI_MODE_FORM:
        draw_form(st, c);
        break;
    case SW_TUI_MODE_HELP:
        draw_help(st, c);
        break;
    case SW_TUI_MODE_PICK:
        draw_pick(st, c);
        break;
    case SW_TUI_MODE_CONFIRM:
        draw_confirm(st, c);
        break;
    case SW_TUI_MODE_COMPARE:
        draw_compare(st, c);
        break;
    case SW_TUI_MODE_SENS:
        draw_sens(st, c);
        break;
    default:
        break;
    }
}
