#ifndef FINSCOPE_CZSTD_SHIM_H
#define FINSCOPE_CZSTD_SHIM_H
#include <zstd.h>
#endif
