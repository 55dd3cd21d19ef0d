/* lr_schedule.c - the learning rate as a pure function of the step number.
 *
 * Being a pure function (no state advanced per step, unlike torch's schedulers) means a stopped
 * and resumed run, a replayed log and the workbench's preview chart all agree on the value of
 * any step. The warm-up is prepended to every kind: for step < warmup_steps the rate ramps
 * linearly, (step + 1) / warmup_steps * lr, reaching lr exactly at the last warm-up step;
 * afterwards the kind's own formula runs on t = step - warmup_steps.
 */
#include "lr_schedule.h"

#include <math.h>
#include <string.h>

sw_status sw_lr_kind_from_name(const char *name, sw_lr_kind *out) {
    static const struct {
        const char *name;
        sw_lr_kind kind;
    } names[] = {{"constant", SW_LR_CONSTANT}, {"step", SW_LR_STEP}, {"cosine", SW_LR_COSINE}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (name && strcmp(name, names[i].name) == 0) {
            *out = names[i].kind;
            return SW_OK;
        }
    }
    return SW_FAIL(SW_ERR_NOT_FOUND, "unknown LR schedule \"%s\": use constant, step or cosine",
                   name ? name : "(null)");
}

float sw_lr_at(const sw_lr_schedule *s, float base_lr, long step) {
    if (step < 0) step = 0;
    if (s->warmup_steps > 0 && step < s->warmup_steps)
        return (float)((double)base_lr * (double)(step + 1) / (double)s->warmup_steps);
    long t = step - (s->warmup_steps > 0 ? s->warmup_steps : 0);
    switch (s->kind) {
    case SW_LR_CONSTANT:
        return base_lr;
    case SW_LR_STEP: {
        /* A step_size of 0 would decay at every step into nothing; read it as "never". */
        if (s->step_size <= 0) return base_lr;
        return (float)((double)base_lr * pow((double)s->gamma, (double)(t / s->step_size)));
    }
    case SW_LR_COSINE: {
        /* No known length (total_steps 0): nothing to anneal over, hold the base rate. Past
         * the end the rate stays at min_lr rather than climbing the next half-period. */
        if (s->total_steps <= 0) return base_lr;
        if (t > s->total_steps) t = s->total_steps;
        double frac = (double)t / (double)s->total_steps;
        double lo = s->min_lr;
        return (float)(lo + ((double)base_lr - lo) * (1.0 + cos(M_PI * frac)) / 2.0);
    }
    }
    return base_lr;
}
