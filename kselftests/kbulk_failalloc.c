// SPDX-License-Identifier: GPL-2.0
/*
 * kbulk_failalloc - injected page allocation failures (fail_page_alloc) in a
 * bulk request behave like the same failures in a sequence of alloc_pages().
 *
 * fail_page_alloc evaluates should_fail_alloc_page() once per alloc_pages()
 * call.  With the task's fail-nth set to K (Documentation/fault-injection/
 * fault-injection.rst: "makes N-th call in the task fail"), a loop of
 * alloc_pages() gets K - 1 blocks and then fails.  A bulk request fills its
 * slots as such a loop would and stops at the first failure, so it must not
 * get past slot K - 1: the K-th evaluation is the failure of that slot,
 * whether the batch or the slow path evaluates it, and no slot may be
 * evaluated twice.
 *
 * fail_page_alloc's defaults (min-order 1, ignore-gfp-wait Y; debugfs files
 * that a module cannot write) only fail allocations of order >= 1 without
 * __GFP_DIRECT_RECLAIM, so the requests are GFP_NOWAIT at order 1 and 2
 * through alloc_pages_bulk_order().  GFP_NOWAIT is opportunistic (a partial
 * batch is all the caller gets), so the documented expectation is "at most
 * K - 1"; the blocks obtained are reported for every K.  Only this task's
 * allocations are failed (fail-nth is per task, probability stays 0).
 */

#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/sched.h>
#include <linux/slab.h>

#include "kbulk_common.h"

static unsigned int nr = 256;
module_param(nr, uint, 0444);
MODULE_PARM_DESC(nr, "Slots per request (default 256)");

/* Which call fails: first, second, inside the first chunk, at and after its end. */
static const unsigned int kbf_nth[] = { 1, 2, 17, 64, 65, 66, 130 };

static const struct kbf_mode {
	const char *name;
	gfp_t gfp;
	unsigned int order;
} kbf_modes[] = {
	{ "gfp_nowait_order1", GFP_NOWAIT | __GFP_NOWARN, 1 },
	{ "gfp_nowait_order2", GFP_NOWAIT | __GFP_NOWARN, 2 },
};

#ifdef CONFIG_FAIL_PAGE_ALLOC

static void kbf_free(struct page **pages, unsigned long n, unsigned int order)
{
	unsigned long i;

	for (i = 0; i < n; i++)
		__free_pages(pages[i], order);
}

/* One request with the @k-th fault injection call of this task failing. */
static unsigned long kbf_alloc(const struct kbf_mode *m, bool bulk, unsigned int k,
			       struct page **pages)
{
	unsigned long i, got;

	memset(pages, 0, nr * sizeof(*pages));
	/* Armed right before the request: nothing else of this task is failed. */
	if (bulk) {
#if KBULK_HAVE_BULK_ORDER
		WRITE_ONCE(current->fail_nth, k);
		got = alloc_pages_bulk_order(m->gfp, m->order, nr, pages);
#else
		got = 0;
#endif
	} else {
		WRITE_ONCE(current->fail_nth, k);
		for (i = 0; i < nr; i++) {
			pages[i] = alloc_pages(m->gfp, m->order);
			if (!pages[i])
				break;
		}
		got = i;
	}
	WRITE_ONCE(current->fail_nth, 0);
	kbf_free(pages, got, m->order);
	return got;
}

static bool kbf_run_mode(const struct kbf_mode *m, struct page **pages)
{
	bool ok = true;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(kbf_nth); i++) {
		const unsigned int k = kbf_nth[i];
		unsigned long loop, bulk, want = k - 1;
		struct kbulk_metric mt;
		char name[64];

		loop = kbf_alloc(m, false, k, pages);
		bulk = kbf_alloc(m, true, k, pages);

		snprintf(name, sizeof(name), "%s_nth%u", m->name, k);
		kbm_start(&mt, name);
		kbm_u64(&mt, "nth", k);
		kbm_u64(&mt, "expected", want);
		kbm_u64(&mt, "loop", loop);
		kbm_u64(&mt, "bulk", bulk);
		kbm_print(&mt);
		if (loop != want) {
			ok = false;
			ktap_diag("%s nth=%u: alloc_pages() loop got %lu, not %lu: bad set-up",
				  m->name, k, loop, want);
		}
		if (bulk > want) {
			ok = false;
			ktap_diag("%s nth=%u: bulk got %lu blocks, alloc_pages() sequence %lu",
				  m->name, k, bulk, want);
		}
	}
	return ok;
}

static int __init kbulk_failalloc_init(void)
{
	struct page **pages;
	bool all_ok = true;
	unsigned int mi;

	pages = kvcalloc(nr, sizeof(*pages), GFP_KERNEL);
	if (!pages)
		return -ENOMEM;

	ktap_suite_start("kbulk_failalloc", ARRAY_SIZE(kbf_modes));
	kbulk_print_env();
	for (mi = 0; mi < ARRAY_SIZE(kbf_modes); mi++) {
		const struct kbf_mode *m = &kbf_modes[mi];
		const char *s = NULL;
		bool ok = true;

		if (!KBULK_HAVE_BULK_ORDER)
			s = "needs alloc_pages_bulk_order() (the series)";
		if (!s)
			ok = kbf_run_mode(m, pages);
		ktap_result(mi + 1, m->name, ok, s);
		all_ok &= ok;
	}
	ktap_suite_end("kbulk_failalloc", all_ok);

	kvfree(pages);
	return 0;
}

#else /* !CONFIG_FAIL_PAGE_ALLOC */

static int __init kbulk_failalloc_init(void)
{
	ktap_suite_start("kbulk_failalloc", 1);
	ktap_result(1, "fail_page_alloc", true, "needs CONFIG_FAIL_PAGE_ALLOC");
	ktap_suite_end("kbulk_failalloc", true);
	return 0;
}

#endif

static void __exit kbulk_failalloc_exit(void)
{
}

module_init(kbulk_failalloc_init);
module_exit(kbulk_failalloc_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("fail_page_alloc injected failures in bulk page allocations");
