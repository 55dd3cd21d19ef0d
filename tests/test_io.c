/* test_io.c - safetensors reading and writing, atomic files, model files.
 *
 * Corrupt inputs are built programmatically: a header text plus a data section, or a valid
 * file cut or flipped at every byte. Under ASan/UBSan every one of them must fail cleanly with
 * a message that names the problem.
 */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_support.h"

#include "io/atomic_file.h"
#include "io/model_file.h"
#include "io/safetensors.h"
#include "nn/zoo.h"

/* ---- helpers ---------------------------------------------------------------------------- */

/* A file from a header text (unpadded) and `data_len` data bytes 0, 1, 2, ... */
static unsigned char *make_file(const char *header, size_t data_len, size_t *size) {
    size_t n = strlen(header);
    *size = 8 + n + data_len;
    unsigned char *b = malloc(*size);
    assert_non_null(b);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)n >> (8 * i));
    memcpy(b + 8, header, n);
    for (size_t i = 0; i < data_len; i++) b[8 + n + i] = (unsigned char)i;
    return b;
}

/* Parses the bytes, expects `status` and a message containing `want`. */
static void expect_fail(const unsigned char *bytes, size_t size, sw_status status,
                        const char *want) {
    sw_safetensors *st = NULL;
    sw_error_clear();
    sw_status got = sw_safetensors_parse(bytes, size, &st);
    if (got != status || !strstr(sw_error_message(), want))
        fail_msg("expected status %d with \"%s\", got %d: \"%s\"", (int)status, want, (int)got,
                 sw_error_message());
    assert_null(st);
}

/* Builds the file from a header text and data length, then expect_fail. */
static void expect_header_fail(const char *header, size_t data_len, sw_status status,
                               const char *want) {
    size_t size;
    unsigned char *b = make_file(header, data_len, &size);
    expect_fail(b, size, status, want);
    free(b);
}

static sw_safetensors *parse_ok(const unsigned char *bytes, size_t size) {
    sw_safetensors *st = NULL;
    sw_status got = sw_safetensors_parse(bytes, size, &st);
    if (got != SW_OK) fail_msg("parse failed: %s", sw_error_message());
    return st;
}

/* A small valid file with several dtypes, a scalar, an empty tensor and metadata. */
static const float small_f32[6] = {1.5f, -0.0f, 3.25f, 1e-40f, -2.0f, 1e30f};
static const int64_t small_i64[3] = {-1, 0, 1234567890123LL};
static const unsigned char small_u8[4] = {0, 1, 255, 7};
static const float small_scalar = 42.0f;

static sw_st_writer *small_writer(void) {
    sw_st_writer *w = NULL;
    assert_int_equal(sw_st_writer_new(&w), SW_OK);
    const int64_t s23[2] = {2, 3}, s3[1] = {3}, s4[1] = {4}, s03[2] = {0, 3};
    assert_int_equal(sw_st_writer_add(w, "a.weight", SW_DTYPE_F32, 2, s23, small_f32), SW_OK);
    assert_int_equal(sw_st_writer_add(w, "ids", SW_DTYPE_I64, 1, s3, small_i64), SW_OK);
    assert_int_equal(sw_st_writer_add(w, "mask", SW_DTYPE_U8, 1, s4, small_u8), SW_OK);
    assert_int_equal(sw_st_writer_add(w, "scalar", SW_DTYPE_F32, 0, NULL, &small_scalar), SW_OK);
    assert_int_equal(sw_st_writer_add(w, "empty", SW_DTYPE_F32, 2, s03, NULL), SW_OK);
    assert_int_equal(sw_st_writer_meta(w, "note", "first"), SW_OK);
    assert_int_equal(sw_st_writer_meta(w, "unicode", "\xc3\xa9t\xc3\xa9 \"quoted\"\n"), SW_OK);
    assert_int_equal(sw_st_writer_meta(w, "note", "replaced"), SW_OK);
    return w;
}

static unsigned char *small_file(size_t *size) {
    sw_st_writer *w = small_writer();
    unsigned char *bytes = NULL;
    assert_int_equal(sw_st_writer_to_bytes(w, &bytes, size), SW_OK);
    sw_st_writer_free(w);
    return bytes;
}

static unsigned char *read_all(const char *path, size_t *size) {
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    unsigned char *b = malloc(n > 0 ? (size_t)n : 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    *size = (size_t)n;
    return b;
}

/* Number of entries in `dir` whose name contains ".tmp." (left-over temporaries). */
static int count_temporaries(const char *dir) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (strstr(e->d_name, ".tmp.")) n++;
    closedir(d);
    return n;
}

/* A fresh folder under the test tmpdir. */
static const char *fresh_dir(const char *name, char *buf, size_t size) {
    snprintf(buf, size, "%s/%s", sw_test_tmpdir(), name);
    assert_int_equal(mkdir(buf, 0755), 0);
    return buf;
}

/* ---- safetensors: valid files ----------------------------------------------------------- */

/* Writer output parses back with the same names, order, dtypes, shapes, bytes and metadata. */
static void test_io_roundtrip_bit_exact(void **state) {
    (void)state;
    size_t size;
    unsigned char *bytes = small_file(&size);
    sw_safetensors *st = parse_ok(bytes, size);
    assert_int_equal(st->n_entries, 5);
    const char *names[5] = {"a.weight", "ids", "mask", "scalar", "empty"};
    for (int i = 0; i < 5; i++) assert_string_equal(st->entries[i].name, names[i]);

    const sw_st_entry *a = sw_safetensors_find(st, "a.weight");
    assert_int_equal(a->dtype, SW_DTYPE_F32);
    assert_int_equal(a->ndim, 2);
    assert_int_equal(a->shape[0], 2);
    assert_int_equal(a->shape[1], 3);
    assert_memory_equal(sw_safetensors_data(st, a), small_f32, sizeof small_f32);
    const sw_st_entry *ids = sw_safetensors_find(st, "ids");
    assert_int_equal(ids->dtype, SW_DTYPE_I64);
    assert_memory_equal(sw_safetensors_data(st, ids), small_i64, sizeof small_i64);
    const sw_st_entry *mask = sw_safetensors_find(st, "mask");
    assert_memory_equal(sw_safetensors_data(st, mask), small_u8, sizeof small_u8);
    const sw_st_entry *scalar = sw_safetensors_find(st, "scalar");
    assert_int_equal(scalar->ndim, 0);
    assert_int_equal(scalar->end - scalar->begin, 4);
    const sw_st_entry *empty = sw_safetensors_find(st, "empty");
    assert_int_equal(empty->begin, empty->end);
    assert_null(sw_safetensors_find(st, "missing"));

    assert_int_equal(st->n_meta, 2);
    assert_string_equal(sw_safetensors_meta(st, "note"), "replaced");
    assert_string_equal(sw_safetensors_meta(st, "unicode"), "\xc3\xa9t\xc3\xa9 \"quoted\"\n");
    assert_null(sw_safetensors_meta(st, "absent"));

    /* Float view: bit-exact for F32 (including -0 and a subnormal), converted for I64/U8. */
    sw_tensor t;
    assert_int_equal(sw_safetensors_get_f32(st, "a.weight", &t), SW_OK);
    assert_int_equal(t.shape.ndim, 2);
    assert_memory_equal(t.data, small_f32, sizeof small_f32);
    sw_tensor_deinit(&t);
    assert_int_equal(sw_safetensors_get_f32(st, "ids", &t), SW_OK);
    assert_true(t.data[0] == -1.0f && t.data[1] == 0.0f && t.data[2] == 1234567890123.0f);
    sw_tensor_deinit(&t);
    assert_int_equal(sw_safetensors_get_f32(st, "mask", &t), SW_OK);
    assert_true(t.data[2] == 255.0f && t.data[3] == 7.0f);
    sw_tensor_deinit(&t);
    assert_int_equal(sw_safetensors_get_f32(st, "scalar", &t), SW_OK);
    assert_int_equal(t.shape.ndim, 0);
    assert_true(t.numel == 1 && t.data[0] == 42.0f);
    sw_tensor_deinit(&t);
    assert_int_equal(sw_safetensors_get_f32(st, "missing", &t), SW_ERR_NOT_FOUND);
    sw_safetensors_free(st);
    free(bytes);
}

/* The bytes follow the published layout, checked independently of our reader: u64 LE header
 * length N, a multiple of 8; N bytes of JSON starting with '{' and padded with spaces;
 * __metadata__ first; entries in insertion order with contiguous data_offsets from 0; file
 * size 8 + N + data. */
static void test_io_header_layout(void **state) {
    (void)state;
    size_t size;
    unsigned char *b = small_file(&size);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | b[i];
    assert_true(n % 8 == 0 && 8 + n <= size);
    assert_int_equal(b[8], '{');
    char *json = malloc(n + 1);
    memcpy(json, b + 8, n);
    json[n] = '\0';
    size_t end = n;
    while (end > 0 && json[end - 1] == ' ') end--;
    assert_true(end > 0 && json[end - 1] == '}');
    assert_true(n - end < 8); /* padding only up to the next multiple of 8 */
    cJSON *root = cJSON_Parse(json);
    assert_non_null(root);
    const cJSON *it = root->child;
    assert_string_equal(it->string, "__metadata__");
    const char *order[5] = {"a.weight", "ids", "mask", "scalar", "empty"};
    const char *dtypes[5] = {"F32", "I64", "U8", "F32", "F32"};
    const size_t bytes_of[5] = {24, 24, 4, 4, 0};
    size_t offset = 0;
    it = it->next;
    for (int i = 0; i < 5; i++, it = it->next) {
        assert_non_null(it);
        assert_string_equal(it->string, order[i]);
        assert_string_equal(cJSON_GetObjectItem(it, "dtype")->valuestring, dtypes[i]);
        const cJSON *off = cJSON_GetObjectItem(it, "data_offsets");
        assert_int_equal(cJSON_GetArraySize(off), 2);
        assert_int_equal((size_t)cJSON_GetArrayItem(off, 0)->valuedouble, offset);
        offset += bytes_of[i];
        assert_int_equal((size_t)cJSON_GetArrayItem(off, 1)->valuedouble, offset);
    }
    assert_null(it);
    assert_int_equal(size, 8 + n + offset);
    assert_memory_equal(b + 8 + n, small_f32, sizeof small_f32);
    cJSON_Delete(root);
    free(json);
    free(b);
}

