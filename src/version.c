#include "bnorm.h"

#define STR_(x) #x
#define STR(x) STR_(x)

unsigned bnorm_version(void)
{
    return BNORM_VERSION;
}

const char *bnorm_version_string(void)
{
    return STR(BNORM_VERSION_MAJOR) "." STR(BNORM_VERSION_MINOR) "." STR(
        BNORM_VERSION_PATCH);
}

const char *bnorm_status_name(bnorm_status status)
{
    switch (status) {
    case BNORM_OK: return "BNORM_OK";
    case BNORM_ERR_NULL_POINTER: return "BNORM_ERR_NULL_POINTER";
    case BNORM_ERR_BAD_SHAPE: return "BNORM_ERR_BAD_SHAPE";
    case BNORM_ERR_BAD_STRIDE: return "BNORM_ERR_BAD_STRIDE";
    case BNORM_ERR_OVERFLOW: return "BNORM_ERR_OVERFLOW";
    case BNORM_ERR_ALIAS: return "BNORM_ERR_ALIAS";
    case BNORM_ERR_BAD_VALUE: return "BNORM_ERR_BAD_VALUE";
    case BNORM_ERR_BAD_ENUM: return "BNORM_ERR_BAD_ENUM";
    case BNORM_ERR_UNKNOWN_ISA: return "BNORM_ERR_UNKNOWN_ISA";
    case BNORM_ERR_UNSUPPORTED_ISA: return "BNORM_ERR_UNSUPPORTED_ISA";
    }
    return "unknown status";
}
