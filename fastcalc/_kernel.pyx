# The fastcalc kernel: a block-at-a-time interpreter of the flat programs of _compiler.py.
#
# Outer loop: blocks of rows (a few thousand, so every scratch register stays in L1/L2);
# inner loop: the instructions; innermost: a tight loop over the rows of the block, which gcc
# vectorizes. Everything runs without the GIL; errors are returned as codes and raised by the
# Python front (_program.py) once it holds the GIL again. The program, the register table
# and the bound columns are validated by that front before every call (check_program and
# bind); the kernel trusts them and does no bounds checks of its own.
#
# Directives (language_level, boundscheck, wraparound, cdivision) come from setup.py.

from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t, uintptr_t
from libc.stdlib cimport calloc, free
from libc.string cimport memcpy, memset
from cython.parallel cimport prange

# The declarations beside this file (Instr, Register, the opcodes). Cimported by name because
# the extension's dotted name (ecorules.fastcalc._kernel) does not follow the folder layout
# (fastcalc/), so Cython does not pair the two files by itself; setup.py puts fastcalc/ on
# the include path. The .pxd declares only types and enums: no import happens at run time.
from _kernel cimport *

cimport cython

cdef extern from *:
    """
    /* The exact quotient a / k (k > 0) rounded to a whole number by mode, as
       rules/_money.round_by does with Fractions: 0 half_up (halves away from zero, the
       Chinese 四舍五入), 1 half_even, 2 down (towards zero), 3 up (away from zero), 4 floor,
       5 ceil (_opcodes.ROUNDING_MODES). C division truncates towards zero, so q is the
       quotient towards zero and r carries the sign of a; |r| < k, so k - |r| cannot
       overflow where 2 |r| could. */
    static inline int64_t fc_div_round(int64_t a, int64_t k, int64_t mode) {
        int64_t q = a / k;
        int64_t r = a % k;
        if (r == 0) return q;
        int64_t away = r > 0 ? 1 : -1;
        int64_t ar = r < 0 ? -r : r;
        int64_t rest = k - ar;
        switch (mode) {
            case 0: return ar >= rest ? q + away : q;
            case 1: return ar > rest || (ar == rest && (q & 1)) ? q + away : q;
            case 2: return q;
            case 3: return q + away;
            case 4: return r < 0 ? q - 1 : q;
            default: return r > 0 ? q + 1 : q;
        }
    }
    static inline int fc_add_overflow(int64_t a, int64_t b, int64_t *out) {
        return __builtin_add_overflow(a, b, out);
    }

    /* Calendar months on day numbers (days since 1970-01-01, proleptic Gregorian), as
       rules/_calendar.add_months. The conversions follow Howard Hinnant's public-domain
       civil_from_days / days_from_civil, with years counted from March (the leap day ends
       its year) in 400-year eras of 146097 days; the month is moved in that March-based
       count, so no conversion to January-based months is needed.
       Rows that are rejected, or whose optional fact is empty, hold arbitrary values here
       (their result is masked later): inputs are clamped to 0001-01-01 .. 9999-12-31 and
       +-10,000 years, so that everything stays in small unsigned 32-bit numbers (no
       overflow, cheap divisions by constants, no branches). Valid rows are never clamped:
       the checker bounds them within that range. */
    #define FC_DAY_MIN (-719162)        /* 0001-01-01 */
    #define FC_DAY_MAX 2932896          /* 9999-12-31 */
    #define FC_MONTHS_MAX 120000        /* 10,000 years */
    #define FC_MARCH_0 719468           /* days from 0000-03-01 to 1970-01-01 */
    #define FC_SHIFT_YEARS 20000        /* added while moving: 50 eras, the same calendar */
    #define FC_SHIFT_DAYS 7304850       /* 50 * 146097 */

    static inline int64_t fc_add_months(int64_t days, int64_t months, int64_t mode) {
        days = days < FC_DAY_MIN ? FC_DAY_MIN : (days > FC_DAY_MAX ? FC_DAY_MAX : days);
        months = months < -FC_MONTHS_MAX ? -FC_MONTHS_MAX : (months > FC_MONTHS_MAX ? FC_MONTHS_MAX : months);
        /* civil_from_days, from 0000-03-01: z in 306 .. 3652364 */
        uint32_t z = (uint32_t)(days + FC_MARCH_0);
        uint32_t era = z / 146097;
        uint32_t doe = z - era * 146097;                                   /* day of era */
        uint32_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;  /* year of era */
        uint32_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);            /* 0 = March 1 */
        uint32_t mp = (5 * doy + 2) / 153;                                 /* 0 = March .. 11 = February */
        uint32_t d = doy - (153 * mp + 2) / 5 + 1;
        /* the target month in March-based months from year -20000: always > 0 */
        uint32_t index = (uint32_t)((era * 400 + yoe + FC_SHIFT_YEARS) * 12 + mp + months);
        uint32_t y = index / 12;                                           /* its March-based year */
        uint32_t m = index - y * 12;
        uint32_t start = (153 * m + 2) / 5;                                /* its first day in the year */
        uint32_t after = y + 1;                                            /* the civil year of its February */
        uint32_t leap = (after % 4 == 0) & ((after % 100 != 0) | (after % 400 == 0));
        uint32_t last = m == 11 ? 28 + leap : (153 * m + 155) / 5 - start; /* days in the month */
        /* no such day: the month's last day (month_end, 0) or the next month's first (next_day) */
        uint32_t overflow = d > last;
        uint32_t day = overflow ? last : d;
        uint32_t e = y / 400;
        uint32_t ye = y - e * 400;
        uint32_t doe2 = ye * 365 + ye / 4 - ye / 100 + start + day - 1;
        return (int64_t)e * 146097 + doe2 - FC_MARCH_0 - FC_SHIFT_DAYS + (overflow & (mode != 0));
    }
    """
    int64_t fc_div_round(int64_t a, int64_t k, int64_t mode) noexcept nogil
    bint fc_add_overflow(int64_t a, int64_t b, int64_t *out) noexcept nogil
    int64_t fc_add_months(int64_t days, int64_t months, int64_t mode) noexcept nogil


