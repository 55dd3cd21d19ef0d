/* safetensors.h - reading and writing the safetensors container format.
 *
 * Layout (https://github.com/huggingface/safetensors): u64 little-endian N; N bytes of UTF-8
 * JSON header {"name": {"dtype", "shape", "data_offsets": [begin, end]}, ..., "__metadata__":
 * {string: string}}; then the raw little-endian tensor bytes, offsets relative to the byte after
 * the header. The reader validates everything before use (sizes, offsets in range and not
 * overlapping, dtype known, shape x dtype size = byte count) and never reads out of bounds:
 * a malformed file gives SW_ERR_FORMAT with a message that names the problem.
 */
#ifndef SW_SAFETENSORS_H
#define SW_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "../tensor/tensor.h"

#define SW_ST_MAX_DIMS 8

typedef enum sw_dtype {
    SW_DTYPE_F32,
    SW_DTYPE_F64,
    SW_DTYPE_F16,
    SW_DTYPE_BF16,
    SW_DTYPE_I64,
    SW_DTYPE_I32,
    SW_DTYPE_I16,
    SW_DTYPE_I8,
    SW_DTYPE_U8,
    SW_DTYPE_BOOL,
    SW_DTYPE_COUNT
} sw_dtype;

/* "F32" <-> SW_DTYPE_F32; element size in bytes. */
const char *sw_dtype_name(sw_dtype dtype);
sw_status sw_dtype_from_name(const char *name, sw_dtype *out);
size_t sw_dtype_size(sw_dtype dtype);

typedef struct sw_st_entry {
    char *name;
    sw_dtype dtype;
    int ndim;
    int64_t shape[SW_ST_MAX_DIMS];
    size_t begin, end; /* byte range within the data section */
} sw_st_entry;

typedef struct sw_st_meta {
    char *key;
    char *value;
} sw_st_meta;

/* A parsed file: owns a copy of its bytes. Entries keep header order. */
typedef struct sw_safetensors {
    unsigned char *bytes; /* the whole file */
    size_t size;
    size_t data_start; /* 8 + N */
    int n_entries;
    sw_st_entry *entries;
    int n_meta;
    sw_st_meta *meta;
} sw_safetensors;

/* Parses `size` bytes (copied). Caller owns *out (sw_safetensors_free). */
sw_status sw_safetensors_parse(const unsigned char *bytes, size_t size, sw_safetensors **out);
/* Reads and parses a file; errors name the path. */
sw_status sw_safetensors_read_file(const char *path, sw_safetensors **out);
void sw_safetensors_free(sw_safetensors *st);

/* The entry named `name`, or NULL. */
const sw_st_entry *sw_safetensors_find(const sw_safetensors *st, const char *name);
/* The raw bytes of an entry (inside st->bytes). */
const unsigned char *sw_safetensors_data(const sw_safetensors *st, const sw_st_entry *entry);
/* The metadata value for `key`, or NULL. */
const char *sw_safetensors_meta(const sw_safetensors *st, const char *key);

/* Copies entry `name` into a new owning float tensor (*out initialised with sw_tensor_init),
 * converting from F32, F64, F16, BF16, integer and bool dtypes. Fails with SW_ERR_NOT_FOUND
 * when absent and SW_ERR_SHAPE for more than 4 dims. */
sw_status sw_safetensors_get_f32(const sw_safetensors *st, const char *name, sw_tensor *out);

/* ---- writing -------------------------------------------------------------------------- */

/* A file being assembled. Tensors are referenced, not copied: their data must stay valid until
 * sw_st_writer_write returns. */
typedef struct sw_st_writer sw_st_writer;

sw_status sw_st_writer_new(sw_st_writer **out);
void sw_st_writer_free(sw_st_writer *w);
/* Adds a tensor of `dtype` with `ndim` dims; `data` holds prod(shape) * size(dtype) bytes in
 * little-endian order (borrowed). Names must be unique. */
sw_status sw_st_writer_add(sw_st_writer *w, const char *name, sw_dtype dtype, int ndim,
                           const int64_t *shape, const void *data);
/* Adds a float tensor (F32). */
sw_status sw_st_writer_add_tensor(sw_st_writer *w, const char *name, const sw_tensor *t);
/* Sets a metadata string (copied); a second call with the same key replaces the value. */
sw_status sw_st_writer_meta(sw_st_writer *w, const char *key, const char *value);
/* Writes the file atomically (temporary file in the same folder, fsync, rename): either the
 * complete new file is at `path` or the old one is untouched. */
sw_status sw_st_writer_write(sw_st_writer *w, const char *path);
/* Serialises to a new malloc'ed buffer (caller frees), for tests and fuzzing. */
sw_status sw_st_writer_to_bytes(sw_st_writer *w, unsigned char **bytes, size_t *size);

#endif
