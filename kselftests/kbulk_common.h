/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by kbulk_stress.ko and kbulk_bench.ko: API detection,
 * KTAP/metric printing, latency histograms, vm event and free page
 * snapshots.  Everything is static: each module gets its own copy.
 */
#ifndef KBULK_COMMON_H
#define KBULK_COMMON_H

#include <linux/gfp.h>
#include <linux/kernel.h>
#include <linux/math64.h>
#include <linux/mm.h>
#include <linux/mmzone.h>
#include <linux/nodemask.h>
#include <linux/percpu.h>
#include <linux/printk.h>
#include <linux/sizes.h>
#include <linux/swap.h>
#include <linux/timekeeping.h>
#include <linux/vmstat.h>

/*
 * API detection.
 *
 * The bulk series defines its allocation entry points in <linux/gfp.h> as
 * alloc_hooks() macros, so their presence is visible to the preprocessor.
 * On a pristine 7.2 kernel none of them exist and the modules fall back to
 * what a 7.2 caller does today: one alloc_pages_bulk() call per request
 * (order 0) and a loop of alloc_pages() (order > 0).
 *
 * Exported functions that are not macros (free helpers) are detected by the
 * Kbuild file, which greps Module.symvers of the kernel build and passes
 * -DKBULK_HAVE_<SYMBOL>=1.
 */
#ifdef alloc_pages_bulk_order
#define KBULK_HAVE_BULK_ORDER	1
#else
#define KBULK_HAVE_BULK_ORDER	0
#endif

#ifdef folio_alloc_bulk
#define KBULK_HAVE_FOLIO_BULK	1
#else
#define KBULK_HAVE_FOLIO_BULK	0
#endif

/* The series is "present" if either of its new entry points is. */
#define KBULK_SERIES		(KBULK_HAVE_BULK_ORDER || KBULK_HAVE_FOLIO_BULK)

#ifndef KBULK_HAVE_FREE_PAGES_BULK
#define KBULK_HAVE_FREE_PAGES_BULK	0	/* not exported on 7.2 */
#endif
#ifndef KBULK_HAVE_FREE_PAGES_BULK_ORDER
#define KBULK_HAVE_FREE_PAGES_BULK_ORDER	0	/* series */
#endif
#ifndef KBULK_HAVE_FOLIO_PUT_BULK
#define KBULK_HAVE_FOLIO_PUT_BULK	0	/* series */
#endif

/*
 * Free helpers used for bulk-allocated memory (the loops of the baseline
 * free with __free_page()/__free_pages()/folio_put() one by one).
 */
static inline void kbulk_free_pages0(struct page **pages, unsigned long n)
{
	if (!n)
		return;
#if KBULK_HAVE_FREE_PAGES_BULK
	free_pages_bulk(pages, n);
#elif KBULK_HAVE_FREE_PAGES_BULK_ORDER
	free_pages_bulk_order(pages, n, 0);
#else
	release_pages(pages, n);
#endif
}

static inline void kbulk_free_pages_order(struct page **pages, unsigned long n,
					  unsigned int order)
{
#if KBULK_HAVE_FREE_PAGES_BULK_ORDER
	free_pages_bulk_order(pages, n, order);
#else
	unsigned long i;

	for (i = 0; i < n; i++)
		__free_pages(pages[i], order);
#endif
}

static inline void kbulk_free_folios(struct folio **folios, unsigned long n)
{
#if KBULK_HAVE_FOLIO_PUT_BULK
	folio_put_bulk(folios, n);
#else
	unsigned long i;

	for (i = 0; i < n; i++)
		folio_put(folios[i]);
#endif
}

#define KBULK_FREE0_NAME						\
	(KBULK_HAVE_FREE_PAGES_BULK ? "free_pages_bulk()" :		\
	 KBULK_HAVE_FREE_PAGES_BULK_ORDER ? "free_pages_bulk_order(, 0)" :	\
	 "release_pages()")

/* Largest order the modules use for "big" chunks (2 MiB with 4K pages). */
#define KBULK_HUGE_ORDER	min_t(unsigned int, 9, MAX_PAGE_ORDER)

/* ------------------------------------------------------------------ */
/* KTAP output (same shape as a KUnit run with one suite)             */
/* ------------------------------------------------------------------ */

#define KBULK_IND	"    "

struct kbulk_metric {
	char buf[900];
	size_t len;
};

static inline __printf(2, 3) void kbm_add(struct kbulk_metric *m, const char *fmt, ...)
{
	va_list args;

	if (m->len >= sizeof(m->buf) - 1)
		return;
	va_start(args, fmt);
	m->len += vscnprintf(m->buf + m->len, sizeof(m->buf) - m->len, fmt, args);
	va_end(args);
}

static inline void kbm_start(struct kbulk_metric *m, const char *test)
{
	m->len = 0;
	m->buf[0] = '\0';
	kbm_add(m, "test=%s", test);
}

static inline void kbm_u64(struct kbulk_metric *m, const char *key, u64 val)
{
	kbm_add(m, " %s=%llu", key, (unsigned long long)val);
}

