#include "kernels.h"

BNORM_DEFINE_KERNELS(BNORM_ISA_NEON, neon);