cdef enum:
    ROLLUP_GROUP = 16      # rows whose amounts are tested together before any is walked
    ROLLUP_MAX_SLOTS = 64  # finding slots one payer may have (more: KernelError when compiling)


def layout():
    """Sizes and field offsets of the C structs, checked against _opcodes' numpy dtypes."""
    cdef Instr ins
    cdef Register reg
    cdef char* base = <char*>&ins
    cdef char* rbase = <char*>&reg
    return {
        "instr": (sizeof(Instr), {
            "op": <char*>&ins.op - base, "gate": <char*>&ins.gate - base,
            "dst": <char*>&ins.dst - base, "a": <char*>&ins.a - base,
            "b": <char*>&ins.b - base, "c": <char*>&ins.c - base,
            "k": <char*>&ins.k - base, "k2": <char*>&ins.k2 - base}),
        "register": (sizeof(Register), {
            "kind": <char*>&reg.kind - rbase, "dtype": <char*>&reg.dtype - rbase,
            "itemsize": <char*>&reg.itemsize - rbase, "addr": <char*>&reg.addr - rbase}),
        "n_opcodes": N_OPCODES,
    }


cdef inline int64_t* I64(char** ptr, int32_t r) noexcept nogil:
    return <int64_t*>ptr[r]


cdef inline uint8_t* U8(char** ptr, int32_t r) noexcept nogil:
    return <uint8_t*>ptr[r]


cdef inline int64_t read_code(const char* base, int64_t dtype, int64_t i) noexcept nogil:
    """Row i of a column of payer codes of any integer dtype of _opcodes.DTYPES."""
    if dtype == 2:
        return (<const int8_t*>base)[i]
    if dtype == 4:
        return (<const int32_t*>base)[i]
    if dtype == 0:
        return (<const int64_t*>base)[i]
    if dtype == 3:
        return (<const int16_t*>base)[i]
    if dtype == 1:
        return (<const uint8_t*>base)[i]
    if dtype == 5:
        return (<const uint16_t*>base)[i]
    return (<const uint32_t*>base)[i]


cdef inline int64_t count_upto(const int64_t* days, int64_t n, int64_t x) noexcept nogil:
    """How many of the ascending ``days[0:n]`` are <= x (a binary search)."""
    cdef int64_t low = 0, high = n, middle
    while low < high:
        middle = (low + high) >> 1
        if days[middle] <= x:
            low = middle + 1
        else:
            high = middle
    return low


cdef int workdays(const Instr* ins, char** ptr, int64_t n, const int64_t* aux) noexcept nogil:
    """WORKDAYS: rules/_workdays.WorkCalendar's functions on its sorted working days.

    aux[k:k + k2] = function (_opcodes.WORKDAY_FUNCTIONS), first and last day of the table,
    the working days ascending. Every row is computed; one whose day (or result) lies outside
    the table is an error where c is 1 (an accepted row whose arguments the reference can
    evaluate), and elsewhere holds a, a value no rule reads. A function code + 4
    (_opcodes.WORKDAY_OUTSIDE) probes: dst = 1 where c is 1 and the day is outside, else 0.
    """
    cdef const int64_t* spec = aux + ins.k
    cdef bint probe = spec[0] >= 4
    cdef int64_t function = spec[0] - 4 if probe else spec[0]
    cdef int64_t first = spec[1]
    cdef int64_t last = spec[2]
    cdef const int64_t* table = spec + 3
    cdef int64_t m = ins.k2 - 3
    cdef int64_t* d = I64(ptr, ins.dst)
    cdef const int64_t* a = I64(ptr, ins.a)
    cdef const int64_t* b = I64(ptr, ins.b)
    cdef const uint8_t* c = U8(ptr, ins.c)
    cdef int64_t i, x, y, before, j
    cdef bint outside
    for i in range(n):
        x = a[i]
        outside = x < first or x > last
        if not outside:
            before = count_upto(table, m, x)
            if function == 0:  # add_working_days(x, b): the b-th working day after x
                j = before + b[i] - 1
                if b[i] == 0:
                    d[i] = x
                elif b[i] < 0 or j >= m:
                    outside = True
                else:
                    d[i] = table[j]
            elif function == 3:  # working_day_on_or_after(x)
                if before > 0 and table[before - 1] == x:
                    d[i] = x
                elif before >= m:
                    outside = True
                else:
                    d[i] = table[before]
            else:  # working_days_between(x, y), 1 exclusive, 2 inclusive
                y = b[i]
                if y < first or y > last:
                    outside = True
                else:
                    d[i] = count_upto(table, m, y) - before
                    if function == 2 and before > 0 and table[before - 1] == x:
                        d[i] += 1
        if probe:
            d[i] = 1 if outside and c[i] != 0 else 0
        elif outside:
            if c[i] != 0:
                return ERR_CALENDAR
            d[i] = x
    return ERR_NONE


