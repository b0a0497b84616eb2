// SPDX-License-Identifier: GPL-2.0
/*
 * kbulk_stress - stress the bulk page allocator under memory pressure and
 * fragmentation, and report fill rates, latencies and reclaim/compaction
 * counters as a KTAP document.
 *
 * Threads:
 *  - a memory hog ("kbulk_hog") that takes @pressure percent of the memory
 *    that GFP_KERNEL can use above the low watermark, in large chunks.  It
 *    registers an OOM notifier that gives back 2 MiB whenever the OOM
 *    killer would run, so GFP_KERNEL allocations made by the test never
 *    kill anything, and it never pushes a zone below its low watermark;
 *  - a fragmenter ("kbulk_frag") that allocates the remaining memory above
 *    the headroom as order-0 pages and frees every page with an odd PFN,
 *    so the free memory left is made of order-0 holes;
 *  - a keeper ("kbulk_keep", with @keep) that at the start of each case
 *    takes the free memory down to low watermark + headroom (large chunks
 *    first, so the holes are what stays free) and keeps it there while the
 *    case runs;
 *  - @threads workers ("kbulk_w/N") that allocate and free through the bulk
 *    API for @duration_ms per case.
 *
 * Cases: one per (GFP mode, order), plus for order 0 a "caller loop"
 * variant (call alloc_pages_bulk() until no progress, as btrfs does), one
 * mixed-order folio case per mode (folio_alloc_bulk(), or its open-coded
 * equivalent on 7.2) and the same request as a per-folio loop without
 * sticky downgrade (folio_loop, on every kernel), then a leak check.  The
 * folio cases also report the most direct compaction stalls and failures
 * seen during one request; they run @folio_threads workers (default one)
 * so that those counts are the request's own.
 *
 * Module init prints the whole KTAP document, frees everything it
 * allocated and returns 0: the module stays loaded (doing nothing) until
 * it is removed with delete_module()/rmmod, so a harness can tell "loaded
 * and ran" from "failed to load".
 */

#include <linux/completion.h>
#include <linux/delay.h>
#include <linux/highmem.h>
#include <linux/kthread.h>
#include <linux/list.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/oom.h>
#include <linux/rcupdate.h>
#include <linux/rwsem.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/swap.h>
#include <linux/timekeeping.h>

#include "kbulk_common.h"

static unsigned int duration_ms = 300;
module_param(duration_ms, uint, 0444);
MODULE_PARM_DESC(duration_ms, "Run time of each case in ms (default 300)");

static unsigned int threads = 2;
module_param(threads, uint, 0444);
MODULE_PARM_DESC(threads, "Worker threads per case (default 2)");

static unsigned int folio_threads = 1;
module_param(folio_threads, uint, 0444);
MODULE_PARM_DESC(folio_threads,
		 "Worker threads of the folio cases, at most @threads; 1 makes their per-request compaction counts exact (default 1, 0 = @threads)");

static bool check_short = true;
module_param(check_short, bool, 0444);
MODULE_PARM_DESC(check_short,
		 "After a short request that may reclaim (no __GFP_NORETRY), try one alloc_pages() at once and count its successes (default Y)");

static unsigned int quiesce_every = 8;
module_param(quiesce_every, uint, 0444);
MODULE_PARM_DESC(quiesce_every,
		 "With check_short: every Nth request of a worker runs with the case's other workers paused, so that no other worker frees memory between its short return and the check (short_quiesced, short_alloc_ok_quiesced; default 8, 0 = never)");

static unsigned int batch = 64;
module_param(batch, uint, 0444);
MODULE_PARM_DESC(batch, "Pages per order-0 request (default 64)");

static unsigned int blocks = 16;
module_param(blocks, uint, 0444);
MODULE_PARM_DESC(blocks, "Blocks per order>0 request (default 16)");

static unsigned int pressure = 90;
module_param(pressure, uint, 0444);
MODULE_PARM_DESC(pressure,
		 "Percent of usable free memory (above low watermark + headroom) the hog takes at setup (default 90)");

static int orders[8] = { 0, 2, 4, 6, 9 };
static int nr_orders = 5;
module_param_array(orders, int, &nr_orders, 0444);
MODULE_PARM_DESC(orders, "Orders to test (default 0,2,4,6,9)");

static unsigned int modes = 0xf;
module_param(modes, uint, 0444);
MODULE_PARM_DESC(modes,
		 "Bitmask of GFP modes: 1=GFP_KERNEL 2=|__GFP_NORETRY 4=|__GFP_RETRY_MAYFAIL 8=GFP_NOWAIT (default 0xf)");

static bool fragment = true;
module_param(fragment, bool, 0444);
MODULE_PARM_DESC(fragment, "Leave the free memory in order-0 holes (default Y)");

static int prefrag_order = -1;
module_param(prefrag_order, int, 0444);
MODULE_PARM_DESC(prefrag_order,
		 "Before the cases take every free block of this order, free the odd ones by PFN and hold the rest until the cases end (default -1: off)");

static bool caller_loop = true;
module_param(caller_loop, bool, 0444);
MODULE_PARM_DESC(caller_loop, "Add <mode>_order0_callerloop cases (default Y)");

static bool folio_mixed = true;
module_param(folio_mixed, bool, 0444);
MODULE_PARM_DESC(folio_mixed, "Add <mode>_folio_mixed cases (default Y)");

static bool folio_loop = true;
module_param(folio_loop, bool, 0444);
MODULE_PARM_DESC(folio_loop,
		 "Add <mode>_folio_loop cases: folio_mixed's request as a per-folio loop of folio_alloc() from order 9 down, without sticky downgrade (default Y)");

static unsigned int folio_kb = 2048;
module_param(folio_kb, uint, 0444);
MODULE_PARM_DESC(folio_kb, "Bytes (KiB) per folio_mixed request (default 2048)");

static unsigned int headroom_kb;
module_param(headroom_kb, uint, 0444);
MODULE_PARM_DESC(headroom_kb,
		 "Usable memory above the low watermark left free, KiB (default 0 = batch pages)");

static bool keep = true;
module_param(keep, bool, 0444);
MODULE_PARM_DESC(keep,
		 "During each case keep free memory at low watermark + headroom (default Y)");

static int expect_fill = -1;
module_param(expect_fill, int, 0444);
MODULE_PARM_DESC(expect_fill,
		 "Fail GFP_KERNEL order<=3 cases with short returns: -1 auto (not for 7.2 single-call alloc_pages_bulk), 0 never, 1 always");

static unsigned int leak_tolerance;
module_param(leak_tolerance, uint, 0444);
MODULE_PARM_DESC(leak_tolerance,
		 "Free page shortfall tolerated by leak_check (default 0 = 256 + 64 * nr_cpus pages)");

