"""Stage 2, the boot: guest initramfs, QEMU command, accelerator choice, console driver."""
