/* mig_env.h: everything the migration engine (kernel/mig/) takes from the
 * machine it runs on, and nothing more: a clock, pages for its own
 * buffers, the guest (its memory, dirty log, run state and throttle), the
 * guest's CPU and device state, and a transport (mig_tcp.h's functions).
 *
 * ferry's kernel implements it over the hypervisor, the dirty log, the
 * page allocator and lwIP (kernel/mig_env.c, net/mig_tcp.c); the host
 * simulator (tests/sim/) over a simulated guest, link and clock, so the
 * same engine runs in unit tests and answers what this machine cannot
 * (docs/migration.md, "The engine on the host"). The engine calls nothing
 * else outside kernel/mig/, codec/ and the C library: the host build
 * fails to load if it does.
 *
 * Single-threaded: every call comes from the engine's poll. */
#ifndef FERRY_MIG_ENV_H
#define FERRY_MIG_ENV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hv.h"            /* struct hv_vm, struct hv_cpu_state: the types only */
#include "mig_tcp.h"       /* the transport */
#include "stream_format.h" /* struct stream_cpu_state */

/* ---- the clock ---- */

uint64_t menv_now_ns(void);          /* monotonic */
uint64_t menv_tsc_hz(void);          /* the guest's TSC rate (GUEST_INFO) */
uint64_t menv_entropy(void);         /* bits for a migration id (unique, not secret) */

/* ---- the engine's own memory: 4 KiB pages ---- */

void *menv_alloc(size_t npages, bool zero); /* NULL: none left */
void menv_free(void *p, size_t npages);
uint64_t menv_free_bytes(void);      /* what menv_alloc could still give */

/* ---- the guest ---- */

/* The one guest (NULL: none). The engine reads its state, size, npages,
 * workload and plat, and sets state (stop, resume). */
struct hv_vm *menv_guest(void);
/* Guest page pfn, mapped for the engine (NULL: outside guest memory),
 * and what the engine is about to do with it: the kernel ignores use, the
 * simulator charges each its measured time. */
enum menv_use {
	MENV_SEND,  /* read to send: the zero check, a copy into the stream, its CRC */
	MENV_HASH,  /* read to hash: the digest, a region's hash */
	MENV_WRITE, /* written by the destination as a record arrives (or hashed by it) */
};
uint8_t *menv_page(struct hv_vm *vm, uint64_t pfn, enum menv_use use);
/* The destination's guest: created stopped for an incoming stream (0), or
 * -1 with why printed. */
int menv_guest_create(uint64_t size, unsigned workload);
void menv_guest_destroy(void);
const char *menv_backend(void);      /* this machine's backend: "ept", "npt", "pte" */
/* Can this backend run a PC-platform (OS) guest? 0, or -1 with why. */
int menv_platform_check(char *why, size_t n);
/* A built-in workload moved between backends: point its hypercall gate
 * at this backend's instruction. */
void menv_patch_gate(struct hv_vm *vm);
const char *menv_workload_name(unsigned workload);
int menv_workload_parse(const char *name); /* -1: unknown */
/* The guest gets pct per cent less of the CPU (0 lifts it). */
void menv_set_throttle(struct hv_vm *vm, uint32_t pct);
/* Write-protect (on) or unprotect count regions of HV_REGION_PAGES from
 * first, the change visible to the guest at once. A write into a
 * protected region calls vm->write_fault. */
void menv_protect(struct hv_vm *vm, uint64_t first, uint64_t count, bool on);
/* Drop stale translations after write_fault made a region writable. */
void menv_flush(struct hv_vm *vm);

/* ---- the dirty log ---- */

void menv_dirty_start(struct hv_vm *vm);
/* Or the pages written since the last harvest into bitmap (one bit a
 * page) and return how many there were. */
uint64_t menv_dirty_harvest(struct hv_vm *vm, uint64_t *bitmap);
void menv_dirty_stop(struct hv_vm *vm);

/* ---- CPU and device state ---- */

int menv_cpu_capture(struct hv_vm *vm, struct hv_cpu_state *s);
/* Can this machine load s? 0, or -1 with why. */
int menv_cpu_check(const struct hv_vm *vm, const struct hv_cpu_state *s, char *why, size_t n);
int menv_cpu_restore(struct hv_vm *vm, const struct hv_cpu_state *s, char *why, size_t n);
/* Between the hypervisor's form and the wire's (mig_cpu.c in the kernel). */
uint32_t mig_cpu_mode(const char *backend);          /* STREAM_MODE_* */
void mig_cpu_to_wire(const struct hv_cpu_state *s, struct stream_cpu_state *c);
uint32_t mig_cpu_xsave_len(void);                    /* bytes of XSAVE area to send */
/* Fill s from the wire; backend named after mode. Returns 0, or -1 with
 * why (a mode or XSAVE length this ferry cannot take). */
int mig_cpu_from_wire(const struct stream_cpu_state *c, const uint8_t *xsave, uint32_t mode,
		      struct hv_cpu_state *s, char *why, size_t n);
/* An OS guest's devices (vm->plat): saved into buf (bytes, 0: no room),
 * checked, loaded (and the vCPU's event state into s). */
size_t menv_dev_save(const struct hv_vm *vm, const struct hv_cpu_state *s, void *buf, size_t len);
int menv_dev_check(const void *buf, size_t len, char *why, size_t n);
void menv_dev_load(struct hv_vm *vm, const void *buf, struct hv_cpu_state *s);

#endif