/* The format's edge cases are accepted: no tensors at all, null metadata, empty tensors that
 * share an offset with their neighbours, padding with JSON whitespace. */
static void test_io_accepts_edge_cases(void **state) {
    (void)state;
    size_t size;
    unsigned char *b = make_file("{}", 0, &size);
    sw_safetensors *st = parse_ok(b, size);
    assert_int_equal(st->n_entries, 0);
    assert_int_equal(st->n_meta, 0);
    sw_safetensors_free(st);
    free(b);

    b = make_file("{\"__metadata__\": null, \"e\": {\"dtype\": \"F32\", \"shape\": [0], "
                  "\"data_offsets\": [0, 0]}, \"x\": {\"dtype\": \"U8\", \"shape\": [2], "
                  "\"data_offsets\": [0, 2]}, \"f\": {\"dtype\": \"BOOL\", \"shape\": [5, 0, 7],"
                  " \"data_offsets\": [2, 2]}}  \n\t ",
                  2, &size);
    st = parse_ok(b, size);
    assert_int_equal(st->n_entries, 3);
    sw_safetensors_free(st);
    free(b);
}

/* sw_safetensors_get_f32 converts every supported dtype exactly where the value is exact. */
static void test_io_get_f32_conversions(void **state) {
    (void)state;
    /* F16: 1.0, -2.5, 65504 (max), 2^-24 (smallest subnormal); BF16: 1.0, -3.0;
     * F64: 0.1 -> 0.1f and 1e300 -> inf; I32 -7; I16 -300; I8 -128; BOOL 0, 1. */
    const uint16_t f16[4] = {0x3C00, 0xC100, 0x7BFF, 0x0001};
    const uint16_t bf16[2] = {0x3F80, 0xC040};
    const double f64[2] = {0.1, 1e300};
    const int32_t i32[1] = {-7};
    const int16_t i16[1] = {-300};
    const int8_t i8[1] = {-128};
    const unsigned char bools[2] = {0, 1};
    sw_st_writer *w = NULL;
    assert_int_equal(sw_st_writer_new(&w), SW_OK);
    const int64_t s1[1] = {1}, s2[1] = {2}, s4[1] = {4};
    assert_int_equal(sw_st_writer_add(w, "f16", SW_DTYPE_F16, 1, s4, f16), SW_OK);
    assert_int_equal(sw_st_writer_add(w, "bf16", SW_DTYPE_BF16, 1, s2, bf16), SW_OK);
    assert_int_equal(sw_st_writer_add(w, "f64", SW_DTYPE_F64, 1, s2, f64), SW_OK);
    assert_int_equal(sw_st_writer_add(w, "i32", SW_DTYPE_I32, 1, s1, i32), SW_OK);
    assert_int_equal(sw_st_writer_add(w, "i16", SW_DTYPE_I16, 1, s1, i16), SW_OK);
    assert_int_equal(sw_st_writer_add(w, "i8", SW_DTYPE_I8, 1, s1, i8), SW_OK);
    assert_int_equal(sw_st_writer_add(w, "bool", SW_DTYPE_BOOL, 1, s2, bools), SW_OK);
    unsigned char *bytes;
    size_t size;
    assert_int_equal(sw_st_writer_to_bytes(w, &bytes, &size), SW_OK);
    sw_st_writer_free(w);
    sw_safetensors *st = parse_ok(bytes, size);
    sw_tensor t;
    assert_int_equal(sw_safetensors_get_f32(st, "f16", &t), SW_OK);
    assert_true(t.data[0] == 1.0f && t.data[1] == -2.5f && t.data[2] == 65504.0f &&
                t.data[3] == 0x1p-24f);
    sw_tensor_deinit(&t);
    assert_int_equal(sw_safetensors_get_f32(st, "bf16", &t), SW_OK);
    assert_true(t.data[0] == 1.0f && t.data[1] == -3.0f);
    sw_tensor_deinit(&t);
    assert_int_equal(sw_safetensors_get_f32(st, "f64", &t), SW_OK);
    assert_true(t.data[0] == 0.1f && isinf(t.data[1]));
    sw_tensor_deinit(&t);
    assert_int_equal(sw_safetensors_get_f32(st, "i32", &t), SW_OK);
    assert_true(t.data[0] == -7.0f);
    sw_tensor_deinit(&t);
    assert_int_equal(sw_safetensors_get_f32(st, "i16", &t), SW_OK);
    assert_true(t.data[0] == -300.0f);
    sw_tensor_deinit(&t);
    assert_int_equal(sw_safetensors_get_f32(st, "i8", &t), SW_OK);
    assert_true(t.data[0] == -128.0f);
    sw_tensor_deinit(&t);
    assert_int_equal(sw_safetensors_get_f32(st, "bool", &t), SW_OK);
    assert_true(t.data[0] == 0.0f && t.data[1] == 1.0f);
    sw_tensor_deinit(&t);
    sw_safetensors_free(st);
    free(bytes);
}

/* A tensor with more than 4 dims parses but cannot become a float tensor (SW_ERR_SHAPE). */
static void test_io_get_f32_too_many_dims(void **state) {
    (void)state;
    size_t size;
    unsigned char *b = make_file("{\"t\": {\"dtype\": \"U8\", \"shape\": [1, 1, 1, 1, 2], "
                                 "\"data_offsets\": [0, 2]}}",
                                 2, &size);
    sw_safetensors *st = parse_ok(b, size);
    sw_tensor t;
    assert_int_equal(sw_safetensors_get_f32(st, "t", &t), SW_ERR_SHAPE);
    assert_non_null(strstr(sw_error_message(), "[1, 1, 1, 1, 2]"));
    sw_safetensors_free(st);
    free(b);
}

/* The writer refuses what it could not write correctly: duplicate or reserved names, negative
 * dimensions, too many dimensions, missing data. */
static void test_io_writer_rejects_bad_input(void **state) {
    (void)state;
    sw_st_writer *w = NULL;
    assert_int_equal(sw_st_writer_new(&w), SW_OK);
    const float x[2] = {1, 2};
    const int64_t s2[1] = {2}, neg[1] = {-2}, nine[9] = {1, 1, 1, 1, 1, 1, 1, 1, 2};
    assert_int_equal(sw_st_writer_add(w, "x", SW_DTYPE_F32, 1, s2, x), SW_OK);
    assert_int_equal(sw_st_writer_add(w, "x", SW_DTYPE_F32, 1, s2, x), SW_ERR_ARG);
    assert_non_null(strstr(sw_error_message(), "already"));
    assert_int_equal(sw_st_writer_add(w, "__metadata__", SW_DTYPE_F32, 1, s2, x), SW_ERR_ARG);
    assert_int_equal(sw_st_writer_add(w, "", SW_DTYPE_F32, 1, s2, x), SW_ERR_ARG);
    assert_int_equal(sw_st_writer_add(w, "bad\xff", SW_DTYPE_F32, 1, s2, x), SW_ERR_ARG);
    assert_int_equal(sw_st_writer_add(w, "n", SW_DTYPE_F32, 1, neg, x), SW_ERR_ARG);
    assert_int_equal(sw_st_writer_add(w, "nine", SW_DTYPE_F32, 9, nine, x), SW_ERR_ARG);
    assert_int_equal(sw_st_writer_add(w, "nodata", SW_DTYPE_F32, 1, s2, NULL), SW_ERR_ARG);
    assert_int_equal(sw_st_writer_meta(w, "k", "\xc3"), SW_ERR_ARG);
    unsigned char *bytes;
    size_t size;
    assert_int_equal(sw_st_writer_to_bytes(w, &bytes, &size), SW_OK);
    sw_safetensors *st = parse_ok(bytes, size);
    assert_int_equal(st->n_entries, 1);
    sw_safetensors_free(st);
    free(bytes);
    sw_st_writer_free(w);
}

/* dtype names map both ways with the right sizes. */
static void test_io_dtype_names(void **state) {
    (void)state;
    for (int d = 0; d < SW_DTYPE_COUNT; d++) {
        sw_dtype back;
        assert_int_equal(sw_dtype_from_name(sw_dtype_name((sw_dtype)d), &back), SW_OK);
        assert_int_equal(back, d);
    }
    assert_int_equal(sw_dtype_size(SW_DTYPE_F64), 8);
    assert_int_equal(sw_dtype_size(SW_DTYPE_BF16), 2);
    assert_int_equal(sw_dtype_size(SW_DTYPE_BOOL), 1);
    sw_dtype d;
    assert_int_equal(sw_dtype_from_name("f32", &d), SW_ERR_FORMAT);
    assert_int_equal(sw_dtype_from_name("F8_E4M3", &d), SW_ERR_UNSUPPORTED);
}

/* ---- safetensors: malformed files ------------------------------------------------------- */

/* Cutting a valid file at any byte gives SW_ERR_FORMAT with a message, never a crash or an
 * out-of-bounds read (ASan watches); so does one extra byte at the end. */
static void test_io_truncation_every_byte_fails(void **state) {
    (void)state;
    size_t size;
    unsigned char *full = small_file(&size);
    for (size_t k = 0; k < size; k++) {
        /* An exact-size copy so that ASan sees any read past the cut. */
        unsigned char *cut = malloc(k ? k : 1);
        memcpy(cut, full, k);
        sw_safetensors *st = NULL;
        sw_error_clear();
        if (sw_safetensors_parse(cut, k, &st) != SW_ERR_FORMAT)
            fail_msg("a file cut to %zu of %zu bytes was accepted", k, size);
        assert_null(st);
        assert_true(strlen(sw_error_message()) > 0);
        free(cut);
    }
    unsigned char *longer = malloc(size + 1);
    memcpy(longer, full, size);
    longer[size] = 0;
    expect_fail(longer, size + 1, SW_ERR_FORMAT, "cover only");
    free(longer);
    free(full);
}

