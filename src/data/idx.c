/* idx.c - IDX header parsing. The data bytes are read by the caller, which knows where they go. */
#include "idx.h"

/* No real IDX dimension comes near this; it keeps products of two dims inside 64 bits and turns
 * a header of random bytes into a clear error instead of a giant allocation. */
#define SW_IDX_MAX_DIM (1 << 30)

uint32_t sw_idx_magic(int ndim) {
    return ((uint32_t)SW_IDX_TYPE_UBYTE << 8) | (uint32_t)ndim;
}

static uint32_t read_be32(const unsigned char *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

sw_status sw_idx_read_header(sw_data_file *f, int ndim, sw_idx_header *out) {
    SW_ASSERT(ndim >= 1 && ndim <= SW_IDX_MAX_DIMS);
    unsigned char buf[4 + 4 * SW_IDX_MAX_DIMS];
    SW_TRY(sw_data_file_read(f, buf, 4, "the IDX magic number"));
    uint32_t magic = read_be32(buf);
    if (magic != sw_idx_magic(ndim)) {
        return SW_FAIL(SW_ERR_FORMAT,
                       "%s: bad magic number 0x%08x, expected 0x%08x (an IDX file of unsigned "
                       "bytes with %d dimension%s); is this the right file?",
                       f->path, (unsigned)magic, (unsigned)sw_idx_magic(ndim), ndim,
                       ndim == 1 ? "" : "s");
    }
    SW_TRY(sw_data_file_read(f, buf + 4, 4 * (size_t)ndim, "the IDX dimensions"));
    out->ndim = ndim;
    for (int i = 0; i < SW_IDX_MAX_DIMS; i++) out->dims[i] = 1;
    for (int i = 0; i < ndim; i++) {
        uint32_t d = read_be32(buf + 4 + 4 * i);
        if (d == 0 || d > SW_IDX_MAX_DIM)
            return SW_FAIL(SW_ERR_FORMAT,
                           "%s: dimension %d of the IDX header is %u, expected 1..%d", f->path, i,
                           (unsigned)d, SW_IDX_MAX_DIM);
        out->dims[i] = (int)d;
    }
    return SW_OK;
}
