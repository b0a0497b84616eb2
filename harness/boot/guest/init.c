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
 *   memcg <bytes>                          run the next insmod step in a child
 *                                          memory cgroup with memory.max = bytes
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
#include <sys/types.h>
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

/* ---- memcg steps: the next insmod runs in a child memory cgroup ---- */

#define CGROUP_ROOT "/sys/fs/cgroup"

/* memory.max of the next insmod step's cgroup; 0: no cgroup. */
static unsigned long long pending_memcg_max;

/* What is recorded before and after the step, as "<file>:<key>" or "<file>". */
static const char *const memcg_keys[] = {
	"memory.current", "memory.peak",
	"memory.events:max", "memory.events:high", "memory.events:oom",
	"memory.events:oom_kill", "memory.events:oom_group_kill",
	"memory.stat:kernel", "memory.stat:anon", "memory.stat:file",
	"memory.stat:pgscan", "memory.stat:pgsteal",
	"memory.stat:pgscan_direct", "memory.stat:pgsteal_direct",
};

#define NR_MEMCG_KEYS (sizeof(memcg_keys) / sizeof(memcg_keys[0]))

static int write_str(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	int err = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, text, strlen(text)) < 0)
		err = -errno;
	close(fd);
	return err;
}

/* Value of @key in a "key value" file, or of a one-number file; -1: unknown. */
static long long read_key(const char *dir, const char *spec)
{
	char path[256], file[64], buf[8192];
	const char *colon = strchr(spec, ':');
	const char *key = colon ? colon + 1 : NULL;
	size_t keylen = key ? strlen(key) : 0;
	long long value = -1;
	char *line;
	ssize_t len;
	int fd;

	snprintf(file, sizeof(file), "%.*s", colon ? (int)(colon - spec) : 63, spec);
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (len <= 0)
		return -1;
	buf[len] = '\0';
	if (!key)
		return strtoll(buf, NULL, 10);
	for (line = buf; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
		if (!strncmp(line, key, keylen) && line[keylen] == ' ') {
			value = strtoll(line + keylen + 1, NULL, 10);
			break;
		}
	}
	return value;
}

static void memcg_snapshot(const char *dir, long long *values)
{
	size_t i;

	for (i = 0; i < NR_MEMCG_KEYS; i++)
		values[i] = read_key(dir, memcg_keys[i]);
}

/* "memory.events:oom_kill" -> "events_oom_kill" (a metric key). */
static void metric_key(const char *spec, char *out, size_t size)
{
	size_t i;

	if (!strncmp(spec, "memory.", 7))
		spec += 7;
	snprintf(out, size, "%s", spec);
	for (i = 0; out[i]; i++)
		if (out[i] == ':' || out[i] == '.')
			out[i] = '_';
}

static void memcg_metric(const char *test, const long long *a, const long long *b)
{
	char line[1024], key[64];
	size_t i, len;

	len = snprintf(line, sizeof(line), "    # kbulk-metric: test=%s", test);
	for (i = 0; i < NR_MEMCG_KEYS && len < sizeof(line); i++) {
		long long v = a ? (a[i] < 0 || b[i] < 0 ? -1 : b[i] - a[i]) : b[i];

		metric_key(memcg_keys[i], key, sizeof(key));
		len += snprintf(line + len, sizeof(line) - len, " %s=%lld", key, v);
	}
	say("%s\n", line);
}

/*
 * The cgroup's counters as a KTAP document of its own (suite
 * "memcg_<module>"), printed after the step so that it does not interleave
 * with the module's: one case, ok if the module ran in the cgroup.
 */