/* Flipping any header byte to any of several values either still parses (a change inside a
 * metadata string, say) or fails cleanly; whatever parses still satisfies the invariants. */
static void test_io_header_byte_flips(void **state) {
    (void)state;
    size_t size;
    unsigned char *full = small_file(&size);
    size_t header_end = size - (sizeof small_f32 + sizeof small_i64 + sizeof small_u8 + 4);
    static const unsigned char values[] = {0x00, 0x01, 0x20, '"', '[', ']',  '{',  '}',  ',',
                                           ':',  '-',  '9',  'e', '.', 0x7f, 0x80, 0xc3, 0xff};
    int accepted = 0, rejected = 0;
    for (size_t i = 0; i < header_end; i++) {
        for (size_t v = 0; v < sizeof values; v++) {
            if (full[i] == values[v]) continue;
            unsigned char *b = malloc(size);
            memcpy(b, full, size);
            b[i] = values[v];
            sw_safetensors *st = NULL;
            sw_status status = sw_safetensors_parse(b, size, &st);
            if (status == SW_OK) {
                accepted++;
                size_t covered = 0;
                for (int e = 0; e < st->n_entries; e++) {
                    assert_true(st->entries[e].begin <= st->entries[e].end);
                    assert_true(st->data_start + st->entries[e].end <= st->size);
                    covered += st->entries[e].end - st->entries[e].begin;
                }
                assert_int_equal(covered, st->size - st->data_start);
                sw_safetensors_free(st);
            } else {
                rejected++;
                assert_true(status == SW_ERR_FORMAT || status == SW_ERR_UNSUPPORTED);
                assert_true(strlen(sw_error_message()) > 0);
            }
            free(b);
        }
    }
    assert_true(rejected > accepted); /* most flips break the header */
    free(full);
}

/* The length prefix: too short a file, a header past the end, an absurd length. */
static void test_io_rejects_bad_length(void **state) {
    (void)state;
    const unsigned char seven[7] = {2, 0, 0, 0, 0, 0, 0};
    expect_fail(seven, sizeof seven, SW_ERR_FORMAT, "fewer than the 8");
    expect_fail(seven, 0, SW_ERR_FORMAT, "fewer than the 8");
    unsigned char past[12] = {100, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' '};
    expect_fail(past, sizeof past, SW_ERR_FORMAT, "runs past the end of the file");
    unsigned char huge[12] = {0, 0, 0, 0, 0, 0, 0, 0x40, '{', '}', ' ', ' '};
    expect_fail(huge, sizeof huge, SW_ERR_FORMAT, "exceeds the format's limit");
    unsigned char all_ff[16];
    memset(all_ff, 0xff, sizeof all_ff);
    expect_fail(all_ff, sizeof all_ff, SW_ERR_FORMAT, "exceeds the format's limit");
    unsigned char zero[8] = {0};
    expect_fail(zero, sizeof zero, SW_ERR_FORMAT, "does not start with '{'");
}

/* The header text: not '{', not UTF-8, not JSON, junk after the object. */
static void test_io_rejects_bad_header_text(void **state) {
    (void)state;
    expect_header_fail("[1, 2]", 0, SW_ERR_FORMAT, "does not start with '{'");
    expect_header_fail(" {}", 0, SW_ERR_FORMAT, "does not start with '{'");
    expect_header_fail("{\"a\": ", 0, SW_ERR_FORMAT, "not valid JSON");
    expect_header_fail("{\"a\" 1}", 0, SW_ERR_FORMAT, "not valid JSON");
    expect_header_fail("{} {}", 0, SW_ERR_FORMAT, "unexpected bytes after");
    expect_header_fail("{}\x01", 0, SW_ERR_FORMAT, "unexpected bytes after");
    expect_header_fail("{\"\xc3\x28\": 1}", 0, SW_ERR_FORMAT, "not valid UTF-8 (byte 2)");
    expect_header_fail("{\"\xed\xa0\x80\": 1}", 0, SW_ERR_FORMAT, "not valid UTF-8");
    expect_header_fail("{\"\xc0\xaf\": 1}", 0, SW_ERR_FORMAT, "not valid UTF-8");
}

/* Entries: not objects, fields missing or of the wrong JSON type. */
static void test_io_rejects_bad_entries(void **state) {
    (void)state;
    expect_header_fail("{\"w\": 3}", 0, SW_ERR_FORMAT, "tensor \"w\": the entry is not a JSON");
    expect_header_fail("{\"w\": {\"shape\": [1], \"data_offsets\": [0, 4]}}", 4, SW_ERR_FORMAT,
                       "tensor \"w\": no \"dtype\"");
    expect_header_fail("{\"w\": {\"dtype\": \"F32\", \"data_offsets\": [0, 4]}}", 4, SW_ERR_FORMAT,
                       "tensor \"w\": no \"shape\"");
    expect_header_fail("{\"w\": {\"dtype\": \"F32\", \"shape\": [1]}}", 4, SW_ERR_FORMAT,
                       "tensor \"w\": no \"data_offsets\"");
    expect_header_fail("{\"w\": {\"dtype\": 4, \"shape\": [1], \"data_offsets\": [0, 4]}}", 4,
                       SW_ERR_FORMAT, "\"dtype\" is not a string");
    expect_header_fail("{\"w\": {\"dtype\": \"F32\", \"shape\": 1, \"data_offsets\": [0, 4]}}", 4,
                       SW_ERR_FORMAT, "\"shape\" is not an array");
    expect_header_fail("{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0]}}", 4,
                       SW_ERR_FORMAT, "\"data_offsets\" is not [begin, end]");
    expect_header_fail("{\"w\": {\"dtype\": \"F32\", \"shape\": [1], "
                       "\"data_offsets\": [0, 4, 8]}}",
                       8, SW_ERR_FORMAT, "\"data_offsets\" is not [begin, end]");
    expect_header_fail("{\"w\": {\"dtype\": \"F32\", \"shape\": [1], "
                       "\"data_offsets\": [0, \"4\"]}}",
                       4, SW_ERR_FORMAT, "\"data_offsets\" is not [begin, end]");
    expect_header_fail("{\"w\": {\"dtype\": \"F32\", \"shape\": [1], "
                       "\"data_offsets\": [0, 4.5]}}",
                       4, SW_ERR_FORMAT, "\"data_offsets\" is not [begin, end]");
    expect_header_fail("{\"w\": {\"dtype\": \"F32\", \"shape\": [1], "
                       "\"data_offsets\": [-4, 4]}}",
                       4, SW_ERR_FORMAT, "\"data_offsets\" is not [begin, end]");
    expect_header_fail("{\"w\": {\"dtype\": \"F32\", \"shape\": [1], "
                       "\"data_offsets\": [0, 1e300]}}",
                       4, SW_ERR_FORMAT, "\"data_offsets\" is not [begin, end]");
}

/* dtypes and shapes: unknown dtype, a valid but unsupported one, negative or fractional
 * dimensions, too many dimensions, a product that overflows. */
static void test_io_rejects_bad_dtype_and_shape(void **state) {
    (void)state;
    expect_header_fail("{\"w\": {\"dtype\": \"F33\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 4,
                       SW_ERR_FORMAT, "tensor \"w\": unknown dtype \"F33\"");
    expect_header_fail("{\"w\": {\"dtype\": \"U32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 4,
                       SW_ERR_UNSUPPORTED, "\"U32\" is valid safetensors but");
    expect_header_fail("{\"w\": {\"dtype\": \"F32\", \"shape\": [-1], "
                       "\"data_offsets\": [0, 4]}}",
                       4, SW_ERR_FORMAT, "dimension 0 of \"shape\" is not a non-negative");
    expect_header_fail("{\"w\": {\"dtype\": \"F32\", \"shape\": [1, 2.5], "
                       "\"data_offsets\": [0, 4]}}",
                       4, SW_ERR_FORMAT, "dimension 1 of \"shape\"");
    expect_header_fail("{\"w\": {\"dtype\": \"F32\", \"shape\": [1, true], "
                       "\"data_offsets\": [0, 4]}}",
                       4, SW_ERR_FORMAT, "dimension 1 of \"shape\"");
    expect_header_fail("{\"w\": {\"dtype\": \"U8\", \"shape\": [1,1,1,1,1,1,1,1,1], "
                       "\"data_offsets\": [0, 1]}}",
                       1, SW_ERR_FORMAT, "more than 8 dimensions");
    expect_header_fail("{\"w\": {\"dtype\": \"F32\", \"shape\": [4294967296, 4294967296, 16], "
                       "\"data_offsets\": [0, 4]}}",
                       4, SW_ERR_FORMAT, "overflows a byte count");
    /* The product wraps to exactly 0 mod 2^64 here: only a checked multiply catches it. */
    expect_header_fail("{\"w\": {\"dtype\": \"F32\", \"shape\": [4294967296, 1073741824], "
                       "\"data_offsets\": [0, 0]}}",
                       0, SW_ERR_FORMAT, "overflows a byte count");
}

/* Offsets against shapes and the data section: the byte count must match exactly, ranges
 * must lie inside the data and begin before they end. */
static void test_io_rejects_bad_offsets(void **state) {
    (void)state;
    expect_header_fail("{\"fc1.weight\": {\"dtype\": \"F32\", \"shape\": [10, 20], "
                       "\"data_offsets\": [0, 400]}}",
                       400, SW_ERR_FORMAT,
                       "tensor \"fc1.weight\": data_offsets [0, 400] but shape [10, 20] x F32 "
                       "needs 800 bytes");
    expect_header_fail("{\"w\": {\"dtype\": \"F32\", \"shape\": [200], "
                       "\"data_offsets\": [0, 800]}}",
                       400, SW_ERR_FORMAT,
                       "tensor \"w\": data_offsets [0, 800] run past the "
                       "data section (400 bytes)");
    expect_header_fail("{\"w\": {\"dtype\": \"F32\", \"shape\": [1], "
                       "\"data_offsets\": [8, 4]}}",
                       8, SW_ERR_FORMAT, "data_offsets [8, 4] end before they begin");
}

