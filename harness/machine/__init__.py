"""Real machines over SSH: inventory, transport, remote boots, and a QEMU lab machine.

A machine is reached with paramiko (pinned host key, key authentication only),
boots the kernel under test with kexec (or GRUB's one-shot entry, ``oneshot``),
and comes back to its own kernel by itself (the test kernel panics or
reboots); a panic is also read back from its pstore (``pstore``). With kexec
the harness writes only ``Machine.workdir`` on the machine (and removes the
pstore entries of its own boots). ``booter.MachineBooter`` is the pipeline's
boot stage for ``--machine`` (see ``pipeline.choose_booter``).
"""