static void memcg_report(const char *name, unsigned long long max, const char *error,
			 const long long *before, const long long *after)
{
	say("KTAP version 1\n");
	say("1..1\n");
	say("    KTAP version 1\n");
	say("    # Subtest: memcg_%s\n", name);
	say("    1..1\n");
	say("    # kbulk-metric: test=limit max_bytes=%llu\n", max);
	if (!error) {
		memcg_metric("before", NULL, before);
		memcg_metric("after", NULL, after);
		memcg_metric("delta", before, after);
	}
	if (error)
		say("    not ok 1 cgroup # %s\n", error);
	else
		say("    ok 1 cgroup\n");
	say("%s 1 memcg_%s\n", error ? "not ok" : "ok", name);
}

/* Create @dir with memory.max = @max and move init into it; NULL or the error. */
static const char *memcg_enter(const char *dir, unsigned long long max, char *err, size_t size)
{
	char text[32];
	int rc;

	mkdir(CGROUP_ROOT, 0755);
	if (mount("cgroup2", CGROUP_ROOT, "cgroup2", 0, NULL) && errno != EBUSY) {
		snprintf(err, size, "mount cgroup2 on %s: %s (needs CONFIG_CGROUPS, CONFIG_MEMCG)",
			 CGROUP_ROOT, strerror(errno));
		return err;
	}
	rc = write_str(CGROUP_ROOT "/cgroup.subtree_control", "+memory");
	if (rc) {
		snprintf(err, size, "enable the memory controller: %s (needs CONFIG_MEMCG)",
			 strerror(-rc));
		return err;
	}
	if (mkdir(dir, 0755) && errno != EEXIST) {
		snprintf(err, size, "mkdir %s: %s", dir, strerror(errno));
		return err;
	}
	snprintf(text, sizeof(text), "%llu", max);
	snprintf(err, size, "%s/memory.max", dir);
	rc = write_str(err, text);
	if (rc) {
		snprintf(err, size, "write %s to %s/memory.max: %s", text, dir, strerror(-rc));
		return err;
	}
	snprintf(err, size, "%s/cgroup.procs", dir);
	rc = write_str(err, "0");
	if (rc) {
		snprintf(err, size, "move init into %s: %s", dir, strerror(-rc));
		return err;
	}
	return NULL;
}

static void memcg_leave(const char *dir)
{
	int rc = write_str(CGROUP_ROOT "/cgroup.procs", "0");

	if (rc)
		say(MARK "move init back to the root cgroup: %s\n", strerror(-rc));
	else if (rmdir(dir))
		say(MARK "rmdir %s: %s\n", dir, strerror(errno));
}

static int step_insmod_plain(char *args);

static int step_insmod(char *args)
{
	unsigned long long max = pending_memcg_max;
	long long before[NR_MEMCG_KEYS], after[NR_MEMCG_KEYS];
	char dir[192], copy[1024], err[256], name[128];
	const char *error;
	char *path;
	int rc;

	pending_memcg_max = 0;
	if (!max)
		return step_insmod_plain(args);

	snprintf(copy, sizeof(copy), "%s", args);
	path = strtok(copy, " \t");
	module_name(path ? path : "", name, sizeof(name));
	snprintf(dir, sizeof(dir), CGROUP_ROOT "/kbulk-%s", name);
	error = memcg_enter(dir, max, err, sizeof(err));
	if (error) {
		/* Framed as a failed step, so the host does not take it for a missing one. */
		say(MARK "step begin insmod %s (memcg)\n", name);
		say(MARK "step end insmod %s rc=%d memcg set-up failed\n", name, -EINVAL);
		memcg_report(name, max, error, NULL, NULL);
		return -1;
	}
	say(MARK "memcg %s memory.max=%llu\n", dir, max);
	memcg_snapshot(dir, before);
	rc = step_insmod_plain(args);
	memcg_snapshot(dir, after);
	memcg_leave(dir);
	memcg_report(name, max, NULL, before, after);
	return rc;
}

static int step_insmod_plain(char *args)
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
		else if (!strcmp(cmd, "memcg"))
			pending_memcg_max = strtoull(rest ? rest : "0", NULL, 10);
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