/* The tensors must tile the data section: overlaps, holes and trailing bytes are refused. */
static void test_io_rejects_overlap_and_holes(void **state) {
    (void)state;
    expect_header_fail("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
                       " \"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}}",
                       12, SW_ERR_FORMAT, "tensors \"a\" [0, 8] and \"b\" [4, 12] overlap");
    /* The same bytes under two names is an overlap too. */
    expect_header_fail("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
                       " \"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}",
                       8, SW_ERR_FORMAT, "overlap");
    /* An empty tensor inside another's range. */
    expect_header_fail("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
                       " \"b\": {\"dtype\": \"F32\", \"shape\": [0], \"data_offsets\": [4, 4]}}",
                       8, SW_ERR_FORMAT, "overlap");
    expect_header_fail("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
                       " \"b\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [8, 12]}}",
                       12, SW_ERR_FORMAT, "data bytes [4, 8) belong to no tensor");
    expect_header_fail("{\"b\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}", 8,
                       SW_ERR_FORMAT, "data bytes [0, 4) belong to no tensor");
    expect_header_fail("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 9,
                       SW_ERR_FORMAT,
                       "the data section has 9 bytes but the tensors cover "
                       "only 4");
    expect_header_fail("{}", 3, SW_ERR_FORMAT, "lists no tensors but 3 data bytes");
    /* Out of header order is fine as long as the ranges tile. */
    size_t size;
    unsigned char *b =
        make_file("{\"b\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]},"
                  " \"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}",
                  8, &size);
    sw_safetensors *st = parse_ok(b, size);
    assert_string_equal(st->entries[0].name, "b"); /* header order is kept */
    sw_safetensors_free(st);
    free(b);
}

/* __metadata__ must map strings to strings; keys, tensor or metadata, must be unique. */
static void test_io_rejects_bad_metadata_and_duplicates(void **state) {
    (void)state;
    expect_header_fail("{\"__metadata__\": 3}", 0, SW_ERR_FORMAT,
                       "\"__metadata__\" must be an object");
    expect_header_fail("{\"__metadata__\": [\"a\"]}", 0, SW_ERR_FORMAT,
                       "\"__metadata__\" must be an object");
    expect_header_fail("{\"__metadata__\": {\"k\": 1}}", 0, SW_ERR_FORMAT,
                       "\"__metadata__\" value of \"k\" is not a string");
    expect_header_fail("{\"__metadata__\": {\"k\": {\"x\": \"y\"}}}", 0, SW_ERR_FORMAT,
                       "value of \"k\" is not a string");
    expect_header_fail("{\"__metadata__\": {\"k\": \"a\", \"k\": \"b\"}}", 0, SW_ERR_FORMAT,
                       "the header has the key \"k\" twice");
    expect_header_fail("{\"__metadata__\": {}, \"__metadata__\": {}}", 0, SW_ERR_FORMAT,
                       "key \"__metadata__\" twice");
    expect_header_fail("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
                       " \"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}",
                       8, SW_ERR_FORMAT, "the header has the key \"a\" twice");
}

/* ---- files ------------------------------------------------------------------------------ */

/* Writing a file gives exactly the bytes of sw_st_writer_to_bytes, leaves no temporary, and
 * reads back; read errors name the path. */
static void test_io_write_and_read_file(void **state) {
    (void)state;
    char dir[512], path[600];
    fresh_dir("rw", dir, sizeof dir);
    snprintf(path, sizeof path, "%s/small.safetensors", dir);
    sw_st_writer *w = small_writer();
    assert_int_equal(sw_st_writer_write(w, path), SW_OK);
    unsigned char *want;
    size_t want_size, got_size;
    assert_int_equal(sw_st_writer_to_bytes(w, &want, &want_size), SW_OK);
    sw_st_writer_free(w);
    unsigned char *got = read_all(path, &got_size);
    assert_int_equal(got_size, want_size);
    assert_memory_equal(got, want, want_size);
    assert_int_equal(count_temporaries(dir), 0);
    sw_safetensors *st = NULL;
    assert_int_equal(sw_safetensors_read_file(path, &st), SW_OK);
    assert_int_equal(st->n_entries, 5);
    sw_safetensors_free(st);

    /* A corrupt file on disk: the message names the file and the problem. */
    got[8] = '[';
    assert_int_equal(sw_atomic_write(path, got, got_size), SW_OK);
    assert_int_equal(sw_safetensors_read_file(path, &st), SW_ERR_FORMAT);
    assert_non_null(strstr(sw_error_message(), path));
    assert_non_null(strstr(sw_error_message(), "does not start with '{'"));
    /* A missing file and a folder. */
    snprintf(path, sizeof path, "%s/absent.safetensors", dir);
    assert_int_equal(sw_safetensors_read_file(path, &st), SW_ERR_NOT_FOUND);
    assert_non_null(strstr(sw_error_message(), path));
    assert_int_equal(sw_safetensors_read_file(dir, &st), SW_ERR_IO);
    assert_non_null(strstr(sw_error_message(), "not a regular file"));
    free(got);
    free(want);
}

/* When writing fails midway (here: the file size limit, EFBIG), the old file keeps its exact
 * contents and no temporary is left behind. */
static void test_io_atomic_write_failure_keeps_old_file(void **state) {
    (void)state;
    char dir[512], path[600];
    fresh_dir("atomic", dir, sizeof dir);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    const char old[] = "the old file";
    assert_int_equal(sw_atomic_write(path, old, sizeof old), SW_OK);

    size_t n = 1 << 20;
    unsigned char *big = calloc(n, 1);
    struct rlimit saved;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &saved), 0);
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN); /* get EFBIG instead of a signal */
    struct rlimit small = {.rlim_cur = 4096, .rlim_max = saved.rlim_max};
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    sw_status st = sw_atomic_write(path, big, n);
    const int64_t shape[1] = {(int64_t)n};
    sw_st_writer *w = NULL;
    assert_int_equal(sw_st_writer_new(&w), SW_OK);
    assert_int_equal(sw_st_writer_add(w, "big", SW_DTYPE_U8, 1, shape, big), SW_OK);
    sw_status st2 = sw_st_writer_write(w, path);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved), 0);
    signal(SIGXFSZ, prev);
    sw_st_writer_free(w);
    free(big);

    assert_int_equal(st, SW_ERR_IO);
    assert_int_equal(st2, SW_ERR_IO);
    assert_non_null(strstr(sw_error_message(), path));
    assert_non_null(strstr(sw_error_message(), "unchanged"));
    size_t size;
    unsigned char *now = read_all(path, &size);
    assert_int_equal(size, sizeof old);
    assert_memory_equal(now, old, sizeof old);
    free(now);
    assert_int_equal(count_temporaries(dir), 0);
}

/* A destination that cannot be replaced (a folder) or reached (a missing folder) fails with a
 * message naming it; the folder is untouched and no temporary is left. */
static void test_io_atomic_write_bad_destination(void **state) {
    (void)state;
    char dir[512], path[600];
    fresh_dir("dest", dir, sizeof dir);
    snprintf(path, sizeof path, "%s/sub", dir);
    assert_int_equal(mkdir(path, 0755), 0);
    assert_int_equal(sw_atomic_write(path, "x", 1), SW_ERR_IO);
    assert_non_null(strstr(sw_error_message(), "renaming"));
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_true(S_ISDIR(sb.st_mode));
    assert_int_equal(count_temporaries(dir), 0);

    snprintf(path, sizeof path, "%s/missing/file.safetensors", dir);
    assert_int_equal(sw_atomic_write(path, "x", 1), SW_ERR_IO);
    assert_non_null(strstr(sw_error_message(), "missing"));
    assert_non_null(strstr(sw_error_message(), "folder"));
}

/* Aborting removes the temporary and leaves the destination as it was (here: absent); abort
 * twice and abort after commit are harmless. */
static void test_io_atomic_abort(void **state) {
    (void)state;
    char dir[512], path[600];
    fresh_dir("abort", dir, sizeof dir);
    snprintf(path, sizeof path, "%s/out.bin", dir);
    sw_atomic_file f;
    assert_int_equal(sw_atomic_open(&f, path), SW_OK);
    assert_int_equal(count_temporaries(dir), 1);
    fputs("partial", f.fp);
    sw_atomic_abort(&f);
    sw_atomic_abort(&f);
    assert_int_equal(count_temporaries(dir), 0);
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(sw_atomic_open(&f, path), SW_OK);
    fputs("complete", f.fp);
    assert_int_equal(sw_atomic_commit(&f), SW_OK);
    sw_atomic_abort(&f);
    size_t size;
    unsigned char *b = read_all(path, &size);
    assert_int_equal(size, 8);
    assert_memory_equal(b, "complete", 8);
    free(b);
}

/* ---- golden fixtures from the Python safetensors library -------------------------------- */

/* linear_bias, written by Python's safetensors: metadata and shapes read, and the values are
 * right: output = input W^T + b recomputed from the file matches the stored output. */
