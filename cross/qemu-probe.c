/*
 * Does this qemu emulate two x86 memory-operand rules the AVX2 kernels and the
 * SIMDe-translated NEON table rely on, at the end of a readable page?
 *   maskload: vmaskmovps reads (and can fault on) only the lanes its mask selects;
 *   fma-ss:   vfmadd231ss reads 4 bytes, not 16.
 * QEMU 7.2 (Debian 12) gets both wrong: each faults here, while real CPUs do not.
 * scripts/cross-check runs it under qemu -cpu Haswell; tables built with -mavx2
 * -mfma are only run under a qemu that passes. Prints one word per rule.
 * Built for x86 with the build machine's compiler (no -mavx2: inline asm only).
 */
#define _DEFAULT_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

/* The last float of a readable page that is followed by an inaccessible one. */
static float *last_float_of_page(void)
{
    long page = sysconf(_SC_PAGESIZE);
    unsigned char *m = mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED || mprotect(m + page, (size_t)page, PROT_NONE) != 0)
        return NULL;
    float *p = (float *)(m + page) - 1;
    *p = 3.0f;
    return p;
}

static void maskload(float *p)
{
    static const int mask[8] = {-1, 0, 0, 0, 0, 0, 0, 0};
    float out;
    __asm__ volatile("vmovdqu %2, %%ymm1\n\t"
                     "vmaskmovps %1, %%ymm1, %%ymm0\n\t"
                     "vmovss %%xmm0, %0\n\t"
                     "vzeroupper"
                     : "=m"(out)
                     : "m"(*p), "m"(mask)
                     : "xmm0", "xmm1");
}

static void fma_ss(float *p)
{
    float out;
    __asm__ volatile("vxorps %%xmm0, %%xmm0, %%xmm0\n\t"
                     "vfmadd231ss %1, %%xmm0, %%xmm0\n\t"
                     "vmovss %%xmm0, %0"
                     : "=m"(out)
                     : "m"(*p)
                     : "xmm0");
}

/* Runs one rule in a child, so a fault only ends the child. */
static int survives(void (*rule)(float *))
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        float *p = last_float_of_page();
        if (!p)
            _exit(2);
        rule(p);
        _exit(0);
    }
    int status;
    if (pid < 0 || waitpid(pid, &status, 0) != pid)
        return 0;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

int main(void)
{
    int ok1 = survives(maskload), ok2 = survives(fma_ss);
    printf("maskload=%s fma-ss=%s\n", ok1 ? "ok" : "faults", ok2 ? "ok" : "faults");
    return ok1 && ok2 ? 0 : 1;
}