static bool verify = true;
module_param(verify, bool, 0444);
MODULE_PARM_DESC(verify, "Write and check a cookie in every block obtained (default Y)");

/* Every mode gets __GFP_NOWARN: failures are counted, not logged. */
static const struct kbulk_mode {
	const char *name;
	gfp_t gfp;
} kbulk_modes[] = {
	{ "gfp_kernel",			GFP_KERNEL },
	{ "gfp_kernel_noretry",		GFP_KERNEL | __GFP_NORETRY },
	{ "gfp_kernel_retry_mayfail",	GFP_KERNEL | __GFP_RETRY_MAYFAIL },
	{ "gfp_nowait",			GFP_NOWAIT },
};

enum kbulk_kind {
	KBULK_EXACT,		/* nr blocks of exactly one order */
	KBULK_CALLER_LOOP,	/* order 0, caller loops until no progress */
	KBULK_FOLIO_MIXED,	/* folios of any order 0..9 adding up to a size */
	KBULK_FOLIO_LOOP,	/* the same with a per-folio loop, no sticky downgrade */
};

enum kbulk_api {
	API_BULK,		/* alloc_pages_bulk() */
	API_BULK_ORDER,		/* alloc_pages_bulk_order() (series) */
	API_FOLIO_BULK,		/* folio_alloc_bulk() (series) */
	API_LOOP,		/* alloc_pages()/folio_alloc() loop (7.2 callers) */
};

static const char * const kbulk_api_names[] = {
	[API_BULK] = "bulk",
	[API_BULK_ORDER] = "bulk_order",
	[API_FOLIO_BULK] = "folio_bulk",
	[API_LOOP] = "loop",
};

#define KBULK_MAX_CASES	(ARRAY_SIZE(kbulk_modes) * (ARRAY_SIZE(orders) + 3))

struct kbulk_case {
	char name[64];
	gfp_t gfp;
	unsigned int mode;
	enum kbulk_kind kind;
	enum kbulk_api api;
	int order;
	unsigned int nr;	/* blocks (or max folios) per request */
	unsigned long size;	/* folio_mixed: pages per request */
	const char *skip;
};

struct kbulk_worker {
	struct task_struct *task;
	struct completion started;
	const struct kbulk_case *c;
	unsigned int id;
	void **slots;		/* struct page * or struct folio * */
	u64 seq;
	u64 requests, filled, partial, failed;
	u64 short_alloc_ok;	/* short, yet alloc_pages() succeeded right after */
	/* the same, for the requests that ran with the other workers paused */
	u64 requests_quiesced, short_quiesced, short_alloc_ok_quiesced;
	u64 units, pages, calls;
	u64 alloc_pages, freed_pages;
	u64 bad;
	char why[160];
	u64 ord[NR_PAGE_ORDERS];
	struct kbulk_hist hist;
	/* folio cases: direct compaction events seen during one request */
	unsigned long *evbuf;
	u64 req_stall_max, req_cfail_max;
};

static struct kbulk_worker **kbulk_workers;
static struct kbulk_worker kbulk_sum;	/* per-case totals */
static unsigned int kbulk_nr_slots;
static unsigned long *kbulk_evbuf;

/* ------------------------------------------------------------------ */
/* Memory hog and fragmenter                                          */
/* ------------------------------------------------------------------ */

/* Never reclaims, never wakes kswapd, never dips into reserves. */
#define HOG_GFP		(__GFP_NOWARN | __GFP_NORETRY | __GFP_NOMEMALLOC)
/* Pages released per OOM notification (2 MiB with 4K pages). */
#define HOG_DEFLATE	BIT(KBULK_HUGE_ORDER)

struct hog_list {
	struct list_head head;		/* page->lru, order in page_private() */
	unsigned long pages;
};

static struct kbulk_hog {
	spinlock_t lock;		/* protects the three lists */
	struct hog_list chunks;		/* setup hog, large chunks */
	struct hog_list keep;		/* taken by the keeper during a case */
	struct hog_list frag;		/* fragmenter's kept order-0 pages */
	struct hog_list prefrag;	/* @prefrag_order blocks held for the run */
	unsigned long target;		/* chunks.pages between cases */
	unsigned long holes;		/* pages the fragmenter freed */
	long headroom;			/* usable pages left free in a case */
	unsigned long keep_rounds;	/* keeper wake-ups in this case */
	unsigned long keep_grown;	/* pages the keeper re-took */
	atomic_long_t deflate_events;
	atomic_long_t deflated_pages;
	struct completion done;
} hog;

/*
 * Pages a GFP_KERNEL allocation can take before the zones it may use drop
 * below their low watermark (plus the lowmem reserve protecting them), as
 * the watermark checks see it: pages on per-cpu lists do not count.
 */
static long kbulk_usable(void)
{
	enum zone_type high = gfp_zone(GFP_KERNEL);
	struct zone *zone;
	long sum = 0;

	for (zone = kbulk_next_zone(NULL); zone; zone = kbulk_next_zone(zone)) {
		long v;

		if (zone_idx(zone) > high)
			continue;
		v = zone_page_state(zone, NR_FREE_PAGES);
		v -= low_wmark_pages(zone) + zone->lowmem_reserve[high];
		if (v > 0)
			sum += v;
	}
	return sum;
}

/*
 * True if @zone is below its low watermark (+ lowmem reserve) for
 * GFP_KERNEL.  Hog allocations have no reclaim flags but still reach the
 * min watermark through the slow path: they give back what they took from
 * such a zone, so the hog never pushes a zone below the low watermark.
 */
static bool kbulk_zone_low(struct zone *zone)
{
	enum zone_type high = gfp_zone(GFP_KERNEL);
	unsigned long mark = low_wmark_pages(zone);

	if (zone_idx(zone) <= high)
		mark += zone->lowmem_reserve[high];
	return zone_page_state(zone, NR_FREE_PAGES) < mark;
}

static unsigned long kbulk_low_wmark(void)
{
	unsigned long sum = 0;
	struct zone *zone;

	for (zone = kbulk_next_zone(NULL); zone; zone = kbulk_next_zone(zone))
		sum += low_wmark_pages(zone);
	return sum;
}

static void hog_add(struct hog_list *l, struct page *page, unsigned int order)
{
	set_page_private(page, order);
	spin_lock(&hog.lock);
	list_add_tail(&page->lru, &l->head);
	l->pages += 1UL << order;
	spin_unlock(&hog.lock);
}

/* Pop one block (any list) and free it; returns the pages freed. */
static unsigned long hog_free_one(struct hog_list *l)
{
	struct page *page = NULL;
	unsigned int order = 0;

	spin_lock(&hog.lock);
	if (!list_empty(&l->head)) {
		page = list_first_entry(&l->head, struct page, lru);
		order = page_private(page);
		l->pages -= 1UL << order;
		list_del(&page->lru);
	}
	spin_unlock(&hog.lock);
	if (!page)
		return 0;
	set_page_private(page, 0);
	__free_pages(page, order);
	return 1UL << order;
}

