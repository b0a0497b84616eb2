// SPDX-License-Identifier: GPL-2.0
/*
 * kbulk_bench - cost of the bulk page allocator against single-page loops.
 *
 *  - order 0: ns per page of alloc_pages_bulk() at several batch sizes
 *    against a loop of alloc_page(); freeing is timed as well: with
 *    release_pages() (on every kernel, so that the allocations of the next
 *    repetition find the per-cpu lists in the same state) against a loop of
 *    __free_page(), and in one extra case with the bulk free helper
 *    (free_pages_bulk() where exported, else the series'
 *    free_pages_bulk_order()), which returns contiguous runs straight to
 *    the buddy lists and so also changes the cost of the next allocations;
 *  - order > 0: ns per block/folio of alloc_pages_bulk_order() and
 *    folio_alloc_bulk() (when the kernel has them) against loops of
 *    alloc_pages(order) and folio_alloc(order).
 *
 * Each case allocates @size_kb of memory per repetition (all of it is
 * held, then all of it is freed), runs @warmup unreported repetitions and
 * then @reps timed ones, and reports the mean and the minimum over the
 * timed repetitions.
 *
 * Module init prints the whole KTAP document, frees everything and returns
 * 0: the module stays loaded, idle, until delete_module()/rmmod.
 */

#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/swap.h>
#include <linux/timekeeping.h>

#include "kbulk_common.h"

static unsigned int reps = 5;
module_param(reps, uint, 0444);
MODULE_PARM_DESC(reps, "Timed repetitions per case (default 5)");

static unsigned int warmup = 2;
module_param(warmup, uint, 0444);
MODULE_PARM_DESC(warmup, "Untimed warm-up repetitions per case (default 2)");

static unsigned int size_kb = 16384;
module_param(size_kb, uint, 0444);
MODULE_PARM_DESC(size_kb, "Memory allocated per repetition, KiB (default 16384)");

static int batches[8] = { 1, 8, 64, 512 };
static int nr_batches = 4;
module_param_array(batches, int, &nr_batches, 0444);
MODULE_PARM_DESC(batches, "Order-0 bulk batch sizes (default 1,8,64,512)");

static int orders[8] = { 2, 4, 9 };
static int nr_orders = 3;
module_param_array(orders, int, &nr_orders, 0444);
MODULE_PARM_DESC(orders, "Orders > 0 to measure (default 2,4,9)");

static unsigned int blocks = 16;
module_param(blocks, uint, 0444);
MODULE_PARM_DESC(blocks, "Blocks per bulk call for order > 0 (default 16)");

static int free0;
module_param(free0, int, 0444);
MODULE_PARM_DESC(free0,
		 "Free of order0_batch<B> pages: 0 release_pages() (default), 1 __free_page() loop");

static int free_bulk_batch = 64;
module_param(free_bulk_batch, int, 0444);
MODULE_PARM_DESC(free_bulk_batch,
		 "Batch of the order0_batch<B>_free_bulk case (bulk free helper), 0 = none (default 64)");

#define GFP_BENCH	GFP_KERNEL

enum bench_kind {
	B_SINGLE,	/* alloc_page() / __free_page() */
	B_BULK,		/* alloc_pages_bulk() / release_pages() (or @free0) */
	B_BULK_FREEBULK, /* alloc_pages_bulk() / free_pages_bulk[_order]() */
	B_LOOP,		/* alloc_pages(order) / __free_pages() */
	B_BULK_ORDER,	/* alloc_pages_bulk_order() */
	B_FOLIO_LOOP,	/* folio_alloc(order) / folio_put() */
	B_FOLIO_BULK,	/* folio_alloc_bulk() */
};

struct bench_case {
	char name[48];
	enum bench_kind kind;
	const char *api;
	unsigned int order;
	unsigned int batch;	/* units per alloc call */
	unsigned long units;	/* pages or folios per repetition */
	const char *skip;
};

