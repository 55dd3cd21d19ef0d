/* safetensors.c - a strict reader and an insertion-ordered writer for safetensors files.
 *
 * The reader treats every file as hostile. Its checks follow the format's reference README:
 *   - u64 little-endian header length N, at most 100,000,000 (the reference limit), and the
 *     header must fit in the file;
 *   - the header is UTF-8 JSON that starts with '{' and may be padded at the end with spaces;
 *   - every key is unique; "__metadata__" (optional) maps strings to strings;
 *   - every other key is a tensor {"dtype", "shape", "data_offsets": [begin, end]} whose byte
 *     count end - begin equals prod(shape) * size(dtype);
 *   - "The byte buffer needs to be entirely indexed, and cannot contain holes": sorted by
 *     offset, the tensors tile the data section from 0 to its end, without gaps or overlaps.
 * Nothing is read from the data section until all of that holds, and every size computation
 * is checked for overflow, so a malformed file yields SW_ERR_FORMAT and a message naming the
 * problem, never an out-of-bounds read.
 *
 * The JSON itself is parsed and printed by cJSON; this file only walks the resulting tree.
 */
#include "safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "atomic_file.h"

/* The reference implementation refuses larger headers (a guard against JSON bombs). */
#define ST_MAX_HEADER 100000000u
/* JSON numbers arrive as doubles: integers above 2^53 are not exact, so they are refused.
 * No offset or dimension of a real file comes anywhere near. */
#define ST_MAX_JSON_INT 9007199254740992.0 /* 2^53 */

static const struct {
    const char *name;
    size_t size;
} dtype_table[SW_DTYPE_COUNT] = {
    [SW_DTYPE_F32] = {"F32", 4},   [SW_DTYPE_F64] = {"F64", 8}, [SW_DTYPE_F16] = {"F16", 2},
    [SW_DTYPE_BF16] = {"BF16", 2}, [SW_DTYPE_I64] = {"I64", 8}, [SW_DTYPE_I32] = {"I32", 4},
    [SW_DTYPE_I16] = {"I16", 2},   [SW_DTYPE_I8] = {"I8", 1},   [SW_DTYPE_U8] = {"U8", 1},
    [SW_DTYPE_BOOL] = {"BOOL", 1},
};

/* Dtypes of the format that shrinkwrap does not handle: named so that the error can say the
 * file is valid but unsupported, rather than malformed. */
static const char *const foreign_dtypes[] = {"U16",     "U32",     "U64",     "F8_E4M3", "F8_E5M2",
                                             "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4",      "C64"};

const char *sw_dtype_name(sw_dtype dtype) {
    if ((int)dtype < 0 || dtype >= SW_DTYPE_COUNT) return "?";
    return dtype_table[dtype].name;
}

sw_status sw_dtype_from_name(const char *name, sw_dtype *out) {
    for (int d = 0; d < SW_DTYPE_COUNT; d++) {
        if (strcmp(dtype_table[d].name, name) == 0) {
            *out = (sw_dtype)d;
            return SW_OK;
        }
    }
    for (size_t i = 0; i < sizeof foreign_dtypes / sizeof foreign_dtypes[0]; i++)
        if (strcmp(foreign_dtypes[i], name) == 0)
            return SW_FAIL(SW_ERR_UNSUPPORTED,
                           "dtype \"%s\" is valid safetensors but shrinkwrap does not read it "
                           "(supported: F32, F64, F16, BF16, I64, I32, I16, I8, U8, BOOL)",
                           name);
    return SW_FAIL(SW_ERR_FORMAT, "unknown dtype \"%s\"", name);
}

size_t sw_dtype_size(sw_dtype dtype) {
    if ((int)dtype < 0 || dtype >= SW_DTYPE_COUNT) return 0;
    return dtype_table[dtype].size;
}

/* ---- small helpers ---------------------------------------------------------------------- */