static inline void kbm_s64(struct kbulk_metric *m, const char *key, s64 val)
{
	kbm_add(m, " %s=%lld", key, (long long)val);
}

static inline void kbm_str(struct kbulk_metric *m, const char *key, const char *val)
{
	kbm_add(m, " %s=%s", key, val);
}

/* Prints num/den with one decimal digit, e.g. 27.1. */
static inline void kbm_ratio(struct kbulk_metric *m, const char *key, u64 num, u64 den)
{
	u64 tenths;

	if (!den) {
		kbm_add(m, " %s=0.0", key);
		return;
	}
	tenths = div64_u64(num * 10 + den / 2, den);
	kbm_add(m, " %s=%llu.%llu", key, (unsigned long long)(tenths / 10),
		(unsigned long long)(tenths % 10));
}

static inline void kbm_print(struct kbulk_metric *m)
{
	pr_info(KBULK_IND "# kbulk-metric: %s\n", m->buf);
}

static inline void ktap_suite_start(const char *suite, int nr_tests)
{
	pr_info("KTAP version 1\n");
	pr_info("1..1\n");
	pr_info(KBULK_IND "KTAP version 1\n");
	pr_info(KBULK_IND "# Subtest: %s\n", suite);
	pr_info(KBULK_IND "1..%d\n", nr_tests);
}

static inline void ktap_suite_end(const char *suite, bool ok)
{
	pr_info("%s 1 %s\n", ok ? "ok" : "not ok", suite);
}

static inline void ktap_result(int nr, const char *name, bool ok, const char *skip)
{
	if (skip)
		pr_info(KBULK_IND "ok %d %s # SKIP %s\n", nr, name, skip);
	else
		pr_info(KBULK_IND "%s %d %s\n", ok ? "ok" : "not ok", nr, name);
}

#define ktap_diag(fmt, ...) pr_info(KBULK_IND "# " fmt "\n", ##__VA_ARGS__)

/* Smallest non-zero step of ktime_get_ns() seen (jiffies clocks: 1-10 ms). */
static inline u64 kbulk_clock_res_ns(void)
{
	u64 best = U64_MAX, t0, t1;
	unsigned int i;

	for (i = 0; i < 64; i++) {
		t0 = ktime_get_ns();
		do {
			t1 = ktime_get_ns();
		} while (t1 == t0);
		best = min(best, t1 - t0);
	}
	return best;
}

static inline void kbulk_print_env(void)
{
	struct kbulk_metric m;

	kbm_start(&m, "env");
	kbm_u64(&m, "api_bulk_order", KBULK_HAVE_BULK_ORDER);
	kbm_u64(&m, "api_folio_bulk", KBULK_HAVE_FOLIO_BULK);
	kbm_u64(&m, "api_free_pages_bulk", KBULK_HAVE_FREE_PAGES_BULK);
	kbm_u64(&m, "api_free_pages_bulk_order", KBULK_HAVE_FREE_PAGES_BULK_ORDER);
	kbm_u64(&m, "api_folio_put_bulk", KBULK_HAVE_FOLIO_PUT_BULK);
	kbm_u64(&m, "nr_cpus", num_online_cpus());
	kbm_u64(&m, "totalram_pages", totalram_pages());
	kbm_u64(&m, "page_size", PAGE_SIZE);
	kbm_u64(&m, "max_page_order", MAX_PAGE_ORDER);
	kbm_u64(&m, "clock_res_ns", kbulk_clock_res_ns());
	kbm_print(&m);
}

/* ------------------------------------------------------------------ */
/* Latency histogram: log2 buckets with 8 linear sub-buckets each     */
/* (relative error < 6.25%), exact below 8 ns, exact maximum.          */
/* ------------------------------------------------------------------ */

#define KBULK_HIST_BUCKETS	512

struct kbulk_hist {
	u32 bucket[KBULK_HIST_BUCKETS];
	u64 count;
	u64 max;
	u64 sum;
};

static inline unsigned int kbulk_hist_idx(u64 v)
{
	unsigned int shift;

	if (v < 8)
		return v;
	shift = fls64(v) - 4;
	return shift * 8 + (unsigned int)(v >> shift);
}

/* Midpoint of bucket @idx. */
static inline u64 kbulk_hist_val(unsigned int idx)
{
	unsigned int shift;

	if (idx < 16)
		return idx;
	shift = idx / 8 - 1;
	return ((u64)((idx & 7) + 8) << shift) + (1ULL << shift) / 2;
}

static inline void kbulk_hist_add(struct kbulk_hist *h, u64 v)
{
	h->bucket[min_t(unsigned int, kbulk_hist_idx(v), KBULK_HIST_BUCKETS - 1)]++;
	h->count++;
	h->sum += v;
	if (v > h->max)
		h->max = v;
}

static inline void kbulk_hist_merge(struct kbulk_hist *dst, const struct kbulk_hist *src)
{
	unsigned int i;

	for (i = 0; i < KBULK_HIST_BUCKETS; i++)
		dst->bucket[i] += src->bucket[i];
	dst->count += src->count;
	dst->sum += src->sum;
	if (src->max > dst->max)
		dst->max = src->max;
}