cdef int rollup(const Instr* ins, char** ptr, int64_t n, const int64_t* aux, int64_t* acc,
                bint single) noexcept nogil:
    """Per-payer sums of several finding slots and the rows that are cases, in one pass.

    aux[k:] = n_slots, n_codes, count offset in acc (-1: none), dtype of the codes column
    (a), then per slot: the register of its amount column, its offset in acc, 1 if payable,
    the register of its rule's fired row.
    A row is a case of its payer when the rule of a payable slot fired, even for 0 yuan: the
    single-case engine shows that finding, so it is counted like any other. A slot whose rule
    did not fire has amount 0 (AMOUNT), so only fired flags are looked at: most rows have
    none, and groups of ROLLUP_GROUP rows whose flags are all zero are skipped after a
    branch-free OR (vectorized); only the other groups are walked row by row. Nothing fires
    on a rejected row, so its payer code is never read.
    """
    cdef const int64_t* d = aux + ins.k
    cdef int64_t n_slots = d[0]
    cdef int64_t n_codes = d[1]
    cdef int64_t count_at = d[2]
    cdef int64_t code_dtype = d[3]
    cdef const char* codes = NULL if single else ptr[ins.a]
    cdef const int64_t* amount[ROLLUP_MAX_SLOTS]
    cdef const uint8_t* fired[ROLLUP_MAX_SLOTS]
    cdef int64_t i, j, s, stop, code
    cdef uint8_t seen
    cdef bint case_row
    cdef int64_t* cell
    if n_slots > ROLLUP_MAX_SLOTS:
        return ERR_OPCODE  # refused by the compiler already
    for s in range(n_slots):
        amount[s] = <const int64_t*>ptr[d[4 + 4 * s]]
        fired[s] = <const uint8_t*>ptr[d[7 + 4 * s]]
    i = 0
    while i < n:
        stop = i + ROLLUP_GROUP if i + ROLLUP_GROUP < n else n
        seen = 0
        for s in range(n_slots):
            for j in range(i, stop):
                seen |= fired[s][j]
        if seen != 0:
            for j in range(i, stop):
                case_row = False
                code = -1
                for s in range(n_slots):
                    if fired[s][j] == 0:
                        continue
                    if code < 0:
                        code = 0 if single else read_code(codes, code_dtype, j)
                        if code < 0 or code >= n_codes:
                            return ERR_PAYER_CODE
                    cell = acc + d[5 + 4 * s] + code
                    if fc_add_overflow(cell[0], amount[s][j], cell):
                        return ERR_OVERFLOW
                    if d[6 + 4 * s]:
                        case_row = True
                if case_row and count_at >= 0:
                    acc[count_at + code] += 1
        i = stop
    return ERR_NONE


