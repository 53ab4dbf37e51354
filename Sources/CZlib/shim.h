#ifndef CRISP_CZLIB_SHIM_H
#define CRISP_CZLIB_SHIM_H
// The system zlib: SPDY/3 header blocks need deflate/inflate with a preset dictionary, which
// no Swift package here exposes (NIO's and compress-nio's zlib wrappers take no dictionary).
#include <zlib.h>
#endif
