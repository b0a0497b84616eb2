// SPDX-License-Identifier: GPL-2.0
/*
 * kbulk_memcg - __GFP_ACCOUNT bulk allocations at a memory cgroup's limit,
 * against a loop of alloc_pages(__GFP_ACCOUNT) for the same requests.
 *
 * Load it from a task in a child memory cgroup with memory.max set (the
 * harness's guest init does that for a module with "memcg: {max: ...}" in
 * the run definition).  Every request asks for more memory than the
 * cgroup has left below memory.max (@over pages more, after a prefill of
 * a different size per request so that the limit falls at a different
 * place in a batch each time), counts what it got and what happened in
 * the cgroup meanwhile, then frees everything.  Per request and API:
 *
 *  - obtained: blocks stored in the array;
 *  - max_events, oom, oom_kill: memory.events deltas of the cgroup;
 *  - reclaim_calls: calls of try_to_free_mem_cgroup_pages() (memcg
 *    reclaim passes) by this task, counted with a kprobe (-1 without
 *    CONFIG_KPROBES);
 *  - over_max_pages: how far memory.peak went above memory.max;
 *  - balance_pages: memory.current after freeing minus before the request.
 *
 * Expectations, from what alloc_pages(__GFP_ACCOUNT) documents: a charged
 * allocation that would go over memory.max reclaims in the cgroup and
 * fails (without __GFP_NOFAIL / __GFP_HIGH, and without the OOM killer
 * for __GFP_RETRY_MAYFAIL / __GFP_NORETRY); freeing a charged page returns
 * its charge.  A bulk request behaves like a sequence of such calls that
 * stops at the first failure, so per request:
 *
 *  - <mode>_events: the bulk request reaches the limit (memory.events
 *    "max") no more often than the loop does;
 *  - <mode>_reclaim: and runs no more memcg reclaim passes than the loop;
 *  - <mode>_limit: memory.peak never goes above memory.max;
 *  - <mode>_balance: after freeing, memory.current is back where it was,
 *    up to the per-cpu charge cache (MEMCG_CHARGE_BATCH pages a CPU);
 *  - <mode>_no_oom: the OOM killer never ran.
 */

#include <linux/kprobes.h>
#include <linux/memcontrol.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/page_counter.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>

#include "kbulk_common.h"

#ifdef CONFIG_MEMCG

static unsigned int over = 2048;
module_param(over, uint, 0444);
MODULE_PARM_DESC(over, "Pages each request asks for beyond what fits below memory.max (default 2048)");

static unsigned int reps = 4;
module_param(reps, uint, 0444);
MODULE_PARM_DESC(reps, "Requests per mode and API; request i prefills i * 23 pages (default 4)");

static const struct kbulk_memcg_mode {
	const char *name;
	gfp_t gfp;
	unsigned int order;
} kbulk_memcg_modes[] = {
	{ "retry_mayfail", GFP_KERNEL_ACCOUNT | __GFP_RETRY_MAYFAIL | __GFP_NOWARN, 0 },
	{ "noretry", GFP_KERNEL_ACCOUNT | __GFP_NORETRY | __GFP_NOWARN, 0 },
	{ "retry_mayfail_order2", GFP_KERNEL_ACCOUNT | __GFP_RETRY_MAYFAIL | __GFP_NOWARN, 2 },
	{ "noretry_order2", GFP_KERNEL_ACCOUNT | __GFP_NORETRY | __GFP_NOWARN, 2 },
};

/* ------------------------------------------------------------------ */
/* memcg reclaim passes of this task                                   */
/* ------------------------------------------------------------------ */

static struct task_struct *kbm_task;
static atomic_long_t kbm_reclaim_calls;

#ifdef CONFIG_KPROBES
static int kbm_reclaim_pre(struct kprobe *p, struct pt_regs *regs)
{
	if (current == READ_ONCE(kbm_task))
		atomic_long_inc(&kbm_reclaim_calls);
	return 0;
}

