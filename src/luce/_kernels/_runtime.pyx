"""What the compiled kernels run on: their thread budget and the instruction set chosen at load."""

cdef extern from "luce_threads.h" nogil:
    int luce_max_threads()
    const char *luce_isa()


def max_threads():
    """OpenMP's thread budget for a parallel kernel started from this thread (OMP_NUM_THREADS and
    threadpoolctl's limits apply); 1 when the build has no OpenMP."""
    return luce_max_threads()


def isa():
    """The instruction set of the kernel clones this CPU runs, e.g. ``"x86-64-v4 (AVX-512)"``."""
    return luce_isa().decode()
