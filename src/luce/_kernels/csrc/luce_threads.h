/* Threads of the compiled kernels: OpenMP when the build has it, one thread otherwise. */
#ifndef LUCE_THREADS_H
#define LUCE_THREADS_H

#ifdef _OPENMP
#include <omp.h>
static int luce_max_threads(void) { return omp_get_max_threads(); }
#else
static int luce_max_threads(void) { return 1; }
#endif

/* The instruction set of the kernels' clones that this CPU runs (see LUCE_DISPATCH). */
static const char *luce_isa(void)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    if (__builtin_cpu_supports("x86-64-v4")) return "x86-64-v4 (AVX-512)";
    if (__builtin_cpu_supports("x86-64-v3")) return "x86-64-v3 (AVX2, FMA)";
    return "x86-64 (baseline)";
#elif defined(__aarch64__)
    return "aarch64";
#else
    return "generic";
#endif
}

#endif
