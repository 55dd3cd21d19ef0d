/* clock.h - the one clock every timing in shrinkwrap reads: monotonic wall-clock seconds. */
#ifndef SW_CLOCK_H
#define SW_CLOCK_H

#include <time.h>

static inline double sw_clock_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#endif
