"""Real machines over SSH: inventory, transport, remote boots, and a QEMU lab machine.

A machine is reached with paramiko (pinned host key, key authentication only),
boots the kernel under test with kexec, and comes back to its own kernel by
itself (the test kernel panics or reboots). The harness only ever writes one
directory on the machine (``Machine.workdir``). ``booter.MachineBooter`` is the
pipeline's boot stage for ``--machine`` (see ``pipeline.choose_booter``).
"""