static void test_io_golden_linear_bias(void **state) {
    (void)state;
    char path[512];
    sw_safetensors *st = NULL;
    assert_int_equal(
        sw_safetensors_read_file(
            sw_test_data_path("golden/linear_bias.safetensors", path, sizeof path), &st),
        SW_OK);
    assert_string_equal(sw_safetensors_meta(st, "case"), "linear_bias");
    sw_tensor x, w, b, y;
    assert_int_equal(sw_safetensors_get_f32(st, "input", &x), SW_OK);
    assert_int_equal(sw_safetensors_get_f32(st, "weight", &w), SW_OK);
    assert_int_equal(sw_safetensors_get_f32(st, "bias", &b), SW_OK);
    assert_int_equal(sw_safetensors_get_f32(st, "output", &y), SW_OK);
    int n = x.shape.dims[0], in = x.shape.dims[1], out = w.shape.dims[0];
    assert_int_equal(w.shape.dims[1], in);
    assert_int_equal(b.shape.dims[0], out);
    assert_int_equal(y.shape.dims[0], n);
    assert_int_equal(y.shape.dims[1], out);
    float *want = malloc((size_t)n * out * sizeof *want);
    for (int r = 0; r < n; r++) {
        for (int o = 0; o < out; o++) {
            double acc = b.data[o];
            for (int i = 0; i < in; i++) acc += (double)x.data[r * in + i] * w.data[o * in + i];
            want[r * out + o] = (float)acc;
        }
    }
    sw_test_assert_close(y.data, want, (size_t)n * out, 1e-5f, 1e-4f, "linear output");
    free(want);
    sw_tensor_deinit(&x);
    sw_tensor_deinit(&w);
    sw_tensor_deinit(&b);
    sw_tensor_deinit(&y);
    sw_safetensors_free(st);
}

/* loss_cross_entropy: I64 targets are class indices, and the mean cross-entropy recomputed
 * from the F32 logits matches the stored loss. */
static void test_io_golden_int64_targets(void **state) {
    (void)state;
    char path[512];
    sw_safetensors *st = NULL;
    assert_int_equal(
        sw_safetensors_read_file(
            sw_test_data_path("golden/loss_cross_entropy.safetensors", path, sizeof path), &st),
        SW_OK);
    const sw_st_entry *te = sw_safetensors_find(st, "target");
    assert_non_null(te);
    assert_int_equal(te->dtype, SW_DTYPE_I64);
    sw_tensor logits, target, loss;
    assert_int_equal(sw_safetensors_get_f32(st, "logits", &logits), SW_OK);
    assert_int_equal(sw_safetensors_get_f32(st, "target", &target), SW_OK);
    assert_int_equal(sw_safetensors_get_f32(st, "loss", &loss), SW_OK);
    int n = logits.shape.dims[0], c = logits.shape.dims[1];
    double total = 0;
    for (int r = 0; r < n; r++) {
        int k = (int)target.data[r];
        assert_true(k >= 0 && k < c && (float)k == target.data[r]);
        double mx = -INFINITY, sum = 0;
        for (int j = 0; j < c; j++) mx = fmax(mx, logits.data[r * c + j]);
        for (int j = 0; j < c; j++) sum += exp(logits.data[r * c + j] - mx);
        total += log(sum) + mx - logits.data[r * c + k];
    }
    float want = (float)(total / n);
    sw_test_assert_close(loss.data, &want, 1, 1e-5f, 1e-5f, "cross-entropy");
    sw_tensor_deinit(&logits);
    sw_tensor_deinit(&target);
    sw_tensor_deinit(&loss);
    sw_safetensors_free(st);
}

/* prune_l1_s50: U8 masks are 0/1 with the parameter's shape, and NNI's bias rule holds (a
 * bias mask is 1 iff some weight of that output row survives). */
static void test_io_golden_u8_masks(void **state) {
    (void)state;
    char path[512];
    sw_safetensors *st = NULL;
    assert_int_equal(
        sw_safetensors_read_file(
            sw_test_data_path("golden/prune_l1_s50.safetensors", path, sizeof path), &st),
        SW_OK);
    const sw_st_entry *wm = sw_safetensors_find(st, "conv1.weight");
    const sw_st_entry *bm = sw_safetensors_find(st, "conv1.bias");
    const sw_st_entry *wp = sw_safetensors_find(st, "param/conv1.weight");
    assert_non_null(wm);
    assert_non_null(bm);
    assert_non_null(wp);
    assert_int_equal(wm->dtype, SW_DTYPE_U8);
    assert_int_equal(wm->ndim, wp->ndim);
    for (int d = 0; d < wm->ndim; d++) assert_int_equal(wm->shape[d], wp->shape[d]);
    const unsigned char *w = sw_safetensors_data(st, wm), *b = sw_safetensors_data(st, bm);
    size_t rows = (size_t)wm->shape[0], per_row = (wm->end - wm->begin) / rows;
    assert_int_equal(bm->end - bm->begin, rows);
    size_t kept = 0;
    for (size_t r = 0; r < rows; r++) {
        bool any = false;
        for (size_t i = 0; i < per_row; i++) {
            assert_true(w[r * per_row + i] <= 1);
            any |= w[r * per_row + i] == 1;
            kept += w[r * per_row + i];
        }
        assert_int_equal(b[r], any ? 1 : 0);
    }
    assert_int_equal(kept, rows * per_row / 2); /* sparse ratio 0.5 */
    sw_safetensors_free(st);
}

/* ---- model files ------------------------------------------------------------------------ */

/* Adds node `name` of `kind` with hyper-parameters `hp` on the named inputs (NULL: previous). */
static void add(sw_model *m, const char *name, sw_layer_kind kind, const sw_layer_hparams *hp,
                const char *in0, const char *in1) {
    sw_layer *layer = NULL;
    if (sw_layer_new(kind, hp, &layer) != SW_OK) fail_msg("%s: %s", name, sw_error_message());
    const char *inputs[2] = {in0, in1};
    int n = in1 ? 2 : in0 ? 1 : 0;
    if (sw_model_add(m, name, layer, inputs, n, NULL) != SW_OK)
        fail_msg("%s: %s", name, sw_error_message());
}

/* A model with every layer kind and non-default hyper-parameters, including floats that have
 * no short decimal form. Parameters and buffers are random, with -0, a NaN payload, an
 * infinity and a subnormal among them. */
static sw_model *every_kind_model(void) {
    sw_shape in = sw_shape_3d(3, 8, 8);
    sw_model *m = NULL;
    assert_int_equal(sw_model_new("custom", &in, &m), SW_OK);
    sw_layer_hparams hp = sw_layer_hparams_default(SW_LAYER_CONV2D);
    hp.in_channels = 3, hp.out_channels = 8, hp.kernel[0] = 3, hp.kernel[1] = 3;
    hp.padding[0] = hp.padding[1] = 1;
    add(m, "c1", SW_LAYER_CONV2D, &hp, "input", NULL);
    hp = sw_layer_hparams_default(SW_LAYER_CONV2D);
    hp.in_channels = 8, hp.out_channels = 8, hp.kernel[0] = 3, hp.kernel[1] = 1;
    hp.padding[0] = 2, hp.padding[1] = 0, hp.dilation[0] = 2, hp.groups = 4, hp.bias = false;
    add(m, "block.c2", SW_LAYER_CONV2D, &hp, NULL, NULL);
    hp = sw_layer_hparams_default(SW_LAYER_BATCHNORM2D);
    hp.num_features = 8, hp.eps = nextafterf(1e-5f, 1.0f), hp.momentum = 0.05f;
    add(m, "block.bn", SW_LAYER_BATCHNORM2D, &hp, NULL, NULL);
    hp = sw_layer_hparams_default(SW_LAYER_RELU6);
    add(m, "block.act", SW_LAYER_RELU6, &hp, NULL, NULL);
    hp = sw_layer_hparams_default(SW_LAYER_ADD);
    add(m, "sum", SW_LAYER_ADD, &hp, "c1", "block.act");
    hp = sw_layer_hparams_default(SW_LAYER_CONCAT);
    add(m, "cat", SW_LAYER_CONCAT, &hp, "sum", "c1");
    hp = sw_layer_hparams_default(SW_LAYER_MAXPOOL2D);
    hp.kernel[0] = hp.kernel[1] = 2, hp.stride[0] = hp.stride[1] = 2;
    add(m, "mp", SW_LAYER_MAXPOOL2D, &hp, NULL, NULL);
    hp = sw_layer_hparams_default(SW_LAYER_AVGPOOL2D);
    hp.kernel[0] = hp.kernel[1] = 3, hp.padding[0] = hp.padding[1] = 1;
    add(m, "ap", SW_LAYER_AVGPOOL2D, &hp, NULL, NULL);
    hp = sw_layer_hparams_default(SW_LAYER_RELU);
    add(m, "relu", SW_LAYER_RELU, &hp, NULL, NULL);
    hp = sw_layer_hparams_default(SW_LAYER_GLOBAL_AVGPOOL);
    add(m, "gap", SW_LAYER_GLOBAL_AVGPOOL, &hp, NULL, NULL);
    hp = sw_layer_hparams_default(SW_LAYER_FLATTEN);
    add(m, "flat", SW_LAYER_FLATTEN, &hp, NULL, NULL);
    hp = sw_layer_hparams_default(SW_LAYER_BATCHNORM1D);
    hp.num_features = 16, hp.eps = 1e-3f, hp.momentum = 0.3f;
    add(m, "bn1d", SW_LAYER_BATCHNORM1D, &hp, NULL, NULL);
    hp = sw_layer_hparams_default(SW_LAYER_DROPOUT);
    hp.p = 0.1f + 0.2f;
    add(m, "drop", SW_LAYER_DROPOUT, &hp, NULL, NULL);
    hp = sw_layer_hparams_default(SW_LAYER_IDENTITY);
    add(m, "id", SW_LAYER_IDENTITY, &hp, NULL, NULL);
    hp = sw_layer_hparams_default(SW_LAYER_LINEAR);
    hp.in_features = 16, hp.out_features = 5;
    add(m, "fc", SW_LAYER_LINEAR, &hp, NULL, NULL);
    assert_int_equal(sw_model_finalize(m), SW_OK);
    sw_model_init_params(m, 7);
    sw_tensor buffers = sw_tensor_view(m->buffer_data, &(sw_shape){1, {(int)m->n_buffer_floats}});
    sw_test_fill_uniform(&buffers, 11, 0.5f, 2.0f);
    uint32_t nan_payload = 0x7fc12345u, subnormal = 0x00000123u;
    memcpy(&m->param_data[0], &nan_payload, 4);
    memcpy(&m->param_data[1], &subnormal, 4);
    m->param_data[2] = -0.0f;
    m->param_data[3] = -INFINITY;
    return m;
}

