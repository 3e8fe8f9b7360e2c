/*
 * Double arithmetic rounded as IEEE double where C evaluates it in x87's extended
 * precision (FLT_EVAL_METHOD 2: 32-bit x86 without SSE2 math). There each operation
 * rounds to 64 bits, and an expression such as b - m * s reaches double (or float)
 * only where it is stored: one rounding from extended precision, or two in a row,
 * either of which can differ from the formula's rounding at every step. Between
 * begin and end the x87 precision control is 53 bits, so every operation rounds
 * once to double's precision (its exponent range stays wider, which no value here
 * reaches); end restores the caller's control word. Elsewhere both do nothing.
 * The "memory" clobbers keep the loads and stores of the code between them inside.
 * Keep conversions of doubles to integers out of it: GCC compiles them with a
 * control word it may have saved before begin (64-bit precision) and restores.
 */
#ifndef BNORM_X87_DOUBLE_H
#define BNORM_X87_DOUBLE_H

#include <float.h>

#if defined(__i386__) && defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD == 2

typedef unsigned short bnorm_x87_state;

static inline bnorm_x87_state bnorm_x87_double_begin(void)
{
    bnorm_x87_state old;
    __asm__ volatile("fnstcw %0" : "=m"(old));
    unsigned short cw = (unsigned short)((old & ~0x300u) | 0x200u);
    __asm__ volatile("fldcw %0" : : "m"(cw) : "memory");
    return old;
}

static inline void bnorm_x87_double_end(bnorm_x87_state old)
{
    __asm__ volatile("fldcw %0" : : "m"(old) : "memory");
}

#else

typedef int bnorm_x87_state;

static inline bnorm_x87_state bnorm_x87_double_begin(void)
{
    return 0;
}

static inline void bnorm_x87_double_end(bnorm_x87_state old)
{
    (void)old;
}

#endif

#endif /* BNORM_X87_DOUBLE_H */
