#ifndef FINSCOPE_CLZMA_SHIM_H
#define FINSCOPE_CLZMA_SHIM_H
#include <lzma.h>
#endif