/* Saves `m` into a fresh file of the test tmpdir and returns its path (static buffer). */
static const char *save_tmp(const sw_model *m, const char *name, const char *const *extra) {
    static char path[600];
    snprintf(path, sizeof path, "%s/%s", sw_test_tmpdir(), name);
    if (sw_model_save(m, path, extra) != SW_OK) fail_msg("save: %s", sw_error_message());
    return path;
}

/* Two models are the same: architecture JSON, hyper-parameters bit for bit, every parameter
 * and buffer bit for bit, and the same output on the same input. */
static void assert_same_model(sw_model *a, sw_model *b) {
    char *ja, *jb;
    assert_int_equal(sw_model_arch_to_json(a, &ja), SW_OK);
    assert_int_equal(sw_model_arch_to_json(b, &jb), SW_OK);
    assert_string_equal(ja, jb);
    free(ja);
    free(jb);
    assert_string_equal(a->arch, b->arch);
    assert_true(sw_shape_equal(&a->input_shape, &b->input_shape));
    assert_int_equal(a->n_nodes, b->n_nodes);
    for (int i = 0; i < a->n_nodes; i++) {
        const sw_node *x = &a->nodes[i], *y = &b->nodes[i];
        assert_string_equal(x->name, y->name);
        assert_int_equal(x->layer->kind, y->layer->kind);
        assert_int_equal(x->n_inputs, y->n_inputs);
        assert_memory_equal(x->inputs, y->inputs, sizeof(int) * (size_t)x->n_inputs);
        const sw_layer_hparams *p = &x->layer->hp, *q = &y->layer->hp;
        assert_memory_equal(&p->eps, &q->eps, sizeof p->eps);
        assert_memory_equal(&p->momentum, &q->momentum, sizeof p->momentum);
        assert_memory_equal(&p->p, &q->p, sizeof p->p);
        assert_true(sw_shape_equal(&x->out_shape, &y->out_shape));
    }
    assert_int_equal(a->n_param_floats, b->n_param_floats);
    assert_int_equal(a->n_buffer_floats, b->n_buffer_floats);
    assert_memory_equal(a->param_data, b->param_data, a->n_param_floats * sizeof(float));
    assert_memory_equal(a->buffer_data, b->buffer_data, a->n_buffer_floats * sizeof(float));
}

static void assert_same_output(sw_model *a, sw_model *b) {
    sw_shape xs;
    assert_int_equal(sw_shape_batched(&a->input_shape, 2, &xs), SW_OK);
    sw_tensor x;
    assert_int_equal(sw_tensor_init(&x, &xs), SW_OK);
    sw_test_fill_uniform(&x, 3, -1.0f, 1.0f);
    sw_model_set_training(a, false);
    sw_model_set_training(b, false);
    const sw_tensor *ya, *yb;
    assert_int_equal(sw_model_forward(a, &x, &ya), SW_OK);
    assert_int_equal(sw_model_forward(b, &x, &yb), SW_OK);
    assert_int_equal(ya->numel, yb->numel);
    assert_memory_equal(ya->data, yb->data, ya->numel * sizeof(float));
    sw_tensor_deinit(&x);
}

/* Every zoo model survives save and load bit for bit, and computes the same output. */
static void test_io_model_zoo_roundtrip(void **state) {
    (void)state;
    for (const char *const *name = sw_zoo_names(); *name; name++) {
        sw_model *m = NULL, *back = NULL;
        assert_int_equal(sw_zoo_build(*name, 5, &m), SW_OK);
        const char *path = save_tmp(m, "zoo.safetensors", NULL);
        if (sw_model_load(path, &back) != SW_OK) fail_msg("%s: %s", *name, sw_error_message());
        assert_same_model(m, back);
        assert_same_output(m, back);
        sw_model_free(m);
        sw_model_free(back);
    }
}

/* A model with every layer kind, odd floats in hyper-parameters and special values among the
 * weights round-trips bit for bit; the extra metadata is in the file, and the file is a plain
 * safetensors file whose tensors are "<node>.<param>" F32 in node order. */
static void test_io_model_every_kind_roundtrip(void **state) {
    (void)state;
    sw_model *m = every_kind_model();
    const char *extra[] = {"trained_by", "test_io", "epochs", "3", NULL};
    const char *path = save_tmp(m, "every.safetensors", extra);
    sw_model *back = NULL;
    if (sw_model_load(path, &back) != SW_OK) fail_msg("%s", sw_error_message());
    assert_same_model(m, back);
    assert_same_output(m, back);

    sw_safetensors *st = NULL;
    assert_int_equal(sw_safetensors_read_file(path, &st), SW_OK);
    assert_string_equal(sw_safetensors_meta(st, "trained_by"), "test_io");
    assert_string_equal(sw_safetensors_meta(st, "epochs"), "3");
    assert_string_equal(sw_safetensors_meta(st, "format"), "shrinkwrap-model");
    assert_string_equal(sw_safetensors_meta(st, "format_version"), "1");
    assert_string_equal(sw_safetensors_meta(st, "arch"), "custom");
    const char *names[] = {"c1.weight",
                           "c1.bias",
                           "block.c2.weight",
                           "block.bn.weight",
                           "block.bn.bias",
                           "block.bn.running_mean",
                           "block.bn.running_var",
                           "bn1d.weight",
                           "bn1d.bias",
                           "bn1d.running_mean",
                           "bn1d.running_var",
                           "fc.weight",
                           "fc.bias"};
    assert_int_equal(st->n_entries, (int)(sizeof names / sizeof names[0]));
    for (int i = 0; i < st->n_entries; i++) {
        assert_string_equal(st->entries[i].name, names[i]);
        assert_int_equal(st->entries[i].dtype, SW_DTYPE_F32);
    }
    const sw_st_entry *w = sw_safetensors_find(st, "block.c2.weight");
    assert_int_equal(w->ndim, 4); /* [out, in/groups, kh, kw] */
    assert_true(w->shape[0] == 8 && w->shape[1] == 2 && w->shape[2] == 3 && w->shape[3] == 1);
    /* The architecture is readable JSON with the documented keys. */
    cJSON *arch = cJSON_Parse(sw_safetensors_meta(st, "architecture"));
    assert_non_null(arch);
    const cJSON *nodes = cJSON_GetObjectItem(arch, "nodes");
    assert_int_equal(cJSON_GetArraySize(nodes), m->n_nodes);
    const cJSON *c2 = cJSON_GetArrayItem(nodes, 1);
    assert_string_equal(cJSON_GetObjectItem(c2, "type")->valuestring, "Conv2d");
    assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(c2, "inputs"), 0)->valuestring,
                        "c1");
    assert_int_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(c2, "dilation"), 0)->valueint, 2);
    assert_int_equal(cJSON_GetObjectItem(c2, "groups")->valueint, 4);
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(c2, "bias")));
    const cJSON *bn1d = cJSON_GetArrayItem(nodes, 11);
    assert_true(cJSON_GetObjectItem(bn1d, "eps")->valuedouble == 0.001); /* shortest form */
    const cJSON *relu = cJSON_GetArrayItem(nodes, 8);
    assert_int_equal(cJSON_GetArraySize(relu), 3); /* name, type, inputs: no parameters */
    cJSON_Delete(arch);
    sw_safetensors_free(st);
    sw_model_free(m);
    sw_model_free(back);
}

/* from_arch_json(arch_to_json(m)) has m's structure with fresh parameters. */
static void test_io_model_arch_json_roundtrip(void **state) {
    (void)state;
    sw_model *m = every_kind_model(), *rebuilt = NULL;
    char *json = NULL, *again = NULL;
    assert_int_equal(sw_model_arch_to_json(m, &json), SW_OK);
    assert_int_equal(sw_model_from_arch_json(json, "mine", &rebuilt), SW_OK);
    assert_string_equal(rebuilt->arch, "mine");
    assert_true(rebuilt->finalized);
    assert_int_equal(rebuilt->n_param_floats, m->n_param_floats);
    assert_int_equal(sw_model_arch_to_json(rebuilt, &again), SW_OK);
    assert_string_equal(json, again);
    free(json);
    free(again);
    sw_model_free(rebuilt);
    sw_model_free(m);
}

/* Hand-written architectures may use PyTorch's shorthands and defaults: kernel_size 3 for
 * [3, 3], pools stride = kernel, Conv2d stride 1 / padding 0 / bias true. */
static void test_io_model_arch_defaults(void **state) {
    (void)state;
    const char *json = "{\"input_shape\": [1, 6, 6], \"nodes\": ["
                       "{\"name\": \"conv\", \"type\": \"Conv2d\", \"inputs\": [\"input\"], "
                       "\"in_channels\": 1, \"out_channels\": 2, \"kernel_size\": 3},"
                       "{\"name\": \"pool\", \"type\": \"MaxPool2d\", \"inputs\": [\"conv\"], "
                       "\"kernel_size\": 2}]}";
    sw_model *m = NULL;
    if (sw_model_from_arch_json(json, NULL, &m) != SW_OK) fail_msg("%s", sw_error_message());
    const sw_layer_hparams *c = &m->nodes[0].layer->hp, *p = &m->nodes[1].layer->hp;
    assert_true(c->kernel[0] == 3 && c->kernel[1] == 3 && c->stride[0] == 1 && c->bias);
    assert_true(c->padding[0] == 0 && c->groups == 1);
    assert_true(p->stride[0] == 2 && p->stride[1] == 2);
    assert_int_equal(m->nodes[1].out_shape.dims[1], 2); /* 6 -> 4 -> 2 */
    assert_int_equal(m->n_param_floats, 2 * 9 + 2);
    assert_string_equal(m->arch, "custom");
    sw_model_free(m);
}