@cython.cdivision(True)  # C division and remainder: truncation towards zero, as used below
cdef int step(const Instr* ins, char** ptr, int64_t n, const int64_t* aux,
              int64_t* acc) noexcept nogil:
    """Run one instruction over the n rows of the current block."""
    cdef int32_t op = ins.op
    cdef int64_t i, j, q, r, v
    cdef int64_t k = ins.k
    cdef int64_t k2 = ins.k2
    cdef int64_t* d
    cdef const int64_t* a
    cdef const int64_t* b
    cdef const int64_t* c
    cdef uint8_t* du
    cdef const uint8_t* au
    cdef const uint8_t* bu
    cdef const uint8_t* cu
    cdef const int64_t* lst
    cdef uint8_t hit

    # -- loads ---------------------------------------------------------------------------
    if op == OP_LOAD_I8:
        d = I64(ptr, ins.dst)
        for i in range(n):
            d[i] = (<const int8_t*>ptr[ins.a])[i]
    elif op == OP_LOAD_I16:
        d = I64(ptr, ins.dst)
        for i in range(n):
            d[i] = (<const int16_t*>ptr[ins.a])[i]
    elif op == OP_LOAD_I32:
        d = I64(ptr, ins.dst)
        for i in range(n):
            d[i] = (<const int32_t*>ptr[ins.a])[i]
    elif op == OP_LOAD_U8:
        d = I64(ptr, ins.dst)
        for i in range(n):
            d[i] = (<const uint8_t*>ptr[ins.a])[i]
    elif op == OP_LOAD_U16:
        d = I64(ptr, ins.dst)
        for i in range(n):
            d[i] = (<const uint16_t*>ptr[ins.a])[i]
    elif op == OP_LOAD_U32:
        d = I64(ptr, ins.dst)
        for i in range(n):
            d[i] = (<const uint32_t*>ptr[ins.a])[i]
    elif op == OP_BCAST_I64:
        d = I64(ptr, ins.dst)
        for i in range(n):
            d[i] = k
    elif op == OP_BCAST_U8:
        memset(ptr[ins.dst], <int>k, n)
    # -- integer arithmetic ----------------------------------------------------------------
    elif op == OP_NEG:
        d = I64(ptr, ins.dst); a = I64(ptr, ins.a)
        for i in range(n):
            d[i] = -a[i]
    elif op == OP_ADD_RR:
        d = I64(ptr, ins.dst); a = I64(ptr, ins.a); b = I64(ptr, ins.b)
        for i in range(n):
            d[i] = a[i] + b[i]
    elif op == OP_ADD_RK:
        d = I64(ptr, ins.dst); a = I64(ptr, ins.a)
        for i in range(n):
            d[i] = a[i] + k
    elif op == OP_SUB_RR:
        d = I64(ptr, ins.dst); a = I64(ptr, ins.a); b = I64(ptr, ins.b)
        for i in range(n):
            d[i] = a[i] - b[i]
    elif op == OP_SUB_RK:
        d = I64(ptr, ins.dst); a = I64(ptr, ins.a)
        for i in range(n):
            d[i] = a[i] - k
    elif op == OP_SUB_KR:
        d = I64(ptr, ins.dst); a = I64(ptr, ins.a)
        for i in range(n):
            d[i] = k - a[i]
    elif op == OP_MUL_RR:
        d = I64(ptr, ins.dst); a = I64(ptr, ins.a); b = I64(ptr, ins.b)
        for i in range(n):
            d[i] = a[i] * b[i]
    elif op == OP_MUL_RK:
        d = I64(ptr, ins.dst); a = I64(ptr, ins.a)
        for i in range(n):
            d[i] = a[i] * k
    elif op == OP_MIN_RR:
        d = I64(ptr, ins.dst); a = I64(ptr, ins.a); b = I64(ptr, ins.b)
        for i in range(n):
            d[i] = a[i] if a[i] < b[i] else b[i]
    elif op == OP_MIN_RK:
        d = I64(ptr, ins.dst); a = I64(ptr, ins.a)
        for i in range(n):
            d[i] = a[i] if a[i] < k else k
    elif op == OP_MAX_RR:
        d = I64(ptr, ins.dst); a = I64(ptr, ins.a); b = I64(ptr, ins.b)
        for i in range(n):
            d[i] = a[i] if a[i] > b[i] else b[i]
    elif op == OP_MAX_RK:
        d = I64(ptr, ins.dst); a = I64(ptr, ins.a)
        for i in range(n):
            d[i] = a[i] if a[i] > k else k
    elif op == OP_ABS:
        d = I64(ptr, ins.dst); a = I64(ptr, ins.a)
        for i in range(n):
            d[i] = a[i] if a[i] >= 0 else -a[i]
    elif op == OP_DIVR_RK:
        d = I64(ptr, ins.dst); a = I64(ptr, ins.a)
        for i in range(n):
            d[i] = fc_div_round(a[i], k, ins.k2)
    elif op == OP_SELECT_I64:
        d = I64(ptr, ins.dst); au = U8(ptr, ins.a); b = I64(ptr, ins.b); c = I64(ptr, ins.c)
        for i in range(n):
            d[i] = b[i] if au[i] else c[i]
    # -- calendar ------------------------------------------------------------------------------
    elif op == OP_ADD_MONTHS_RK:
        d = I64(ptr, ins.dst); a = I64(ptr, ins.a)
        for i in range(n):
            d[i] = fc_add_months(a[i], k, k2)
    elif op == OP_ADD_MONTHS_RR:
        d = I64(ptr, ins.dst); a = I64(ptr, ins.a); b = I64(ptr, ins.b)
        for i in range(n):
            d[i] = fc_add_months(a[i], b[i], k)
    # -- comparisons -------------------------------------------------------------------------
    elif op == OP_EQ_RR:
        du = U8(ptr, ins.dst); a = I64(ptr, ins.a); b = I64(ptr, ins.b)
        for i in range(n):
            du[i] = a[i] == b[i]
    elif op == OP_NE_RR:
        du = U8(ptr, ins.dst); a = I64(ptr, ins.a); b = I64(ptr, ins.b)
        for i in range(n):
            du[i] = a[i] != b[i]
    elif op == OP_LT_RR:
        du = U8(ptr, ins.dst); a = I64(ptr, ins.a); b = I64(ptr, ins.b)
        for i in range(n):
            du[i] = a[i] < b[i]
    elif op == OP_LE_RR:
        du = U8(ptr, ins.dst); a = I64(ptr, ins.a); b = I64(ptr, ins.b)
        for i in range(n):
            du[i] = a[i] <= b[i]
    elif op == OP_GT_RR:
        du = U8(ptr, ins.dst); a = I64(ptr, ins.a); b = I64(ptr, ins.b)
        for i in range(n):
            du[i] = a[i] > b[i]
    elif op == OP_GE_RR:
        du = U8(ptr, ins.dst); a = I64(ptr, ins.a); b = I64(ptr, ins.b)
        for i in range(n):
            du[i] = a[i] >= b[i]
    elif op == OP_EQ_RK:
        du = U8(ptr, ins.dst); a = I64(ptr, ins.a)
        for i in range(n):
            du[i] = a[i] == k
    elif op == OP_NE_RK:
        du = U8(ptr, ins.dst); a = I64(ptr, ins.a)
        for i in range(n):
            du[i] = a[i] != k
    elif op == OP_LT_RK:
        du = U8(ptr, ins.dst); a = I64(ptr, ins.a)
        for i in range(n):
            du[i] = a[i] < k
    elif op == OP_LE_RK:
        du = U8(ptr, ins.dst); a = I64(ptr, ins.a)
        for i in range(n):
            du[i] = a[i] <= k
    elif op == OP_GT_RK:
        du = U8(ptr, ins.dst); a = I64(ptr, ins.a)
        for i in range(n):
            du[i] = a[i] > k
    elif op == OP_GE_RK:
        du = U8(ptr, ins.dst); a = I64(ptr, ins.a)
        for i in range(n):
            du[i] = a[i] >= k
    elif op == OP_IN_LIST or op == OP_NOT_IN_LIST:
        du = U8(ptr, ins.dst); a = I64(ptr, ins.a); lst = aux + k
        for i in range(n):
            hit = 0
            for j in range(k2):
                hit |= a[i] == lst[j]
            du[i] = hit if op == OP_IN_LIST else hit ^ 1
    # -- booleans ------------------------------------------------------------------------------
    elif op == OP_AND_RR:
        du = U8(ptr, ins.dst); au = U8(ptr, ins.a); bu = U8(ptr, ins.b)
        for i in range(n):
            du[i] = au[i] & bu[i]
    elif op == OP_OR_RR:
        du = U8(ptr, ins.dst); au = U8(ptr, ins.a); bu = U8(ptr, ins.b)
        for i in range(n):
            du[i] = au[i] | bu[i]
    elif op == OP_AND_RK:
        du = U8(ptr, ins.dst); au = U8(ptr, ins.a)
        for i in range(n):
            du[i] = au[i] & <uint8_t>k
    elif op == OP_OR_RK:
        du = U8(ptr, ins.dst); au = U8(ptr, ins.a)
        for i in range(n):
            du[i] = au[i] | <uint8_t>k
    elif op == OP_EQ_U8_RR:
        du = U8(ptr, ins.dst); au = U8(ptr, ins.a); bu = U8(ptr, ins.b)
        for i in range(n):
            du[i] = au[i] == bu[i]
    elif op == OP_NE_U8_RR:
        du = U8(ptr, ins.dst); au = U8(ptr, ins.a); bu = U8(ptr, ins.b)
        for i in range(n):
            du[i] = au[i] != bu[i]
    elif op == OP_EQ_U8_RK:
        du = U8(ptr, ins.dst); au = U8(ptr, ins.a)
        for i in range(n):
            du[i] = au[i] == k
    elif op == OP_NE_U8_RK:
        du = U8(ptr, ins.dst); au = U8(ptr, ins.a)
        for i in range(n):
            du[i] = au[i] != k
    elif op == OP_NOT:
        du = U8(ptr, ins.dst); au = U8(ptr, ins.a)
        for i in range(n):
            du[i] = au[i] ^ 1
    elif op == OP_SELECT_U8:
        du = U8(ptr, ins.dst); au = U8(ptr, ins.a); bu = U8(ptr, ins.b); cu = U8(ptr, ins.c)
        for i in range(n):
            du[i] = bu[i] if au[i] else cu[i]
    # -- outputs ---------------------------------------------------------------------------------
    elif op == OP_FIRED:
        du = U8(ptr, ins.dst); au = U8(ptr, ins.a); bu = U8(ptr, ins.b)
        for i in range(n):
            du[i] = au[i] & bu[i]
    elif op == OP_FIRED_K:
        du = U8(ptr, ins.dst); bu = U8(ptr, ins.b)
        for i in range(n):
            du[i] = bu[i] & <uint8_t>k
    elif op == OP_AMOUNT:
        d = I64(ptr, ins.dst); a = I64(ptr, ins.a); bu = U8(ptr, ins.b)
        for i in range(n):
            d[i] = a[i] & -<int64_t>bu[i]
    elif op == OP_AMOUNT_K:
        d = I64(ptr, ins.dst); bu = U8(ptr, ins.b)
        for i in range(n):
            d[i] = k & -<int64_t>bu[i]
    elif op == OP_COPY_U8:
        memcpy(ptr[ins.dst], ptr[ins.a], n)
    elif op == OP_FAILED:
        du = U8(ptr, ins.dst); au = U8(ptr, ins.a); bu = U8(ptr, ins.b)
        for i in range(n):
            du[i] = bu[i] & (au[i] ^ 1)
    elif op == OP_REJECT:
        du = U8(ptr, ins.dst); au = U8(ptr, ins.a)
        for i in range(n):
            du[i] = du[i] & (au[i] ^ 1)
    elif op == OP_ZERO_U8:
        memset(ptr[ins.dst], 0, n)
    elif op == OP_ZERO_I64:
        memset(ptr[ins.dst], 0, n * 8)
    elif op == OP_TOTAL_COPY:
        memcpy(ptr[ins.dst], ptr[ins.a], n * 8)
    elif op == OP_TOTAL_ADD:
        d = I64(ptr, ins.dst); a = I64(ptr, ins.a)
        for i in range(n):
            d[i] = d[i] + a[i]
    elif op == OP_TOTAL_ADD_CHECKED:
        d = I64(ptr, ins.dst); a = I64(ptr, ins.a)
        for i in range(n):
            if fc_add_overflow(d[i], a[i], &d[i]):
                return ERR_OVERFLOW
    elif op == OP_ROLLUP:
        return rollup(ins, ptr, n, aux, acc, False)
    elif op == OP_ROLLUP_ONE:
        return rollup(ins, ptr, n, aux, acc, True)
    elif op == OP_WORKDAYS:
        return workdays(ins, ptr, n, aux)
    else:
        return ERR_OPCODE
    return ERR_NONE


