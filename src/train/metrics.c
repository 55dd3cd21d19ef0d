/* metrics.c - the metric bus, the JSON-lines log, and its reader.
 *
 * A log line holds only the fields that mean something for its event kind (a STEP has a learning
 * rate, an EVAL an accuracy), so the log stays readable by eye and by jq; the reader fills the
 * absent fields with zero. Numbers are printed here rather than by cJSON (whose printer
 * accepts a 15-digit form that is only approximately equal): the shortest of 15, 16 or 17
 * significant digits that reads back as the same double, so a replayed log holds exactly the
 * values that were emitted. NaN and infinity print as null and read back as NaN.
 */
#include "metrics.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- the bus ---------------------------------------------------------------------------- */

void sw_metric_bus_init(sw_metric_bus *bus) {
    memset(bus, 0, sizeof *bus);
}

sw_status sw_metric_bus_add(sw_metric_bus *bus, sw_metric_fn fn, void *ctx) {
    if (!fn) return SW_FAIL(SW_ERR_ARG, "metric bus: a listener needs a function");
    if (bus->n == SW_METRIC_MAX_LISTENERS)
        return SW_FAIL(SW_ERR_ARG, "metric bus: already %d listeners, remove one first",
                       SW_METRIC_MAX_LISTENERS);
    bus->fn[bus->n] = fn;
    bus->ctx[bus->n] = ctx;
    bus->n++;
    return SW_OK;
}

void sw_metric_bus_remove(sw_metric_bus *bus, sw_metric_fn fn, void *ctx) {
    for (int i = 0; i < bus->n; i++) {
        if (bus->fn[i] != fn || bus->ctx[i] != ctx) continue;
        /* Shift the rest down: listeners keep their registration order. */
        for (int j = i + 1; j < bus->n; j++) {
            bus->fn[j - 1] = bus->fn[j];
            bus->ctx[j - 1] = bus->ctx[j];
        }
        bus->n--;
        return;
    }
}

void sw_metric_bus_emit(const sw_metric_bus *bus, const sw_metric_event *ev) {
    /* Iterate over a snapshot, so a listener that removes itself (or adds another) while
     * handling the event does not make us skip or repeat anyone. */
    sw_metric_bus snap = *bus;
    for (int i = 0; i < snap.n; i++) snap.fn[i](snap.ctx[i], ev);
}

/* ---- event kinds and the fields that apply to each ---------------------------------------- */

static const char *const kind_names[] = {"begin", "step", "epoch", "eval", "end", "message"};
#define N_KINDS ((int)(sizeof kind_names / sizeof kind_names[0]))

const char *sw_metric_kind_name(sw_metric_kind kind) {
    return (int)kind >= 0 && (int)kind < N_KINDS ? kind_names[kind] : "unknown";
}

sw_status sw_metric_kind_from_name(const char *name, sw_metric_kind *out) {
    for (int i = 0; i < N_KINDS; i++) {
        if (name && strcmp(name, kind_names[i]) == 0) {
            *out = (sw_metric_kind)i;
            return SW_OK;
        }
    }
    return SW_FAIL(SW_ERR_NOT_FOUND,
                   "unknown metric event \"%s\": expected begin, step, epoch, eval, end or message",
                   name ? name : "(null)");
}

enum {
    F_STEP = 1 << 0,
    F_TOTAL_STEPS = 1 << 1,
    F_EPOCH = 1 << 2,
    F_TOTAL_EPOCHS = 1 << 3,
    F_LOSS = 1 << 4,
    F_TERMS = 1 << 5,
    F_LR = 1 << 6,
    F_IPS = 1 << 7,
    F_ACCURACY = 1 << 8,
    F_MESSAGE = 1 << 9,
};

/* Which optional fields each kind carries ("event", "phase" and "elapsed" always do). */
static int kind_fields(sw_metric_kind kind) {
    switch (kind) {
    case SW_METRIC_BEGIN:
        return F_TOTAL_STEPS | F_TOTAL_EPOCHS;
    case SW_METRIC_STEP:
        return F_STEP | F_TOTAL_STEPS | F_EPOCH | F_LOSS | F_TERMS | F_LR | F_IPS;
    case SW_METRIC_EPOCH:
        return F_STEP | F_EPOCH | F_TOTAL_EPOCHS | F_LOSS | F_IPS;
    case SW_METRIC_EVAL:
        return F_STEP | F_EPOCH | F_ACCURACY | F_LOSS;
    case SW_METRIC_END:
        return F_STEP | F_TOTAL_STEPS | F_EPOCH | F_MESSAGE;
    case SW_METRIC_MESSAGE:
        return F_MESSAGE;
    }
    return 0;
}

/* ---- writing ------------------------------------------------------------------------------ */

