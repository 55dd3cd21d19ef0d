/* idx.h - the IDX file format of MNIST and Fashion-MNIST.
 *
 * Layout (all integers big-endian):
 *   magic  u32   0x0000TTNN: two zero bytes, data type TT (0x08 = unsigned byte), NN dimensions
 *   dims   u32 x NN
 *   data   prod(dims) items of type TT, row-major
 * Images are 0x00000803 ([n, rows, cols]); labels are 0x00000801 ([n]).
 */
#ifndef SW_IDX_H
#define SW_IDX_H

#include <stdint.h>

#include "data_file.h"

#define SW_IDX_MAX_DIMS 4
#define SW_IDX_TYPE_UBYTE 0x08

typedef struct sw_idx_header {
    int ndim;
    int dims[SW_IDX_MAX_DIMS]; /* each >= 1 */
} sw_idx_header;

/* The magic number of an unsigned-byte IDX file with `ndim` dimensions (0x00000803 for 3). */
uint32_t sw_idx_magic(int ndim);

/* Reads the magic and dims from an open file positioned at its start, leaving it at the first
 * data byte. Only unsigned-byte files with exactly `ndim` dimensions are accepted; a zero
 * dimension, or one above 2^30, is SW_ERR_FORMAT. Messages name the file. */
sw_status sw_idx_read_header(sw_data_file *f, int ndim, sw_idx_header *out);

#endif
