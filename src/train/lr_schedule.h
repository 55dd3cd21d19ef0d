/* lr_schedule.h - learning-rate schedules: constant, step decay, cosine annealing, each with an
 * optional linear warm-up. Pure functions of the step number. */
#ifndef SW_LR_SCHEDULE_H
#define SW_LR_SCHEDULE_H

#include "../tensor/status.h"

typedef enum sw_lr_kind {
    SW_LR_CONSTANT,
    SW_LR_STEP,   /* lr * gamma^floor(step / step_size) */
    SW_LR_COSINE, /* min_lr + (lr - min_lr) * (1 + cos(pi * t / total)) / 2 */
} sw_lr_kind;

typedef struct sw_lr_schedule {
    sw_lr_kind kind;
    long warmup_steps; /* linear ramp from lr/warmup to lr over these steps; 0 = none */
    long step_size;    /* STEP */
    float gamma;       /* STEP */
    long total_steps;  /* COSINE: length of the anneal (after warm-up) */
    float min_lr;      /* COSINE */
} sw_lr_schedule;

/* "constant" | "step" | "cosine" -> kind. */
sw_status sw_lr_kind_from_name(const char *name, sw_lr_kind *out);
/* The learning rate for the 0-based optimizer step `step`. */
float sw_lr_at(const sw_lr_schedule *s, float base_lr, long step);

#endif
