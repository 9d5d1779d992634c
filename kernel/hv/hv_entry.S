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

/* Store the 14 GPRs but RSP and RAX into the array at \base (encoding
 * order); the caller stores RAX (it holds the base). */
.macro SAVE_GPRS base
	movq %rcx, 8(\base)
	movq %rdx, 16(\base)
	movq %rbx, 24(\base)
	movq %rbp, 40(\base)
	movq %rsi, 48(\base)
	movq %rdi, 56(\base)
	movq %r8, 64(\base)
	movq %r9, 72(\base)
	movq %r10, 80(\base)
	movq %r11, 88(\base)
	movq %r12, 96(\base)
	movq %r13, 104(\base)
	movq %r14, 112(\base)
	movq %r15, 120(\base)
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

/* void hv_svm_run(struct hv_svm_ctx *c): one VMRUN (APM Vol. 2 15.5).
 * RAX and RSP travel in the VMCB; the other GPRs in c->gpr. */
	.globl hv_svm_run
hv_svm_run:
	pushq %rbx
	pushq %rbp
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	pushq %rdi                      /* c, at 0(%rsp) from here on */
	movq 24(%rdi), %rsi
	movq 32(%rdi), %rbx
	FPU_SWAP %rsi, %rbx, 40(%rdi)
	movq 0(%rsp), %rax
	movq 0(%rax), %rax              /* c->gpr */
	LOAD_GPRS %rax                  /* RAX too; replaced just below */
	movq 0(%rsp), %rax
	movq 8(%rax), %rax              /* the guest VMCB's physical address */
	/* GIF=0 holds every interrupt until STGI; IF=1 lets a physical
	 * interrupt that arrives in the guest exit it (V_INTR_MASKING and
	 * the INTR intercept), after which GIF is 0 again. */
	clgi
	sti
	vmload %rax                     /* guest FS, GS, TR, LDTR, syscall MSRs */
	vmrun %rax
	vmsave %rax
	/* Host RSP, RIP and RAX are back; the other GPRs are the guest's. */
	pushq %rax
	movq 8(%rsp), %rax
	movq 0(%rax), %rax
	SAVE_GPRS %rax
	popq %rax
	movq 0(%rsp), %rdi
	movq 16(%rdi), %rax
	vmload %rax                     /* ferry's FS, GS, TR, LDTR again */
	/* IF off before GIF on: a pending tick stays pending until the run
	 * loop opens its interrupt window. */
	cli
	stgi
	movq 32(%rdi), %rsi
	movq 24(%rdi), %rbx
	FPU_SWAP %rsi, %rbx, 40(%rdi)
	popq %rdi
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %rbp
	popq %rbx
	ret

/* void hv_vmx_run(struct hv_vmx_ctx *c): one VMLAUNCH or VMRESUME (SDM
 * Vol. 3C 26). RSP and RIP travel in the VMCS; the other GPRs in c->gpr.
 * The VMCS's HOST_RIP is hv_vmx_exit, its HOST_RSP the stack pointer
 * written just before entry (c at 0(%rsp) there). */
#define VMCS_HOST_RSP 0x6c14
	.globl hv_vmx_run
	.globl hv_vmx_exit
hv_vmx_run:
	pushq %rbx
	pushq %rbp
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	pushq %rdi                      /* c, at 0(%rsp) from here on */
	movq $0, 40(%rdi)               /* c->failed */
	movq 16(%rdi), %rsi
	movq 24(%rdi), %rbx
	FPU_SWAP %rsi, %rbx, 32(%rdi)
	movq $VMCS_HOST_RSP, %rax
	vmwrite %rsp, %rax
	jbe 3f                          /* VMfail: CF or ZF */
	movq 0(%rsp), %rax
	cmpq $0, 8(%rax)                /* launched? flags survive the loads */
	movq 0(%rax), %rax              /* c->gpr */
	LOAD_GPRS %rax
	jne 1f
	vmlaunch
	jmp 2f
1:	vmresume
2:	/* Only reached when the entry itself failed (VMfail): the guest
	 * registers are loaded but never ran; c->failed reports it. */
3:	movq 0(%rsp), %rdi
	movq $1, 40(%rdi)
	jmp 4f

hv_vmx_exit:
	/* Every VM exit lands here with HOST_RSP: c at 0(%rsp); all GPRs
	 * but RSP are the guest's. */
	pushq %rax
	movq 8(%rsp), %rax
	movq 0(%rax), %rax              /* c->gpr */
	SAVE_GPRS %rax
	popq %rcx                       /* the guest's RAX */
	movq %rcx, 0(%rax)
	movq 0(%rsp), %rdi
4:	movq 24(%rdi), %rsi
	movq 16(%rdi), %rbx
	FPU_SWAP %rsi, %rbx, 32(%rdi)
	popq %rdi
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %rbp
	popq %rbx
	ret

	.section .note.GNU-stack,"",@progbits
