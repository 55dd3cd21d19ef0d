/* make_corpus.c - writes the fuzzers' seed corpora with shrinkwrap's own writers.
 *
 * Usage: fuzz_make_corpus <st-dir> <arch-dir>
 *   <st-dir>   small safetensors and model files (seeds for fuzz_safetensors); next to it
 *              expected.json: for every file, the bits of the first values of each F32
 *              tensor, which check_layout.py compares with what it decodes on its own;
 *   <arch-dir> architecture JSON texts (seeds for fuzz_model_arch), zoo models included.
 * Seeds are generated rather than committed so that they always match the current format.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/atomic_file.h"
#include "io/model_file.h"
#include "io/safetensors.h"
#include "nn/zoo.h"

static int failed(const char *what) {
    fprintf(stderr, "fuzz_make_corpus: %s: %s\n", what, sw_error_message());
    return 1;
}

/* Adds node `name` computing `kind` on `in0` (and `in1`), NULL meaning the previous node. */
static int add(sw_model *m, const char *name, sw_layer_kind kind, const sw_layer_hparams *hp,
               const char *in0, const char *in1) {
    sw_layer *layer;
    if (sw_layer_new(kind, hp, &layer) != SW_OK) return failed(name);
    const char *inputs[2] = {in0, in1};
    if (sw_model_add(m, name, layer, inputs, in1 ? 2 : in0 ? 1 : 0, NULL) != SW_OK)
        return failed(name);
    return 0;
}

/* conv -> bn -> relu6 (+ conv: Add) -> concat -> maxpool -> avgpool -> gap -> flatten ->
 * bn1d -> dropout -> identity -> linear: every layer kind in a few hundred parameters. */
static int every_kind(sw_model **out) {
    sw_shape in = sw_shape_3d(2, 6, 6);
    sw_model *m;
    if (sw_model_new("custom", &in, &m) != SW_OK) return failed("model");
    sw_layer_hparams hp = sw_layer_hparams_default(SW_LAYER_CONV2D);
    hp.in_channels = 2, hp.out_channels = 4, hp.kernel[0] = hp.kernel[1] = 3;
    hp.padding[0] = hp.padding[1] = 1, hp.groups = 2;
    int bad = add(m, "conv", SW_LAYER_CONV2D, &hp, "input", NULL);
    hp = sw_layer_hparams_default(SW_LAYER_BATCHNORM2D);
    hp.num_features = 4;
    bad |= add(m, "bn", SW_LAYER_BATCHNORM2D, &hp, NULL, NULL);
    hp = sw_layer_hparams_default(SW_LAYER_RELU6);
    bad |= add(m, "act", SW_LAYER_RELU6, &hp, NULL, NULL);
    hp = sw_layer_hparams_default(SW_LAYER_ADD);
    bad |= add(m, "sum", SW_LAYER_ADD, &hp, "conv", "act");
    hp = sw_layer_hparams_default(SW_LAYER_CONCAT);
    bad |= add(m, "cat", SW_LAYER_CONCAT, &hp, "sum", "input");
    hp = sw_layer_hparams_default(SW_LAYER_MAXPOOL2D);
    hp.kernel[0] = hp.kernel[1] = hp.stride[0] = hp.stride[1] = 2;
    bad |= add(m, "mp", SW_LAYER_MAXPOOL2D, &hp, NULL, NULL);
    hp = sw_layer_hparams_default(SW_LAYER_AVGPOOL2D);
    hp.kernel[0] = hp.kernel[1] = 3, hp.padding[0] = hp.padding[1] = 1;
    bad |= add(m, "ap", SW_LAYER_AVGPOOL2D, &hp, NULL, NULL);
    hp = sw_layer_hparams_default(SW_LAYER_RELU);
    bad |= add(m, "relu", SW_LAYER_RELU, &hp, NULL, NULL);
    hp = sw_layer_hparams_default(SW_LAYER_GLOBAL_AVGPOOL);
    bad |= add(m, "gap", SW_LAYER_GLOBAL_AVGPOOL, &hp, NULL, NULL);
    hp = sw_layer_hparams_default(SW_LAYER_FLATTEN);
    bad |= add(m, "flat", SW_LAYER_FLATTEN, &hp, NULL, NULL);
    hp = sw_layer_hparams_default(SW_LAYER_BATCHNORM1D);
    hp.num_features = 6;
    bad |= add(m, "bn1d", SW_LAYER_BATCHNORM1D, &hp, NULL, NULL);
    hp = sw_layer_hparams_default(SW_LAYER_DROPOUT);
    bad |= add(m, "drop", SW_LAYER_DROPOUT, &hp, NULL, NULL);
    hp = sw_layer_hparams_default(SW_LAYER_IDENTITY);
    bad |= add(m, "id", SW_LAYER_IDENTITY, &hp, NULL, NULL);
    hp = sw_layer_hparams_default(SW_LAYER_LINEAR);
    hp.in_features = 6, hp.out_features = 3;
    bad |= add(m, "fc", SW_LAYER_LINEAR, &hp, NULL, NULL);
    if (bad || sw_model_finalize(m) != SW_OK) {
        sw_model_free(m);
        return bad ? 1 : failed("finalize");
    }
    sw_model_init_params(m, 1);
    *out = m;
    return 0;
}