struct bench_result {
	u64 alloc_sum, alloc_min;	/* ns per repetition */
	u64 free_sum, free_min;
	u64 shorts;			/* bulk calls that returned short */
	unsigned int done;		/* timed repetitions completed */
	/* order > 0: latency of each group of @blocks units (one bulk call) */
	struct kbulk_hist group;
};

static void **bench_slots;
static unsigned long bench_nr_slots;

/* Loop references, for the speedup ratios. */
static u64 ref_alloc[NR_PAGE_ORDERS], ref_free[NR_PAGE_ORDERS];
static u64 ref_folio_alloc[NR_PAGE_ORDERS], ref_folio_free[NR_PAGE_ORDERS];
static u64 ref_p99[NR_PAGE_ORDERS], ref_folio_p99[NR_PAGE_ORDERS];

static void bench_free_loop(struct page **pages, unsigned long n)
{
	unsigned long i;

	for (i = 0; i < n; i++)
		__free_page(pages[i]);
}

static void bench_free_units(const struct bench_case *c, unsigned long n)
{
	struct page **pages = (struct page **)bench_slots;
	struct folio **folios = (struct folio **)bench_slots;
	unsigned long i, step;

	switch (c->kind) {
	case B_SINGLE:
		for (i = 0; i < n; i++)
			__free_page(pages[i]);
		break;
	case B_BULK:
		for (i = 0; i < n; i += step) {
			step = min_t(unsigned long, c->batch, n - i);
			if (free0 == 1)
				bench_free_loop(pages + i, step);
			else
				release_pages(pages + i, step);
		}
		break;
	case B_BULK_FREEBULK:
		for (i = 0; i < n; i += step) {
			step = min_t(unsigned long, c->batch, n - i);
			kbulk_free_pages0(pages + i, step);
		}
		break;
	case B_BULK_ORDER:
		for (i = 0; i < n; i += step) {
			step = min_t(unsigned long, c->batch, n - i);
			kbulk_free_pages_order(pages + i, step, c->order);
		}
		break;
	case B_FOLIO_BULK:
		for (i = 0; i < n; i += step) {
			step = min_t(unsigned long, c->batch, n - i);
			kbulk_free_folios(folios + i, step);
		}
		break;
	case B_FOLIO_LOOP:
		for (i = 0; i < n; i++)
			folio_put(folios[i]);
		break;
	default:
		for (i = 0; i < n; i++)
			__free_pages(pages[i], c->order);
		break;
	}
}

/*
 * Order > 0: the latency of every group of @blocks units, one bulk call or
 * @blocks calls of the loop, so that the two can be compared request for
 * request (p99), not only on average.  Both sides read the clock once per
 * group, inside the timed repetition.
 */
static u64 bench_group_start(const struct kbulk_hist *h)
{
	return h ? ktime_get_ns() : 0;
}

static void bench_group_end(struct kbulk_hist *h, u64 t0)
{
	if (h)
		kbulk_hist_add(h, ktime_get_ns() - t0);
}

/* Allocate c->units units; returns how many were obtained. */
static unsigned long bench_alloc_units(const struct bench_case *c, u64 *shorts,
				       struct kbulk_hist *group)
{
	struct page **pages = (struct page **)bench_slots;
	struct folio **folios = (struct folio **)bench_slots;
	unsigned long i = 0, n, want;
	u64 t0 = 0;

