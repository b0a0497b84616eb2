// SPDX-License-Identifier: GPL-2.0
/*
 * kbulk guest init: the only userspace process of the test VM.
 *
 * Mounts what the tests need, runs the steps listed in /kbulk/plan (written
 * by the harness when it builds the initramfs), frames every step on the
 * console so the host can tell which step was running when something went
 * wrong, then reboots. The VM runs with -no-reboot, so the reboot ends QEMU
 * (tinyconfig kernels have no ACPI, so power-off would not).
 *
 * Plan lines (one step per line, '#' starts a comment):
 *   insmod <path> [module parameters...]   load a module, then unload it
 *   echo <text>                            print text on the console
 *   mempolicy <mode> [<node>[,<node>...]]  set init's task memory policy
 *                                          (bind, interleave, preferred,
 *                                          preferred_many, default); the
 *                                          next insmod's module init runs
 *                                          under it.  If it cannot be set,
 *                                          that insmod fails without loading.
 *
 * Statically linked, no dependencies beyond libc.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/mempolicy.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PLAN_PATH "/kbulk/plan"
#define MARK "kbulk-init: "

/*
 * errno of the last failed mempolicy step, 0 if it was set: a module must
 * not run under the default policy when its step asked for another one.
 */
static int mempolicy_error;

static void say(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int len;
	int fd = open("/dev/kmsg", O_WRONLY);

	va_start(ap, fmt);
	len = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (len < 0)
		return;
	if (len >= (int)sizeof(buf))
		len = sizeof(buf) - 1;
	/*
	 * Through /dev/kmsg so our lines are ordered with the kernel's own
	 * messages (module output) on the one console; stdout as fallback.
	 */
	if (fd >= 0) {
		if (write(fd, buf, len) < 0)
			fd = -1;
		close(fd);
	}
	if (fd < 0) {
		if (write(1, buf, len) < 0)
			return;
	}
}

static void mount_fs(const char *src, const char *dst, const char *type)
{
	mkdir(dst, 0755);
	if (mount(src, dst, type, 0, NULL) && errno != EBUSY)
		say(MARK "mount %s on %s failed: %s\n", type, dst, strerror(errno));
}

static const char *basename_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

/* Module name as the kernel knows it: file name without .ko, '-' -> '_'. */
static void module_name(const char *path, char *name, size_t size)
{
	size_t i;

	snprintf(name, size, "%s", basename_of(path));
	for (i = 0; name[i]; i++) {
		if (name[i] == '-')
			name[i] = '_';
		if (name[i] == '.') {
			name[i] = '\0';
			break;
		}
	}
}

static int step_insmod(char *args)
{
	char *path = strtok(args, " \t");
	char *params = strtok(NULL, "");
	char name[128];
	int fd, rc, err;

	if (!path) {
		say(MARK "insmod: missing path\n");
		return -1;
	}
	if (!params)
		params = "";
	module_name(path, name, sizeof(name));
	say(MARK "step begin insmod %s %s\n", name, params);
	if (mempolicy_error) {
		say(MARK "step end insmod %s rc=%d (not loaded: its mempolicy failed: %s)\n",
		    name, -mempolicy_error, strerror(mempolicy_error));
		return -1;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		say(MARK "step end insmod %s rc=%d (%s)\n", name, -errno, strerror(errno));
		return -1;
	}
	rc = syscall(SYS_finit_module, fd, params, 0);
	err = rc ? errno : 0;
	close(fd);
	if (rc == 0 && syscall(SYS_delete_module, name, O_NONBLOCK) != 0)
		say(MARK "rmmod %s failed: %s\n", name, strerror(errno));
	say(MARK "step end insmod %s rc=%d%s%s\n", name, -err, err ? " " : "",
	    err ? strerror(err) : "");
	return rc;
}

static const struct {
	const char *name;
	int mode;
} mpol_modes[] = {
	{ "default", MPOL_DEFAULT },
	{ "bind", MPOL_BIND },
	{ "interleave", MPOL_INTERLEAVE },
	{ "preferred", MPOL_PREFERRED },
	{ "preferred_many", MPOL_PREFERRED_MANY },
};

/* "mempolicy <mode> [n,n,...]": set_mempolicy(2) on init itself (libc has no wrapper). */
static void step_mempolicy(char *args)
{
	char *mode_name = strtok(args, " \t");
	char *nodes = strtok(NULL, " \t");
	unsigned long mask[2] = { 0, 0 };	/* nodes 0-63; the rest must stay 0 */
	char shown[128];	/* the node list as written: strtok() below cuts it */
	int mode = -1;
	size_t i;

	snprintf(shown, sizeof(shown), "%s", nodes ? nodes : "");

	for (i = 0; mode_name && i < sizeof(mpol_modes) / sizeof(mpol_modes[0]); i++)
		if (!strcmp(mode_name, mpol_modes[i].name))
			mode = mpol_modes[i].mode;
	mempolicy_error = EINVAL;
	if (mode < 0) {
		say(MARK "mempolicy: unknown mode '%s'\n", mode_name ? mode_name : "");
		return;
	}
	for (char *tok = nodes ? strtok(nodes, ",") : NULL; tok; tok = strtok(NULL, ",")) {
		char *end;
		long node = strtol(tok, &end, 10);

		if (*end || node < 0 || node > 63) {
			say(MARK "mempolicy: bad node '%s'\n", tok);
			return;
		}
		mask[0] |= 1UL << node;
	}
	/* maxnode counts bits and the kernel ignores the last one: 64 + 1. */
	if (syscall(SYS_set_mempolicy, mode, mode == MPOL_DEFAULT ? NULL : mask, 65)) {
		mempolicy_error = errno;
		say(MARK "mempolicy %s %s failed: %s\n", mode_name, shown, strerror(errno));
		return;
	}
	mempolicy_error = 0;
	say(MARK "mempolicy %s %s\n", mode_name, shown);
}

static void run_plan(void)
{
	char line[1024];
	FILE *plan = fopen(PLAN_PATH, "r");

	if (!plan) {
		say(MARK "no plan at %s: %s\n", PLAN_PATH, strerror(errno));
		return;
	}
	while (fgets(line, sizeof(line), plan)) {
		char *cmd, *rest;

		line[strcspn(line, "\n")] = '\0';
		cmd = strtok(line, " \t");
		if (!cmd || cmd[0] == '#')
			continue;
		rest = strtok(NULL, "");
		if (!strcmp(cmd, "insmod"))
			step_insmod(rest ? rest : "");
		else if (!strcmp(cmd, "mempolicy"))
			step_mempolicy(rest ? rest : "");
		else if (!strcmp(cmd, "echo"))
			say("%s\n", rest ? rest : "");
		else
			say(MARK "unknown plan step '%s' ignored\n", cmd);
	}
	fclose(plan);
}

int main(void)
{
	mount_fs("proc", "/proc", "proc");
	mount_fs("sysfs", "/sys", "sysfs");
	mount_fs("devtmpfs", "/dev", "devtmpfs");
	mount_fs("debugfs", "/sys/kernel/debug", "debugfs");

	say(MARK "start\n");
	run_plan();
	say(MARK "done\n");
	sync();
	reboot(RB_AUTOBOOT);
	/* Only reached if reboot failed: let the kernel complain loudly. */
	say(MARK "reboot failed: %s\n", strerror(errno));
	return 1;
}