static struct kprobe kbm_kp = {
	.symbol_name = "try_to_free_mem_cgroup_pages",
	.pre_handler = kbm_reclaim_pre,
};

static bool kbm_kp_ok;

static void kbm_probe_start(void)
{
	kbm_kp_ok = !register_kprobe(&kbm_kp);
}

static void kbm_probe_stop(void)
{
	if (kbm_kp_ok)
		unregister_kprobe(&kbm_kp);
}
#else
static const bool kbm_kp_ok;
static void kbm_probe_start(void) { }
static void kbm_probe_stop(void) { }
#endif

static s64 kbm_reclaims(void)
{
	return kbm_kp_ok ? atomic_long_read(&kbm_reclaim_calls) : -1;
}

/* ------------------------------------------------------------------ */
/* cgroup counters                                                     */
/* ------------------------------------------------------------------ */

struct kbm_snap {
	long max_events, oom, oom_kill;
	s64 reclaims;
};

static void kbm_take_snap(struct mem_cgroup *memcg, struct kbm_snap *s)
{
	s->max_events = atomic_long_read(&memcg->memory_events[MEMCG_MAX]);
	s->oom = atomic_long_read(&memcg->memory_events[MEMCG_OOM]);
	s->oom_kill = atomic_long_read(&memcg->memory_events[MEMCG_OOM_KILL]);
	s->reclaims = kbm_reclaims();
}

struct kbm_result {
	unsigned long obtained;
	long max_events, oom, oom_kill;
	s64 reclaims;
	long over_max;
	long balance;
};

/* Take @n order-0 charged pages so that the limit falls elsewhere in a batch. */
static unsigned long kbm_prefill(struct page **pages, unsigned long n)
{
	unsigned long i;

	for (i = 0; i < n; i++) {
		pages[i] = alloc_page(GFP_KERNEL_ACCOUNT | __GFP_NORETRY | __GFP_NOWARN);
		if (!pages[i])
			break;
	}
	return i;
}

static void kbm_free(struct page **pages, unsigned long n, unsigned int ord)
{
	unsigned long i;

	for (i = 0; i < n; i++)
		__free_pages(pages[i], ord);
}

static unsigned long kbm_alloc(bool bulk, gfp_t gfp, unsigned int order, unsigned long nr,
			       struct page **pages)
{
	unsigned long i;

	if (bulk) {
		memset(pages, 0, nr * sizeof(*pages));
		if (!order)
			return alloc_pages_bulk(gfp, nr, pages);
#if KBULK_HAVE_BULK_ORDER
		return alloc_pages_bulk_order(gfp, order, nr, pages);
#endif
	}
	for (i = 0; i < nr; i++) {
		pages[i] = alloc_pages(gfp, order);
		if (!pages[i])
			break;
	}
	return i;
}

static void kbm_request(struct mem_cgroup *memcg, bool bulk, gfp_t gfp,
			unsigned int order, unsigned int prefill, struct page **fill,
			struct page **pages, unsigned long max_nr,
			struct kbm_result *r)
{
	unsigned long max = READ_ONCE(memcg->memory.max);
	unsigned long start, usage, nr, got_fill;
	struct kbm_snap a, b;

	start = page_counter_read(&memcg->memory);
	got_fill = kbm_prefill(fill, prefill);
	usage = page_counter_read(&memcg->memory);
	nr = ((max > usage ? max - usage : 0) + over) >> order;
	nr = min(nr, max_nr);

	page_counter_reset_watermark(&memcg->memory);
	kbm_take_snap(memcg, &a);
	r->obtained = kbm_alloc(bulk, gfp, order, nr, pages);
	kbm_take_snap(memcg, &b);
	r->over_max = (long)READ_ONCE(memcg->memory.watermark) - (long)max;

