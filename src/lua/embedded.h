/* embedded.h - the pure-Lua part of the shrinkwrap module (the .lua files in lua/), compiled
 * into the binary so that recipes run from anywhere. The table is generated at configure time
 * by the "Lua sources embedded" block of the top-level CMakeLists.txt. */
#ifndef SW_LUA_EMBEDDED_H
#define SW_LUA_EMBEDDED_H

#include <stddef.h>

typedef struct sw_lua_chunk {
    const char *name;          /* file stem: "shrinkwrap", "nn", ... */
    const unsigned char *code; /* the source text (not NUL-terminated) */
    size_t size;
} sw_lua_chunk;

/* Every .lua file of lua/, sorted by name; terminated by an entry with name == NULL. */
extern const sw_lua_chunk sw_lua_chunks[];

#endif
