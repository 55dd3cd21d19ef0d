/* arena.h - a bump allocator for memory that lives for one step (activations, scratch).
 *
 * The arena grows by whole chunks while a model warms up and is then reused step after step:
 * sw_arena_reset() keeps the memory, so a steady-state training loop makes no malloc calls.
 * Every block is 64-byte aligned (a cache line, and AVX-512 friendly).
 */
#ifndef SW_ARENA_H
#define SW_ARENA_H

#include <stddef.h>

#include "status.h"

typedef struct sw_arena_chunk sw_arena_chunk;

typedef struct sw_arena {
    sw_arena_chunk *chunks; /* owned list, newest first */
    size_t used_total;      /* bytes handed out since the last reset */
    size_t peak;            /* largest used_total seen */
    size_t capacity;        /* bytes held */
} sw_arena;

void sw_arena_init(sw_arena *arena);
void sw_arena_deinit(sw_arena *arena);
/* Returns `bytes` of 64-byte-aligned memory, valid until the next reset; NULL and an error
 * message when memory runs out. */
void *sw_arena_alloc(sw_arena *arena, size_t bytes);
/* Same, zero-filled floats. */
float *sw_arena_floats(sw_arena *arena, size_t count);
/* Forgets every allocation. If the last cycle spilled into several chunks, they are merged into
 * one big enough for the peak, so the next cycle needs no new memory. */
void sw_arena_reset(sw_arena *arena);

#endif
