#ifndef FINSCOPE_CZLIB_SHIM_H
#define FINSCOPE_CZLIB_SHIM_H
#include <zlib.h>
#endif