	if (!c->order)
		group = NULL;
	switch (c->kind) {
	case B_SINGLE:
		for (i = 0; i < c->units; i++) {
			pages[i] = alloc_page(GFP_BENCH);
			if (!pages[i])
				break;
		}
		return i;
	case B_LOOP:
		for (i = 0; i < c->units; i++) {
			if (!(i % blocks))
				t0 = bench_group_start(group);
			pages[i] = alloc_pages(GFP_BENCH, c->order);
			if (!pages[i])
				break;
			if (i % blocks == blocks - 1 || i + 1 == c->units)
				bench_group_end(group, t0);
		}
		return i;
	case B_FOLIO_LOOP:
		for (i = 0; i < c->units; i++) {
			if (!(i % blocks))
				t0 = bench_group_start(group);
			folios[i] = folio_alloc(GFP_BENCH, c->order);
			if (!folios[i])
				break;
			if (i % blocks == blocks - 1 || i + 1 == c->units)
				bench_group_end(group, t0);
		}
		return i;
	case B_BULK:
	case B_BULK_FREEBULK:
		while (i < c->units) {
			want = min_t(unsigned long, c->batch, c->units - i);
			n = alloc_pages_bulk(GFP_BENCH, want, pages + i);
			if (n < want) {
				(*shorts)++;
				/* NULL-slot semantics: a second call fills the rest */
				n = alloc_pages_bulk(GFP_BENCH, want, pages + i);
				if (n < want) {
					/* keep the populated prefix for freeing */
					return i + n;
				}
			}
			i += n;
		}
		return i;
#if KBULK_HAVE_BULK_ORDER
	case B_BULK_ORDER:
		while (i < c->units) {
			want = min_t(unsigned long, c->batch, c->units - i);
			t0 = bench_group_start(group);
			n = alloc_pages_bulk_order(GFP_BENCH, c->order, want, pages + i);
			bench_group_end(group, t0);
			if (n < want)
				(*shorts)++;
			if (!n)
				break;
			i += n;
		}
		return i;
#endif
#if KBULK_HAVE_FOLIO_BULK
	case B_FOLIO_BULK:
		while (i < c->units) {
			want = min_t(unsigned long, c->batch, c->units - i);
			t0 = bench_group_start(group);
			n = folio_alloc_bulk(GFP_BENCH, want << (c->order + PAGE_SHIFT),
					     c->order, c->order, folios + i, want);
			bench_group_end(group, t0);
			if (n < want)
				(*shorts)++;
			if (!n)
				break;
			i += n;
		}
		return i;
#endif
	default:
		return 0;
	}
}

static bool bench_run(const struct bench_case *c, struct bench_result *r)
{
	unsigned int rep;

	memset(r, 0, sizeof(*r));
	r->alloc_min = U64_MAX;
	r->free_min = U64_MAX;
	for (rep = 0; rep < warmup + reps; rep++) {
		unsigned long n;
		u64 t0, t1, t2, shorts = 0;

		memset(bench_slots, 0, c->units * sizeof(*bench_slots));
		t0 = ktime_get_ns();
		n = bench_alloc_units(c, &shorts, rep < warmup ? NULL : &r->group);
		t1 = ktime_get_ns();
		bench_free_units(c, n);
		t2 = ktime_get_ns();
		if (n < c->units) {
			ktap_diag("%s: repetition %u got %lu of %lu units", c->name,
				  rep, n, c->units);
			return false;
		}
		cond_resched();
		if (rep < warmup)
			continue;
		r->alloc_sum += t1 - t0;
		r->free_sum += t2 - t1;
		r->alloc_min = min(r->alloc_min, t1 - t0);
		r->free_min = min(r->free_min, t2 - t1);
		r->shorts += shorts;
		r->done++;
	}
	return true;
}