/* @permille: 500 for p50, 990 for p99. */
static inline u64 kbulk_hist_pct(const struct kbulk_hist *h, unsigned int permille)
{
	u64 want, seen = 0;
	unsigned int i;

	if (!h->count)
		return 0;
	want = div_u64(h->count * permille + 999, 1000);
	for (i = 0; i < KBULK_HIST_BUCKETS; i++) {
		seen += h->bucket[i];
		if (seen >= want)
			return min(kbulk_hist_val(i), h->max);
	}
	return h->max;
}

/* ------------------------------------------------------------------ */
/* vm event counters (/proc/vmstat equivalents)                        */
/* ------------------------------------------------------------------ */

struct kbulk_events {
	s64 compact_stall;
	s64 compact_fail;
	s64 compact_success;
	s64 allocstall;
	s64 pgalloc;
	s64 oom_kill;
};

/* @buf must hold NR_VM_EVENT_ITEMS entries; unavailable counters are -1. */
static inline void kbulk_events_snap(struct kbulk_events *e, unsigned long *buf)
{
	e->compact_stall = -1;
	e->compact_fail = -1;
	e->compact_success = -1;
	e->allocstall = -1;
	e->pgalloc = -1;
	e->oom_kill = -1;
#ifdef CONFIG_VM_EVENT_COUNTERS
	{
		/* PGALLOC_*, ALLOCSTALL_*, PGSCAN_SKIP_* have one entry per zone */
		const int nz = (PGFREE - (PSWPOUT + 1)) / 3;
		const int pgalloc0 = PSWPOUT + 1;
		int i;

		all_vm_events(buf);
		e->pgalloc = 0;
		e->allocstall = 0;
		for (i = 0; i < nz; i++) {
			e->pgalloc += buf[pgalloc0 + i];
			e->allocstall += buf[pgalloc0 + nz + i];
		}
		e->oom_kill = buf[OOM_KILL];
#ifdef CONFIG_COMPACTION
		e->compact_stall = buf[COMPACTSTALL];
		e->compact_fail = buf[COMPACTFAIL];
		e->compact_success = buf[COMPACTSUCCESS];
#endif
	}
#endif
}

static inline s64 kbulk_ev_delta(s64 before, s64 after)
{
	return (before < 0 || after < 0) ? -1 : after - before;
}

static inline void kbulk_events_print(struct kbulk_metric *m,
				      const struct kbulk_events *a,
				      const struct kbulk_events *b)
{
	kbm_s64(m, "compact_stall", kbulk_ev_delta(a->compact_stall, b->compact_stall));
	kbm_s64(m, "compact_fail", kbulk_ev_delta(a->compact_fail, b->compact_fail));
	kbm_s64(m, "allocstall", kbulk_ev_delta(a->allocstall, b->allocstall));
	kbm_s64(m, "pgalloc", kbulk_ev_delta(a->pgalloc, b->pgalloc));
	kbm_s64(m, "compact_success",
		kbulk_ev_delta(a->compact_success, b->compact_success));
	kbm_s64(m, "oom_kill", kbulk_ev_delta(a->oom_kill, b->oom_kill));
}

/* ------------------------------------------------------------------ */
/* Free memory snapshots                                              */
/* ------------------------------------------------------------------ */

/* Next populated zone of any online node; NULL starts, NULL ends. */
static inline struct zone *kbulk_next_zone(struct zone *zone)
{
	int nid = zone ? zone_to_nid(zone) : first_online_node;
	struct zone *z = zone ? zone + 1 : NODE_DATA(nid)->node_zones;

	for (;;) {
		struct zone *end = NODE_DATA(nid)->node_zones + MAX_NR_ZONES;

		for (; z < end; z++)
			if (populated_zone(z))
				return z;
		nid = next_online_node(nid);
		if (nid >= MAX_NUMNODES)
			return NULL;
		z = NODE_DATA(nid)->node_zones;
	}
}

/* Pages sitting on the per-cpu free lists of @zone (racy snapshot). */
static inline unsigned long kbulk_zone_pcp_pages(struct zone *zone)
{
	unsigned long sum = 0;
	int cpu;

	for_each_online_cpu(cpu)
		sum += READ_ONCE(per_cpu_ptr(zone->per_cpu_pageset, cpu)->count);
	return sum;
}

/*
 * Free pages including pages on per-cpu lists, with the per-cpu vmstat
 * deltas folded in: a module cannot call drain_all_pages() on 7.2 (not
 * exported), so pcp pages are counted instead of drained.
 */
static inline unsigned long kbulk_free_pages_exact(void)
{
	unsigned long sum = 0;
	struct zone *zone;

	for (zone = kbulk_next_zone(NULL); zone; zone = kbulk_next_zone(zone))
		sum += zone_page_state_snapshot(zone, NR_FREE_PAGES) +
		       kbulk_zone_pcp_pages(zone);
	return sum;
}

#endif /* KBULK_COMMON_H */