static unsigned long hog_free(struct hog_list *l, unsigned long want)
{
	unsigned long n, freed = 0;
	unsigned int i = 0;

	while (freed < want) {
		n = hog_free_one(l);
		if (!n)
			break;
		freed += n;
		if (!(++i % 256))
			cond_resched();
	}
	return freed;
}

/*
 * Take up to @want pages onto @l, largest chunks first with a sticky
 * downgrade to @min_order, as long as more than hog.headroom usable pages
 * stay free.
 */
static unsigned long hog_grow(struct hog_list *l, unsigned long want,
			      unsigned int min_order, unsigned int max_chunks)
{
	unsigned int order = KBULK_HUGE_ORDER;
	unsigned long got = 0;
	unsigned int n = 0;

	while (got < want && n < max_chunks) {
		long room = kbulk_usable() - hog.headroom;
		struct page *page;

		if (room <= 0)
			break;
		while (order > min_order &&
		       ((1UL << order) > (unsigned long)room ||
			(1UL << order) > want - got))
			order--;
		page = alloc_pages(HOG_GFP, order);
		if (page && kbulk_zone_low(page_zone(page))) {
			__free_pages(page, order);
			page = NULL;
		}
		if (!page) {
			if (order <= min_order)
				break;
			order--;
			continue;
		}
		hog_add(l, page, order);
		got += 1UL << order;
		if (!(++n % 32))
			cond_resched();
	}
	return got;
}

/*
 * The OOM killer is about to run: give back 2 MiB (largest chunks first) so
 * that GFP_KERNEL allocations made by the workers never kill anything.
 */
static int kbulk_oom_notify(struct notifier_block *nb, unsigned long unused,
			    void *parm)
{
	unsigned long *freed = parm;
	unsigned long n;

	n = hog_free(&hog.chunks, HOG_DEFLATE);
	if (n < HOG_DEFLATE)
		n += hog_free(&hog.keep, HOG_DEFLATE - n);
	if (n < HOG_DEFLATE)
		n += hog_free(&hog.frag, HOG_DEFLATE - n);
	if (n) {
		*freed += n;
		atomic_long_inc(&hog.deflate_events);
		atomic_long_add(n, &hog.deflated_pages);
	}
	return NOTIFY_OK;
}

static struct notifier_block kbulk_oom_nb = {
	.notifier_call = kbulk_oom_notify,
};

/* Setup: take hog.target pages in large chunks. */
static int kbulk_hog_fill_fn(void *arg)
{
	hog_grow(&hog.chunks, hog.target, 0, UINT_MAX);
	kthread_complete_and_exit(&hog.done, 0);
}

/*
 * Setup: allocate everything above the headroom as order-0 pages, then free
 * the pages with odd PFNs.  Their buddies stay allocated, so the free
 * memory left is made of order-0 holes.
 */
static int kbulk_frag_fn(void *arg)
{
	struct page *page, *next;
	unsigned long n = 0;
	LIST_HEAD(tmp);

	while (kbulk_usable() > hog.headroom) {
		page = alloc_page(HOG_GFP);
		if (page && kbulk_zone_low(page_zone(page))) {
			__free_page(page);
			break;
		}
		if (!page)
			break;
		list_add(&page->lru, &tmp);
		if (!(++n % 256))
			cond_resched();
	}
	list_for_each_entry_safe(page, next, &tmp, lru) {
		list_del(&page->lru);
		if (page_to_pfn(page) & 1) {
			__free_page(page);
			hog.holes++;
		} else {
			hog_add(&hog.frag, page, 0);
		}
	}
	kthread_complete_and_exit(&hog.done, 0);
}

/*
 * During a case: take the free memory down to the low watermark +
 * hog.headroom (large chunks first, so what stays free is the fragmenter's
 * holes), then keep it there until stopped: whatever comes back above that
 * level (pages the workers free, per-cpu lists drained by direct reclaim,
 * pages the OOM notifier gave back once usage went down) is taken again.
 */
static int kbulk_hog_keep_fn(void *arg)
{
	long hyst = max_t(long, hog.headroom / 2, 32);
	long u = kbulk_usable();

	hog.keep_rounds = 0;
	hog.keep_grown = 0;
	if (u > hog.headroom)
		hog_grow(&hog.keep, u - hog.headroom, 0, UINT_MAX);
	complete(&hog.done);

	while (!kthread_should_stop()) {
		u = kbulk_usable();
		if (u > hog.headroom + hyst)
			hog.keep_grown += hog_grow(&hog.keep, u - hog.headroom, 0,
						   UINT_MAX);
		hog.keep_rounds++;
		usleep_range(1000, 2000);
	}
	return 0;
}

