/* parallel.h - the calling thread's index in the current OpenMP team (0 without OpenMP), for
 * kernels that hand each thread its own slice of a scratch buffer. */
#ifndef SW_PARALLEL_H
#define SW_PARALLEL_H

#ifdef _OPENMP
#include <omp.h>
#endif

static inline int sw_thread_id(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

#endif
