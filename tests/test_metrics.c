/* test_metrics.c - the metric bus, the JSON-lines log and its reader. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_support.h"

#include "train/metrics.h"

/* ---- the bus ------------------------------------------------------------------------------ */

typedef struct recorder {
    int id;
    char *trace; /* shared: ids appended in call order */
    int calls;
    sw_metric_bus *bus; /* for self-removal */
} recorder;

static void record(void *ctx, const sw_metric_event *ev) {
    (void)ev;
    recorder *r = ctx;
    r->calls++;
    size_t len = strlen(r->trace);
    r->trace[len] = (char)('0' + r->id);
    r->trace[len + 1] = '\0';
}

static void record_and_leave(void *ctx, const sw_metric_event *ev) {
    record(ctx, ev);
    recorder *r = ctx;
    sw_metric_bus_remove(r->bus, record_and_leave, ctx);
}

/* Listeners are called in registration order; a removed one is no longer called, the others
 * keep their order; a listener removing itself mid-emit does not make the next one skipped. */
static void test_metrics_bus_order_and_remove(void **state) {
    (void)state;
    char trace[64] = "";
    sw_metric_bus bus;
    sw_metric_bus_init(&bus);
    recorder a = {1, trace, 0, &bus}, b = {2, trace, 0, &bus}, c = {3, trace, 0, &bus};
    assert_int_equal(sw_metric_bus_add(&bus, record, &a), SW_OK);
    assert_int_equal(sw_metric_bus_add(&bus, record_and_leave, &b), SW_OK);
    assert_int_equal(sw_metric_bus_add(&bus, record, &c), SW_OK);
    sw_metric_event ev = {.kind = SW_METRIC_MESSAGE, .message = "hi"};
    sw_metric_bus_emit(&bus, &ev);
    assert_string_equal(trace, "123");
    sw_metric_bus_emit(&bus, &ev);
    assert_string_equal(trace, "12313");
    sw_metric_bus_remove(&bus, record, &a);
    sw_metric_bus_emit(&bus, &ev);
    assert_string_equal(trace, "123133");
    assert_int_equal(bus.n, 1);
}

/* The bus holds SW_METRIC_MAX_LISTENERS listeners; one more is an error, not an overflow. */
static void test_metrics_bus_full(void **state) {
    (void)state;
    char trace[64] = "";
    recorder r = {0, trace, 0, NULL};
    sw_metric_bus bus;
    sw_metric_bus_init(&bus);
    for (int i = 0; i < SW_METRIC_MAX_LISTENERS; i++)
        assert_int_equal(sw_metric_bus_add(&bus, record, &r), SW_OK);
    assert_int_equal(sw_metric_bus_add(&bus, record, &r), SW_ERR_ARG);
    assert_non_null(strstr(sw_error_message(), "listeners"));
}

/* ---- JSON --------------------------------------------------------------------------------- */

/* A STEP serialises with its own fields (and terms as an object) and without the others. */
static void test_metrics_step_json_fields(void **state) {
    (void)state;
    sw_metric_event ev = {.kind = SW_METRIC_STEP,
                          .phase = "finetune",
                          .step = 7,
                          .total_steps = 100,
                          .epoch = 1,
                          .loss = 0.5,
                          .n_terms = 2,
                          .lr = 0.01,
                          .images_per_sec = 1234.5,
                          .elapsed = 2.25,
                          .accuracy = 0.9,
                          .message = "not for steps"};
    ev.term_names[0] = "task";
    ev.term_values[0] = 0.25;
    ev.term_names[1] = "distill";
    ev.term_values[1] = 0.25;
    char *json = sw_metric_event_to_json(&ev);
    assert_non_null(json);
    assert_string_equal(json,
                        "{\"event\":\"step\",\"phase\":\"finetune\",\"step\":7,\"total_steps\":100,"
                        "\"epoch\":1,\"loss\":0.5,\"terms\":{\"task\":0.25,\"distill\":0.25},"
                        "\"lr\":0.01,\"images_per_sec\":1234.5,\"elapsed\":2.25}");
    free(json);
    sw_metric_event eval = {.kind = SW_METRIC_EVAL,
                            .phase = "train",
                            .step = 10,
                            .epoch = 2,
                            .accuracy = 0.875,
                            .loss = 0.375,
                            .lr = 9};
    json = sw_metric_event_to_json(&eval);
    assert_string_equal(json, "{\"event\":\"eval\",\"phase\":\"train\",\"step\":10,\"epoch\":2,"
                              "\"loss\":0.375,\"accuracy\":0.875,\"elapsed\":0}");
    free(json);
    sw_metric_event end = {
        .kind = SW_METRIC_END, .step = 3, .total_steps = 3, .message = "completed"};
    json = sw_metric_event_to_json(&end);
    assert_string_equal(json, "{\"event\":\"end\",\"step\":3,\"total_steps\":3,\"epoch\":0,"
                              "\"elapsed\":0,\"message\":\"completed\"}");
    free(json);
}