static int kbulk_run_thread(int (*fn)(void *), const char *name)
{
	struct task_struct *t;

	reinit_completion(&hog.done);
	t = kthread_run(fn, NULL, "%s", name);
	if (IS_ERR(t))
		return PTR_ERR(t);
	wait_for_completion(&hog.done);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Workers                                                            */
/* ------------------------------------------------------------------ */

static __printf(2, 3) void kbulk_bad(struct kbulk_worker *w, const char *fmt, ...)
{
	va_list args;

	if (!w->bad++) {
		va_start(args, fmt);
		vscnprintf(w->why, sizeof(w->why), fmt, args);
		va_end(args);
	}
}

static void kbulk_cookie_set(struct kbulk_worker *w, struct page *page, u64 v)
{
	u64 *p;

	if (!verify)
		return;
	p = kmap_local_page(page);
	*p = v;
	kunmap_local(p);
}

static void kbulk_cookie_check(struct kbulk_worker *w, struct page *page, u64 v)
{
	u64 *p, got;

	if (!verify)
		return;
	p = kmap_local_page(page);
	got = *p;
	kunmap_local(p);
	if (got != v)
		kbulk_bad(w, "block pfn %lu handed out twice? cookie %llx != %llx",
			  page_to_pfn(page), got, v);
}

static u64 kbulk_cookie(struct kbulk_worker *w, unsigned int i)
{
	return ((u64)w->id << 56) ^ (w->seq << 16) ^ i ^ 0x6b62756c6bULL;
}

/* Check one block just obtained, tag it and account for it. */
static void kbulk_take(struct kbulk_worker *w, struct page *page,
		       unsigned int order, unsigned int i)
{
	if (page_count(page) != 1)
		kbulk_bad(w, "pfn %lu order %u has refcount %d", page_to_pfn(page),
			  order, page_count(page));
	if (page_to_pfn(page) & ((1UL << order) - 1))
		kbulk_bad(w, "pfn %lu not aligned to order %u", page_to_pfn(page), order);
	kbulk_cookie_set(w, page, kbulk_cookie(w, i));
	w->alloc_pages += 1UL << order;
	w->ord[order]++;
}

static void kbulk_give(struct kbulk_worker *w, struct page *page,
		       unsigned int order, unsigned int i)
{
	kbulk_cookie_check(w, page, kbulk_cookie(w, i));
	w->freed_pages += 1UL << order;
}

/* Order 0: alloc_pages_bulk(), once per request or until no progress. */
static unsigned int kbulk_req_order0(struct kbulk_worker *w, gfp_t gfp,
				     unsigned int nr, bool loop)
{
	struct page **pages = (struct page **)w->slots;
	unsigned int n, last = 0, i;

	memset(pages, 0, nr * sizeof(*pages));
	for (;;) {
		n = alloc_pages_bulk(gfp, nr, pages);
		w->calls++;
		if (!loop || n >= nr || n == last)
			break;
		last = n;
	}
	if (n > nr) {
		kbulk_bad(w, "alloc_pages_bulk returned %u > %u", n, nr);
		n = nr;
	}
	for (i = 0; i < nr; i++) {
		if (i < n && !pages[i]) {
			kbulk_bad(w, "slot %u of %u is NULL", i, n);
			n = i;
			break;
		}
		if (i >= n && pages[i]) {
			kbulk_bad(w, "slot %u beyond return value %u populated", i, n);
			__free_page(pages[i]);
			pages[i] = NULL;
		}
	}
	return n;
}

/* Order > 0: nr blocks of exactly @order. */
static unsigned int kbulk_req_blocks(struct kbulk_worker *w, gfp_t gfp,
				     unsigned int order, unsigned int nr)
{
	struct page **pages = (struct page **)w->slots;
	unsigned int n = 0;

	switch (w->c->api) {
#if KBULK_HAVE_BULK_ORDER
	case API_BULK_ORDER:
		memset(pages, 0, nr * sizeof(*pages));
		n = alloc_pages_bulk_order(gfp, order, nr, pages);
		w->calls++;
		break;
#endif
#if KBULK_HAVE_FOLIO_BULK
	case API_FOLIO_BULK:
		memset(pages, 0, nr * sizeof(*pages));
		n = folio_alloc_bulk(gfp, (size_t)nr << (order + PAGE_SHIFT),
				     order, order, (struct folio **)pages, nr);
		w->calls++;
		break;
#endif
	default:
		/* 7.2 callers: a loop of alloc_pages(), stop at the first failure */
		for (n = 0; n < nr; n++) {
			pages[n] = alloc_pages(gfp, order);
			w->calls++;
			if (!pages[n])
				break;
		}
		break;
	}
	if (n > nr) {
		kbulk_bad(w, "returned %u blocks > %u", n, nr);
		n = nr;
	}
	return n;
}

/*
 * The series' per-order policy (v2), open-coded for the folio loops: the
 * caller's gfp at the minimum order (0 here) only; every larger order is
 * optional, so __GFP_NORETRY | __GFP_NOWARN, never __GFP_NOFAIL or
 * __GFP_RETRY_MAYFAIL, and no direct reclaim above 64K (@reclaim_order).
 */
static gfp_t kbulk_folio_gfp(gfp_t gfp, unsigned int order,
			     unsigned int reclaim_order)
{
	if (!order)
		return gfp;
	gfp = (gfp | __GFP_NORETRY | __GFP_NOWARN) &
	      ~(__GFP_NOFAIL | __GFP_RETRY_MAYFAIL);
	if (order > reclaim_order)
		gfp &= ~__GFP_DIRECT_RECLAIM;
	return gfp;
}

/*
 * Folios of any order in [0, KBULK_HUGE_ORDER] adding up to @size pages.
 * 7.2 has no such API: open-code what the series centralises (largest
 * order first, only order 0 with the caller's gfp, sticky downgrade).
 */
static unsigned int kbulk_req_folios(struct kbulk_worker *w, gfp_t gfp,
				     unsigned long size, unsigned int max)
{
	struct folio **folios = (struct folio **)w->slots;
	unsigned int maxo = KBULK_HUGE_ORDER;
	unsigned int n = 0;

#if KBULK_HAVE_FOLIO_BULK
	memset(folios, 0, max * sizeof(*folios));
	n = folio_alloc_bulk(gfp, size << PAGE_SHIFT, 0, maxo, folios, max);
	w->calls++;
#else
	unsigned int reclaim_order = get_order(SZ_64K);
	unsigned int order = maxo;
	unsigned long left = size;

	while (left && n < max) {
		struct folio *folio;

		while (order && (1UL << order) > left)
			order--;
		folio = folio_alloc(kbulk_folio_gfp(gfp, order, reclaim_order), order);
		w->calls++;
		if (!folio) {
			if (!order)
				break;
			order--;
			continue;
		}
		folios[n++] = folio;
		left -= 1UL << order;
	}
#endif
	if (n > max) {
		kbulk_bad(w, "returned %u folios > %u", n, max);
		n = max;
	}
	return n;
}

/*
 * kbulk_req_folios()'s request as many callers write it: every folio starts
 * again at the largest order and falls back for itself only, so a failing
 * order is retried for each folio of the request.  Same gfp policy per order
 * as the series (kbulk_folio_gfp()), so only the missing sticky downgrade
 * differs.
 */
static unsigned int kbulk_req_folio_loop(struct kbulk_worker *w, gfp_t gfp,
					 unsigned long size, unsigned int max)
{
	struct folio **folios = (struct folio **)w->slots;
	unsigned int maxo = KBULK_HUGE_ORDER;
	unsigned int reclaim_order = get_order(SZ_64K);
	unsigned long left = size;
	unsigned int n = 0;

	while (left && n < max) {
		struct folio *folio = NULL;
		unsigned int order = maxo;

		while (order && (1UL << order) > left)
			order--;
		for (;;) {
			folio = folio_alloc(kbulk_folio_gfp(gfp, order, reclaim_order), order);
			w->calls++;
			if (folio || !order)
				break;
			order--;
		}
		if (!folio)
			break;
		folios[n++] = folio;
		left -= 1UL << order;
	}
	return n;
}

static bool kbulk_is_folio_kind(const struct kbulk_case *c)
{
	return c->kind == KBULK_FOLIO_MIXED || c->kind == KBULK_FOLIO_LOOP;
}

/* Direct compaction stalls and failures so far (system wide). */
static void kbulk_compact_events(unsigned long *buf, u64 *stall, u64 *fail)
{
	*stall = 0;
	*fail = 0;
#if defined(CONFIG_VM_EVENT_COUNTERS) && defined(CONFIG_COMPACTION)
	all_vm_events(buf);
	*stall = buf[COMPACTSTALL];
	*fail = buf[COMPACTFAIL];
#endif
}

/*
 * The series promises that a request which may reclaim (without
 * __GFP_NORETRY) is only short where alloc_pages() itself fails.  Check it
 * the direct way: after a short request, one alloc_pages() with the same gfp
 * and order.  A success counts against the kernel: on 7.2's order-0 bulk
 * API it is the partial return the series removes; after a loop of
 * alloc_pages() it is the noise floor (memory freed in between).
 */
static bool kbulk_checks_short(const struct kbulk_case *c)
{
	return check_short && !kbulk_is_folio_kind(c) &&
	       (c->gfp & __GFP_DIRECT_RECLAIM) && !(c->gfp & __GFP_NORETRY);
}

static void kbulk_check_short(struct kbulk_worker *w, gfp_t gfp, bool quiesced)
{
	struct page *page = alloc_pages(gfp, w->c->order);

	if (quiesced)
		w->short_quiesced++;
	if (page) {
		w->short_alloc_ok++;
		if (quiesced)
			w->short_alloc_ok_quiesced++;
		__free_pages(page, w->c->order);
	}
}

/*
 * Held for reading around every request (allocation, check and frees) and
 * for writing around a quiesced one: while a quiesced request and its check
 * run, no other worker of the case allocates or frees.  What can still free
 * memory in between is the system (kswapd, per-cpu list drains, RCU) and the
 * hog's OOM notifier, i.e. what a real caller sees too.
 */
static DECLARE_RWSEM(kbulk_quiesce);

static bool kbulk_quiesces(struct kbulk_worker *w)
{
	return kbulk_checks_short(w->c) && quiesce_every &&
	       !(w->seq % quiesce_every);
}

static void kbulk_one_request(struct kbulk_worker *w, bool quiesced)
{
	const struct kbulk_case *c = w->c;
	gfp_t gfp = c->gfp | __GFP_NOWARN;
	struct page **pages = (struct page **)w->slots;
	struct folio **folios = (struct folio **)w->slots;
	unsigned long got = 0, want;
	unsigned int n, i;
	u64 t0, t1, stall0 = 0, fail0 = 0, stall1, fail1;

	w->seq++;
	/*
	 * Counted outside the timed section.  With several workers a request
	 * is also charged the stalls of requests running beside it: the
	 * per-request maximum is an upper bound.
	 */
	if (kbulk_is_folio_kind(c))
		kbulk_compact_events(w->evbuf, &stall0, &fail0);
	t0 = ktime_get_ns();
	switch (c->kind) {
	case KBULK_CALLER_LOOP:
		n = kbulk_req_order0(w, gfp, c->nr, true);
		break;
	case KBULK_FOLIO_MIXED:
		n = kbulk_req_folios(w, gfp, c->size, c->nr);
		break;
	case KBULK_FOLIO_LOOP:
		n = kbulk_req_folio_loop(w, gfp, c->size, c->nr);
		break;
	default:
		if (c->order == 0)
			n = kbulk_req_order0(w, gfp, c->nr, false);
		else
			n = kbulk_req_blocks(w, gfp, c->order, c->nr);
		break;
	}
	t1 = ktime_get_ns();
	kbulk_hist_add(&w->hist, t1 - t0);
	if (kbulk_is_folio_kind(c)) {
		kbulk_compact_events(w->evbuf, &stall1, &fail1);
		w->req_stall_max = max(w->req_stall_max, stall1 - stall0);
		w->req_cfail_max = max(w->req_cfail_max, fail1 - fail0);
	}

	if (kbulk_is_folio_kind(c)) {
		for (i = 0; i < n; i++) {
			unsigned int o = folio_order(folios[i]);

			if (o > KBULK_HUGE_ORDER) {
				kbulk_bad(w, "folio of order %u > %u", o, KBULK_HUGE_ORDER);
				o = KBULK_HUGE_ORDER;
			}
			kbulk_take(w, &folios[i]->page, o, i);
			got += folio_nr_pages(folios[i]);
		}
		want = c->size;
		if (got > want)
			kbulk_bad(w, "got %lu pages of folios for %lu", got, want);
	} else {
		for (i = 0; i < n; i++)
			kbulk_take(w, pages[i], c->order, i);
		got = (unsigned long)n << c->order;
		want = (unsigned long)c->nr << c->order;
	}

	w->requests++;
	w->units += n;
	w->pages += got;
	if (got >= want)
		w->filled++;
	else if (got)
		w->partial++;
	else
		w->failed++;
	/* Outside the timed section, with the request's blocks still held. */
	if (quiesced)
		w->requests_quiesced++;
	if (got < want && kbulk_checks_short(c))
		kbulk_check_short(w, gfp, quiesced);

	/*
	 * Free the same way on every kernel: the series' bulk free helpers
	 * return contiguous runs to the allocator as higher-order blocks, which
	 * changes what the next allocation finds on the free lists and would
	 * show up here as a difference of the allocation semantics.  They are
	 * measured by kbulk_bench instead.
	 */
	if (kbulk_is_folio_kind(c)) {
		for (i = 0; i < n; i++) {
			kbulk_give(w, &folios[i]->page, folio_order(folios[i]), i);
			folio_put(folios[i]);
		}
		return;
	}
	for (i = 0; i < n; i++)
		kbulk_give(w, pages[i], c->order, i);
	if (c->order == 0) {
		release_pages(pages, n);
		return;
	}
	for (i = 0; i < n; i++) {
		if (c->api == API_FOLIO_BULK)
			folio_put(folios[i]);
		else
			__free_pages(pages[i], c->order);
	}
}

static int kbulk_worker_fn(void *arg)
{
	struct kbulk_worker *w = arg;

	complete(&w->started);
	do {
		bool quiesced = kbulk_quiesces(w);

		if (quiesced)
			down_write(&kbulk_quiesce);
		else
			down_read(&kbulk_quiesce);
		kbulk_one_request(w, quiesced);
		if (quiesced)
			up_write(&kbulk_quiesce);
		else
			up_read(&kbulk_quiesce);
		cond_resched();
	} while (!kthread_should_stop());
	return 0;
}

/* ------------------------------------------------------------------ */
/* Cases                                                              */
/* ------------------------------------------------------------------ */

static struct kbulk_case *kbulk_cases;
static unsigned int kbulk_nr_cases;

static bool kbulk_may_fill(gfp_t gfp)
{
	return (gfp & __GFP_DIRECT_RECLAIM) &&
	       !(gfp & (__GFP_NORETRY | __GFP_RETRY_MAYFAIL));
}

static void kbulk_add_case(unsigned int mode, enum kbulk_kind kind, int order)
{
	struct kbulk_case *c = &kbulk_cases[kbulk_nr_cases++];
	const char *m = kbulk_modes[mode].name;

	c->mode = mode;
	c->gfp = kbulk_modes[mode].gfp;
	c->kind = kind;
	c->order = order;
	switch (kind) {
	case KBULK_CALLER_LOOP:
		snprintf(c->name, sizeof(c->name), "%s_order0_callerloop", m);
		c->api = API_BULK;
		c->nr = batch;
		break;
	case KBULK_FOLIO_MIXED:
		snprintf(c->name, sizeof(c->name), "%s_folio_mixed", m);
		c->api = KBULK_HAVE_FOLIO_BULK ? API_FOLIO_BULK : API_LOOP;
		c->size = max_t(unsigned long, (unsigned long)folio_kb * SZ_1K >> PAGE_SHIFT, 1);
		c->nr = c->size;
		break;
	case KBULK_FOLIO_LOOP:
		snprintf(c->name, sizeof(c->name), "%s_folio_loop", m);
		c->api = API_LOOP;
		c->size = max_t(unsigned long, (unsigned long)folio_kb * SZ_1K >> PAGE_SHIFT, 1);
		c->nr = c->size;
		break;
	default:
		snprintf(c->name, sizeof(c->name), "%s_order%d", m, order);
		if (order == 0)
			c->api = API_BULK;
		else if (KBULK_HAVE_BULK_ORDER)
			c->api = API_BULK_ORDER;
		else if (KBULK_HAVE_FOLIO_BULK)
			c->api = API_FOLIO_BULK;
		else
			c->api = API_LOOP;
		c->nr = order ? blocks : batch;
		if (order < 0 || order > MAX_PAGE_ORDER)
			c->skip = "order not supported by this kernel (MAX_PAGE_ORDER)";
		break;
	}
	if (!c->nr)
		c->skip = "batch/blocks/folio_kb is 0";
}

static void kbulk_build_cases(void)
{
	unsigned int m;
	int i;

	for (m = 0; m < ARRAY_SIZE(kbulk_modes); m++) {
		if (!(modes & BIT(m)))
			continue;
		for (i = 0; i < nr_orders; i++) {
			kbulk_add_case(m, KBULK_EXACT, orders[i]);
			if (orders[i] == 0 && caller_loop)
				kbulk_add_case(m, KBULK_CALLER_LOOP, 0);
		}
		if (folio_mixed)
			kbulk_add_case(m, KBULK_FOLIO_MIXED, 0);
		if (folio_loop)
			kbulk_add_case(m, KBULK_FOLIO_LOOP, 0);
	}
}

static bool kbulk_expect_fill(const struct kbulk_case *c)
{
	if (!expect_fill || !kbulk_may_fill(c->gfp))
		return false;
	if (c->kind == KBULK_EXACT && c->order > PAGE_ALLOC_COSTLY_ORDER)
		return false;
	/* 7.2 alloc_pages_bulk() may return short for GFP_KERNEL: that is the bug */
	if (expect_fill < 0 && !KBULK_SERIES && c->kind == KBULK_EXACT &&
	    c->api == API_BULK)
		return false;
	return true;
}

/*
 * The folio cases report the most compaction stalls seen during one
 * request from system-wide counters: with one worker that is the request's
 * own count, with more it includes the stalls of requests running beside it.
 */
static unsigned int kbulk_case_threads(const struct kbulk_case *c)
{
	if (kbulk_is_folio_kind(c) && folio_threads)
		return min(folio_threads, threads);
	return threads;
}

static bool kbulk_run_case(struct kbulk_case *c, int nr)
{
	struct kbulk_events ev0, ev1;
	struct task_struct *keeper = NULL;
	long usable0, usable1, defl0, defl_pages0;
	unsigned long keep_pages = 0;
	struct kbulk_metric m;
	unsigned int i, o, started = 0;
	struct kbulk_worker *s = &kbulk_sum;
	unsigned int nthreads = kbulk_case_threads(c);
	bool ok = true;

	if (c->skip) {
		ktap_result(nr, c->name, true, c->skip);
		return true;
	}

	/* restore the hog to its setup size (no order-0 holes) */
	if (hog.chunks.pages < hog.target)
		hog_grow(&hog.chunks, hog.target - hog.chunks.pages, 1, UINT_MAX);

	for (i = 0; i < nthreads; i++) {
		struct kbulk_worker *w = kbulk_workers[i];
		unsigned long *evbuf = w->evbuf;
		void **slots = w->slots;

		memset(w, 0, sizeof(*w));
		w->slots = slots;
		w->evbuf = evbuf;
		w->id = i;
		w->c = c;
		init_completion(&w->started);
	}

	defl0 = atomic_long_read(&hog.deflate_events);
	defl_pages0 = atomic_long_read(&hog.deflated_pages);
	if (keep) {
		reinit_completion(&hog.done);
		keeper = kthread_run(kbulk_hog_keep_fn, NULL, "kbulk_keep");
		if (IS_ERR(keeper))
			keeper = NULL;
		else
			wait_for_completion(&hog.done);
	}
	keep_pages = hog.keep.pages;
	usable0 = kbulk_usable();
	kbulk_events_snap(&ev0, kbulk_evbuf);

	for (i = 0; i < nthreads; i++) {
		struct kbulk_worker *w = kbulk_workers[i];

		w->task = kthread_create(kbulk_worker_fn, w, "kbulk_w/%u", i);
		if (IS_ERR(w->task)) {
			w->task = NULL;
			continue;
		}
		get_task_struct(w->task);
		wake_up_process(w->task);
		started++;
	}
	for (i = 0; i < nthreads; i++)
		if (kbulk_workers[i]->task)
			wait_for_completion(&kbulk_workers[i]->started);
	msleep(duration_ms);
	for (i = 0; i < nthreads; i++) {
		struct kbulk_worker *w = kbulk_workers[i];

		if (!w->task)
			continue;
		kthread_stop(w->task);
		put_task_struct(w->task);
		w->task = NULL;
	}
	kbulk_events_snap(&ev1, kbulk_evbuf);
	usable1 = kbulk_usable();
	if (keeper)
		kthread_stop(keeper);
	hog_free(&hog.keep, ULONG_MAX);

	memset(s, 0, sizeof(*s));
	for (i = 0; i < nthreads; i++) {
		struct kbulk_worker *w = kbulk_workers[i];

		s->requests += w->requests;
		s->filled += w->filled;
		s->partial += w->partial;
		s->failed += w->failed;
		s->short_alloc_ok += w->short_alloc_ok;
		s->requests_quiesced += w->requests_quiesced;
		s->short_quiesced += w->short_quiesced;
		s->short_alloc_ok_quiesced += w->short_alloc_ok_quiesced;
		s->units += w->units;
		s->pages += w->pages;
		s->calls += w->calls;
		s->alloc_pages += w->alloc_pages;
		s->freed_pages += w->freed_pages;
		for (o = 0; o < NR_PAGE_ORDERS; o++)
			s->ord[o] += w->ord[o];
		s->req_stall_max = max(s->req_stall_max, w->req_stall_max);
		s->req_cfail_max = max(s->req_cfail_max, w->req_cfail_max);
		kbulk_hist_merge(&s->hist, &w->hist);
		if (w->bad) {
			ok = false;
			ktap_diag("%s: thread %u: %llu contract violations, first: %s",
				  c->name, i, w->bad, w->why);
		}
	}

	kbm_start(&m, c->name);
	kbm_u64(&m, "requests", s->requests);
	kbm_u64(&m, "filled", s->filled);
	kbm_u64(&m, "partial", s->partial);
	kbm_u64(&m, "failed", s->failed);
	if (kbulk_checks_short(c)) {
		kbm_u64(&m, "short_alloc_ok", s->short_alloc_ok);
		kbm_u64(&m, "requests_quiesced", s->requests_quiesced);
		kbm_u64(&m, "short_quiesced", s->short_quiesced);
		kbm_u64(&m, "short_alloc_ok_quiesced", s->short_alloc_ok_quiesced);
	}
	kbm_u64(&m, "pages", s->pages);
	kbm_u64(&m, "p50_ns", kbulk_hist_pct(&s->hist, 500));
	kbm_u64(&m, "p99_ns", kbulk_hist_pct(&s->hist, 990));
	kbm_u64(&m, "max_ns", s->hist.max);
	kbulk_events_print(&m, &ev0, &ev1);
	kbm_str(&m, "api", kbulk_api_names[c->api]);
	kbm_u64(&m, "order", c->order);
	kbm_u64(&m, "nr", kbulk_is_folio_kind(c) ? c->size : c->nr);
	kbm_u64(&m, "folios", s->units);
	kbm_u64(&m, "calls", s->calls);
	kbm_u64(&m, "mean_ns", s->requests ? div64_u64(s->hist.sum, s->requests) : 0);
	kbm_u64(&m, "threads", started);
	kbm_u64(&m, "caller_loop", c->kind == KBULK_CALLER_LOOP);
	kbm_s64(&m, "oom_deflate", atomic_long_read(&hog.deflate_events) - defl0);
	kbm_s64(&m, "oom_deflate_pages",
		atomic_long_read(&hog.deflated_pages) - defl_pages0);
	kbm_u64(&m, "keep_pages", keep_pages);
	kbm_u64(&m, "keep_rounds", hog.keep_rounds);
	kbm_u64(&m, "keep_grown", hog.keep_grown);
	kbm_s64(&m, "usable_end", usable1);
	kbm_s64(&m, "usable_start", usable0);
	kbm_u64(&m, "hog_pages", hog.chunks.pages + hog.frag.pages);
	if (kbulk_is_folio_kind(c)) {
		kbm_u64(&m, "req_compact_stall_max", s->req_stall_max);
		kbm_u64(&m, "req_compact_fail_max", s->req_cfail_max);
		for (o = 0; o <= KBULK_HUGE_ORDER; o++) {
			char key[8];

			snprintf(key, sizeof(key), "ord%u", o);
			kbm_u64(&m, key, s->ord[o]);
		}
	}
	kbm_print(&m);

	if (!started) {
		ok = false;
		ktap_diag("%s: could not start any worker thread", c->name);
	}
	if (s->alloc_pages != s->freed_pages) {
		ok = false;
		ktap_diag("%s: test bookkeeping: %llu pages allocated, %llu freed",
			  c->name, s->alloc_pages, s->freed_pages);
	}
	if (kbulk_expect_fill(c) && (s->partial || s->failed)) {
		ok = false;
		ktap_diag("%s: %llu partial + %llu failed of %llu requests",
			  c->name, s->partial, s->failed, s->requests);
		ktap_diag("%s: reclaiming GFP w/o NORETRY/RETRY_MAYFAIL must fill at order <= %d",
			  c->name, PAGE_ALLOC_COSTLY_ORDER);
	}
	ktap_result(nr, c->name, ok, NULL);
	return ok;
}

/* ------------------------------------------------------------------ */
/* Module init                                                        */
/* ------------------------------------------------------------------ */

static void kbulk_free_workers(void)
{
	unsigned int i;

	if (!kbulk_workers)
		return;
	for (i = 0; i < threads; i++) {
		if (!kbulk_workers[i])
			continue;
		kvfree(kbulk_workers[i]->slots);
		kfree(kbulk_workers[i]->evbuf);
		kfree(kbulk_workers[i]);
	}
	kfree(kbulk_workers);
	kbulk_workers = NULL;
}

static int kbulk_alloc_workers(void)
{
	unsigned long folio_pages = (unsigned long)folio_kb * SZ_1K >> PAGE_SHIFT;
	unsigned int i;

	/* folio_kb <= 64 MiB and batch/blocks <= 64K are checked at init */
	kbulk_nr_slots = max3(batch, blocks, (unsigned int)folio_pages);
	kbulk_nr_slots = max(kbulk_nr_slots, 1U);
	kbulk_workers = kcalloc(threads, sizeof(*kbulk_workers), GFP_KERNEL);
	if (!kbulk_workers)
		return -ENOMEM;
	for (i = 0; i < threads; i++) {
		kbulk_workers[i] = kzalloc_obj(*kbulk_workers[i], GFP_KERNEL);
		if (!kbulk_workers[i])
			return -ENOMEM;
		kbulk_workers[i]->slots = kvcalloc(kbulk_nr_slots, sizeof(void *),
						   GFP_KERNEL);
		if (!kbulk_workers[i]->slots)
			return -ENOMEM;
		kbulk_workers[i]->evbuf = kcalloc(NR_VM_EVENT_ITEMS,
						  sizeof(unsigned long),
						  GFP_KERNEL);
		if (!kbulk_workers[i]->evbuf)
			return -ENOMEM;
	}
	return 0;
}

/* Free blocks above @order in all zones (racy snapshot, for the report). */
static unsigned long kbulk_free_blocks_above(unsigned int order)
{
	unsigned long sum = 0;
	struct zone *zone;
	unsigned int o;

	for (zone = kbulk_next_zone(NULL); zone; zone = kbulk_next_zone(zone))
		for (o = order + 1; o < NR_PAGE_ORDERS; o++)
			sum += READ_ONCE(zone->free_area[o].nr_free);
	return sum;
}

/*
 * Deterministic fragmentation (@prefrag_order): take every free block of
 * that order (no reclaim, no compaction, no reserves), then free the blocks
 * whose index pfn >> order is odd and hold the even ones until the cases
 * end.  A freed block's buddy is held (by us or by whoever had it), so no
 * free block larger than @prefrag_order forms from the freed ones: the
 * larger orders meet the same layout whatever the boot left where.
 */
static void kbulk_prefragment(void)
{
	unsigned int order = prefrag_order;
	unsigned long taken = 0, freed = 0, above;
	struct page *page, *next;
	struct kbulk_metric m;
	u64 t0 = ktime_get_ns();
	LIST_HEAD(blocks);

	above = kbulk_free_blocks_above(order);
	while ((page = alloc_pages(HOG_GFP, order))) {
		list_add_tail(&page->lru, &blocks);
		taken++;
		cond_resched();
	}
	list_for_each_entry_safe(page, next, &blocks, lru) {
		list_del(&page->lru);
		if ((page_to_pfn(page) >> order) & 1) {
			__free_pages(page, order);
			freed++;
		} else {
			hog_add(&hog.prefrag, page, order);
		}
	}

	kbm_start(&m, "prefrag");
	kbm_u64(&m, "order", order);
	kbm_u64(&m, "blocks_taken", taken);
	kbm_u64(&m, "blocks_freed", freed);
	kbm_u64(&m, "held_pages", hog.prefrag.pages);
	kbm_u64(&m, "free_above_order_before", above);
	kbm_u64(&m, "free_above_order_after", kbulk_free_blocks_above(order));
	kbm_u64(&m, "free_pages", global_zone_page_state(NR_FREE_PAGES));
	kbm_u64(&m, "setup_ms", div_u64(ktime_get_ns() - t0, NSEC_PER_MSEC));
	kbm_print(&m);
}

static void kbulk_setup_pressure(void)
{
	struct kbulk_metric m;
	long usable0 = kbulk_usable();
	u64 t0 = ktime_get_ns();

	hog.headroom = headroom_kb ? (unsigned long)headroom_kb * SZ_1K >> PAGE_SHIFT :
		       batch;
	if (pressure && usable0 > hog.headroom) {
		hog.target = div_u64((u64)(usable0 - hog.headroom) *
				     min(pressure, 100U), 100);
		kbulk_run_thread(kbulk_hog_fill_fn, "kbulk_hog");
		hog.target = hog.chunks.pages;
	}
	if (fragment)
		kbulk_run_thread(kbulk_frag_fn, "kbulk_frag");

	kbm_start(&m, "setup");
	kbm_s64(&m, "usable_before", usable0);
	kbm_u64(&m, "low_wmark", kbulk_low_wmark());
	kbm_u64(&m, "headroom", hog.headroom);
	kbm_u64(&m, "hog_pages", hog.chunks.pages);
	kbm_u64(&m, "frag_pages", hog.frag.pages);
	kbm_u64(&m, "holes", hog.holes);
	kbm_s64(&m, "usable_after", kbulk_usable());
	kbm_u64(&m, "free_pages", global_zone_page_state(NR_FREE_PAGES));
	kbm_u64(&m, "setup_ms", div_u64(ktime_get_ns() - t0, NSEC_PER_MSEC));
	kbm_print(&m);
}

static int __init kbulk_stress_init(void)
{
	unsigned long free_before, free_after, tol;
	struct kbulk_metric m;
	bool all_ok = true, leak_ok;
	long delta;
	unsigned int i;
	int ret;

	if (!threads || threads > 64 || batch > SZ_64K || blocks > SZ_64K ||
	    folio_kb > SZ_64K || prefrag_order > (int)MAX_PAGE_ORDER)
		return -EINVAL;
	kbulk_cases = kcalloc(KBULK_MAX_CASES, sizeof(*kbulk_cases), GFP_KERNEL);
	kbulk_evbuf = kcalloc(NR_VM_EVENT_ITEMS, sizeof(*kbulk_evbuf), GFP_KERNEL);
	ret = kbulk_alloc_workers();
	if (!kbulk_cases || !kbulk_evbuf || ret) {
		ret = -ENOMEM;
		goto out;
	}
	kbulk_build_cases();

	spin_lock_init(&hog.lock);
	INIT_LIST_HEAD(&hog.chunks.head);
	INIT_LIST_HEAD(&hog.keep.head);
	INIT_LIST_HEAD(&hog.frag.head);
	INIT_LIST_HEAD(&hog.prefrag.head);
	init_completion(&hog.done);

	ktap_suite_start("kbulk_stress", kbulk_nr_cases + 1);
	kbulk_print_env();

	/* after every allocation of our own, before the hog */
	rcu_barrier();
	free_before = kbulk_free_pages_exact();

	/* before the hog, so the layout the cases meet is the same on every boot */
	if (prefrag_order >= 0)
		kbulk_prefragment();
	register_oom_notifier(&kbulk_oom_nb);
	kbulk_setup_pressure();

	for (i = 0; i < kbulk_nr_cases; i++)
		all_ok &= kbulk_run_case(&kbulk_cases[i], i + 1);

	unregister_oom_notifier(&kbulk_oom_nb);
	hog_free(&hog.keep, ULONG_MAX);
	hog_free(&hog.frag, ULONG_MAX);
	hog_free(&hog.chunks, ULONG_MAX);
	hog_free(&hog.prefrag, ULONG_MAX);

	/* let exited kthreads and RCU-freed objects go back first */
	rcu_barrier();
	free_after = kbulk_free_pages_exact();
	delta = (long)free_before - (long)free_after;
	tol = leak_tolerance ? leak_tolerance : 256 + 64 * num_online_cpus();
	leak_ok = delta <= (long)tol;

	kbm_start(&m, "leak_check");
	kbm_u64(&m, "free_before", free_before);
	kbm_u64(&m, "free_after", free_after);
	kbm_s64(&m, "delta", delta);
	kbm_u64(&m, "tolerance", tol);
	kbm_s64(&m, "oom_deflate", atomic_long_read(&hog.deflate_events));
	kbm_print(&m);
	if (!leak_ok)
		ktap_diag("leak_check: %ld pages missing after the run (tolerance %lu)",
			  delta, tol);
	ktap_result(kbulk_nr_cases + 1, "leak_check", leak_ok, NULL);
	all_ok &= leak_ok;
	ktap_suite_end("kbulk_stress", all_ok);
	ret = 0;
out:
	kbulk_free_workers();
	kfree(kbulk_evbuf);
	kfree(kbulk_cases);
	return ret;
}

static void __exit kbulk_stress_exit(void)
{
}

module_init(kbulk_stress_init);
module_exit(kbulk_stress_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Stress test for the bulk page allocator under memory pressure");
