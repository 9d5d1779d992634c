/* version.c: the build id, passed in by the Makefile. */
#include "version.h"

#ifndef FERRY_BUILD_ID
#define FERRY_BUILD_ID "unknown"
#endif
#ifndef FERRY_BUILD_DATE
#define FERRY_BUILD_DATE "unknown"
#endif

const char ferry_build_id[] = FERRY_BUILD_ID;
const char ferry_build_date[] = FERRY_BUILD_DATE;
