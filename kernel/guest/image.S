/* image.S: the workload image, linked into ferry's rodata. */
	.section .rodata
	.balign 16
	.globl guest_image_start, guest_image_end
guest_image_start:
	.incbin GUEST_BIN
guest_image_end:
	.section .note.GNU-stack,"",@progbits
