/* fuzz_safetensors.c - libFuzzer target: arbitrary bytes as a safetensors file and as a model
 * file.
 *
 * Whatever the bytes, parsing must either fail with a message or return a record whose every
 * entry lies inside the data section and whose entries tile it exactly; loading a model must
 * either fail with a message or return a finalised model whose architecture survives a trip
 * through its own JSON. A violated invariant aborts, which libFuzzer reports as a crash.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/model_file.h"
#include "io/safetensors.h"

static void require(int ok, const char *what) {
    if (!ok) {
        fprintf(stderr, "fuzz_safetensors: invariant broken: %s\n", what);
        abort();
    }
}

static void check_safetensors(const sw_safetensors *st) {
    size_t data_size = st->size - st->data_start, covered = 0;
    require(st->data_start >= 8 && st->data_start <= st->size, "data section inside the file");
    for (int i = 0; i < st->n_entries; i++) {
        const sw_st_entry *e = &st->entries[i];
        require(e->begin <= e->end && e->end <= data_size, "entry inside the data section");
        require(sw_safetensors_find(st, e->name) == e, "names are unique");
        covered += e->end - e->begin;
        /* Converting touches every byte of the entry: ASan checks the bounds. */
        sw_tensor t;
        if (sw_safetensors_get_f32(st, e->name, &t) == SW_OK) {
            require(t.numel * sw_dtype_size(e->dtype) == e->end - e->begin, "numel matches");
            sw_tensor_deinit(&t);
        } else {
            require(sw_error_message()[0] != '\0', "a failure has a message");
        }
    }
    require(covered == data_size, "entries tile the data section");
    for (int i = 0; i < st->n_meta; i++)
        require(sw_safetensors_meta(st, st->meta[i].key) != NULL, "metadata lookup");
}

static void check_model(const sw_model *m) {
    require(m->finalized && m->n_nodes > 0, "a loaded model is finalised");
    char *json = NULL, *again = NULL;
    require(sw_model_arch_to_json(m, &json) == SW_OK, "architecture prints");
    sw_model *rebuilt = NULL;
    require(sw_model_from_arch_json(json, m->arch, &rebuilt) == SW_OK, "architecture reloads");
    require(sw_model_arch_to_json(rebuilt, &again) == SW_OK, "architecture prints again");
    require(strcmp(json, again) == 0, "architecture JSON is stable");
    require(rebuilt->n_param_floats == m->n_param_floats, "same parameter count");
    free(json);
    free(again);
    sw_model_free(rebuilt);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    sw_safetensors *st = NULL;
    if (sw_safetensors_parse(data, size, &st) == SW_OK) {
        check_safetensors(st);
        sw_safetensors_free(st);
    } else {
        require(sw_error_message()[0] != '\0', "a failure has a message");
    }
    sw_model *m = NULL;
    if (sw_model_load_bytes(data, size, &m) == SW_OK) {
        check_model(m);
        sw_model_free(m);
    }
    return 0;
}