/* Expects sw_model_from_arch_json(json) to fail with `status` and a message containing `want`. */
static void expect_arch_fail(const char *json, sw_status status, const char *want) {
    sw_model *m = NULL;
    sw_error_clear();
    sw_status got = sw_model_from_arch_json(json, NULL, &m);
    if (got != status || !strstr(sw_error_message(), want))
        fail_msg("%s\nexpected status %d with \"%s\", got %d: \"%s\"", json, (int)status, want,
                 (int)got, sw_error_message());
    assert_null(m);
}

#define LIN(name, in, extra)                                                                       \
    "{\"name\": \"" name "\", \"type\": \"Linear\", \"inputs\": [\"" in "\"], " extra "}"
#define ARCH(nodes) "{\"input_shape\": [4], \"nodes\": [" nodes "]}"

/* Bad architectures fail with messages naming the node and the problem: unknown types and
 * keys, ill-typed or out-of-range hyper-parameters, inputs that are not earlier nodes, shapes
 * that do not fit, sizes beyond the limits. */
static void test_io_model_arch_errors(void **state) {
    (void)state;
    const sw_status F = SW_ERR_FORMAT;
    expect_arch_fail("[1]", F, "architecture: the JSON is not an object");
    expect_arch_fail("{\"nodes\": [", F, "not valid JSON");
    expect_arch_fail("{\"input_shape\": [4], \"nodes\": [], \"x\": 1}", F, "unknown key \"x\"");
    expect_arch_fail("{\"input_shape\": [4], \"nodes\": []}", F, "non-empty array");
    expect_arch_fail(
        "{\"nodes\": [" LIN("a", "input", "\"in_features\": 4, \"out_features\": 2") "]}", F,
        "\"input_shape\" must be an array");
    expect_arch_fail("{\"input_shape\": [1, 2, 3, 4], \"nodes\": [1]}", F, "1 to 3 dimensions");
    expect_arch_fail("{\"input_shape\": [0], \"nodes\": [1]}", F, "\"input_shape\"[0]");
    expect_arch_fail("{\"input_shape\": [4096, 4096, 8], \"nodes\": [1]}", F,
                     "\"input_shape\" has more than 67108864 elements");
    expect_arch_fail(ARCH("3"), F, "node 0 is not an object");
    expect_arch_fail(ARCH("{\"type\": \"ReLU\", \"inputs\": [\"input\"]}"), F,
                     "node 0 has no \"name\" string");
    char long_name[400];
    snprintf(long_name, sizeof long_name,
             ARCH("{\"name\": \"%0300d\", \"type\": \"ReLU\", \"inputs\": [\"input\"]}"), 7);
    expect_arch_fail(long_name, F, "node 0: the name is longer than 256 bytes");
    expect_arch_fail(ARCH("{\"name\": \"r\", \"inputs\": [\"input\"]}"), F,
                     "node 0 (\"r\"): no \"type\" string");
    expect_arch_fail(ARCH("{\"name\": \"r\", \"type\": \"Lineer\", \"inputs\": [\"input\"]}"), F,
                     "node 0 (\"r\"): unknown layer type \"Lineer\"");
    expect_arch_fail(ARCH(LIN("a", "input",
                              "\"in_features\": 4, \"out_features\": 2, "
                              "\"kernal_size\": 3")),
                     F, "node 0 (\"a\"): unknown key \"kernal_size\" for a Linear");
    expect_arch_fail(ARCH(LIN("a", "input", "\"in_features\": 4")), F,
                     "node 0 (\"a\"): missing \"out_features\"");
    expect_arch_fail(ARCH(LIN("a", "input", "\"in_features\": -4, \"out_features\": 2")), F,
                     "\"in_features\" must be an integer in [1, 16777216]");
    expect_arch_fail(ARCH(LIN("a", "input", "\"in_features\": 4.5, \"out_features\": 2")), F,
                     "\"in_features\" must be an integer");
    expect_arch_fail(ARCH(LIN("a", "input", "\"in_features\": \"4\", \"out_features\": 2")), F,
                     "\"in_features\" must be an integer");
    expect_arch_fail(ARCH(LIN("a", "input", "\"in_features\": 4, \"out_features\": 1e10")), F,
                     "\"out_features\" must be an integer");
    expect_arch_fail(ARCH(LIN("a", "input",
                              "\"in_features\": 4, \"out_features\": 2, "
                              "\"bias\": 1")),
                     F, "\"bias\" must be true or false");
    expect_arch_fail(ARCH("{\"name\": \"d\", \"type\": \"Dropout\", \"inputs\": [\"input\"], "
                          "\"p\": 1e300}"),
                     F, "\"p\" must be a finite number");
    expect_arch_fail(ARCH("{\"name\": \"d\", \"type\": \"Dropout\", \"inputs\": [\"input\"], "
                          "\"p\": null}"),
                     F, "\"p\" must be a finite number");
    expect_arch_fail("{\"input_shape\": [1, 4, 4], \"nodes\": [{\"name\": \"c\", \"type\": "
                     "\"Conv2d\", \"inputs\": [\"input\"], \"in_channels\": 1, "
                     "\"out_channels\": 1, \"kernel_size\": [3]}]}",
                     F, "\"kernel_size\" must be an integer or [height, width]");
    expect_arch_fail("{\"input_shape\": [1, 4, 4], \"nodes\": [{\"name\": \"c\", \"type\": "
                     "\"Conv2d\", \"inputs\": [\"input\"], \"in_channels\": 1, "
                     "\"out_channels\": 1, \"kernel_size\": [3, 100000]}]}",
                     F,
                     "\"kernel_size\" must be an integer or [height, width] of integers in "
                     "[1, 4096]");
    /* Inputs: missing, empty, not strings, unknown, later (a cycle), too many. */
    expect_arch_fail(ARCH("{\"name\": \"r\", \"type\": \"ReLU\"}"), F,
                     "\"inputs\" must be an array of 1 to 8 node names");
    expect_arch_fail(ARCH("{\"name\": \"r\", \"type\": \"ReLU\", \"inputs\": []}"), F,
                     "\"inputs\" must be an array");
    expect_arch_fail(ARCH("{\"name\": \"r\", \"type\": \"ReLU\", \"inputs\": [0]}"), F,
                     "input 0 is not a string");
    expect_arch_fail(ARCH("{\"name\": \"r\", \"type\": \"ReLU\", \"inputs\": [\"nowhere\"]}"), F,
                     "node 0 (\"r\"): input \"nowhere\" is not an earlier node");
    expect_arch_fail(ARCH("{\"name\": \"r\", \"type\": \"ReLU\", \"inputs\": [\"s\"]},"
                          "{\"name\": \"s\", \"type\": \"ReLU\", \"inputs\": [\"r\"]}"),
                     F, "input \"s\" is not an earlier node");
    expect_arch_fail(ARCH("{\"name\": \"r\", \"type\": \"ReLU\", \"inputs\": [\"r\"]}"), F,
                     "input \"r\" is not an earlier node");
    expect_arch_fail(ARCH("{\"name\": \"a\", \"type\": \"Add\", \"inputs\": [\"input\", "
                          "\"input\", \"input\", \"input\", \"input\", \"input\", \"input\", "
                          "\"input\", \"input\"]}"),
                     F, "1 to 8 node names");
    /* Checks of the graph itself come through with the node named. */
    expect_arch_fail(ARCH(LIN("a", "input", "\"in_features\": 7, \"out_features\": 2")),
                     SW_ERR_SHAPE, "\"a\"");
    expect_arch_fail(ARCH(LIN("a", "input", "\"in_features\": 4, \"out_features\": 2") "," LIN(
                         "a", "a", "\"in_features\": 2, \"out_features\": 2")),
                     SW_ERR_ARG, "already used");
    expect_arch_fail(ARCH("{\"name\": \"r\", \"type\": \"ReLU\", \"inputs\": [\"input\", "
                          "\"input\"]}"),
                     SW_ERR_ARG, "ReLU takes 1 to 1 inputs, got 2");
    expect_arch_fail("{\"input_shape\": [2, 4, 4], \"nodes\": [{\"name\": \"c\", \"type\": "
                     "\"Conv2d\", \"inputs\": [\"input\"], \"in_channels\": 2, "
                     "\"out_channels\": 3, \"kernel_size\": 1, \"groups\": 2}]}",
                     SW_ERR_CONFIG, "node 0 (\"c\")");
    expect_arch_fail("{\"input_shape\": [1, 8192, 8192], \"nodes\": [{\"name\": \"c\", \"type\": "
                     "\"Conv2d\", \"inputs\": [\"input\"], \"in_channels\": 1, "
                     "\"out_channels\": 2, \"kernel_size\": 1}]}",
                     F, "node 0 (\"c\"): the output has more than 67108864 elements");
    expect_arch_fail(ARCH(LIN("a", "input", "\"in_features\": 4, \"out_features\": 2") "," LIN(
                         "b", "a",
                         "\"in_features\": 16777216, "
                         "\"out_features\": 16777216")),
                     F, "node 1 (\"b\"): the model would have more than 67108864 parameters");
}

/* A model file rebuilt with some change: the original's metadata with `key` set to `value`
 * (unless NULL), without tensor `drop`, with `add` (a 1-element F32 tensor) appended, and
 * `retype` stored as F64. Returns the file's bytes. */