static void bench_report(const struct bench_case *c, const struct bench_result *r)
{
	const char *unit = c->order ? "folio" : "page";
	u64 per_rep = c->units;
	u64 n = per_rep * r->done;
	u64 ref_a = 0, ref_f = 0, ref_p = 0;
	struct kbulk_metric m;
	char key[32];

	kbm_start(&m, c->name);
	kbm_str(&m, "api", c->api);
	snprintf(key, sizeof(key), "ns_per_%s", unit);
	kbm_ratio(&m, key, r->alloc_sum, n);
	snprintf(key, sizeof(key), "ns_per_%s_min", unit);
	kbm_ratio(&m, key, r->alloc_min, per_rep);
	snprintf(key, sizeof(key), "free_ns_per_%s", unit);
	kbm_ratio(&m, key, r->free_sum, n);
	snprintf(key, sizeof(key), "free_ns_per_%s_min", unit);
	kbm_ratio(&m, key, r->free_min, per_rep);
	kbm_u64(&m, "reps", r->done);
	kbm_u64(&m, "order", c->order);
	kbm_u64(&m, "batch", c->batch);
	kbm_u64(&m, "units_per_rep", per_rep);
	kbm_u64(&m, "short", r->shorts);
	if (r->group.count) {
		kbm_u64(&m, "group", blocks);
		kbm_u64(&m, "group_p50_ns", kbulk_hist_pct(&r->group, 500));
		kbm_u64(&m, "group_p99_ns", kbulk_hist_pct(&r->group, 990));
		kbm_u64(&m, "group_max_ns", r->group.max);
	}

	switch (c->kind) {
	case B_BULK:
	case B_BULK_FREEBULK:
	case B_BULK_ORDER:
		ref_a = ref_alloc[c->order];
		ref_f = ref_free[c->order];
		ref_p = c->order ? ref_p99[c->order] : 0;
		break;
	case B_FOLIO_BULK:
		ref_a = ref_folio_alloc[c->order];
		ref_f = ref_folio_free[c->order];
		ref_p = ref_folio_p99[c->order];
		break;
	default:
		break;
	}
	/* speedup = loop mean / this mean (same units, same repetitions) */
	if (ref_a && r->alloc_sum)
		kbm_ratio(&m, "speedup_vs_loop", ref_a, r->alloc_sum);
	if (ref_f && r->free_sum)
		kbm_ratio(&m, "free_speedup_vs_loop", ref_f, r->free_sum);
	/* > 1: the bulk call's p99 is below the loop's for as many units */
	if (ref_p && r->group.count)
		kbm_ratio(&m, "p99_speedup_vs_loop", ref_p,
			  kbulk_hist_pct(&r->group, 990));
	kbm_print(&m);
}

static void bench_remember(const struct bench_case *c, const struct bench_result *r)
{
	switch (c->kind) {
	case B_SINGLE:
	case B_LOOP:
		ref_alloc[c->order] = r->alloc_sum;
		ref_free[c->order] = r->free_sum;
		ref_p99[c->order] = kbulk_hist_pct(&r->group, 990);
		break;
	case B_FOLIO_LOOP:
		ref_folio_alloc[c->order] = r->alloc_sum;
		ref_folio_free[c->order] = r->free_sum;
		ref_folio_p99[c->order] = kbulk_hist_pct(&r->group, 990);
		break;
	default:
		break;
	}
}

#define BENCH_MAX_CASES	(2 + ARRAY_SIZE(batches) + 4 * ARRAY_SIZE(orders))

static struct bench_case *bench_cases;
static unsigned int bench_nr_cases;

static struct bench_case *bench_add(enum bench_kind kind, const char *api,
				    int order, unsigned int batch)
{
	struct bench_case *c = &bench_cases[bench_nr_cases++];
	unsigned long pages = max_t(unsigned long, (unsigned long)size_kb * SZ_1K >> PAGE_SHIFT, 1);

	c->kind = kind;
	c->api = api;
	c->order = order > 0 ? order : 0;
	c->batch = batch;
	if (order < 0 || order > MAX_PAGE_ORDER) {
		c->skip = "order not supported by this kernel (MAX_PAGE_ORDER)";
		c->units = 0;
	} else {
		c->units = max(pages >> order, 1UL);
	}
	if (!batch)
		c->skip = "batch size 0";
	bench_nr_slots = max(bench_nr_slots, c->units);
	return c;
}