typedef struct collected {
    int n;
    sw_metric_event ev[16];
    char strings[16][4][32]; /* phase, message, two term names */
} collected;

static void collect(void *ctx, const sw_metric_event *ev) {
    collected *c = ctx;
    if (c->n == 16) return;
    sw_metric_event *e = &c->ev[c->n];
    *e = *ev;
    /* The reader's strings live only during the call: keep copies. */
    const char *src[4] = {ev->phase, ev->message, ev->n_terms > 0 ? ev->term_names[0] : NULL,
                          ev->n_terms > 1 ? ev->term_names[1] : NULL};
    for (int i = 0; i < 4; i++) {
        if (!src[i]) continue;
        snprintf(c->strings[c->n][i], 32, "%s", src[i]);
    }
    e->phase = ev->phase ? c->strings[c->n][0] : NULL;
    e->message = ev->message ? c->strings[c->n][1] : NULL;
    if (ev->n_terms > 0) e->term_names[0] = c->strings[c->n][2];
    if (ev->n_terms > 1) e->term_names[1] = c->strings[c->n][3];
    c->n++;
}

static const char *tmp_path(const char *name, char *buf, size_t size) {
    snprintf(buf, size, "%s/%s", sw_test_tmpdir(), name);
    return buf;
}

/* Events written by the JSONL listener read back identically (doubles bit for bit, NaN as NaN),
 * each kind keeping its fields. */
static void test_metrics_jsonl_round_trip(void **state) {
    (void)state;
    char path[512];
    tmp_path("roundtrip.jsonl", path, sizeof path);
    sw_jsonl_log log;
    assert_int_equal(sw_jsonl_log_open(&log, path), SW_OK);
    sw_metric_bus bus;
    sw_metric_bus_init(&bus);
    assert_int_equal(sw_metric_bus_add(&bus, sw_jsonl_log_listener, &log), SW_OK);
    sw_metric_event events[6] = {
        {.kind = SW_METRIC_BEGIN, .phase = "train", .total_steps = 20, .total_epochs = 2},
        {.kind = SW_METRIC_STEP,
         .phase = "train",
         .step = 1,
         .total_steps = 20,
         .loss = 2.3025851,
         .n_terms = 2,
         .lr = 0.1 / 3,
         .images_per_sec = 1e5 / 7,
         .elapsed = 0.123456789012345},
        /* 0.1 + 0.2 differs from 0.3 in the last bit: a 15-digit printer would lose it. */
        {.kind = SW_METRIC_EPOCH,
         .phase = "train",
         .step = 10,
         .epoch = 1,
         .total_epochs = 2,
         .loss = 0.1 + 0.2},
        {.kind = SW_METRIC_EVAL,
         .phase = "train",
         .step = 10,
         .epoch = 1,
         .accuracy = 0.8125,
         .loss = NAN},
        {.kind = SW_METRIC_END,
         .phase = "train",
         .step = 20,
         .total_steps = 20,
         .epoch = 2,
         .message = "completed",
         .elapsed = 99.5},
        {.kind = SW_METRIC_MESSAGE, .message = "quote \" and\nnewline"},
    };
    events[1].term_names[0] = "task";
    events[1].term_values[0] = 2.0;
    events[1].term_names[1] = "slim_l1";
    events[1].term_values[1] = 0.3025851;
    for (int i = 0; i < 6; i++) sw_metric_bus_emit(&bus, &events[i]);
    sw_jsonl_log_close(&log);
    assert_false(log.failed);

    collected c = {0};
    assert_int_equal(sw_jsonl_log_read(path, collect, &c), SW_OK);
    assert_int_equal(c.n, 6);
    for (int i = 0; i < 6; i++) assert_int_equal(c.ev[i].kind, events[i].kind);
    assert_int_equal(c.ev[0].total_steps, 20);
    assert_int_equal(c.ev[0].total_epochs, 2);
    assert_string_equal(c.ev[0].phase, "train");
    assert_true(c.ev[1].loss == events[1].loss);
    assert_true(c.ev[1].lr == events[1].lr);
    assert_true(c.ev[1].images_per_sec == events[1].images_per_sec);
    assert_true(c.ev[1].elapsed == events[1].elapsed);
    assert_int_equal(c.ev[1].n_terms, 2);
    assert_string_equal(c.ev[1].term_names[1], "slim_l1");
    assert_true(c.ev[1].term_values[1] == 0.3025851);
    assert_true(c.ev[2].loss == 0.1 + 0.2);
    assert_true(c.ev[2].loss != 0.3);
    assert_int_equal(c.ev[2].epoch, 1);
    assert_true(c.ev[3].accuracy == 0.8125);
    assert_true(isnan(c.ev[3].loss));
    assert_string_equal(c.ev[4].message, "completed");
    assert_int_equal(c.ev[4].step, 20);
    assert_null(c.ev[5].phase);
    assert_string_equal(c.ev[5].message, "quote \" and\nnewline");

    /* One line per event, as `wc -l` and `jq -c` expect. */
    FILE *fp = fopen(path, "r");
    int lines = 0, ch;
    while ((ch = fgetc(fp)) != EOF) lines += ch == '\n';
    fclose(fp);
    assert_int_equal(lines, 6);
}

