/* hv_entry.S: the guest entry and exit paths of the three backends: the
 * few instructions that must run with no compiler between them (GPR and
 * FPU state swaps around IRETQ / VMLAUNCH / VMRUN). */

#define GDT_KERNEL_DS 0x10

/* Swap FPU state: save to \save, restore from \load; mask in \mask
 * (0 = FXSAVE). Clobbers rax, rdx. */
.macro FPU_SWAP save, load, mask
	movq \mask, %rax
	testq %rax, %rax
	jz 91f
	movq %rax, %rdx
	shrq $32, %rdx
	xsave64 (\save)
	movq \mask, %rax
	movq %rax, %rdx
	shrq $32, %rdx
	xrstor64 (\load)
	jmp 92f
91:	fxsave64 (\save)
	fxrstor64 (\load)
92:
.endm

/* Load the 15 GPRs but RSP from the array at \base (encoding order), RAX
 * last (it may be the base). */
.macro LOAD_GPRS base
	movq 8(\base), %rcx
	movq 16(\base), %rdx
	movq 24(\base), %rbx
	movq 40(\base), %rbp
	movq 48(\base), %rsi
	movq 56(\base), %rdi
	movq 64(\base), %r8
	movq 72(\base), %r9
	movq 80(\base), %r10
	movq 88(\base), %r11
	movq 96(\base), %r12
	movq 104(\base), %r13
	movq 112(\base), %r14
	movq 120(\base), %r15
	movq 0(\base), %rax
.endm

	.text

/* void hv_pte_enter(struct hv_pte_ctx *c) */
	.globl hv_pte_enter
hv_pte_enter:
	pushq %rbx
	pushq %rbp
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	movq %rdi, %r12
	movq %rsp, 48(%r12)
	movq 56(%r12), %rsi
	movq 64(%r12), %rdi
	FPU_SWAP %rsi, %rdi, 72(%r12)
	/* IRETQ frame: SS, RSP, RFLAGS, CS, RIP (SDM Vol. 3A 6.14.3). */
	pushq 40(%r12)
	pushq 32(%r12)
	pushq 24(%r12)
	pushq 16(%r12)
	pushq 8(%r12)
	movq 0(%r12), %rax
	LOAD_GPRS %rax
	iretq

/* void hv_pte_leave(struct hv_pte_ctx *c): never returns to its caller. */
	.globl hv_pte_leave
hv_pte_leave:
	movq %rdi, %rbx
	movq 48(%rbx), %rsp
	/* The ring switch left null selectors in SS (and IRETQ to ring 3
	 * nulled DS/ES): reload ferry's. */
	movl $GDT_KERNEL_DS, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movq 56(%rbx), %rsi
	movq 72(%rbx), %rax
	testq %rax, %rax
	jz 1f
	movq %rax, %rdx
	shrq $32, %rdx
	xrstor64 (%rsi)
	jmp 2f
1:	fxrstor64 (%rsi)
2:	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %rbp
	popq %rbx
	ret

	.section .note.GNU-stack,"",@progbits