static unsigned char *remake(const char *path, const char *key, const char *value, const char *drop,
                             const char *add_name, const char *retype, size_t *size) {
    sw_safetensors *st = NULL;
    assert_int_equal(sw_safetensors_read_file(path, &st), SW_OK);
    sw_st_writer *w = NULL;
    assert_int_equal(sw_st_writer_new(&w), SW_OK);
    for (int i = 0; i < st->n_meta; i++)
        assert_int_equal(sw_st_writer_meta(w, st->meta[i].key, st->meta[i].value), SW_OK);
    if (key && value) assert_int_equal(sw_st_writer_meta(w, key, value), SW_OK);
    double *f64 = NULL;
    for (int i = 0; i < st->n_entries; i++) {
        const sw_st_entry *e = &st->entries[i];
        if (drop && !strcmp(e->name, drop)) continue;
        if (retype && !strcmp(e->name, retype)) {
            size_t n = (e->end - e->begin) / 4;
            f64 = calloc(n, sizeof *f64);
            assert_int_equal(sw_st_writer_add(w, e->name, SW_DTYPE_F64, e->ndim, e->shape, f64),
                             SW_OK);
            continue;
        }
        assert_int_equal(
            sw_st_writer_add(w, e->name, e->dtype, e->ndim, e->shape, sw_safetensors_data(st, e)),
            SW_OK);
    }
    static const float one = 1.0f;
    const int64_t s1[1] = {1};
    if (add_name) assert_int_equal(sw_st_writer_add(w, add_name, SW_DTYPE_F32, 1, s1, &one), SW_OK);
    unsigned char *bytes = NULL;
    assert_int_equal(sw_st_writer_to_bytes(w, &bytes, size), SW_OK);
    sw_st_writer_free(w);
    free(f64);
    sw_safetensors_free(st);
    return bytes;
}

static void expect_load_fail(unsigned char *bytes, size_t size, sw_status status,
                             const char *want) {
    sw_model *m = NULL;
    sw_error_clear();
    sw_status got = sw_model_load_bytes(bytes, size, &m);
    if (got != status || !strstr(sw_error_message(), want))
        fail_msg("expected status %d with \"%s\", got %d: \"%s\"", (int)status, want, (int)got,
                 sw_error_message());
    assert_null(m);
    free(bytes);
}

/* Architecture and tensors must agree: a missing, extra, mis-shaped or non-F32 tensor is an
 * error naming the tensor; so are a foreign file, an unknown format version and a broken
 * architecture in a file. */
static void test_io_model_file_disagreements(void **state) {
    (void)state;
    sw_model *m = every_kind_model();
    char path[600];
    snprintf(path, sizeof path, "%s", save_tmp(m, "base.safetensors", NULL));
    char *json = NULL;
    assert_int_equal(sw_model_arch_to_json(m, &json), SW_OK);
    size_t size;
    unsigned char *b;

    b = remake(path, NULL, NULL, "fc.bias", NULL, NULL, &size);
    expect_load_fail(b, size, SW_ERR_FORMAT,
                     "the architecture needs tensor \"fc.bias\" but the file has none");
    b = remake(path, NULL, NULL, "block.bn.running_var", NULL, NULL, &size);
    expect_load_fail(b, size, SW_ERR_FORMAT, "needs tensor \"block.bn.running_var\"");
    b = remake(path, NULL, NULL, NULL, "fc.extra", NULL, &size);
    expect_load_fail(b, size, SW_ERR_FORMAT,
                     "tensor \"fc.extra\" is not a parameter of the architecture");
    b = remake(path, NULL, NULL, NULL, "relu.weight", NULL, &size);
    expect_load_fail(b, size, SW_ERR_FORMAT, "tensor \"relu.weight\" is not a parameter");
    b = remake(path, NULL, NULL, NULL, "loose", NULL, &size);
    expect_load_fail(b, size, SW_ERR_FORMAT, "tensor \"loose\" is not a parameter");
    b = remake(path, NULL, NULL, NULL, NULL, "fc.weight", &size);
    expect_load_fail(b, size, SW_ERR_FORMAT,
                     "tensor \"fc.weight\" is F64; model parameters are F32");

    /* The architecture says 6 outputs, the tensors hold 5. */
    char *changed = strdup(json);
    char *at = strstr(changed, "\"out_features\":5");
    assert_non_null(at);
    at[strlen("\"out_features\":")] = '6';
    b = remake(path, "architecture", changed, NULL, NULL, NULL, &size);
    expect_load_fail(b, size, SW_ERR_SHAPE,
                     "tensor \"fc.weight\" has shape [5, 16] but the architecture (Linear) "
                     "gives [6, 16]");
    free(changed);
    /* An unknown layer type inside a file. */
    changed = strdup(json);
    at = strstr(changed, "\"ReLU\"");
    memcpy(at, "\"ReLO\"", 6);
    b = remake(path, "architecture", changed, NULL, NULL, NULL, &size);
    expect_load_fail(b, size, SW_ERR_FORMAT, "unknown layer type \"ReLO\"");
    free(changed);

    b = remake(path, "architecture", "{", NULL, NULL, NULL, &size);
    expect_load_fail(b, size, SW_ERR_FORMAT, "architecture: not valid JSON");
    b = remake(path, "format_version", "2", NULL, NULL, NULL, &size);
    expect_load_fail(b, size, SW_ERR_UNSUPPORTED, "model file format version 2");
    b = remake(path, "format", "pt", NULL, NULL, NULL, &size);
    expect_load_fail(b, size, SW_ERR_FORMAT, "not a shrinkwrap model file");
    b = small_file(&size);
    expect_load_fail(b, size, SW_ERR_FORMAT, "\"format\" is missing");

    /* Through a path, the message names the file. */
    sw_model *back = NULL;
    b = remake(path, NULL, NULL, "fc.bias", NULL, NULL, &size);
    assert_int_equal(sw_atomic_write(path, b, size), SW_OK);
    free(b);
    assert_int_equal(sw_model_load(path, &back), SW_ERR_FORMAT);
    assert_non_null(strstr(sw_error_message(), path));
    assert_non_null(strstr(sw_error_message(), "fc.bias"));
    assert_null(back);
    free(json);
    sw_model_free(m);
}

/* Cutting a model file at any byte, or flipping any architecture byte, fails cleanly or
 * yields a model that agrees with its file (ASan/UBSan watch the rest). */
static void test_io_model_file_corruption(void **state) {
    (void)state;
    sw_model *m = every_kind_model();
    const char *path = save_tmp(m, "cut.safetensors", NULL);
    size_t size;
    unsigned char *full = read_all(path, &size);
    for (size_t k = 0; k < size; k += (k < 4096 ? 1 : 61)) {
        unsigned char *cut = malloc(k ? k : 1);
        memcpy(cut, full, k);
        sw_model *back = NULL;
        if (sw_model_load_bytes(cut, k, &back) == SW_OK)
            fail_msg("a model file cut to %zu of %zu bytes loaded", k, size);
        assert_null(back);
        free(cut);
    }
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | full[i];
    int loaded = 0;
    for (size_t i = 8; i < 8 + n; i += 3) {
        unsigned char *b = malloc(size);
        memcpy(b, full, size);
        b[i] ^= 0x04; /* '2' <-> '6', 'a' <-> 'e', '[' <-> '_', ... */
        sw_model *back = NULL;
        if (sw_model_load_bytes(b, size, &back) == SW_OK) {
            loaded++;
            assert_true(back->finalized);
            sw_model_free(back);
        } else {
            assert_true(strlen(sw_error_message()) > 0);
        }
        free(b);
    }
    assert_true(loaded < (int)(n / 3));
    free(full);
    sw_model_free(m);
}

/* Saving refuses reserved or unpaired extra metadata and unfinalised models, and leaves no
 * file behind. */
static void test_io_model_save_errors(void **state) {
    (void)state;
    sw_model *m = every_kind_model();
    char path[600];
    snprintf(path, sizeof path, "%s/refused.safetensors", sw_test_tmpdir());
    const char *reserved[] = {"arch", "other", NULL};
    assert_int_equal(sw_model_save(m, path, reserved), SW_ERR_ARG);
    assert_non_null(strstr(sw_error_message(), "\"arch\" is reserved"));
    const char *unpaired[] = {"key", NULL};
    assert_int_equal(sw_model_save(m, path, unpaired), SW_ERR_ARG);
    assert_non_null(strstr(sw_error_message(), "has no value"));
    assert_int_equal(access(path, F_OK), -1);
    sw_model_free(m);

    sw_shape in = sw_shape_1d(4);
    assert_int_equal(sw_model_new("custom", &in, &m), SW_OK);
    assert_int_equal(sw_model_save(m, path, NULL), SW_ERR_ARG);
    assert_non_null(strstr(sw_error_message(), "not finalised"));
    sw_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_io_roundtrip_bit_exact),
        cmocka_unit_test(test_io_header_layout),
        cmocka_unit_test(test_io_accepts_edge_cases),
        cmocka_unit_test(test_io_get_f32_conversions),
        cmocka_unit_test(test_io_get_f32_too_many_dims),
        cmocka_unit_test(test_io_writer_rejects_bad_input),
        cmocka_unit_test(test_io_dtype_names),
        cmocka_unit_test(test_io_truncation_every_byte_fails),
        cmocka_unit_test(test_io_header_byte_flips),
        cmocka_unit_test(test_io_rejects_bad_length),
        cmocka_unit_test(test_io_rejects_bad_header_text),
        cmocka_unit_test(test_io_rejects_bad_entries),
        cmocka_unit_test(test_io_rejects_bad_dtype_and_shape),
        cmocka_unit_test(test_io_rejects_bad_offsets),
        cmocka_unit_test(test_io_rejects_overlap_and_holes),
        cmocka_unit_test(test_io_rejects_bad_metadata_and_duplicates),
        cmocka_unit_test(test_io_write_and_read_file),
        cmocka_unit_test(test_io_atomic_write_failure_keeps_old_file),
        cmocka_unit_test(test_io_atomic_write_bad_destination),
        cmocka_unit_test(test_io_atomic_abort),
        cmocka_unit_test(test_io_golden_linear_bias),
        cmocka_unit_test(test_io_golden_int64_targets),
        cmocka_unit_test(test_io_golden_u8_masks),
        cmocka_unit_test(test_io_model_zoo_roundtrip),
        cmocka_unit_test(test_io_model_every_kind_roundtrip),
        cmocka_unit_test(test_io_model_arch_json_roundtrip),
        cmocka_unit_test(test_io_model_arch_defaults),
        cmocka_unit_test(test_io_model_arch_errors),
        cmocka_unit_test(test_io_model_file_disagreements),
        cmocka_unit_test(test_io_model_file_corruption),
        cmocka_unit_test(test_io_model_save_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