	kbm_free(pages, r->obtained, order);
	kbm_free(fill, got_fill, 0);
	r->balance = (long)page_counter_read(&memcg->memory) - (long)start;

	r->max_events = b.max_events - a.max_events;
	r->oom = b.oom - a.oom;
	r->oom_kill = b.oom_kill - a.oom_kill;
	r->reclaims = (a.reclaims < 0 || b.reclaims < 0) ? -1 : b.reclaims - a.reclaims;
}

static void kbm_print_result(const char *mode, const char *api, unsigned int order,
			     unsigned int rep, const struct kbm_result *r)
{
	struct kbulk_metric m;
	char name[64];

	snprintf(name, sizeof(name), "%s_%s_order%u_req%u", mode, api, order, rep);
	kbm_start(&m, name);
	kbm_u64(&m, "obtained", r->obtained);
	kbm_s64(&m, "max_events", r->max_events);
	kbm_s64(&m, "oom", r->oom);
	kbm_s64(&m, "oom_kill", r->oom_kill);
	kbm_s64(&m, "reclaim_calls", r->reclaims);
	kbm_s64(&m, "over_max_pages", r->over_max);
	kbm_s64(&m, "balance_pages", r->balance);
	kbm_print(&m);
}

/* Per-cpu charge cache: what memory.current may keep after freeing. */
static long kbm_tolerance(void)
{
	return MEMCG_CHARGE_BATCH * num_possible_cpus() + 1;
}

enum { T_EVENTS, T_RECLAIM, T_LIMIT, T_BALANCE, T_NO_OOM, NR_T };

static const char * const kbm_test_names[NR_T] = {
	[T_EVENTS] = "events",
	[T_RECLAIM] = "reclaim",
	[T_LIMIT] = "limit",
	[T_BALANCE] = "balance",
	[T_NO_OOM] = "no_oom",
};

/* Compare one bulk request with the loop's; clear ok[] for what failed. */
static void kbm_check(const char *mode, unsigned int rep, const struct kbm_result *bulk,
		      const struct kbm_result *loop, bool *ok)
{
	const long tol = kbm_tolerance();

	if (bulk->max_events > loop->max_events) {
		ok[T_EVENTS] = false;
		ktap_diag("%s req%u: memory.events max +%ld (bulk), +%ld (loop)",
			  mode, rep, bulk->max_events, loop->max_events);
	}
	if (bulk->reclaims > loop->reclaims) {
		ok[T_RECLAIM] = false;
		ktap_diag("%s req%u: memcg reclaim passes %lld (bulk), %lld (loop)",
			  mode, rep, bulk->reclaims, loop->reclaims);
	}
	if (bulk->over_max > 0 || loop->over_max > 0) {
		ok[T_LIMIT] = false;
		ktap_diag("%s req%u: memory.peak - memory.max %ld (bulk), %ld (loop) pages",
			  mode, rep, bulk->over_max, loop->over_max);
	}
	if (abs(bulk->balance) > tol || abs(loop->balance) > tol) {
		ok[T_BALANCE] = false;
		ktap_diag("%s req%u: memory.current after free %+ld (bulk), %+ld (loop), tol %ld",
			  mode, rep, bulk->balance, loop->balance, tol);
	}
	if (bulk->oom || bulk->oom_kill || loop->oom || loop->oom_kill) {
		ok[T_NO_OOM] = false;
		ktap_diag("%s req%u: memcg oom %ld/%ld, oom_kill %ld/%ld (bulk/loop)",
			  mode, rep, bulk->oom, loop->oom, bulk->oom_kill, loop->oom_kill);
	}
}

