"""The guest side: the static init program and the initramfs that carries it."""