/* Adds `value` under `key` in its shortest exact decimal form (see the top of the file). */
static cJSON *add_number(cJSON *o, const char *key, double value) {
    if (!isfinite(value)) return cJSON_AddNullToObject(o, key);
    char text[40];
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(text, sizeof text, "%.*g", digits, value);
        if (strtod(text, NULL) == value) break;
    }
    return cJSON_AddRawToObject(o, key, text);
}

char *sw_metric_event_to_json(const sw_metric_event *ev) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    int f = kind_fields(ev->kind);
    /* cJSON_Add* return NULL on allocation failure; `ok` collects that once for the lot. */
    bool ok = cJSON_AddStringToObject(o, "event", sw_metric_kind_name(ev->kind)) != NULL;
    if (ev->phase) ok = ok && cJSON_AddStringToObject(o, "phase", ev->phase);
    if (f & F_STEP) ok = ok && add_number(o, "step", (double)ev->step);
    if (f & F_TOTAL_STEPS) ok = ok && add_number(o, "total_steps", (double)ev->total_steps);
    if (f & F_EPOCH) ok = ok && add_number(o, "epoch", ev->epoch);
    if (f & F_TOTAL_EPOCHS) ok = ok && add_number(o, "total_epochs", ev->total_epochs);
    if (f & F_LOSS) ok = ok && add_number(o, "loss", ev->loss);
    if ((f & F_TERMS) && ev->n_terms > 0) {
        cJSON *terms = cJSON_AddObjectToObject(o, "terms");
        ok = ok && terms;
        int n = ev->n_terms < SW_METRIC_MAX_TERMS ? ev->n_terms : SW_METRIC_MAX_TERMS;
        for (int i = 0; ok && i < n; i++)
            ok = add_number(terms, ev->term_names[i] ? ev->term_names[i] : "?",
                            ev->term_values[i]) != NULL;
    }
    if (f & F_LR) ok = ok && add_number(o, "lr", ev->lr);
    if (f & F_IPS) ok = ok && add_number(o, "images_per_sec", ev->images_per_sec);
    if (f & F_ACCURACY) ok = ok && add_number(o, "accuracy", ev->accuracy);
    ok = ok && add_number(o, "elapsed", ev->elapsed);
    if ((f & F_MESSAGE) && ev->message)
        ok = ok && cJSON_AddStringToObject(o, "message", ev->message);
    /* Unformatted: the whole event on one line, which is what makes the log JSON-lines. */
    char *text = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return text;
}

/* The log is a stream, not an export: it is written in place (not via a temporary file and a
 * rename) so that a workbench or `tail -f` can follow a run while it is going. */
sw_status sw_jsonl_log_open(sw_jsonl_log *log, const char *path) {
    memset(log, 0, sizeof *log);
    log->fp = fopen(path, "w");
    if (!log->fp)
        return SW_FAIL(SW_ERR_IO,
                       "cannot create the metrics log %s: %s (check the folder exists "
                       "and is writable)",
                       path, strerror(errno));
    return SW_OK;
}

void sw_jsonl_log_close(sw_jsonl_log *log) {
    if (log->fp) fclose(log->fp);
    log->fp = NULL;
}

void sw_jsonl_log_listener(void *ctx, const sw_metric_event *ev) {
    sw_jsonl_log *log = ctx;
    if (!log->fp) return;
    char *text = sw_metric_event_to_json(ev);
    /* A listener cannot fail the training run; a lost line is remembered instead, for the
     * owner to report once the run is over. */
    if (!text || fputs(text, log->fp) == EOF || fputc('\n', log->fp) == EOF ||
        fflush(log->fp) == EOF)
        log->failed = true;
    free(text);
}

/* ---- reading ------------------------------------------------------------------------------ */

/* Reads a numeric field into *out when present; null (a NaN or infinity written out) reads as
 * NaN. Anything else is an error naming the line and field. */
static sw_status read_number(const cJSON *o, const char *key, const char *path, long line,
                             double *out) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!item) return SW_OK;
    if (cJSON_IsNull(item)) {
        *out = NAN;
        return SW_OK;
    }
    if (!cJSON_IsNumber(item))
        return SW_FAIL(SW_ERR_FORMAT, "%s:%ld: field \"%s\" must be a number", path, line, key);
    *out = item->valuedouble;
    return SW_OK;
}

static sw_status read_string(const cJSON *o, const char *key, const char *path, long line,
                             const char **out) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!item) return SW_OK;
    if (!cJSON_IsString(item))
        return SW_FAIL(SW_ERR_FORMAT, "%s:%ld: field \"%s\" must be a string", path, line, key);
    *out = item->valuestring;
    return SW_OK;
}