static void write_file(const char *path, const char *text) {
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

/* A garbled line stops the replay with SW_ERR_FORMAT naming file and line; the events before it
 * were delivered. Blank lines are skipped and do not shift the numbering. */
static void test_metrics_read_reports_bad_line(void **state) {
    (void)state;
    char path[512];
    tmp_path("bad.jsonl", path, sizeof path);
    write_file(path, "{\"event\":\"begin\",\"total_steps\":5}\n"
                     "\n"
                     "{\"event\":\"step\",\"step\":1,\"loss\":1.5}\n"
                     "this is not json\n"
                     "{\"event\":\"step\",\"step\":2}\n");
    collected c = {0};
    assert_int_equal(sw_jsonl_log_read(path, collect, &c), SW_ERR_FORMAT);
    assert_int_equal(c.n, 2);
    char want[600];
    snprintf(want, sizeof want, "%s:4: not valid JSON", path);
    assert_non_null(strstr(sw_error_message(), want));
}

/* A last line cut short (a killed run) is reported as truncated, with its line number, after
 * the complete events were delivered. */
static void test_metrics_read_reports_truncated_last_line(void **state) {
    (void)state;
    char path[512];
    tmp_path("truncated.jsonl", path, sizeof path);
    write_file(path, "{\"event\":\"begin\"}\n{\"event\":\"step\",\"step\":1}\n{\"event\":\"st");
    collected c = {0};
    assert_int_equal(sw_jsonl_log_read(path, collect, &c), SW_ERR_FORMAT);
    assert_int_equal(c.n, 2);
    char want[600];
    snprintf(want, sizeof want, "%s:3: the last line is truncated", path);
    assert_non_null(strstr(sw_error_message(), want));
}

/* Valid JSON of the wrong shape is rejected with the line and the reason: not an object, no
 * event, unknown event, a string where a number belongs, two objects on one line. */
static void test_metrics_read_rejects_wrong_shapes(void **state) {
    (void)state;
    static const struct {
        const char *text, *reason;
    } cases[] = {
        {"[1,2]\n", ":1: expected a JSON object"},
        {"{\"step\":1}\n", ":1: the object has no \"event\""},
        {"{\"event\":\"begin\"}\n{\"event\":\"explode\"}\n", ":2: unknown event \"explode\""},
        {"{\"event\":\"step\",\"loss\":\"low\"}\n", ":1: field \"loss\" must be a number"},
        {"{\"event\":\"step\"} {\"event\":\"step\"}\n", ":1: not valid JSON"},
        {"{\"event\":\"step\",\"terms\":[1]}\n", ":1: field \"terms\" must be an object"},
    };
    char path[512];
    tmp_path("shapes.jsonl", path, sizeof path);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_file(path, cases[i].text);
        collected c = {0};
        assert_int_equal(sw_jsonl_log_read(path, collect, &c), SW_ERR_FORMAT);
        if (!strstr(sw_error_message(), cases[i].reason))
            fail_msg("case %zu: message \"%s\" lacks \"%s\"", i, sw_error_message(),
                     cases[i].reason);
    }
    /* A missing file is an I/O error naming it. */
    tmp_path("absent.jsonl", path, sizeof path);
    assert_int_equal(sw_jsonl_log_read(path, collect, NULL), SW_ERR_IO);
    assert_non_null(strstr(sw_error_message(), "absent.jsonl"));
}

/* Kind names convert both ways. */
static void test_metrics_kind_names(void **state) {
    (void)state;
    sw_metric_kind k;
    for (int i = SW_METRIC_BEGIN; i <= SW_METRIC_MESSAGE; i++) {
        assert_int_equal(sw_metric_kind_from_name(sw_metric_kind_name((sw_metric_kind)i), &k),
                         SW_OK);
        assert_int_equal(k, i);
    }
    assert_string_equal(sw_metric_kind_name(SW_METRIC_EVAL), "eval");
    assert_int_equal(sw_metric_kind_from_name("nope", &k), SW_ERR_NOT_FOUND);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metrics_bus_order_and_remove),
        cmocka_unit_test(test_metrics_bus_full),
        cmocka_unit_test(test_metrics_step_json_fields),
        cmocka_unit_test(test_metrics_jsonl_round_trip),
        cmocka_unit_test(test_metrics_read_reports_bad_line),
        cmocka_unit_test(test_metrics_read_reports_truncated_last_line),
        cmocka_unit_test(test_metrics_read_rejects_wrong_shapes),
        cmocka_unit_test(test_metrics_kind_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
