// SPDX-License-Identifier: GPL-2.0
/*
 * kbulk_lockhold - the longest preemption-off / irqs-off stretch of one bulk
 * allocation call, as the kernel's own latency tracer measures it.
 *
 * Boot with ftrace=preemptirqsoff (CONFIG_PREEMPT_TRACER and/or
 * CONFIG_IRQSOFF_TRACER).  For each case and repetition the module writes 0
 * to tracing_max_latency, makes one allocation call, reads
 * tracing_max_latency back, then frees.  The tracer keeps the maximum over
 * the whole machine, so the "idle" case (reset, then read, no allocation)
 * gives the floor the other figures stand on.
 *
 * Cases: order 0 as alloc_pages_bulk() (7.2 and the series), order 9 as
 * alloc_pages_bulk_order() with the series or a loop of alloc_pages() on a
 * kernel without it (what a 7.2 caller does), each with and without
 * __GFP_ZERO (whose clearing is the work the series moved out of the lock).
 *
 * tracing_max_latency is in microseconds; the metrics print it in ns.
 * Under QEMU -icount shift=0 a guest nanosecond is one instruction, so a
 * figure is an instruction count with a resolution of 1000.  These are
 * benchmark figures: reported, never asserted.
 */
#define pr_fmt(fmt) fmt

#include <linux/err.h>
#include <linux/fs.h>
#include <linux/kstrtox.h>
#include <linux/mman.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>

#include "kbulk_common.h"

#define LH_TRACING	"/sys/kernel/debug/tracing/"

static unsigned int reps = 5;
module_param(reps, uint, 0444);
MODULE_PARM_DESC(reps, "Repetitions per case (default 5)");

static unsigned int nr0 = 512;
module_param(nr0, uint, 0444);
MODULE_PARM_DESC(nr0, "Pages per order-0 call (default 512)");

static unsigned int nr_huge = 32;
module_param(nr_huge, uint, 0444);
MODULE_PARM_DESC(nr_huge, "Blocks per order-9 call (default 32)");

struct lh_case {
	const char *name;
	bool alloc;
	unsigned int order;
	gfp_t extra;
};

/* KBULK_HUGE_ORDER as a constant expression, for the table below. */
#define LH_HUGE_ORDER	(MAX_PAGE_ORDER < 9 ? MAX_PAGE_ORDER : 9)

static const struct lh_case lh_cases[] = {
	{ "idle", false, 0, 0 },
	{ "order0", true, 0, 0 },
	{ "order0_zero", true, 0, __GFP_ZERO },
	{ "order9", true, LH_HUGE_ORDER, 0 },
	{ "order9_zero", true, LH_HUGE_ORDER, __GFP_ZERO },
};

static struct page **lh_pages;

/*
 * tracefs files have .read and .write, not the iter methods kernel_read()
 * and kernel_write() need.  The module is loaded by the guest's init, so
 * its init function runs with init's mm: call the file's methods with a
 * buffer mapped in it.
 */
static unsigned long lh_ubuf;

static ssize_t lh_read(const char *name, char *buf, size_t len)
{
	struct file *f = filp_open(name, O_RDONLY, 0);
	loff_t pos = 0;
	ssize_t n;

	if (IS_ERR(f))
		return PTR_ERR(f);
	n = f->f_op->read ? f->f_op->read(f, (char __user *)lh_ubuf, len - 1, &pos) : -EINVAL;
	filp_close(f, NULL);
	if (n >= 0 && copy_from_user(buf, (const void __user *)lh_ubuf, n))
		n = -EFAULT;
	if (n >= 0)
		buf[n] = '\0';
	return n;
}

static int lh_reset(void)
{
	struct file *f = filp_open(LH_TRACING "tracing_max_latency", O_WRONLY, 0);
	loff_t pos = 0;
	ssize_t n = -EINVAL;

	if (IS_ERR(f))
		return PTR_ERR(f);
	if (copy_to_user((void __user *)lh_ubuf, "0\n", 2))
		n = -EFAULT;
	else if (f->f_op->write)
		n = f->f_op->write(f, (const char __user *)lh_ubuf, 2, &pos);
	filp_close(f, NULL);
	return n == 2 ? 0 : (n < 0 ? n : -EIO);
}

/* The tracer's maximum since the last reset, in microseconds. */
static int lh_max_us(u64 *us)
{
	char buf[32];
	ssize_t n = lh_read(LH_TRACING "tracing_max_latency", buf, sizeof(buf));

	if (n < 0)
		return n;
	return kstrtoull(strim(buf), 10, us);
}