/* Fills *ev from one parsed line; strings point into `o`. */
static sw_status event_from_json(const cJSON *o, const char *path, long line, sw_metric_event *ev) {
    memset(ev, 0, sizeof *ev);
    if (!cJSON_IsObject(o))
        return SW_FAIL(SW_ERR_FORMAT, "%s:%ld: expected a JSON object, one event per line", path,
                       line);
    const char *kind = NULL;
    SW_TRY(read_string(o, "event", path, line, &kind));
    if (!kind)
        return SW_FAIL(SW_ERR_FORMAT, "%s:%ld: the object has no \"event\" field", path, line);
    if (sw_metric_kind_from_name(kind, &ev->kind) != SW_OK)
        return SW_FAIL(SW_ERR_FORMAT,
                       "%s:%ld: unknown event \"%s\" (expected begin, step, epoch, eval, end or "
                       "message)",
                       path, line, kind);
    SW_TRY(read_string(o, "phase", path, line, &ev->phase));
    SW_TRY(read_string(o, "message", path, line, &ev->message));
    double step = 0, total_steps = 0, epoch = 0, total_epochs = 0;
    SW_TRY(read_number(o, "step", path, line, &step));
    SW_TRY(read_number(o, "total_steps", path, line, &total_steps));
    SW_TRY(read_number(o, "epoch", path, line, &epoch));
    SW_TRY(read_number(o, "total_epochs", path, line, &total_epochs));
    /* Counters that were NaN cannot be meant; read them as 0 rather than convert NaN to int. */
    ev->step = isfinite(step) ? (long)step : 0;
    ev->total_steps = isfinite(total_steps) ? (long)total_steps : 0;
    ev->epoch = isfinite(epoch) ? (int)epoch : 0;
    ev->total_epochs = isfinite(total_epochs) ? (int)total_epochs : 0;
    SW_TRY(read_number(o, "loss", path, line, &ev->loss));
    SW_TRY(read_number(o, "lr", path, line, &ev->lr));
    SW_TRY(read_number(o, "images_per_sec", path, line, &ev->images_per_sec));
    SW_TRY(read_number(o, "accuracy", path, line, &ev->accuracy));
    SW_TRY(read_number(o, "elapsed", path, line, &ev->elapsed));
    const cJSON *terms = cJSON_GetObjectItemCaseSensitive(o, "terms");
    if (terms) {
        if (!cJSON_IsObject(terms))
            return SW_FAIL(SW_ERR_FORMAT, "%s:%ld: field \"terms\" must be an object", path, line);
        const cJSON *t;
        cJSON_ArrayForEach(t, terms) {
            if (ev->n_terms == SW_METRIC_MAX_TERMS)
                return SW_FAIL(SW_ERR_FORMAT, "%s:%ld: more than %d loss terms", path, line,
                               SW_METRIC_MAX_TERMS);
            if (!cJSON_IsNumber(t) && !cJSON_IsNull(t))
                return SW_FAIL(SW_ERR_FORMAT, "%s:%ld: loss term \"%s\" must be a number", path,
                               line, t->string);
            ev->term_names[ev->n_terms] = t->string;
            ev->term_values[ev->n_terms] = cJSON_IsNull(t) ? NAN : t->valuedouble;
            ev->n_terms++;
        }
    }
    return SW_OK;
}

sw_status sw_jsonl_log_read(const char *path, sw_metric_fn fn, void *ctx) {
    FILE *fp = fopen(path, "r");
    if (!fp) return SW_FAIL(SW_ERR_IO, "cannot open the metrics log %s: %s", path, strerror(errno));
    sw_status st = SW_OK;
    char *buf = NULL;
    size_t cap = 0;
    long line = 0;
    ssize_t len;
    /* getline grows one buffer to the longest line: lines have no length limit, and a line
     * holding a NUL byte or garbage is still read whole and reported, never overrun. */
    while ((len = getline(&buf, &cap, fp)) != -1) {
        line++;
        bool complete = len > 0 && buf[len - 1] == '\n';
        while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r')) buf[--len] = '\0';
        size_t skip = strspn(buf, " \t");
        if ((size_t)len == skip) continue; /* blank line */
        /* require_null_terminated: text after the object (two events glued on one line) is an
         * error, not silently dropped. */
        cJSON *o = cJSON_ParseWithOpts(buf, NULL, true);
        if (!o) {
            /* A last line without its newline is what a run killed mid-write leaves. */
            if (!complete)
                st = SW_FAIL(SW_ERR_FORMAT,
                             "%s:%ld: the last line is truncated (incomplete JSON); the run that "
                             "wrote it may have been killed or is still writing",
                             path, line);
            else
                st = SW_FAIL(SW_ERR_FORMAT, "%s:%ld: not valid JSON: \"%.40s%s\"", path, line,
                             buf + skip, (size_t)len - skip > 40 ? "..." : "");
            break;
        }
        sw_metric_event ev;
        st = event_from_json(o, path, line, &ev);
        if (st == SW_OK) fn(ctx, &ev);
        cJSON_Delete(o);
        if (st != SW_OK) break;
    }
    if (st == SW_OK && ferror(fp))
        st = SW_FAIL(SW_ERR_IO, "%s:%ld: read error: %s", path, line + 1, strerror(errno));
    free(buf);
    fclose(fp);
    return st;
}