static int tiny_linear(sw_model **out) {
    sw_shape in = sw_shape_1d(3);
    sw_model *m;
    if (sw_model_new("custom", &in, &m) != SW_OK) return failed("model");
    sw_layer_hparams hp = sw_layer_hparams_default(SW_LAYER_LINEAR);
    hp.in_features = 3, hp.out_features = 2;
    if (add(m, "fc", SW_LAYER_LINEAR, &hp, "input", NULL) || sw_model_finalize(m) != SW_OK) {
        sw_model_free(m);
        return 1;
    }
    sw_model_init_params(m, 2);
    *out = m;
    return 0;
}

/* Writes `text` to dir/name. */
static int write_text(const char *dir, const char *name, const char *text) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (sw_atomic_write(path, text, strlen(text)) != SW_OK) return failed(path);
    return 0;
}

/* Records in `expected` the bit patterns of the first values of every F32 tensor of the file
 * at `path` (bits, not decimals: cJSON prints doubles with 15 digits, not always exactly). */
static int record_expected(cJSON *expected, const char *name, const char *path) {
    sw_safetensors *st;
    if (sw_safetensors_read_file(path, &st) != SW_OK) return failed(path);
    cJSON *file = cJSON_AddObjectToObject(expected, name);
    for (int i = 0; file && i < st->n_entries; i++) {
        const sw_st_entry *e = &st->entries[i];
        if (e->dtype != SW_DTYPE_F32) continue;
        size_t n = (e->end - e->begin) / 4;
        cJSON *values = cJSON_AddArrayToObject(file, e->name);
        for (size_t k = 0; values && k < n && k < 8; k++) {
            uint32_t bits;
            memcpy(&bits, sw_safetensors_data(st, e) + 4 * k, 4);
            cJSON_AddItemToArray(values, cJSON_CreateNumber(bits));
        }
    }
    sw_safetensors_free(st);
    return file ? 0 : failed("expected.json");
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: fuzz_make_corpus <st-dir> <arch-dir>\n");
        return 2;
    }
    const char *st_dir = argv[1], *arch_dir = argv[2];
    char path[1024];
    cJSON *expected = cJSON_CreateObject();
    int bad = 0;

    /* A plain safetensors file with every dtype, a scalar, an empty tensor and metadata. */
    static const float f32[6] = {1.5f, -0.0f, 3.25f, 1e-40f, -2.0f, 1e30f};
    static const double f64[2] = {0.1, -1e300};
    static const uint16_t f16[2] = {0x3C00, 0x7BFF}, bf16[2] = {0x3F80, 0xC040};
    static const int64_t i64[2] = {-1, 1234567890123LL};
    static const int32_t i32[1] = {-7};
    static const int16_t i16[1] = {-300};
    static const int8_t i8[1] = {-128};
    static const uint8_t u8[3] = {0, 1, 255}, b8[2] = {0, 1};
    static const float scalar = 42.0f;
    const int64_t s23[2] = {2, 3}, s1[1] = {1}, s2[1] = {2}, s3[1] = {3}, s03[2] = {0, 3};
    sw_st_writer *w;
    if (sw_st_writer_new(&w) != SW_OK) return failed("writer");
    bad |= sw_st_writer_meta(w, "note", "seed") != SW_OK;
    bad |= sw_st_writer_add(w, "layer.weight", SW_DTYPE_F32, 2, s23, f32) != SW_OK;
    bad |= sw_st_writer_add(w, "f64", SW_DTYPE_F64, 1, s2, f64) != SW_OK;
    bad |= sw_st_writer_add(w, "f16", SW_DTYPE_F16, 1, s2, f16) != SW_OK;
    bad |= sw_st_writer_add(w, "bf16", SW_DTYPE_BF16, 1, s2, bf16) != SW_OK;
    bad |= sw_st_writer_add(w, "i64", SW_DTYPE_I64, 1, s2, i64) != SW_OK;
    bad |= sw_st_writer_add(w, "i32", SW_DTYPE_I32, 1, s1, i32) != SW_OK;
    bad |= sw_st_writer_add(w, "i16", SW_DTYPE_I16, 1, s1, i16) != SW_OK;
    bad |= sw_st_writer_add(w, "i8", SW_DTYPE_I8, 1, s1, i8) != SW_OK;
    bad |= sw_st_writer_add(w, "u8", SW_DTYPE_U8, 1, s3, u8) != SW_OK;
    bad |= sw_st_writer_add(w, "bool", SW_DTYPE_BOOL, 1, s2, b8) != SW_OK;
    bad |= sw_st_writer_add(w, "scalar", SW_DTYPE_F32, 0, NULL, &scalar) != SW_OK;
    bad |= sw_st_writer_add(w, "empty", SW_DTYPE_F32, 2, s03, NULL) != SW_OK;
    snprintf(path, sizeof path, "%s/dtypes.safetensors", st_dir);
    bad |= bad || sw_st_writer_write(w, path) != SW_OK;
    sw_st_writer_free(w);
    if (bad) return failed("dtypes.safetensors");
    bad |= record_expected(expected, "dtypes.safetensors", path);

    /* Model files, and their architectures as arch seeds. */
    sw_model *models[2] = {NULL, NULL};
    const char *names[2] = {"every_kind", "tiny_linear"};
    if (every_kind(&models[0]) || tiny_linear(&models[1])) return 1;
    for (int i = 0; i < 2; i++) {
        const char *extra[] = {"seed", names[i], NULL};
        snprintf(path, sizeof path, "%s/%s.safetensors", st_dir, names[i]);
        if (sw_model_save(models[i], path, extra) != SW_OK) return failed(path);
        char file[128];
        snprintf(file, sizeof file, "%s.safetensors", names[i]);
        bad |= record_expected(expected, file, path);
        char *json;
        if (sw_model_arch_to_json(models[i], &json) != SW_OK) return failed("arch json");
        snprintf(file, sizeof file, "%s.json", names[i]);
        bad |= write_text(arch_dir, file, json);
        free(json);
        sw_model_free(models[i]);
    }
    for (const char *const *zoo = sw_zoo_names(); *zoo; zoo++) {
        sw_model *m;
        char *json, file[128];
        if (sw_zoo_build(*zoo, 0, &m) != SW_OK) return failed(*zoo);
        if (sw_model_arch_to_json(m, &json) != SW_OK) return failed("arch json");
        snprintf(file, sizeof file, "%s.json", *zoo);
        bad |= write_text(arch_dir, file, json);
        free(json);
        sw_model_free(m);
    }

    char *text = cJSON_Print(expected);
    cJSON_Delete(expected);
    if (!text) return failed("expected.json");
    char parent[1024];
    snprintf(parent, sizeof parent, "%s/..", st_dir);
    bad |= write_text(parent, "expected.json", text);
    free(text);
    return bad;
}
