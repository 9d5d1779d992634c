/* version.h: what ferry build this is. */
#ifndef FERRY_VERSION_H
#define FERRY_VERSION_H

#define FERRY_VERSION "0.1.0"

/* "git describe" of the tree the image was built from, and the build date;
 * set by the Makefile in kernel/version.c only (so a new id rebuilds one file). */
extern const char ferry_build_id[];
extern const char ferry_build_date[];

#endif