cdef int run_blocks(const Instr* code, Py_ssize_t n_code, const int64_t* aux,
                    const Register* regs, Py_ssize_t n_regs, const uint8_t* enabled,
                    int64_t n_rows, int64_t block_rows, int64_t first, int64_t last,
                    char* scratch, char** ptr, int64_t* acc) noexcept nogil:
    """One thread's share: blocks first .. last - 1, instruction by instruction."""
    cdef Py_ssize_t r, pc
    cdef int64_t blk, start, n
    cdef int err
    cdef const Instr* ins
    for r in range(n_regs):
        if regs[r].kind == REG_SCRATCH:
            ptr[r] = scratch + <int64_t>regs[r].addr * block_rows * 8
    for blk in range(first, last):
        start = blk * block_rows
        n = n_rows - start
        if n > block_rows:
            n = block_rows
        for r in range(n_regs):
            if regs[r].kind == REG_VIEW:
                ptr[r] = <char*><uintptr_t>regs[r].addr + start * regs[r].itemsize
        for pc in range(n_code):
            ins = &code[pc]
            if ins.gate > 0:
                if not enabled[ins.gate - 1]:
                    continue
            elif ins.gate < 0:
                if enabled[-ins.gate - 1]:
                    continue
            err = step(ins, ptr, n, aux, acc)
            if err != ERR_NONE:
                return err
    return ERR_NONE


