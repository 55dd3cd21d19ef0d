/* form.c - typed form fields: editing, checking, reading back. */
#include "form.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keys.h"

void sw_tui_form_init(sw_tui_form *form, int id, const char *title) {
    memset(form, 0, sizeof *form);
    form->id = id;
    snprintf(form->title, sizeof form->title, "%s", title);
}

static sw_tui_field *add_field(sw_tui_form *form, const char *key, const char *label,
                               sw_tui_field_type type, const char *def) {
    if (form->n_fields >= SW_TUI_FORM_MAX_FIELDS) return NULL;
    sw_tui_field *f = &form->fields[form->n_fields++];
    memset(f, 0, sizeof *f);
    snprintf(f->key, sizeof f->key, "%s", key);
    snprintf(f->label, sizeof f->label, "%s", label);
    f->type = type;
    snprintf(f->text, sizeof f->text, "%s", def ? def : "");
    f->cursor = (int)strlen(f->text);
    return f;
}

sw_tui_field *sw_tui_form_add_int(sw_tui_form *form, const char *key, const char *label,
                                  const char *def, long min, long max, bool optional) {
    sw_tui_field *f = add_field(form, key, label, SW_FIELD_INT, def);
    if (!f) return NULL;
    f->min = (double)min;
    f->max = (double)max;
    f->optional = optional;
    sw_tui_field_check(f);
    return f;
}

sw_tui_field *sw_tui_form_add_float(sw_tui_form *form, const char *key, const char *label,
                                    const char *def, double min, double max) {
    sw_tui_field *f = add_field(form, key, label, SW_FIELD_FLOAT, def);
    if (!f) return NULL;
    f->min = min;
    f->max = max;
    sw_tui_field_check(f);
    return f;
}

sw_tui_field *sw_tui_form_add_text(sw_tui_form *form, const char *key, const char *label,
                                   sw_tui_field_type type, const char *def) {
    sw_tui_field *f = add_field(form, key, label, type, def);
    if (f) sw_tui_field_check(f);
    return f;
}

sw_tui_field *sw_tui_form_add_choice(sw_tui_form *form, const char *key, const char *label,
                                     const char *const *choices, int n, int def) {
    if (n < 1 || n > SW_TUI_FIELD_MAX_CHOICES || def < 0 || def >= n) return NULL;
    sw_tui_field *f = add_field(form, key, label, SW_FIELD_CHOICE, choices[def]);
    if (!f) return NULL;
    for (int i = 0; i < n; i++) f->choices[i] = choices[i];
    f->n_choices = n;
    sw_tui_field_check(f);
    return f;
}

/* Trims blanks around the text for parsing (the text as typed is kept). */
static void trimmed(const char *text, char *out, size_t size) {
    while (*text == ' ') text++;
    snprintf(out, size, "%s", text);
    size_t n = strlen(out);
    while (n > 0 && out[n - 1] == ' ') out[--n] = '\0';
}

static bool check_path_out(sw_tui_field *f, const char *path) {
    char dir[SW_TUI_FIELD_TEXT_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        dir[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof dir, ".");
    if (path[strlen(path) - 1] == '/') {
        snprintf(f->error, sizeof f->error, "give a file name, not a folder");
        return false;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(f->error, sizeof f->error, "folder %.100s does not exist", dir);
        return false;
    }
    if (access(dir, W_OK) != 0) {
        snprintf(f->error, sizeof f->error, "folder %.100s is not writable", dir);
        return false;
    }
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(f->error, sizeof f->error, "%.100s is a folder", path);
        return false;
    }
    return true;
}

bool sw_tui_field_check(sw_tui_field *f) {
    char t[SW_TUI_FIELD_TEXT_MAX];
    trimmed(f->text, t, sizeof t);
    f->error[0] = '\0';
    f->set = t[0] != '\0';
    if (!f->set) {
        if (f->optional) return true;
        snprintf(f->error, sizeof f->error, "required");
        return false;
    }
    char *end = NULL;
    errno = 0;
    switch (f->type) {
    case SW_FIELD_INT: {
        long v = strtol(t, &end, 10);
        if (errno || *end) {
            snprintf(f->error, sizeof f->error, "not a whole number");
            return false;
        }
        if ((double)v < f->min || (double)v > f->max) {
            snprintf(f->error, sizeof f->error, "must be in [%.0f, %.0f]", f->min, f->max);
            return false;
        }
        f->ival = v;
        f->fval = (double)v;
        return true;
    }
    case SW_FIELD_FLOAT: {
        double v = strtod(t, &end);
        if (errno || *end || !isfinite(v)) {
            snprintf(f->error, sizeof f->error, "not a number");
            return false;
        }
        if (v < f->min || v > f->max) {
            snprintf(f->error, sizeof f->error, "must be in [%g, %g]", f->min, f->max);
            return false;
        }
        f->fval = v;
        return true;
    }
    case SW_FIELD_TEXT:
        return true;
    case SW_FIELD_PATH_IN: {
        struct stat st;
        if (stat(t, &st) != 0) {
            snprintf(f->error, sizeof f->error, "no such file");
            return false;
        }
        if (S_ISDIR(st.st_mode)) {
            snprintf(f->error, sizeof f->error, "is a folder, not a file");
            return false;
        }
        if (access(t, R_OK) != 0) {
            snprintf(f->error, sizeof f->error, "not readable");
            return false;
        }
        return true;
    }
    case SW_FIELD_PATH_OUT:
        return check_path_out(f, t);
    case SW_FIELD_CHOICE:
        for (int i = 0; i < f->n_choices; i++)
            if (strcmp(t, f->choices[i]) == 0) {
                f->ival = i;
                return true;
            }
        snprintf(f->error, sizeof f->error, "not one of the choices");
        return false;
    }
    return false;
}

