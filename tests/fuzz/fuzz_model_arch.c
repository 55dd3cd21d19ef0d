/* fuzz_model_arch.c - libFuzzer target: arbitrary bytes as a model architecture JSON.
 *
 * The architecture parser sits behind a JSON string inside a safetensors header in real
 * files, where mutations rarely reach it intact; this target feeds it directly. Building must
 * fail with a message or give a finalised model whose JSON is a fixed point of
 * print -> parse -> print.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/model_file.h"

static void require(int ok, const char *what) {
    if (!ok) {
        fprintf(stderr, "fuzz_model_arch: invariant broken: %s\n", what);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *json = malloc(size + 1);
    if (!json) return 0;
    memcpy(json, data, size);
    json[size] = '\0';
    sw_model *m = NULL;
    if (sw_model_from_arch_json(json, "fuzz", &m) == SW_OK) {
        char *printed = NULL, *again = NULL;
        sw_model *rebuilt = NULL;
        require(m->finalized, "finalised");
        require(sw_model_arch_to_json(m, &printed) == SW_OK, "prints");
        require(sw_model_from_arch_json(printed, "fuzz", &rebuilt) == SW_OK, "reloads");
        require(sw_model_arch_to_json(rebuilt, &again) == SW_OK, "prints again");
        require(strcmp(printed, again) == 0, "stable");
        free(printed);
        free(again);
        sw_model_free(rebuilt);
        sw_model_free(m);
    } else {
        require(sw_error_message()[0] != '\0', "a failure has a message");
    }
    free(json);
    return 0;
}
