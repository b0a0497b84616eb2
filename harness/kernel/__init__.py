"""Stage 1, the kernel: source, patch series, Kconfig request, build, and the arch table."""
