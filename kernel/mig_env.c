/* mig_env.c: the migration engine's environment (mig/mig_env.h) on ferry's
 * own machine: the hypervisor's guest, the dirty log, the page allocator
 * and the clock. The transport is net/mig_tcp.c. */
#include "clock.h"
#include "dirtylog.h"
#include "hv.h"
#include "mig/mig_env.h"
#include "mig_tcp.h"
#include "pmm.h"
#include "vm.h"
#include "x86.h"

uint64_t menv_now_ns(void)
{
	return clock_ns();
}

uint64_t menv_tsc_hz(void)
{
	return clock_tsc_hz();
}

uint64_t menv_entropy(void)
{
	/* No RNG yet: the TSC and this instance's address. */
	return x86_rdtsc() ^ ((uint64_t)mig_tcp_local_ip() << 32);
}

void *menv_alloc(size_t npages, bool zero)
{
	return pmm_alloc(npages, zero ? PMM_ZERO : 0);
}

void menv_free(void *p, size_t npages)
{
	pmm_free(p, npages);
}

uint64_t menv_free_bytes(void)
{
	struct pmm_stats st;
	pmm_get_stats(&st);
	return st.free_pages * 4096;
}

struct hv_vm *menv_guest(void)
{
	return hv_guest();
}

uint8_t *menv_page(struct hv_vm *vm, uint64_t pfn, enum menv_use use)
{
	(void)use;
	return hv_gpa_ptr(vm, pfn << 12, 4096);
}

int menv_guest_create(uint64_t size, unsigned workload)
{
	return hv_guest_create_incoming(size, workload);
}

void menv_guest_destroy(void)
{
	hv_guest_destroy();
}

const char *menv_backend(void)
{
	return hv_backend()->name;
}

int menv_platform_check(char *why, size_t n)
{
	return vm_backend_check(hv_backend(), why, n);
}

void menv_patch_gate(struct hv_vm *vm)
{
	hv_patch_gate(vm);
}

const char *menv_workload_name(unsigned workload)
{
	return hv_workload_name(workload);
}

int menv_workload_parse(const char *name)
{
	return hv_workload_parse(name);
}

void menv_set_throttle(struct hv_vm *vm, uint32_t pct)
{
	hv_set_throttle(vm, pct);
}

void menv_protect(struct hv_vm *vm, uint64_t first, uint64_t count, bool on)
{
	hv_s2_protect(vm, first, count, on);
}

void menv_flush(struct hv_vm *vm)
{
	vm->ops->flush(vm);
}

void menv_dirty_start(struct hv_vm *vm)
{
	dirtylog_start(vm);
}

uint64_t menv_dirty_harvest(struct hv_vm *vm, uint64_t *bitmap)
{
	return dirtylog_harvest(vm, bitmap);
}

void menv_dirty_stop(struct hv_vm *vm)
{
	dirtylog_stop(vm);
}

int menv_cpu_capture(struct hv_vm *vm, struct hv_cpu_state *s)
{
	return hv_cpu_capture(vm, s);
}

int menv_cpu_check(const struct hv_vm *vm, const struct hv_cpu_state *s, char *why, size_t n)
{
	return hv_cpu_check(vm, s, why, n);
}

int menv_cpu_restore(struct hv_vm *vm, const struct hv_cpu_state *s, char *why, size_t n)
{
	return hv_cpu_restore(vm, s, why, n);
}

size_t menv_dev_save(const struct hv_vm *vm, const struct hv_cpu_state *s, void *buf, size_t len)
{
	return vm_state_save(vm, s, buf, len);
}

int menv_dev_check(const void *buf, size_t len, char *why, size_t n)
{
	return vm_state_check(buf, len, why, n);
}

void menv_dev_load(struct hv_vm *vm, const void *buf, struct hv_cpu_state *s)
{
	vm_state_load(vm, buf, s);
}