static bool kbm_run_mode(const struct kbulk_memcg_mode *mode, struct mem_cgroup *memcg,
			 struct page **fill, struct page **pages, unsigned long max_nr,
			 const char *skip, int *nr)
{
	bool ok[NR_T] = { true, true, true, true, true };
	bool all_ok = true;
	unsigned int rep;
	char name[64];
	int t;

	if (!skip && mode->order && !KBULK_HAVE_BULK_ORDER)
		skip = "order > 0 needs alloc_pages_bulk_order() (the series)";
	for (rep = 0; !skip && rep < reps; rep++) {
		struct kbm_result bulk, loop;

		/* Loop first: the bulk request meets the same state after it. */
		kbm_request(memcg, false, mode->gfp, mode->order, rep * 23, fill, pages,
			    max_nr, &loop);
		kbm_request(memcg, true, mode->gfp, mode->order, rep * 23, fill, pages,
			    max_nr, &bulk);
		kbm_print_result(mode->name, "loop", mode->order, rep, &loop);
		kbm_print_result(mode->name, "bulk", mode->order, rep, &bulk);
		kbm_check(mode->name, rep, &bulk, &loop, ok);
	}
	for (t = 0; t < NR_T; t++) {
		const char *s = skip;

		if (!s && t == T_RECLAIM && !kbm_kp_ok)
			s = "no kprobes (CONFIG_KPROBES) to count memcg reclaim passes";
		snprintf(name, sizeof(name), "%s_%s", mode->name, kbm_test_names[t]);
		ktap_result(++*nr, name, ok[t] || s, s);
		all_ok &= ok[t] || s;
	}
	return all_ok;
}

static int __init kbulk_memcg_init(void)
{
	const unsigned int nr_modes = ARRAY_SIZE(kbulk_memcg_modes);
	struct page **pages = NULL, **fill = NULL;
	struct mem_cgroup *memcg;
	unsigned long max_nr = 0;
	const char *skip = NULL;
	bool all_ok = true;
	unsigned int mi;
	int nr = 0;

	memcg = get_mem_cgroup_from_mm(current->mm);
	if (!memcg || mem_cgroup_is_root(memcg))
		skip = "not in a child memory cgroup (run with memcg: in the run definition)";
	else if (READ_ONCE(memcg->memory.max) == PAGE_COUNTER_MAX)
		skip = "memory.max of the cgroup is not set";

	if (!skip) {
		max_nr = READ_ONCE(memcg->memory.max) + over + 1;
		pages = kvcalloc(max_nr, sizeof(*pages), GFP_KERNEL);
		fill = kvcalloc(reps * 23 + 1, sizeof(*fill), GFP_KERNEL);
		if (!pages || !fill)
			skip = "no memory for the page arrays";
	}

	ktap_suite_start("kbulk_memcg", nr_modes * NR_T);
	kbulk_print_env();
	if (!skip) {
		WRITE_ONCE(kbm_task, current);
		kbm_probe_start();
		ktap_diag("memory.max %lu pages, over %u, reps %u, kprobe %s",
			  READ_ONCE(memcg->memory.max), over, reps,
			  kbm_kp_ok ? "yes" : "no");
	}
	for (mi = 0; mi < nr_modes; mi++)
		all_ok &= kbm_run_mode(&kbulk_memcg_modes[mi], memcg, fill, pages, max_nr,
				       skip, &nr);
	ktap_suite_end("kbulk_memcg", all_ok);

	if (!skip)
		kbm_probe_stop();
	WRITE_ONCE(kbm_task, NULL);
	kvfree(pages);
	kvfree(fill);
	if (memcg)
		mem_cgroup_put(memcg);
	return 0;
}

#else /* !CONFIG_MEMCG */

static int __init kbulk_memcg_init(void)
{
	ktap_suite_start("kbulk_memcg", 1);
	ktap_result(1, "memcg", true, "needs CONFIG_MEMCG");
	ktap_suite_end("kbulk_memcg", true);
	return 0;
}

#endif

static void __exit kbulk_memcg_exit(void)
{
}

module_init(kbulk_memcg_init);
module_exit(kbulk_memcg_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("__GFP_ACCOUNT bulk allocations at a memory cgroup limit");