bool sw_tui_form_check(sw_tui_form *form) {
    bool ok = true;
    form->error[0] = '\0';
    for (int i = 0; i < form->n_fields; i++)
        if (!sw_tui_field_check(&form->fields[i])) ok = false;
    if (ok && form->rule && !form->rule(form)) ok = false;
    return ok;
}

sw_tui_field *sw_tui_form_field(sw_tui_form *form, const char *key) {
    for (int i = 0; i < form->n_fields; i++)
        if (strcmp(form->fields[i].key, key) == 0) return &form->fields[i];
    return NULL;
}

static const sw_tui_field *cfield(const sw_tui_form *form, const char *key) {
    return sw_tui_form_field((sw_tui_form *)form, key);
}

long sw_tui_form_int(const sw_tui_form *form, const char *key, long dflt) {
    const sw_tui_field *f = cfield(form, key);
    return f && f->set && !f->error[0] ? f->ival : dflt;
}

double sw_tui_form_float(const sw_tui_form *form, const char *key, double dflt) {
    const sw_tui_field *f = cfield(form, key);
    return f && f->set && !f->error[0] ? f->fval : dflt;
}

const char *sw_tui_form_text(const sw_tui_form *form, const char *key) {
    const sw_tui_field *f = cfield(form, key);
    return f ? f->text : "";
}

void sw_tui_form_set(sw_tui_form *form, const char *key, const char *text) {
    sw_tui_field *f = sw_tui_form_field(form, key);
    if (!f) return;
    snprintf(f->text, sizeof f->text, "%s", text);
    f->cursor = (int)strlen(f->text);
    sw_tui_field_check(f);
}

/* Cycles a choice field by `dir`. */
static void cycle_choice(sw_tui_field *f, int dir) {
    int i = sw_tui_field_check(f) ? (int)f->ival : 0;
    i = (i + dir + f->n_choices) % f->n_choices;
    snprintf(f->text, sizeof f->text, "%s", f->choices[i]);
    f->cursor = (int)strlen(f->text);
    sw_tui_field_check(f);
}

/* Inserts one character (ASCII: forms hold numbers and paths) at the caret. */
static void insert_char(sw_tui_field *f, int key) {
    size_t n = strlen(f->text);
    if (n + 1 >= sizeof f->text || key < 0x20 || key > 0x7E) return;
    memmove(f->text + f->cursor + 1, f->text + f->cursor, n - (size_t)f->cursor + 1);
    f->text[f->cursor++] = (char)key;
}

sw_tui_form_result sw_tui_form_key(sw_tui_form *form, int key, int *flags) {
    *flags = SW_TUI_HANDLED | SW_TUI_REDRAW;
    if (form->n_fields == 0) return key == SW_KEY_ESC ? SW_TUI_FORM_CANCEL : SW_TUI_FORM_SUBMIT;
    sw_tui_field *f = &form->fields[form->focus];
    int len = (int)strlen(f->text);
    switch (key) {
    case SW_KEY_ESC:
        return SW_TUI_FORM_CANCEL;
    case SW_KEY_ENTER:
    case '\r':
        if (sw_tui_form_check(form)) return SW_TUI_FORM_SUBMIT;
        /* Take the user to the first field in error. */
        for (int i = 0; i < form->n_fields; i++)
            if (form->fields[i].error[0]) {
                form->focus = i;
                break;
            }
        return SW_TUI_FORM_EDITING;
    case SW_KEY_DOWN:
    case SW_KEY_TAB:
        form->focus = (form->focus + 1) % form->n_fields;
        return SW_TUI_FORM_EDITING;
    case SW_KEY_UP:
    case SW_KEY_BTAB:
        form->focus = (form->focus + form->n_fields - 1) % form->n_fields;
        return SW_TUI_FORM_EDITING;
    case SW_KEY_LEFT:
        if (f->type == SW_FIELD_CHOICE)
            cycle_choice(f, -1);
        else if (f->cursor > 0)
            f->cursor--;
        return SW_TUI_FORM_EDITING;
    case SW_KEY_RIGHT:
        if (f->type == SW_FIELD_CHOICE)
            cycle_choice(f, 1);
        else if (f->cursor < len)
            f->cursor++;
        return SW_TUI_FORM_EDITING;
    case SW_KEY_HOME:
        f->cursor = 0;
        return SW_TUI_FORM_EDITING;
    case SW_KEY_END:
        f->cursor = len;
        return SW_TUI_FORM_EDITING;
    default:
        break;
    }
    if (f->type == SW_FIELD_CHOICE) {
        if (key == ' ') cycle_choice(f, 1);
        return SW_TUI_FORM_EDITING;
    }
    form->error[0] = '\0';
    if (key == SW_KEY_BACKSPACE || key == 8) {
        if (f->cursor > 0) {
            memmove(f->text + f->cursor - 1, f->text + f->cursor, (size_t)(len - f->cursor + 1));
            f->cursor--;
        }
    } else if (key == SW_KEY_DELETE) {
        if (f->cursor < len)
            memmove(f->text + f->cursor, f->text + f->cursor + 1, (size_t)(len - f->cursor));
    } else if (key == SW_KEY_CTRL_U) {
        f->text[0] = '\0';
        f->cursor = 0;
    } else if (key >= 0x20 && key <= 0x7E) {
        insert_char(f, key);
    } else {
        *flags = SW_TUI_IGNORED;
        return SW_TUI_FORM_EDITING;
    }
    sw_tui_field_check(f);
    return SW_TUI_FORM_EDITING;
}
