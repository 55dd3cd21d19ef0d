/* arena.c - chunked bump allocation with a merge-on-reset policy. */
#include "arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SW_ARENA_ALIGN 64
#define SW_ARENA_MIN_CHUNK (1u << 20)

struct sw_arena_chunk {
    sw_arena_chunk *next;
    size_t size; /* usable bytes after the header */
    size_t used;
    unsigned char *base; /* aligned start of the usable bytes */
};

static size_t align_up(size_t n) { return (n + SW_ARENA_ALIGN - 1) & ~(size_t)(SW_ARENA_ALIGN - 1); }

static sw_arena_chunk *chunk_new(size_t size) {
    /* One allocation: header, padding for alignment, payload. */
    sw_arena_chunk *c = malloc(sizeof *c + SW_ARENA_ALIGN + size);
    if (!c) return NULL;
    uintptr_t start = (uintptr_t)(c + 1);
    c->base = (unsigned char *)((start + SW_ARENA_ALIGN - 1) & ~(uintptr_t)(SW_ARENA_ALIGN - 1));
    c->size = size;
    c->used = 0;
    c->next = NULL;
    return c;
}

void sw_arena_init(sw_arena *arena) { *arena = (sw_arena){0}; }

void sw_arena_deinit(sw_arena *arena) {
    sw_arena_chunk *c = arena->chunks;
    while (c) {
        sw_arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    *arena = (sw_arena){0};
}

void *sw_arena_alloc(sw_arena *arena, size_t bytes) {
    size_t need = align_up(bytes ? bytes : 1);
    sw_arena_chunk *c = arena->chunks;
    if (!c || c->size - c->used < need) {
        size_t size = need > SW_ARENA_MIN_CHUNK ? need : SW_ARENA_MIN_CHUNK;
        if (c && size < c->size * 2) size = c->size * 2;
        sw_arena_chunk *fresh = chunk_new(size);
        if (!fresh) {
            SW_FAIL(SW_ERR_NOMEM, "scratch arena: cannot allocate %zu bytes", size);
            return NULL;
        }
        fresh->next = c;
        arena->chunks = fresh;
        arena->capacity += size;
        c = fresh;
    }
    void *p = c->base + c->used;
    c->used += need;
    arena->used_total += need;
    if (arena->used_total > arena->peak) arena->peak = arena->used_total;
    return p;
}

float *sw_arena_floats(sw_arena *arena, size_t count) {
    float *p = sw_arena_alloc(arena, count * sizeof(float));
    if (p) memset(p, 0, count * sizeof(float));
    return p;
}

void sw_arena_reset(sw_arena *arena) {
    if (arena->chunks && arena->chunks->next) {
        /* Several chunks were needed: replace them by one that holds the peak. */
        size_t want = align_up(arena->peak);
        sw_arena_chunk *merged = chunk_new(want);
        if (merged) {
            sw_arena_deinit(arena);
            arena->chunks = merged;
            arena->capacity = want;
            arena->peak = want;
        }
    }
    for (sw_arena_chunk *c = arena->chunks; c; c = c->next) c->used = 0;
    arena->used_total = 0;
}
