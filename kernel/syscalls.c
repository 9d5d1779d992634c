/* syscalls.c: the system calls newlib is built to call (its
 * MISSING_SYSCALL_NAMES configuration: sbrk, write, read, ...).
 *
 * Output goes to the serial console; the heap grows page by page in its
 * own address range (PAGING_HEAP_BASE) backed by pmm pages, so it needs no
 * contiguous physical memory, and returns whole pages when it shrinks.
 * Everything else fails with a proper errno:
 * there are no files and no processes. */
#include <errno.h>
#include <reent.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "console.h"
#include "paging.h"
#include "pmm.h"
#include "serial.h"
#include "x86.h"

/* newlib has two errnos: the global `errno` its _r wrappers read after a
 * system call (and copy into the caller's reentrancy struct), and that
 * struct's _errno, which <errno.h> names for everyone else. A stub that
 * fails sets both, so direct callers see the error too. */
#undef errno
extern int errno;

static int sys_fail(int e)
{
	errno = e;
	_REENT->_errno = e;
	return -1;
}

/* Prototypes for the names newlib calls (it declares some, not all). */
void *sbrk(ptrdiff_t incr);
int write(int fd, const void *buf, size_t n);
int read(int fd, void *buf, size_t n);
int close(int fd);
int fstat(int fd, struct stat *st);
int isatty(int fd);
off_t lseek(int fd, off_t off, int whence);
int kill(int pid, int sig);
int getpid(void);
void _exit(int status) __attribute__((noreturn));

static uint64_t heap_end = PAGING_HEAP_BASE;    /* current break */
static uint64_t heap_mapped = PAGING_HEAP_BASE; /* end of mapped pages */

/* Give the whole pages above the break back to pmm. */
static void unmap_above_break(void)
{
	uint64_t keep = (heap_end + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
	while (heap_mapped > keep) {
		heap_mapped -= PAGE_SIZE;
		pmm_free((void *)(uintptr_t)paging_unmap_page(heap_mapped), 1);
	}
}

void *sbrk(ptrdiff_t incr)
{
	uint64_t old = heap_end;
	if (incr < 0) {
		if ((uint64_t)-incr > heap_end - PAGING_HEAP_BASE) {
			sys_fail(EINVAL);
			return (void *)-1;
		}
		heap_end -= (uint64_t)-incr;
		unmap_above_break();
		return (void *)(uintptr_t)old;
	}
	if ((uint64_t)incr > PAGING_HEAP_BASE + PAGING_HEAP_MAX - heap_end) {
		sys_fail(ENOMEM);
		return (void *)-1;
	}
	uint64_t want = heap_end + (uint64_t)incr;
	while (heap_mapped < want) {
		void *pg = pmm_alloc(1, 0);
		if (!pg || paging_map_page(heap_mapped, (uint64_t)(uintptr_t)pg, PTE_RW | PTE_NX) < 0) {
			if (pg)
				pmm_free(pg, 1);
			/* A request larger than free memory must not keep what it
			 * took on the way (a refused 1 GiB XBZRLE cache would leave
			 * nothing for anything else). */
			unmap_above_break();
			sys_fail(ENOMEM);
			return (void *)-1;
		}
		heap_mapped += PAGE_SIZE;
	}
	heap_end = want;
	return (void *)(uintptr_t)old;
}

int write(int fd, const void *buf, size_t n)
{
	if (fd != 1 && fd != 2) {
		return sys_fail(EBADF);
	}
	console_write(buf, n);
	return (int)n;
}

int read(int fd, void *buf, size_t n)
{
	(void)buf;
	(void)n;
	/* The console is line-driven by the main loop, never via stdin. */
	return sys_fail(fd == 0 ? EAGAIN : EBADF);
}

int close(int fd)
{
	(void)fd;
	return sys_fail(EBADF);
}

int fstat(int fd, struct stat *st)
{
	if (fd < 0 || fd > 2) {
		return sys_fail(EBADF);
	}
	st->st_mode = S_IFCHR; /* so newlib line-buffers stdout */
	st->st_blksize = 0;
	return 0;
}

int isatty(int fd)
{
	if (fd >= 0 && fd <= 2)
		return 1;
	sys_fail(EBADF);
	return 0;
}

off_t lseek(int fd, off_t off, int whence)
{
	(void)off;
	(void)whence;
	return sys_fail((fd >= 0 && fd <= 2) ? ESPIPE : EBADF);
}

int kill(int pid, int sig)
{
	(void)pid;
	(void)sig;
	return sys_fail(ESRCH);
}

int getpid(void)
{
	return 1;
}

void _exit(int status)
{
	char msg[] = "\n*** ferry: exit(  ) called; halted\n";
	msg[17] = (char)('0' + ((status / 10) % 10));
	msg[18] = (char)('0' + (status % 10));
	serial_write(msg, sizeof(msg) - 1);
	x86_cli();
	for (;;)
		x86_hlt();
}