#if KBULK_HAVE_BULK_ORDER
static unsigned long lh_alloc_order(gfp_t gfp, unsigned int order, unsigned long nr)
{
	return alloc_pages_bulk_order(gfp, order, nr, lh_pages);
}
#else
/* What a 7.2 caller does for many blocks of one order. */
static unsigned long lh_alloc_order(gfp_t gfp, unsigned int order, unsigned long nr)
{
	unsigned long i;

	for (i = 0; i < nr; i++) {
		lh_pages[i] = alloc_pages(gfp, order);
		if (!lh_pages[i])
			break;
	}
	return i;
}
#endif

static unsigned long lh_alloc(const struct lh_case *c, unsigned long nr)
{
	gfp_t gfp = GFP_KERNEL | __GFP_NOWARN | c->extra;

	if (!c->order)
		return alloc_pages_bulk(gfp, nr, lh_pages);
	return lh_alloc_order(gfp, c->order, nr);
}

static void lh_free(const struct lh_case *c, unsigned long n)
{
	if (!c->order)
		kbulk_free_pages0(lh_pages, n);
	else
		kbulk_free_pages_order(lh_pages, n, c->order);
	memset(lh_pages, 0, max(nr0, nr_huge) * sizeof(*lh_pages));
}

/* Run one case; false if the tracer could not be read or a call was short. */
static bool lh_run(const struct lh_case *c)
{
	unsigned long nr = c->order ? nr_huge : nr0, got = 0, short_calls = 0;
	u64 us, max_us = 0, min_us = U64_MAX;
	struct kbulk_metric m;
	unsigned int r;
	int err;

	for (r = 0; r < reps; r++) {
		unsigned long n = 0;

		err = lh_reset();
		if (!err && c->alloc)
			n = lh_alloc(c, nr);
		if (!err)
			err = lh_max_us(&us);
		if (c->alloc)
			lh_free(c, n);
		if (err) {
			ktap_diag("%s: tracing_max_latency: error %d", c->name, err);
			return false;
		}
		ktap_diag("%s rep %u: %lu of %lu blocks, longest stretch %llu us",
			  c->name, r, n, c->alloc ? nr : 0UL, (unsigned long long)us);
		got += n;
		short_calls += c->alloc && n < nr;
		max_us = max(max_us, us);
		min_us = min(min_us, us);
	}

	kbm_start(&m, c->name);
	kbm_u64(&m, "order", c->order);
	kbm_u64(&m, "blocks", c->alloc ? nr : 0);
	kbm_u64(&m, "zero", !!(c->extra & __GFP_ZERO));
	kbm_str(&m, "api", !c->alloc ? "none" : !c->order ? "bulk" :
		KBULK_HAVE_BULK_ORDER ? "bulk_order" : "loop");
	kbm_u64(&m, "reps", reps);
	kbm_u64(&m, "short", short_calls);
	kbm_u64(&m, "max_stretch_ns", max_us * NSEC_PER_USEC);
	kbm_u64(&m, "min_stretch_ns", min_us * NSEC_PER_USEC);
	kbm_print(&m);
	return true;
}

static int __init kbulk_lockhold_init(void)
{
	const char *skip = NULL;
	bool all_ok = true;
	char tracer[32];
	unsigned int i;

	if (!reps || !nr0 || !nr_huge)
		return -EINVAL;
	lh_pages = kvcalloc(max(nr0, nr_huge), sizeof(*lh_pages), GFP_KERNEL);
	if (!lh_pages)
		return -ENOMEM;
	lh_ubuf = vm_mmap(NULL, 0, PAGE_SIZE, PROT_READ | PROT_WRITE,
			  MAP_ANONYMOUS | MAP_PRIVATE, 0);
	if (IS_ERR_VALUE(lh_ubuf)) {
		kvfree(lh_pages);
		return (int)lh_ubuf;
	}

	ktap_suite_start("kbulk_lockhold", ARRAY_SIZE(lh_cases));
	kbulk_print_env();
	if (lh_read(LH_TRACING "current_tracer", tracer, sizeof(tracer)) < 0)
		skip = "cannot read tracefs (CONFIG_PREEMPT_TRACER/IRQSOFF_TRACER, debugfs)";
	else if (!strstr(tracer, "off"))
		skip = "no latency tracer running (boot with ftrace=preemptirqsoff)";
	else
		ktap_diag("tracer %s, %u repetitions per case", strim(tracer), reps);

	for (i = 0; i < ARRAY_SIZE(lh_cases); i++) {
		bool ok = true;

		if (!skip)
			ok = lh_run(&lh_cases[i]);
		ktap_result(i + 1, lh_cases[i].name, ok, skip);
		all_ok &= ok;
	}
	ktap_suite_end("kbulk_lockhold", all_ok);

	vm_munmap(lh_ubuf, PAGE_SIZE);
	kvfree(lh_pages);
	return 0;
}

static void __exit kbulk_lockhold_exit(void)
{
}

module_init(kbulk_lockhold_init);
module_exit(kbulk_lockhold_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Longest preemption/irqs-off stretch of a bulk page allocation");