def run(const uint8_t[::1] code, const int64_t[::1] aux, const uint8_t[::1] registers,
        const uint8_t[::1] enabled, int64_t n_rows, int64_t block_rows, int64_t n_slots,
        int64_t[:, ::1] acc, int threads):
    """Run a validated, bound program over n_rows rows; return an ErrorCode (0 = success).

    ``code`` and ``registers`` are the raw bytes of INSTR_DTYPE / REG_DTYPE arrays; ``acc``
    has one row of per-payer accumulators per thread (zeroed by the caller), summed by the
    caller, so any number of threads gives the same integers.
    """
    cdef Py_ssize_t n_code = code.shape[0] // sizeof(Instr)
    cdef Py_ssize_t n_regs = registers.shape[0] // sizeof(Register)
    cdef int64_t n_blocks = (n_rows + block_rows - 1) // block_rows
    cdef int n_threads = threads
    cdef int t
    cdef int64_t first, last
    cdef int status = ERR_NONE
    cdef size_t scratch_bytes = <size_t>(n_slots if n_slots > 0 else 1) * block_rows * 8
    if n_blocks == 0:
        return ERR_NONE
    if n_threads > n_blocks:
        n_threads = <int>n_blocks
    if n_threads < 1:
        n_threads = 1
    if acc.shape[0] < n_threads:
        raise ValueError(f"acc has {acc.shape[0]} rows for {n_threads} threads")
    cdef const Instr* ins = <const Instr*>&code[0] if n_code else NULL
    cdef const Register* regs = <const Register*>&registers[0] if n_regs else NULL
    cdef const int64_t* aux_p = &aux[0] if aux.shape[0] else NULL
    cdef const uint8_t* enabled_p = &enabled[0] if enabled.shape[0] else NULL
    cdef int64_t* acc_p = &acc[0, 0] if acc.shape[1] else NULL
    cdef Py_ssize_t acc_stride = acc.shape[1]
    cdef char* scratch = <char*>calloc(n_threads, scratch_bytes)
    cdef char** ptrs = <char**>calloc(n_threads * (n_regs if n_regs else 1), sizeof(char*))
    cdef int* errors = <int*>calloc(n_threads, sizeof(int))
    if scratch == NULL or ptrs == NULL or errors == NULL:
        free(scratch); free(ptrs); free(errors)
        raise MemoryError("cannot allocate the kernel's block registers")
    try:
        with nogil:
            for t in prange(n_threads, num_threads=n_threads, schedule="static", chunksize=1):
                first = n_blocks * t // n_threads
                last = n_blocks * (t + 1) // n_threads
                errors[t] = run_blocks(
                    ins, n_code, aux_p, regs, n_regs, enabled_p, n_rows, block_rows,
                    first, last, scratch + t * scratch_bytes, ptrs + t * n_regs,
                    acc_p + t * acc_stride if acc_p != NULL else NULL,
                )
        for t in range(n_threads):
            if errors[t] != ERR_NONE and status == ERR_NONE:
                status = errors[t]
    finally:
        free(scratch)
        free(ptrs)
        free(errors)
    return status


