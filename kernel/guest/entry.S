/* entry.S: the first bytes of every workload image (see hypercall.h).
 *
 * Offset 0: the entry point; offset GUEST_HC_GATE_OFFSET (16): the
 * hypercall gate, four bytes ferry overwrites at load time with the
 * backend's trapping instruction and a RET. Until patched the gate is two
 * UD2s, so an unpatched image faults instead of running on. */
	.section .text.entry, "ax"
	.globl _start
	.hidden _start
_start:
	jmp 1f
	.balign 16, 0x90
	.globl hc_gate
	.hidden hc_gate
hc_gate:
	ud2
	ud2
	.balign 16, 0x90
1:	/* RDI = struct guest_boot *, RSP = stack top (set by ferry). */
	andq $-16, %rsp
	call guest_main
	/* guest_main returned: exit with its status, forever. */
2:	movq %rax, %rdi
	movq $5, %rax   /* HC_EXIT */
	call hc_gate
	jmp 2b

	.section .note.GNU-stack,"",@progbits
