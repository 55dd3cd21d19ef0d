/* canvas.c - the cell grid the views draw into. */
#include "canvas.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sw_tui_canvas_init(sw_tui_canvas *c) {
    *c = (sw_tui_canvas){0};
}

sw_status sw_tui_canvas_resize(sw_tui_canvas *c, int w, int h) {
    if (w < 0 || h < 0) return SW_FAIL(SW_ERR_ARG, "canvas: negative size %dx%d", w, h);
    if (w != c->w || h != c->h) {
        size_t n = (size_t)w * (size_t)h;
        sw_tui_cell *cells = n ? malloc(n * sizeof *cells) : NULL;
        if (n && !cells) return SW_FAIL(SW_ERR_NOMEM, "canvas: no memory for %dx%d cells", w, h);
        free(c->cells);
        c->cells = cells;
        c->w = w;
        c->h = h;
    }
    sw_tui_canvas_clear(c);
    return SW_OK;
}

void sw_tui_canvas_deinit(sw_tui_canvas *c) {
    free(c->cells);
    *c = (sw_tui_canvas){0};
}

void sw_tui_canvas_clear(sw_tui_canvas *c) {
    for (int i = 0; i < c->w * c->h; i++) c->cells[i] = (sw_tui_cell){' ', SW_STYLE_NORMAL};
}

void sw_tui_canvas_put(sw_tui_canvas *c, int x, int y, uint32_t ch, sw_tui_style style) {
    if (x < 0 || y < 0 || x >= c->w || y >= c->h) return;
    c->cells[y * c->w + x] = (sw_tui_cell){ch, (uint8_t)style};
}

void sw_tui_canvas_fill(sw_tui_canvas *c, sw_tui_rect r, uint32_t ch, sw_tui_style style) {
    for (int y = r.y; y < r.y + r.h; y++)
        for (int x = r.x; x < r.x + r.w; x++) sw_tui_canvas_put(c, x, y, ch, style);
}

void sw_tui_canvas_restyle(sw_tui_canvas *c, sw_tui_rect r, sw_tui_style style) {
    for (int y = r.y; y < r.y + r.h; y++)
        for (int x = r.x; x < r.x + r.w; x++)
            if (x >= 0 && y >= 0 && x < c->w && y < c->h)
                c->cells[y * c->w + x].style = (uint8_t)style;
}

int sw_tui_utf8_decode(const char *s, uint32_t *cp) {
    const unsigned char *u = (const unsigned char *)s;
    int len;
    uint32_t v;
    if (u[0] < 0x80) {
        *cp = u[0];
        return 1;
    } else if ((u[0] & 0xE0) == 0xC0) {
        len = 2;
        v = u[0] & 0x1F;
    } else if ((u[0] & 0xF0) == 0xE0) {
        len = 3;
        v = u[0] & 0x0F;
    } else if ((u[0] & 0xF8) == 0xF0) {
        len = 4;
        v = u[0] & 0x07;
    } else {
        *cp = '?';
        return 1;
    }
    for (int i = 1; i < len; i++) {
        if ((u[i] & 0xC0) != 0x80) { /* cut short (this also stops at the terminating 0) */
            *cp = '?';
            return 1;
        }
        v = (v << 6) | (u[i] & 0x3F);
    }
    *cp = v;
    return len;
}

int sw_tui_utf8_encode(uint32_t cp, char *buf) {
    if (cp < 0x80) {
        buf[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        buf[0] = (char)(0xC0 | (cp >> 6));
        buf[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        buf[0] = (char)(0xE0 | (cp >> 12));
        buf[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        buf[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    buf[0] = (char)(0xF0 | (cp >> 18));
    buf[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    buf[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    buf[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

int sw_tui_utf8_width(const char *s) {
    int n = 0;
    uint32_t cp;
    while (*s) {
        s += sw_tui_utf8_decode(s, &cp);
        n++;
    }
    return n;
}

int sw_tui_canvas_text(sw_tui_canvas *c, int x, int y, int max, const char *utf8,
                       sw_tui_style style) {
    int n = 0;
    if (!utf8) return 0;
    while (*utf8 && n < max) {
        uint32_t cp;
        utf8 += sw_tui_utf8_decode(utf8, &cp);
        if (cp < 0x20 || cp == 0x7F) cp = ' ';
        sw_tui_canvas_put(c, x + n, y, cp, style);
        n++;
    }
    return n;
}

int sw_tui_canvas_printf(sw_tui_canvas *c, int x, int y, int max, sw_tui_style style,
                         const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return sw_tui_canvas_text(c, x, y, max, buf, style);
}

const char *sw_tui_canvas_row(const sw_tui_canvas *c, int y, char *buf, int size) {
    int at = 0, end = 0;
    buf[0] = '\0';
    if (y < 0 || y >= c->h || size < 5) return buf;
    for (int x = 0; x < c->w; x++) {
        char enc[4];
        int k = sw_tui_utf8_encode(c->cells[y * c->w + x].ch, enc);
        if (at + k >= size) break;
        memcpy(buf + at, enc, (size_t)k);
        at += k;
        if (c->cells[y * c->w + x].ch != ' ') end = at;
    }
    buf[end] = '\0';
    return buf;
}

char *sw_tui_canvas_to_text(const sw_tui_canvas *c) {
    /* 4 bytes per cell at most, plus a newline per row. */
    size_t cap = (size_t)c->h * ((size_t)c->w * 4 + 1) + 1;
    char *out = malloc(cap);
    if (!out) return NULL;
    size_t at = 0;
    int row_size = c->w * 4 + 1;
    char *row = malloc((size_t)row_size);
    if (!row) {
        free(out);
        return NULL;
    }
    for (int y = 0; y < c->h; y++) {
        sw_tui_canvas_row(c, y, row, row_size);
        size_t k = strlen(row);
        memcpy(out + at, row, k);
        at += k;
        out[at++] = '\n';
    }
    out[at] = '\0';
    free(row);
    return out;
}
