/* form.h - parameter forms: typed fields with defaults, ranges and errors shown in place.
 *
 * A form is edited key by key (sw_tui_form_key). Each edit re-checks the field being edited so
 * its error appears beside it as it is typed; Enter checks every field and the form-wide rule
 * and submits only when all is valid, so nothing is applied from a half-valid form. Values are
 * read back by key after a submit.
 */
#ifndef SW_TUI_FORM_H
#define SW_TUI_FORM_H

#include <stdbool.h>

#define SW_TUI_FORM_MAX_FIELDS 12
#define SW_TUI_FIELD_TEXT_MAX 200
#define SW_TUI_FIELD_MAX_CHOICES 8

typedef enum sw_tui_field_type {
    SW_FIELD_INT,
    SW_FIELD_FLOAT,
    SW_FIELD_TEXT,
    SW_FIELD_PATH_IN,  /* an existing, readable file */
    SW_FIELD_PATH_OUT, /* a file name in an existing folder */
    SW_FIELD_CHOICE,   /* one of choices[]; Left/Right/space cycle */
} sw_tui_field_type;

typedef struct sw_tui_field {
    char key[24];   /* for lookups */
    char label[24]; /* shown */
    sw_tui_field_type type;
    char text[SW_TUI_FIELD_TEXT_MAX];              /* as typed */
    int cursor;                                    /* byte offset of the caret in text */
    double min, max;                               /* numeric range, inclusive */
    bool optional;                                 /* empty text is allowed and means "unset" */
    const char *choices[SW_TUI_FIELD_MAX_CHOICES]; /* static strings */
    int n_choices;
    const char *hint; /* one line shown under the form when the field is focused (static) */
    char error[128];  /* "" when valid */
    /* Parsed by the last check. */
    bool set; /* false for an empty optional field */
    long ival;
    double fval;
} sw_tui_field;

typedef struct sw_tui_form sw_tui_form;
/* A form-wide rule, run after every field is valid; writes form->error and returns false to
 * refuse the submit. */
typedef bool (*sw_tui_form_rule)(sw_tui_form *form);

struct sw_tui_form {
    int id; /* what the form is for (the owner's enum) */
    char title[64];
    sw_tui_field fields[SW_TUI_FORM_MAX_FIELDS];
    int n_fields;
    int focus;
    char error[160]; /* form-wide error, "" when none */
    sw_tui_form_rule rule;
    void *owner_data; /* the owner's, e.g. which algorithm a form configures */
};

typedef enum sw_tui_form_result {
    SW_TUI_FORM_EDITING,
    SW_TUI_FORM_SUBMIT,
    SW_TUI_FORM_CANCEL,
} sw_tui_form_result;

void sw_tui_form_init(sw_tui_form *form, int id, const char *title);
/* Adds fields with their default text (may be "" for optional ones). Return the field (NULL
 * when the form is full, a programming error). */
sw_tui_field *sw_tui_form_add_int(sw_tui_form *form, const char *key, const char *label,
                                  const char *def, long min, long max, bool optional);
sw_tui_field *sw_tui_form_add_float(sw_tui_form *form, const char *key, const char *label,
                                    const char *def, double min, double max);
sw_tui_field *sw_tui_form_add_text(sw_tui_form *form, const char *key, const char *label,
                                   sw_tui_field_type type, const char *def);
sw_tui_field *sw_tui_form_add_choice(sw_tui_form *form, const char *key, const char *label,
                                     const char *const *choices, int n, int def);

/* Handles one key: editing, moving between fields, Enter (check all, submit when valid), Esc
 * (cancel). *flags receives sw_tui_flags. */
sw_tui_form_result sw_tui_form_key(sw_tui_form *form, int key, int *flags);
/* Checks one field / every field and the rule; true when valid. */
bool sw_tui_field_check(sw_tui_field *f);
bool sw_tui_form_check(sw_tui_form *form);

sw_tui_field *sw_tui_form_field(sw_tui_form *form, const char *key);
/* Values after a successful check: ints and floats parsed, `dflt` for unset optional ones. */
long sw_tui_form_int(const sw_tui_form *form, const char *key, long dflt);
double sw_tui_form_float(const sw_tui_form *form, const char *key, double dflt);
const char *sw_tui_form_text(const sw_tui_form *form, const char *key);
/* Replaces a field's text (caret at the end) and re-checks it. */
void sw_tui_form_set(sw_tui_form *form, const char *key, const char *text);

#endif