# --- calendar months outside a program ----------------------------------------------------

def add_months(const int64_t[::1] days, int64_t months, int64_t mode, int64_t[::1] out):
    """``out[i]`` = ``days[i]`` moved by ``months`` calendar months, a missing day resolved
    by ``mode`` (_opcodes.ADD_MONTHS_MODES): what ADD_MONTHS_RK computes inside a program,
    for callers that need it on one column (the case roll-ups' window starts)."""
    cdef Py_ssize_t i, n = days.shape[0]
    if out.shape[0] != n:
        raise ValueError(f"add_months: {n} days but {out.shape[0]} outputs")
    with nogil:
        for i in range(n):
            out[i] = fc_add_months(days[i], months, mode)


# --- USCC check sums (rules/_uscc.py) ------------------------------------------------------

def uscc_codes(const uint8_t[:, ::1] mat, const uint32_t[:, ::1] tables, uint8_t[::1] out,
               uint8_t check_character, uint8_t org_check, uint8_t region_not_digits,
               uint8_t bad_character):
    """Problem codes of rows of 18 bytes into ``out``: rules/_uscc._matrix_problems in one pass.

    The packed sum of a row is the sum of its nine byte-pair look-ups in ``tables`` (built
    and documented in rules/_uscc.py); its fields are then tested in the same order as there,
    a later problem overriding an earlier one. Same uint32 arithmetic, so the same codes.
    """
    cdef Py_ssize_t m = mat.shape[0]
    cdef Py_ssize_t i
    cdef int k
    cdef uint32_t total, org
    cdef uint8_t code
    if mat.shape[1] != 18 or tables.shape[0] != 9 or tables.shape[1] != 65536 or out.shape[0] != m:
        raise ValueError("uscc_codes: expected an (m, 18) matrix, (9, 65536) tables and m outputs")
    with nogil:
        for i in range(m):
            total = 0
            for k in range(9):
                total += tables[k, <uint32_t>mat[i, 2 * k] | (<uint32_t>mat[i, 2 * k + 1] << 8)]
            org = total >> 17
            code = 0
            if (total & 511) % 31 != 0:
                code = check_character
            if org % 11 != 0 or org >= 64:
                code = org_check
            if (total & (7 << 9)) != 0:
                code = region_not_digits
            if (total & (31 << 12)) != 0:
                code = bad_character
            out[i] = code


# --- the USCCs a run has met (engine/_seen_keys.py) -----------------------------------------


cdef extern from *:
    void __builtin_prefetch(const void *address) noexcept nogil


cdef inline uint64_t _splitmix(uint64_t x) noexcept nogil:
    x = (x ^ (x >> 30)) * <uint64_t>0xBF58476D1CE4E5B9ULL
    x = (x ^ (x >> 27)) * <uint64_t>0x94D049BB133111EBULL
    return x ^ (x >> 31)


def uscc_set_codes(const uint8_t[:, ::1] mat, const uint8_t[::1] value, uint64_t[::1] code, uint16_t[::1] head):
    """The exact 64-bit code and the set number of rows of 18 bytes holding valid USCCs
    (engine/_seen_keys.uscc_codes in one pass; ``value``: a byte's value in GB 32100's set)."""
    cdef Py_ssize_t m = mat.shape[0]
    cdef Py_ssize_t i
    cdef int k
    cdef uint64_t region, org, first
    if mat.shape[1] != 18 or value.shape[0] != 256 or code.shape[0] != m or head.shape[0] != m:
        raise ValueError("uscc_set_codes: expected an (m, 18) matrix, 256 values and m outputs")
    with nogil:
        for i in range(m):
            first = <uint64_t>value[mat[i, 0]] * 31 + value[mat[i, 1]]
            region = 0
            for k in range(2, 8):
                region = region * 10 + value[mat[i, k]]
            org = 0
            for k in range(8, 16):
                org = org * 31 + value[mat[i, k]]
            code[i] = org | (region << 40) | ((first & 15) << 60)
            head[i] = <uint16_t>(first >> 4)