static void bench_build_cases(void)
{
	struct bench_case *c;
	int i;

	c = bench_add(B_SINGLE, "loop", 0, 1);
	snprintf(c->name, sizeof(c->name), "order0_single_loop");
	for (i = 0; i < nr_batches; i++) {
		c = bench_add(B_BULK, "bulk", 0, max(batches[i], 0));
		snprintf(c->name, sizeof(c->name), "order0_batch%d", batches[i]);
	}
	if (free_bulk_batch > 0) {
		c = bench_add(B_BULK_FREEBULK, "bulk", 0, free_bulk_batch);
		snprintf(c->name, sizeof(c->name), "order0_batch%d_free_bulk",
			 free_bulk_batch);
		if (!KBULK_HAVE_FREE_PAGES_BULK && !KBULK_HAVE_FREE_PAGES_BULK_ORDER)
			c->skip = "no exported bulk free for order-0 pages on this kernel";
	}
	for (i = 0; i < nr_orders; i++) {
		int o = orders[i];

		c = bench_add(B_LOOP, "loop", o, 1);
		snprintf(c->name, sizeof(c->name), "order%d_loop", o);
		c = bench_add(B_BULK_ORDER, "bulk_order", o, blocks);
		snprintf(c->name, sizeof(c->name), "order%d_bulk", o);
		if (!KBULK_HAVE_BULK_ORDER)
			c->skip = "no alloc_pages_bulk_order() on this kernel";
		c = bench_add(B_FOLIO_LOOP, "loop", o, 1);
		snprintf(c->name, sizeof(c->name), "order%d_folio_loop", o);
		c = bench_add(B_FOLIO_BULK, "folio_bulk", o, blocks);
		snprintf(c->name, sizeof(c->name), "order%d_folio_bulk", o);
		if (!KBULK_HAVE_FOLIO_BULK)
			c->skip = "no folio_alloc_bulk() on this kernel";
	}
}

/* Too big for the stack with its latency histogram; init runs once. */
static struct bench_result bench_r;

static int __init kbulk_bench_init(void)
{
	struct bench_result *r = &bench_r;
	bool all_ok = true;
	unsigned int i;
	u64 t0;

	if (!reps || !blocks)
		return -EINVAL;
	bench_cases = kcalloc(BENCH_MAX_CASES, sizeof(*bench_cases), GFP_KERNEL);
	if (!bench_cases)
		return -ENOMEM;
	bench_build_cases();
	bench_slots = kvcalloc(max(bench_nr_slots, 1UL), sizeof(void *), GFP_KERNEL);
	if (!bench_slots) {
		kfree(bench_cases);
		return -ENOMEM;
	}

	ktap_suite_start("kbulk_bench", bench_nr_cases);
	kbulk_print_env();
	ktap_diag("bulk frees: order0_batch %s, _free_bulk %s, order > 0 %s, folios %s",
		  free0 == 1 ? "__free_page() loop" : "release_pages()",
		  KBULK_HAVE_FREE_PAGES_BULK || KBULK_HAVE_FREE_PAGES_BULK_ORDER ?
		  KBULK_FREE0_NAME : "n/a",
		  KBULK_HAVE_FREE_PAGES_BULK_ORDER ? "free_pages_bulk_order()" :
		  "__free_pages() loop",
		  KBULK_HAVE_FOLIO_PUT_BULK ? "folio_put_bulk()" : "folio_put() loop");

	t0 = ktime_get_ns();
	for (i = 0; i < bench_nr_cases; i++) {
		const struct bench_case *c = &bench_cases[i];
		bool ok;

		if (c->skip) {
			ktap_result(i + 1, c->name, true, c->skip);
			continue;
		}
		ok = bench_run(c, r);
		if (ok) {
			bench_remember(c, r);
			bench_report(c, r);
		}
		ktap_result(i + 1, c->name, ok, NULL);
		all_ok &= ok;
	}
	ktap_diag("total time %llu ms", div_u64(ktime_get_ns() - t0, NSEC_PER_MSEC));
	ktap_suite_end("kbulk_bench", all_ok);

	kvfree(bench_slots);
	kfree(bench_cases);
	return 0;
}

static void __exit kbulk_bench_exit(void)
{
}

module_init(kbulk_bench_init);
module_exit(kbulk_bench_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Benchmark of the bulk page allocator against single-page loops");