static uint64_t load_u64_le(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static void store_u64_le(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* Offset of the first byte that breaks UTF-8 (overlongs, surrogates and code points above
 * U+10FFFF included), or `n` when the bytes are valid. */
static size_t utf8_invalid_at(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t len;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            len = 2, cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3, cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4, cp = c & 0x07;
        } else {
            return i;
        }
        if (n - i < len) return i;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return i;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min_cp[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
        i += len;
    }
    return n;
}

/* "[10, 20]" for error messages. */
static const char *format_dims(const int64_t *dims, int ndim, char *buf, size_t size) {
    size_t used = 0;
    buf[0] = '\0';
    used += (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < ndim && used < size; i++)
        used +=
            (size_t)snprintf(buf + used, size - used, i ? ", %lld" : "%lld", (long long)dims[i]);
    if (used < size) snprintf(buf + used, size - used, "]");
    return buf;
}

/* prod(dims) * elem in bytes; false on overflow of size_t. A zero dimension makes the product
 * zero whatever the others are (an empty tensor is legal and stores no bytes). */
static bool shape_bytes(const int64_t *dims, int ndim, size_t elem, size_t *out) {
    for (int i = 0; i < ndim; i++) {
        if (dims[i] == 0) {
            *out = 0;
            return true;
        }
    }
    size_t n = elem;
    for (int i = 0; i < ndim; i++) {
        uint64_t d = (uint64_t)dims[i];
        if (d > SIZE_MAX || n > SIZE_MAX / (size_t)d) return false;
        n *= (size_t)d;
    }
    *out = n;
    return true;
}

/* A JSON number that is a whole number in [0, 2^53]. */
static bool json_uint(const cJSON *item, uint64_t *out) {
    if (!cJSON_IsNumber(item)) return false;
    double v = item->valuedouble;
    if (!isfinite(v) || v < 0 || v > ST_MAX_JSON_INT || floor(v) != v) return false;
    *out = (uint64_t)v;
    return true;
}

/* ---- reading ---------------------------------------------------------------------------- */

void sw_safetensors_free(sw_safetensors *st) {
    if (!st) return;
    for (int i = 0; i < st->n_entries; i++) free(st->entries[i].name);
    for (int i = 0; i < st->n_meta; i++) {
        free(st->meta[i].key);
        free(st->meta[i].value);
    }
    free(st->entries);
    free(st->meta);
    free(st->bytes);
    free(st);
}

static int compare_strings(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Every key of the header object must be unique: JSON parsers disagree on which of two
 * duplicates wins, so a file with duplicates means different things to different readers. */
static sw_status check_unique_keys(const cJSON *root, size_t n_keys) {
    if (n_keys < 2) return SW_OK;
    const char **names = malloc(n_keys * sizeof *names);
    if (!names) return SW_FAIL(SW_ERR_NOMEM, "cannot allocate %zu key names", n_keys);
    size_t n = 0;
    for (const cJSON *it = root->child; it; it = it->next) names[n++] = it->string;
    qsort(names, n, sizeof *names, compare_strings);
    for (size_t i = 1; i < n; i++) {
        if (strcmp(names[i - 1], names[i]) == 0) {
            sw_status st = SW_FAIL(SW_ERR_FORMAT, "the header has the key \"%s\" twice", names[i]);
            free(names);
            return st;
        }
    }
    free(names);
    return SW_OK;
}

static sw_status parse_metadata(const cJSON *meta, sw_safetensors *st) {
    if (cJSON_IsNull(meta)) return SW_OK; /* the reference reader accepts null: no metadata */
    if (!cJSON_IsObject(meta))
        return SW_FAIL(SW_ERR_FORMAT, "\"__metadata__\" must be an object of strings");
    size_t n = 0;
    for (const cJSON *it = meta->child; it; it = it->next) n++;
    /* Keys inside __metadata__ must be unique too (same reason as above). */
    SW_TRY(check_unique_keys(meta, n));
    if (n == 0) return SW_OK;
    st->meta = calloc(n, sizeof *st->meta);
    if (!st->meta) return SW_FAIL(SW_ERR_NOMEM, "cannot allocate %zu metadata entries", n);
    for (const cJSON *it = meta->child; it; it = it->next) {
        if (!cJSON_IsString(it))
            return SW_FAIL(SW_ERR_FORMAT, "\"__metadata__\" value of \"%s\" is not a string",
                           it->string);
        sw_st_meta *m = &st->meta[st->n_meta];
        m->key = strdup(it->string);
        m->value = strdup(it->valuestring);
        if (!m->key || !m->value) {
            free(m->key);
            free(m->value);
            m->key = m->value = NULL;
            return SW_FAIL(SW_ERR_NOMEM, "cannot copy metadata \"%s\"", it->string);
        }
        st->n_meta++;
    }
    return SW_OK;
}

/* Validates one tensor entry against the data section of `data_size` bytes. */
static sw_status parse_entry(const cJSON *item, size_t data_size, sw_st_entry *e) {
    const char *name = item->string;
    if (!cJSON_IsObject(item))
        return SW_FAIL(SW_ERR_FORMAT, "tensor \"%s\": the entry is not a JSON object", name);

    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(item, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(item, "shape");
    const cJSON *offsets = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
    if (!dtype) return SW_FAIL(SW_ERR_FORMAT, "tensor \"%s\": no \"dtype\"", name);
    if (!cJSON_IsString(dtype))
        return SW_FAIL(SW_ERR_FORMAT, "tensor \"%s\": \"dtype\" is not a string", name);
    sw_status st = sw_dtype_from_name(dtype->valuestring, &e->dtype);
    if (st != SW_OK) {
        sw_error_prefix("tensor \"%s\"", name);
        return st;
    }

    if (!shape) return SW_FAIL(SW_ERR_FORMAT, "tensor \"%s\": no \"shape\"", name);
    if (!cJSON_IsArray(shape))
        return SW_FAIL(SW_ERR_FORMAT, "tensor \"%s\": \"shape\" is not an array", name);
    int ndim = 0;
    for (const cJSON *d = shape->child; d; d = d->next) {
        if (ndim == SW_ST_MAX_DIMS)
            return SW_FAIL(SW_ERR_FORMAT, "tensor \"%s\": more than %d dimensions", name,
                           SW_ST_MAX_DIMS);
        uint64_t v;
        if (!json_uint(d, &v))
            return SW_FAIL(SW_ERR_FORMAT,
                           "tensor \"%s\": dimension %d of \"shape\" is not a non-negative "
                           "integer",
                           name, ndim);
        e->shape[ndim++] = (int64_t)v;
    }
    e->ndim = ndim;

    if (!offsets) return SW_FAIL(SW_ERR_FORMAT, "tensor \"%s\": no \"data_offsets\"", name);
    uint64_t begin, end;
    if (!cJSON_IsArray(offsets) || cJSON_GetArraySize(offsets) != 2 ||
        !json_uint(offsets->child, &begin) || !json_uint(offsets->child->next, &end))
        return SW_FAIL(SW_ERR_FORMAT,
                       "tensor \"%s\": \"data_offsets\" is not [begin, end] with two "
                       "non-negative integers",
                       name);
    if (begin > end)
        return SW_FAIL(SW_ERR_FORMAT,
                       "tensor \"%s\": data_offsets [%llu, %llu] end before they "
                       "begin",
                       name, (unsigned long long)begin, (unsigned long long)end);
    if (end > data_size)
        return SW_FAIL(SW_ERR_FORMAT,
                       "tensor \"%s\": data_offsets [%llu, %llu] run past the data section "
                       "(%zu bytes)",
                       name, (unsigned long long)begin, (unsigned long long)end, data_size);
    e->begin = (size_t)begin;
    e->end = (size_t)end;

    char dims[160];
    size_t need;
    if (!shape_bytes(e->shape, ndim, dtype_table[e->dtype].size, &need))
        return SW_FAIL(SW_ERR_FORMAT, "tensor \"%s\": shape %s x %s overflows a byte count", name,
                       format_dims(e->shape, ndim, dims, sizeof dims), dtype_table[e->dtype].name);
    if (need != e->end - e->begin)
        return SW_FAIL(SW_ERR_FORMAT,
                       "tensor \"%s\": data_offsets [%zu, %zu] but shape %s x %s needs %zu bytes",
                       name, e->begin, e->end, format_dims(e->shape, ndim, dims, sizeof dims),
                       dtype_table[e->dtype].name, need);
    return SW_OK;
}

static int compare_ranges(const void *a, const void *b) {
    const sw_st_entry *x = *(const sw_st_entry *const *)a, *y = *(const sw_st_entry *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

/* The tensors must tile [0, data_size) exactly: no overlap (two names for the same bytes) and
 * no hole (bytes that belong to nothing, the stuff of polyglot files). */
static sw_status check_coverage(const sw_safetensors *st, size_t data_size) {
    if (st->n_entries == 0) {
        if (data_size != 0)
            return SW_FAIL(SW_ERR_FORMAT,
                           "the header lists no tensors but %zu data bytes follow it", data_size);
        return SW_OK;
    }
    const sw_st_entry **order = malloc((size_t)st->n_entries * sizeof *order);
    if (!order) return SW_FAIL(SW_ERR_NOMEM, "cannot sort %d tensors", st->n_entries);
    for (int i = 0; i < st->n_entries; i++) order[i] = &st->entries[i];
    qsort(order, (size_t)st->n_entries, sizeof *order, compare_ranges);
    sw_status status = SW_OK;
    size_t covered = 0; /* bytes [0, covered) are accounted for */
    const sw_st_entry *prev = NULL;
    for (int i = 0; i < st->n_entries; i++) {
        const sw_st_entry *e = order[i];
        if (e->begin < covered) {
            status =
                SW_FAIL(SW_ERR_FORMAT, "tensors \"%s\" [%zu, %zu] and \"%s\" [%zu, %zu] overlap",
                        prev->name, prev->begin, prev->end, e->name, e->begin, e->end);
            break;
        }
        if (e->begin > covered) {
            status = SW_FAIL(SW_ERR_FORMAT,
                             "data bytes [%zu, %zu) belong to no tensor (the format forbids "
                             "holes); the next tensor is \"%s\"",
                             covered, e->begin, e->name);
            break;
        }
        covered = e->end;
        prev = e;
    }
    if (status == SW_OK && covered != data_size)
        status = SW_FAIL(SW_ERR_FORMAT,
                         "the data section has %zu bytes but the tensors cover only %zu "
                         "(trailing bytes belong to no tensor)",
                         data_size, covered);
    free(order);
    return status;
}

/* Parses `bytes` (ownership taken, also on failure). */
static sw_status parse_owned(unsigned char *bytes, size_t size, sw_safetensors **out) {
    sw_status status = SW_OK;
    char *text = NULL;
    cJSON *root = NULL;
    sw_safetensors *st = calloc(1, sizeof *st);
    if (!st) {
        free(bytes);
        return SW_FAIL(SW_ERR_NOMEM, "cannot allocate a safetensors record");
    }
    st->bytes = bytes;
    st->size = size;

    if (size < 8) {
        status = SW_FAIL(SW_ERR_FORMAT,
                         "the file has %zu bytes, fewer than the 8 of the header length", size);
        goto fail;
    }
    uint64_t n = load_u64_le(bytes);
    if (n > ST_MAX_HEADER) {
        status = SW_FAIL(SW_ERR_FORMAT, "header length %llu exceeds the format's limit of %u",
                         (unsigned long long)n, ST_MAX_HEADER);
        goto fail;
    }
    if (n > size - 8) {
        status = SW_FAIL(SW_ERR_FORMAT,
                         "header length %llu runs past the end of the file (%zu bytes after "
                         "the length)",
                         (unsigned long long)n, size - 8);
        goto fail;
    }
    if (n < 2 || bytes[8] != '{') {
        status = SW_FAIL(SW_ERR_FORMAT, "the header does not start with '{'");
        goto fail;
    }
    size_t header_len = (size_t)n;
    const unsigned char *header = bytes + 8;
    size_t bad = utf8_invalid_at(header, header_len);
    if (bad != header_len) {
        status = SW_FAIL(SW_ERR_FORMAT, "the header is not valid UTF-8 (byte %zu)", bad);
        goto fail;
    }
    /* cJSON gets its own terminated copy so that nothing it does can touch the data bytes. */
    text = malloc(header_len + 1);
    if (!text) {
        status = SW_FAIL(SW_ERR_NOMEM, "cannot copy a header of %zu bytes", header_len);
        goto fail;
    }
    memcpy(text, header, header_len);
    text[header_len] = '\0';
    const char *end = NULL;
    root = cJSON_ParseWithLengthOpts(text, header_len, &end, 0);
    if (!root) {
        size_t at = end && end >= text && end <= text + header_len ? (size_t)(end - text) : 0;
        status = SW_FAIL(SW_ERR_FORMAT, "the header is not valid JSON (near byte %zu)", at);
        goto fail;
    }
    /* After the object only padding may follow (the writer pads with spaces; any JSON
     * whitespace is accepted, as the reference reader does). */
    for (const char *p = end; p < text + header_len; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            status =
                SW_FAIL(SW_ERR_FORMAT, "unexpected bytes after the header's JSON object (byte %zu)",
                        (size_t)(p - text));
            goto fail;
        }
    }
    if (!cJSON_IsObject(root)) {
        status = SW_FAIL(SW_ERR_FORMAT, "the header is not a JSON object");
        goto fail;
    }

    st->data_start = 8 + header_len;
    size_t data_size = size - st->data_start;
    size_t n_keys = 0, n_tensors = 0;
    for (const cJSON *it = root->child; it; it = it->next) {
        n_keys++;
        if (strcmp(it->string, "__metadata__") != 0) n_tensors++;
    }
    status = check_unique_keys(root, n_keys);
    if (status != SW_OK) goto fail;
    if (n_tensors > (size_t)INT_MAX) {
        status = SW_FAIL(SW_ERR_FORMAT, "too many tensors (%zu)", n_tensors);
        goto fail;
    }
    if (n_tensors) {
        st->entries = calloc(n_tensors, sizeof *st->entries);
        if (!st->entries) {
            status = SW_FAIL(SW_ERR_NOMEM, "cannot allocate %zu tensor entries", n_tensors);
            goto fail;
        }
    }
    for (const cJSON *it = root->child; it; it = it->next) {
        if (strcmp(it->string, "__metadata__") == 0) {
            status = parse_metadata(it, st);
        } else {
            sw_st_entry *e = &st->entries[st->n_entries];
            status = parse_entry(it, data_size, e);
            if (status == SW_OK) {
                e->name = strdup(it->string);
                if (!e->name)
                    status = SW_FAIL(SW_ERR_NOMEM, "cannot copy a tensor name");
                else
                    st->n_entries++;
            }
        }
        if (status != SW_OK) goto fail;
    }
    status = check_coverage(st, data_size);
    if (status != SW_OK) goto fail;

    cJSON_Delete(root);
    free(text);
    *out = st;
    return SW_OK;
fail:
    cJSON_Delete(root);
    free(text);
    sw_safetensors_free(st);
    return status;
}

sw_status sw_safetensors_parse(const unsigned char *bytes, size_t size, sw_safetensors **out) {
    unsigned char *copy = malloc(size ? size : 1);
    if (!copy) return SW_FAIL(SW_ERR_NOMEM, "cannot copy %zu bytes", size);
    if (size) memcpy(copy, bytes, size);
    return parse_owned(copy, size, out);
}

/* Reads a whole regular file into a new buffer. */
static sw_status read_whole_file(const char *path, unsigned char **bytes, size_t *size) {
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return SW_FAIL(errno == ENOENT ? SW_ERR_NOT_FOUND : SW_ERR_IO, "cannot open: %s",
                       strerror(errno));
    sw_status status = SW_OK;
    unsigned char *buf = NULL;
    struct stat sb;
    if (fstat(fileno(fp), &sb) != 0) {
        status = SW_FAIL(SW_ERR_IO, "cannot stat: %s", strerror(errno));
        goto done;
    }
    if (!S_ISREG(sb.st_mode)) {
        status = SW_FAIL(SW_ERR_IO, "not a regular file");
        goto done;
    }
    size_t n = (size_t)sb.st_size;
    buf = malloc(n ? n : 1);
    if (!buf) {
        status = SW_FAIL(SW_ERR_NOMEM, "cannot allocate %zu bytes for the file", n);
        goto done;
    }
    if (fread(buf, 1, n, fp) != n) {
        status = SW_FAIL(SW_ERR_IO, "short read (the file changed or cannot be read): %s",
                         ferror(fp) ? strerror(errno) : "end of file");
        goto done;
    }
    *bytes = buf;
    *size = n;
    buf = NULL;
done:
    free(buf);
    fclose(fp);
    return status;
}

sw_status sw_safetensors_read_file(const char *path, sw_safetensors **out) {
    unsigned char *bytes = NULL;
    size_t size = 0;
    sw_status st = read_whole_file(path, &bytes, &size);
    if (st == SW_OK) st = parse_owned(bytes, size, out);
    if (st != SW_OK) sw_error_prefix("reading \"%s\"", path);
    return st;
}

const sw_st_entry *sw_safetensors_find(const sw_safetensors *st, const char *name) {
    for (int i = 0; i < st->n_entries; i++)
        if (strcmp(st->entries[i].name, name) == 0) return &st->entries[i];
    return NULL;
}

const unsigned char *sw_safetensors_data(const sw_safetensors *st, const sw_st_entry *entry) {
    return st->bytes + st->data_start + entry->begin;
}

const char *sw_safetensors_meta(const sw_safetensors *st, const char *key) {
    for (int i = 0; i < st->n_meta; i++)
        if (strcmp(st->meta[i].key, key) == 0) return st->meta[i].value;
    return NULL;
}

/* IEEE half -> float, exact (every half is a float). */
static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31;
    uint32_t exp = (h >> 10) & 0x1F, mant = h & 0x3FF;
    uint32_t bits;
    if (exp == 0x1F) {
        bits = sign | 0x7F800000u | (mant << 13); /* inf, nan */
    } else if (exp != 0) {
        bits = sign | ((exp + 112) << 23) | (mant << 13); /* rebias 15 -> 127 */
    } else if (mant == 0) {
        bits = sign; /* +-0 */
    } else {
        /* subnormal half: value = mant * 2^-24, normal as a float */
        float v = (float)mant * 0x1p-24f;
        return sign ? -v : v;
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* Little-endian loads from possibly unaligned bytes. */
static uint64_t load_le(const unsigned char *p, size_t n) {
    uint64_t v = 0;
    for (size_t i = n; i-- > 0;) v = (v << 8) | p[i];
    return v;
}

sw_status sw_safetensors_get_f32(const sw_safetensors *st, const char *name, sw_tensor *out) {
    const sw_st_entry *e = sw_safetensors_find(st, name);
    if (!e) return SW_FAIL(SW_ERR_NOT_FOUND, "no tensor named \"%s\"", name);
    char dims[160];
    if (e->ndim > SW_MAX_DIMS)
        return SW_FAIL(SW_ERR_SHAPE,
                       "tensor \"%s\" has shape %s; at most %d dimensions fit "
                       "a float tensor",
                       name, format_dims(e->shape, e->ndim, dims, sizeof dims), SW_MAX_DIMS);
    sw_shape shape = {.ndim = e->ndim};
    for (int i = 0; i < e->ndim; i++) {
        if (e->shape[i] > INT_MAX)
            return SW_FAIL(SW_ERR_SHAPE, "tensor \"%s\": dimension %d (%lld) is too large", name, i,
                           (long long)e->shape[i]);
        shape.dims[i] = (int)e->shape[i];
    }
    SW_TRY(sw_tensor_init(out, &shape));
    const unsigned char *src = sw_safetensors_data(st, e);
    size_t n = out->numel, es = sw_dtype_size(e->dtype);
    float *dst = out->data;
    for (size_t i = 0; i < n; i++) {
        const unsigned char *p = src + i * es;
        uint64_t raw = load_le(p, es);
        float v;
        switch (e->dtype) {
        case SW_DTYPE_F32: {
            uint32_t b = (uint32_t)raw;
            memcpy(&v, &b, sizeof v);
            break;
        }
        case SW_DTYPE_F64: {
            double d;
            memcpy(&d, &raw, sizeof d);
            /* Converting a double beyond the float range is undefined in C: such values
             * become infinities. NaN converts as is. */
            v = d > FLT_MAX ? INFINITY : d < -FLT_MAX ? -INFINITY : (float)d;
            break;
        }
        case SW_DTYPE_F16:
            v = half_to_float((uint16_t)raw);
            break;
        case SW_DTYPE_BF16: {
            uint32_t b = (uint32_t)raw << 16; /* bf16 is the top half of a float */
            memcpy(&v, &b, sizeof v);
            break;
        }
        case SW_DTYPE_I64:
            v = (float)(int64_t)raw;
            break;
        case SW_DTYPE_I32:
            v = (float)(int32_t)(uint32_t)raw;
            break;
        case SW_DTYPE_I16:
            v = (float)(int16_t)(uint16_t)raw;
            break;
        case SW_DTYPE_I8:
            v = (float)(int8_t)(uint8_t)raw;
            break;
        case SW_DTYPE_U8:
            v = (float)(uint8_t)raw;
            break;
        case SW_DTYPE_BOOL:
            v = raw ? 1.0f : 0.0f;
            break;
        default:
            sw_tensor_deinit(out);
            return SW_FAIL(SW_ERR_UNSUPPORTED, "tensor \"%s\": dtype %d", name, (int)e->dtype);
        }
        dst[i] = v;
    }
    return SW_OK;
}

/* ---- writing ---------------------------------------------------------------------------- */

typedef struct st_wentry {
    char *name; /* owned */
    sw_dtype dtype;
    int ndim;
    int64_t shape[SW_ST_MAX_DIMS];
    const void *data; /* borrowed */
    size_t nbytes;
} st_wentry;

struct sw_st_writer {
    int n, cap;
    st_wentry *entries;
    int n_meta, cap_meta;
    sw_st_meta *meta;
};

sw_status sw_st_writer_new(sw_st_writer **out) {
    sw_st_writer *w = calloc(1, sizeof *w);
    if (!w) return SW_FAIL(SW_ERR_NOMEM, "cannot allocate a safetensors writer");
    *out = w;
    return SW_OK;
}

void sw_st_writer_free(sw_st_writer *w) {
    if (!w) return;
    for (int i = 0; i < w->n; i++) free(w->entries[i].name);
    for (int i = 0; i < w->n_meta; i++) {
        free(w->meta[i].key);
        free(w->meta[i].value);
    }
    free(w->entries);
    free(w->meta);
    free(w);
}

static bool valid_utf8_string(const char *s) {
    size_t n = strlen(s);
    return utf8_invalid_at((const unsigned char *)s, n) == n;
}

sw_status sw_st_writer_add(sw_st_writer *w, const char *name, sw_dtype dtype, int ndim,
                           const int64_t *shape, const void *data) {
    if (!name || !*name || strcmp(name, "__metadata__") == 0 || !valid_utf8_string(name))
        return SW_FAIL(SW_ERR_ARG, "tensor name \"%s\" is empty, reserved or not UTF-8",
                       name ? name : "");
    if ((int)dtype < 0 || dtype >= SW_DTYPE_COUNT)
        return SW_FAIL(SW_ERR_ARG, "tensor \"%s\": unknown dtype %d", name, (int)dtype);
    if (ndim < 0 || ndim > SW_ST_MAX_DIMS)
        return SW_FAIL(SW_ERR_ARG, "tensor \"%s\": %d dimensions (0 to %d allowed)", name, ndim,
                       SW_ST_MAX_DIMS);
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 0 || (double)shape[i] > ST_MAX_JSON_INT)
            return SW_FAIL(SW_ERR_ARG, "tensor \"%s\": dimension %d is %lld", name, i,
                           (long long)shape[i]);
    size_t nbytes;
    if (!shape_bytes(shape, ndim, sw_dtype_size(dtype), &nbytes))
        return SW_FAIL(SW_ERR_ARG, "tensor \"%s\": the shape overflows a byte count", name);
    if (nbytes && !data) return SW_FAIL(SW_ERR_ARG, "tensor \"%s\": no data", name);
    for (int i = 0; i < w->n; i++)
        if (strcmp(w->entries[i].name, name) == 0)
            return SW_FAIL(SW_ERR_ARG, "tensor \"%s\" was already added", name);
    if (w->n == w->cap) {
        int cap = w->cap ? 2 * w->cap : 16;
        st_wentry *grown = realloc(w->entries, (size_t)cap * sizeof *grown);
        if (!grown) return SW_FAIL(SW_ERR_NOMEM, "cannot grow the tensor list");
        w->entries = grown;
        w->cap = cap;
    }
    st_wentry *e = &w->entries[w->n];
    *e = (st_wentry){.dtype = dtype, .ndim = ndim, .data = data, .nbytes = nbytes};
    for (int i = 0; i < ndim; i++) e->shape[i] = shape[i];
    e->name = strdup(name);
    if (!e->name) return SW_FAIL(SW_ERR_NOMEM, "cannot copy a tensor name");
    w->n++;
    return SW_OK;
}

sw_status sw_st_writer_add_tensor(sw_st_writer *w, const char *name, const sw_tensor *t) {
    int64_t shape[SW_MAX_DIMS];
    for (int i = 0; i < t->shape.ndim; i++) shape[i] = t->shape.dims[i];
    /* Floats are stored in host order; shrinkwrap targets little-endian machines only. */
    return sw_st_writer_add(w, name, SW_DTYPE_F32, t->shape.ndim, shape, t->data);
}

sw_status sw_st_writer_meta(sw_st_writer *w, const char *key, const char *value) {
    if (!key || !value || !valid_utf8_string(key) || !valid_utf8_string(value))
        return SW_FAIL(SW_ERR_ARG, "metadata key and value must be UTF-8 strings");
    for (int i = 0; i < w->n_meta; i++) {
        if (strcmp(w->meta[i].key, key) == 0) {
            char *copy = strdup(value);
            if (!copy) return SW_FAIL(SW_ERR_NOMEM, "cannot copy metadata \"%s\"", key);
            free(w->meta[i].value);
            w->meta[i].value = copy;
            return SW_OK;
        }
    }
    if (w->n_meta == w->cap_meta) {
        int cap = w->cap_meta ? 2 * w->cap_meta : 8;
        sw_st_meta *grown = realloc(w->meta, (size_t)cap * sizeof *grown);
        if (!grown) return SW_FAIL(SW_ERR_NOMEM, "cannot grow the metadata list");
        w->meta = grown;
        w->cap_meta = cap;
    }
    sw_st_meta *m = &w->meta[w->n_meta];
    m->key = strdup(key);
    m->value = strdup(value);
    if (!m->key || !m->value) {
        free(m->key);
        free(m->value);
        return SW_FAIL(SW_ERR_NOMEM, "cannot copy metadata \"%s\"", key);
    }
    w->n_meta++;
    return SW_OK;
}

/* An integer as a raw JSON token: cJSON prints large doubles in exponent form, which strict
 * readers refuse for offsets, so integers are formatted here and emitted verbatim. */
static cJSON *json_int(uint64_t v) {
    char buf[24];
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)v);
    return cJSON_CreateRaw(buf);
}

/* Builds the padded header: *text (malloc'ed, caller frees) has *len bytes, a multiple of 8
 * (the reference writer pads with spaces so that the data section starts 8-aligned). Data
 * offsets are contiguous in insertion order. */
static sw_status build_header(const sw_st_writer *w, char **text, size_t *len, size_t *data_size) {
    cJSON *root = cJSON_CreateObject();
    if (!root) return SW_FAIL(SW_ERR_NOMEM, "cannot build the header");
    bool ok = true;
    if (w->n_meta > 0) {
        cJSON *meta = cJSON_AddObjectToObject(root, "__metadata__");
        ok = meta != NULL;
        for (int i = 0; ok && i < w->n_meta; i++)
            ok = cJSON_AddStringToObject(meta, w->meta[i].key, w->meta[i].value) != NULL;
    }
    size_t offset = 0;
    for (int i = 0; ok && i < w->n; i++) {
        const st_wentry *e = &w->entries[i];
        cJSON *item = cJSON_AddObjectToObject(root, e->name);
        ok = item && cJSON_AddStringToObject(item, "dtype", sw_dtype_name(e->dtype));
        cJSON *shape = ok ? cJSON_AddArrayToObject(item, "shape") : NULL;
        cJSON *offsets = shape ? cJSON_AddArrayToObject(item, "data_offsets") : NULL;
        ok = offsets != NULL;
        for (int d = 0; ok && d < e->ndim; d++)
            ok = cJSON_AddItemToArray(shape, json_int((uint64_t)e->shape[d]));
        if (ok) ok = cJSON_AddItemToArray(offsets, json_int(offset));
        if (e->nbytes > SIZE_MAX - offset) ok = false;
        offset += e->nbytes;
        if (ok) ok = cJSON_AddItemToArray(offsets, json_int(offset));
    }
    char *json = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!json) return SW_FAIL(SW_ERR_NOMEM, "cannot build the header");
    size_t n = strlen(json);
    size_t padded = n + (8 - n % 8) % 8;
    char *out = realloc(json, padded + 1);
    if (!out) {
        free(json);
        return SW_FAIL(SW_ERR_NOMEM, "cannot pad the header");
    }
    memset(out + n, ' ', padded - n);
    out[padded] = '\0';
    *text = out;
    *len = padded;
    *data_size = offset;
    return SW_OK;
}

sw_status sw_st_writer_to_bytes(sw_st_writer *w, unsigned char **bytes, size_t *size) {
    char *header;
    size_t hlen, dlen;
    SW_TRY(build_header(w, &header, &hlen, &dlen));
    size_t total = 8 + hlen + dlen;
    unsigned char *buf = malloc(total);
    if (!buf) {
        free(header);
        return SW_FAIL(SW_ERR_NOMEM, "cannot allocate %zu bytes", total);
    }
    store_u64_le(buf, hlen);
    memcpy(buf + 8, header, hlen);
    size_t at = 8 + hlen;
    for (int i = 0; i < w->n; i++) {
        if (w->entries[i].nbytes) memcpy(buf + at, w->entries[i].data, w->entries[i].nbytes);
        at += w->entries[i].nbytes;
    }
    free(header);
    *bytes = buf;
    *size = total;
    return SW_OK;
}

sw_status sw_st_writer_write(sw_st_writer *w, const char *path) {
    char *header;
    size_t hlen, dlen;
    SW_TRY(build_header(w, &header, &hlen, &dlen));
    sw_atomic_file f;
    sw_status st = sw_atomic_open(&f, path);
    if (st != SW_OK) {
        free(header);
        return st;
    }
    /* Streams the tensors straight from their owners: no second copy of a large model. */
    unsigned char len[8];
    store_u64_le(len, hlen);
    bool ok = fwrite(len, 1, 8, f.fp) == 8 && fwrite(header, 1, hlen, f.fp) == hlen;
    for (int i = 0; ok && i < w->n; i++)
        if (w->entries[i].nbytes)
            ok = fwrite(w->entries[i].data, 1, w->entries[i].nbytes, f.fp) == w->entries[i].nbytes;
    free(header);
    if (!ok) {
        int err = errno;
        sw_atomic_abort(&f);
        return SW_FAIL(SW_ERR_IO, "writing \"%s\": %s (the old file, if any, is unchanged)", path,
                       strerror(err));
    }
    return sw_atomic_commit(&f);
}