def bloom_add(uint64_t[::1] words, const uint64_t[::1] codes, const uint16_t[::1] head, uint64_t[::1] mixed,
              uint8_t[::1] maybe):
    """Test and insert the USCCs (``head``, ``codes``) in order in the Bloom filter ``words``
    (a power of two of 64-bit words; each key sets 6 bits of one word): ``maybe[i]`` = 1 where
    all its bits were set already (met before, or earlier in ``codes``, or a false positive);
    ``mixed[i]``: the key's mix, a bijection of the code for a given set (what the spill keeps)."""
    cdef Py_ssize_t n = codes.shape[0]
    cdef uint64_t size = words.shape[0]
    cdef int shift = 64
    cdef Py_ssize_t i
    cdef uint64_t x, mask, w
    cdef Py_ssize_t ahead = 16  # words asked of memory this many keys before they are tested
    while shift > 0 and (<uint64_t>1 << (64 - shift)) < size:
        shift -= 1
    if head.shape[0] != n or mixed.shape[0] != n or maybe.shape[0] != n or size < 2 or (<uint64_t>1 << (64 - shift)) != size:
        raise ValueError("bloom_add: expected n heads, mixes and flags, and a power of two (>= 2) of words")
    with nogil:
        for i in range(n):
            if i + ahead < n:
                x = _splitmix(codes[i + ahead] ^ (<uint64_t>head[i + ahead] * <uint64_t>0x9E3779B97F4A7C15ULL))
                __builtin_prefetch(&words[x >> shift])
            x = _splitmix(codes[i] ^ (<uint64_t>head[i] * <uint64_t>0x9E3779B97F4A7C15ULL))
            mixed[i] = x
            w = x >> shift
            mask = ((<uint64_t>1 << (x & 63)) | (<uint64_t>1 << ((x >> 6) & 63)) | (<uint64_t>1 << ((x >> 12) & 63))
                    | (<uint64_t>1 << ((x >> 18) & 63)) | (<uint64_t>1 << ((x >> 24) & 63)) | (<uint64_t>1 << ((x >> 30) & 63)))
            maybe[i] = (words[w] & mask) == mask
            words[w] |= mask


# --- text counts of a CSV batch (_validate_numbers._integer_text) --------------------------

ctypedef fused text_offset_t:
    int32_t
    int64_t


def plain_integers(const text_offset_t[::1] offsets, const uint8_t[::1] data, int64_t[::1] out, uint8_t[::1] plain):
    """``plain[i]`` = 1 where text ``i`` (``data[offsets[i]:offsets[i + 1]]``) is 1 to 18 ASCII
    digits, and ``out[i]`` its value (0 elsewhere): in one pass, what finding those rows in numpy
    and casting them with Arrow behind a validity bitmap did in several (~10 ms a count column
    of a batch, in every batch of a registry whose count columns have a bad cell)."""
    cdef Py_ssize_t n = offsets.shape[0] - 1
    cdef Py_ssize_t i
    cdef int64_t at, stop, value
    cdef uint8_t digit, ok
    if n < 0 or out.shape[0] != n or plain.shape[0] != n:
        raise ValueError("plain_integers: expected n + 1 offsets and n outputs")
    if n and (offsets[0] < 0 or offsets[n] > data.shape[0]):
        raise ValueError("plain_integers: offsets beyond the data")
    with nogil:
        for i in range(n):
            at, stop = offsets[i], offsets[i + 1]
            ok = 1 <= stop - at <= 18
            value = 0
            while ok and at < stop:
                digit = data[at] - 48
                ok = digit <= 9
                value = value * 10 + digit
                at += 1
            out[i] = value if ok else 0
            plain[i] = ok


def usual_booleans(const text_offset_t[::1] offsets, const uint8_t[::1] data, int8_t[::1] out):
    """``out[i]`` = which of "false", "true", "0", "1" text ``i`` is, exactly (0 to 3), or -1
    (another text): what a hash lookup per row gave at ~9 ms a boolean column of a batch
    (_validate_coded._usual_spellings), in one pass."""
    cdef Py_ssize_t n = offsets.shape[0] - 1
    cdef Py_ssize_t i
    cdef int64_t at, length
    cdef int8_t which
    if n < 0 or out.shape[0] != n:
        raise ValueError("usual_booleans: expected n + 1 offsets and n outputs")
    if n and (offsets[0] < 0 or offsets[n] > data.shape[0]):
        raise ValueError("usual_booleans: offsets beyond the data")
    with nogil:
        for i in range(n):
            at, length = offsets[i], offsets[i + 1] - offsets[i]
            which = -1
            if length == 1:
                if data[at] == 48:
                    which = 2
                elif data[at] == 49:
                    which = 3
            elif length == 4:
                if data[at] == 116 and data[at + 1] == 114 and data[at + 2] == 117 and data[at + 3] == 101:
                    which = 1
            elif length == 5:
                if (data[at] == 102 and data[at + 1] == 97 and data[at + 2] == 108 and data[at + 3] == 115
                        and data[at + 4] == 101):
                    which = 0
            out[i] = which
