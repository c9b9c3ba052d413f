# Loops for bench/score.py only (compiled at bench time by pyximport, never shipped).
#
# handwritten(): the shipped Zhengzhou enterprise policies written by hand as one specialized
# loop, reading the kernel's own validated columns and writing the kernel's own outputs, so
# the generic kernel is compared with what a person would write for exactly these rules.
# bandwidth(): reads the same input bytes and writes the same output bytes, computing almost
# nothing: the memory-bandwidth limit of any kernel with this input and output.
# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True

from libc.stdint cimport int32_t, int64_t, uint8_t
from cython.parallel cimport prange


def handwritten(const int64_t[::1] outfalls, const int64_t[::1] direct, const int64_t[::1] illegal,
                const uint8_t[::1] industrial, const uint8_t[::1] pollution, const uint8_t[::1] energy,
                const int32_t[::1] district, const uint8_t[::1] valid,
                uint8_t[:, ::1] fired, int64_t[:, ::1] amounts, uint8_t[:, ::1] sanctions,
                int64_t[::1] total, int64_t[:, ::1] sums, int64_t[::1] cases,
                int64_t per_outfall, int64_t per_case):
    """Fired rules, amounts, sanctions, totals, and per-district sums and case counts."""
    cdef Py_ssize_t i, n = outfalls.shape[0]
    cdef uint8_t ok, f0, f1, f2, f3
    cdef int64_t a0, a1, t
    cdef int32_t d
    with nogil:
        for i in range(n):
            ok = valid[i]
            f0 = (outfalls[i] > 0) & ok
            f1 = industrial[i] & (direct[i] > 0) & ok
            f2 = ((illegal[i] > 0) | (direct[i] > 0)) & ok
            f3 = (pollution[i] | energy[i]) & ok
            fired[0, i] = f0
            fired[1, i] = f1
            fired[2, i] = f2
            fired[3, i] = f3
            a0 = outfalls[i] * per_outfall if f0 else 0
            a1 = direct[i] * per_case if f1 else 0
            amounts[0, i] = a0
            amounts[1, i] = a1
            sanctions[0, i] = f2
            sanctions[1, i] = f3
            t = a0 + a1
            total[i] = t
            if t:
                d = district[i]
                sums[0, d] += a0
                sums[1, d] += a1
                cases[d] += 1


def bandwidth(const int64_t[::1] outfalls, const int64_t[::1] direct, const int64_t[::1] illegal,
              const uint8_t[::1] industrial, const uint8_t[::1] pollution, const uint8_t[::1] energy,
              const int32_t[::1] district, const uint8_t[::1] valid,
              uint8_t[:, ::1] fired, int64_t[:, ::1] amounts, uint8_t[:, ::1] sanctions,
              int64_t[::1] total, int threads):
    """Read every input byte, write every output byte, compute (almost) nothing."""
    cdef Py_ssize_t n = outfalls.shape[0]
    cdef Py_ssize_t t, chunk = (n + threads - 1) // threads
    if threads == 1:
        with nogil:
            _bandwidth(0, n, outfalls, direct, illegal, industrial, pollution, energy, district, valid,
                       fired, amounts, sanctions, total)
        return
    for t in prange(threads, nogil=True, num_threads=threads, schedule="static", chunksize=1):
        _bandwidth(t * chunk, min(n, (t + 1) * chunk), outfalls, direct, illegal, industrial, pollution,
                   energy, district, valid, fired, amounts, sanctions, total)


cdef void _bandwidth(Py_ssize_t start, Py_ssize_t stop, const int64_t[::1] outfalls, const int64_t[::1] direct,
                     const int64_t[::1] illegal, const uint8_t[::1] industrial, const uint8_t[::1] pollution,
                     const uint8_t[::1] energy, const int32_t[::1] district, const uint8_t[::1] valid,
                     uint8_t[:, ::1] fired, int64_t[:, ::1] amounts, uint8_t[:, ::1] sanctions,
                     int64_t[::1] total) noexcept nogil:
    cdef Py_ssize_t i
    cdef int64_t w
    cdef uint8_t b
    for i in range(start, stop):
        w = outfalls[i] ^ direct[i] ^ illegal[i]
        b = industrial[i] ^ pollution[i] ^ energy[i] ^ <uint8_t>district[i] ^ valid[i]
        fired[0, i] = b
        fired[1, i] = b
        fired[2, i] = b
        fired[3, i] = b
        amounts[0, i] = w
        amounts[1, i] = w
        sanctions[0, i] = b
        sanctions[1, i] = b
        total[i] = w
