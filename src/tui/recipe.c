/* recipe.c - writing the chain as a Lua recipe (see recipe.h). */
#include "recipe.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../io/atomic_file.h"

/* A growing text buffer; `failed` sticks once memory runs out. */
typedef struct text_buf {
    char *s;
    size_t n, cap;
    bool failed;
} text_buf;

static void add(text_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(text_buf *b, const char *fmt, ...) {
    if (b->failed) return;
    va_list ap;
    va_start(ap, fmt);
    int need = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (need < 0) {
        b->failed = true;
        return;
    }
    if (b->n + (size_t)need + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->n + (size_t)need + 1) cap *= 2;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->failed = true;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(b->s + b->n, b->cap - b->n, fmt, ap);
    va_end(ap);
    b->n += (size_t)need;
}

/* A Lua long string holding `text`: [=[text ]=] with enough '=' that the text cannot close
 * it. The space keeps a final ']' of the text from joining the closing bracket; JSON ignores
 * it (and Lua drops only a newline right after the opening bracket, which JSON never has). */
static void add_long_string(text_buf *b, const char *text) {
    int level = 1;
    char close[16];
    for (;;) {
        close[0] = ']';
        memset(close + 1, '=', (size_t)level);
        close[level + 1] = ']';
        close[level + 2] = '\0';
        if (!strstr(text, close) || level == 12) break;
        level++;
    }
    add(b, "[%.*s[%s ]%.*s]", level, "============", text, level, "============");
}

/* A Lua string literal (quoted, with escapes). */
static void add_quoted(text_buf *b, const char *text) {
    add(b, "\"");
    for (const char *p = text; *p; p++) {
        if (*p == '"' || *p == '\\')
            add(b, "\\%c", *p);
        else if ((unsigned char)*p < 0x20)
            add(b, "\\%03d", (unsigned char)*p);
        else
            add(b, "%c", *p);
    }
    add(b, "\"");
}

/* "fashion-mnist" -> "fashion_mnist", the sw.data function. */
static void add_dataset(text_buf *b, const sw_tui_recipe_info *info, const char *split, int n) {
    add(b, "sw.data.");
    for (const char *p = info->dataset; *p; p++) add(b, "%c", *p == '-' ? '_' : *p);
    add(b, "{ split = \"%s\"", split);
    if (n > 0) add(b, ", subset = %d", n);
    if (info->data_dir) {
        add(b, ", dir = ");
        add_quoted(b, info->data_dir);
    }
    add(b, " }");
}

static void add_evaluator(text_buf *b, const sw_tui_recipe_info *info) {
    const sw_train_config *c = info->train;
    add(b, "local train = assert(");
    add_dataset(b, info, "train", info->subset);
    add(b, ")\nlocal test = assert(");
    add_dataset(b, info, "test", info->test_subset);
    add(b, ")\n");
    /* Every value spelled out: the Lua optimizers start from PyTorch's defaults, the workbench
     * from `shrinkwrap train`'s. */
    add(b,
        "local evaluator = sw.Evaluator{\n"
        "  train = train, test = test, batch_size = %d, eval_batch_size = %d,\n",
        c->batch_size, c->eval_batch_size);
    if (c->optim.kind == SW_OPTIM_SGD)
        add(b,
            "  optimizer = sw.optim.SGD{ lr = %.9g, momentum = %.9g, dampening = %.9g,\n"
            "                            nesterov = %s, weight_decay = %.9g },\n",
            (double)c->optim.lr, (double)c->optim.momentum, (double)c->optim.dampening,
            c->optim.nesterov ? "true" : "false", (double)c->optim.weight_decay);
    else
        add(b,
            "  optimizer = sw.optim.%s{ lr = %.9g, betas = { %.9g, %.9g }, eps = %.9g,\n"
            "                            weight_decay = %.9g },\n",
            c->optim.kind == SW_OPTIM_ADAM ? "Adam" : "AdamW", (double)c->optim.lr,
            (double)c->optim.beta1, (double)c->optim.beta2, (double)c->optim.eps,
            (double)c->optim.weight_decay);
    add(b,
        "  augment = { crop_padding = %d, flip = %s },\n"
        "  seed = %llu, eval_every_epoch = %s,\n"
        "}\n",
        c->augment.crop_padding, c->augment.horizontal_flip ? "true" : "false",
        (unsigned long long)c->seed, c->eval_every_epoch ? "true" : "false");
}

sw_status sw_tui_recipe_text(const sw_tui_chain *ch, const sw_tui_recipe_info *info, char **out) {
    *out = NULL;
    if (ch->n == 0)
        return SW_FAIL(SW_ERR_ARG, "recipe: attach a compressor first (a); a recipe rebuilds "
                                   "the chain");
    text_buf b = {0};
    /* Anything but one-shot pruners trains, so it needs data and an evaluator (Slim and Taylor
     * alone too, though without limits). */
    bool trains = false;
    for (int i = 0; i < ch->n; i++) trains |= ch->items[i].algo->training != SW_TUI_ONE_SHOT;
    add(&b, "-- Written by the shrinkwrap workbench (key w): rebuilds its compression chain and\n"
            "-- compresses once, as the workbench did.\n"
            "--\n"
            "--   shrinkwrap run THIS.lua [--model FILE] [--masks FILE] [--calibration FILE]\n"
            "local sw = require \"shrinkwrap\"\n\n"
            "-- The weights the chain started from, beside this recipe unless --model says.\n"
            "local here = (sw.args[0] or \"\"):match(\"^(.*)/\") or \".\"\n"
            "local model = assert(sw.load(sw.args.model or (here .. \"/\" .. ");
    add_quoted(&b, info->model_file);
    add(&b, ")))\n");
    if (trains)
        add_evaluator(&b, info);
    else
        add(&b, "local evaluator = nil -- one-shot: nothing trains\n");
    add(&b, "\n-- The chain, oldest first; each later compressor is fused on the previous one.\n");
    for (int i = 0; i < ch->n; i++) {
        const sw_tui_chain_item *it = &ch->items[i];
        char cfg[24], prev[24];
        snprintf(cfg, sizeof cfg, "config%d", i + 1);
        snprintf(prev, sizeof prev, "c%d", i);
        add(&b, "local %s = ", cfg);
        add_long_string(&b, it->config);
        add(&b, "\n");
        char call[1024];
        int n = it->algo->lua(it, i ? prev : NULL, cfg, call, sizeof call);
        if (n < 0 || n >= (int)sizeof call) b.failed = true;
        add(&b, "local c%d = %s\n", i + 1, call);
    }
    add(&b, "\nlocal last = c%d\n", ch->n);
    if (info->steps < 0 && info->epochs < 0)
        add(&b, "last:compress()\n");
    else if (info->epochs < 0)
        add(&b, "last:compress(%ld)\n", info->steps);
    else if (info->steps < 0)
        add(&b, "last:compress(nil, %d)\n", info->epochs);
    else
        add(&b, "last:compress(%ld, %d)\n", info->steps, info->epochs);
    if (sw_tui_chain_has(ch, SW_TUI_PRUNER)) {
        add(&b, "local masks_out = sw.args.masks or ");
        add_quoted(&b, info->masks_out);
        add(&b, "\nassert(sw.save_masks(last, masks_out))\n"
                "print(\"wrote masks \" .. masks_out)\n");
    }
    for (int i = ch->n - 1; i >= 0; i--) {
        if (ch->items[i].algo->kind != SW_TUI_QUANTIZER) continue;
        add(&b, "local calibration_out = sw.args.calibration or ");
        add_quoted(&b, info->calibration_out);
        add(&b,
            "\nassert(c%d:export(calibration_out))\n"
            "print(\"wrote calibration \" .. calibration_out)\n",
            i + 1);
        break;
    }
    if (trains)
        add(&b, "print((\"accuracy %%.2f%%%%\"):format(100 * evaluator:evaluate(model)))\n");
    if (b.failed) {
        free(b.s);
        return SW_FAIL(SW_ERR_NOMEM, "recipe: no memory for the text");
    }
    *out = b.s;
    return SW_OK;
}

sw_status sw_tui_recipe_write(const sw_tui_chain *ch, const sw_tui_recipe_info *info,
                              const char *path) {
    char *text = NULL;
    SW_TRY(sw_tui_recipe_text(ch, info, &text));
    sw_status s = sw_atomic_write(path, text, strlen(text));
    free(text);
    return s;
}
