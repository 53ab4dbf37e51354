#ifndef CRISP_CARCHIVE_SHIM_H
#define CRISP_CARCHIVE_SHIM_H
#include <archive.h>
#include <archive_entry.h>
#endif
