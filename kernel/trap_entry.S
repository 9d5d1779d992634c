/* trap_entry.S: the 256 IDT entry stubs and their common path.
 *
 * Each stub is 16-byte aligned and at most 16 bytes long, so stub n sits at
 * trap_stubs + 16 * n (trap.c relies on this). Vectors without a hardware
 * error code push 0 so every frame has the same shape (struct trap_frame). */

	.text
	.align 16
	.globl trap_stubs
trap_stubs:
	.set vec, 0
	.rept 256
	.align 16
	.if (vec == 8) || ((vec >= 10) && (vec <= 14)) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
	.else
	pushq $0
	.endif
	pushq $vec
	jmp trap_common
	.set vec, vec + 1
	.endr

trap_common:
	cld
	pushq %rax
	pushq %rbx
	pushq %rcx
	pushq %rdx
	pushq %rsi
	pushq %rdi
	pushq %rbp
	pushq %r8
	pushq %r9
	pushq %r10
	pushq %r11
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	movq %rsp, %rdi         /* struct trap_frame * */
	movq %rsp, %rbx         /* callee-saved: the frame, to come back to */
	/* Save FP/SSE state so C handlers may use SSE. Legacy SSE leaves the
	 * upper YMM/ZMM halves alone, and handlers use no AVX. */
	subq $512, %rsp
	andq $-16, %rsp
	fxsave64 (%rsp)
	call trap_dispatch
	fxrstor64 (%rsp)
	movq %rbx, %rsp
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %r11
	popq %r10
	popq %r9
	popq %r8
	popq %rbp
	popq %rdi
	popq %rsi
	popq %rdx
	popq %rcx
	popq %rbx
	popq %rax
	addq $16, %rsp          /* vector, error */
	iretq

	.section .note.GNU-stack,"",@progbits
