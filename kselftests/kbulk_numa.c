// SPDX-License-Identifier: GPL-2.0
/*
 * kbulk_numa: where the page allocator's entry points put pages under the
 * task's memory policy, per NUMA node.
 *
 * The guest's init sets a policy with set_mempolicy(2) before it loads this
 * module, so init_module() runs under it.  Each case allocates with one API,
 * counts the pages per node, prints them as a kbulk-metric line, frees them
 * and gives a KTAP verdict from the documented semantics of the policy
 * (Documentation/admin-guide/mm/numa_memory_policy.rst), with memory to
 * spare on every node:
 *
 *   default        every page on the local node
 *   bind           every page on a node of the set
 *   preferred      every page on the preferred node
 *   preferred_many every page on a node of the set
 *   interleave     every page on a node of the set, and the allocations
 *                  spread round-robin: per node, the number of allocations
 *                  (folios) differs by at most one over the set
 *
 * folio_alloc() and alloc_pages() are the reference: they honour the task
 * policy (mm/mempolicy.c).  folio_alloc_bulk() takes no node argument, so it
 * must place folios as a loop of folio_alloc() would.  alloc_pages_bulk()
 * takes the local node by definition (numa_mem_id(), no nodemask): its
 * placement is printed but not judged.
 *
 * The task is pinned to the CPUs of node @local_node while the cases run, so
 * "local" does not depend on the CPU the init happened to run on, and a
 * policy that names another node shows whether it was followed.
 */
#define pr_fmt(fmt) fmt

#include <linux/cpumask.h>
#include <linux/gfp.h>
#include <linux/mempolicy.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/nodemask.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/topology.h>

#include "kbulk_common.h"

static unsigned int nr_pages = 512;
module_param(nr_pages, uint, 0444);
MODULE_PARM_DESC(nr_pages, "pages per case (a multiple of 16), default 512");

static int local_node;
module_param(local_node, int, 0444);
MODULE_PARM_DESC(local_node, "node whose CPUs the cases run on (-1: do not pin)");

static unsigned int expect_nodes;
module_param(expect_nodes, uint, 0444);
MODULE_PARM_DESC(expect_nodes, "fail unless at least this many nodes are online");

#define FOLIO_ORDER	2	/* 16 KiB folios: several per node per call */
#define MIXED_MAX_ORDER	4	/* 64 KiB: the largest order folio_alloc_bulk() tries hard */

struct placement {
	unsigned long pages[MAX_NUMNODES];	/* pages per node */
	unsigned long allocs[MAX_NUMNODES];	/* allocations (folios) per node */
	unsigned long nr_pages;
	unsigned long nr_allocs;
};

struct policy_view {
	const char *mode;
	nodemask_t nodes;	/* where the pages may go */
	bool interleave;
};

static struct placement placement;	/* one case at a time */

static void place(struct placement *p, struct page *page, unsigned int order)
{
	int nid = page_to_nid(page);

	p->pages[nid] += 1UL << order;
	p->allocs[nid]++;
	p->nr_pages += 1UL << order;
	p->nr_allocs++;
}

/* The task policy as the documentation states it, with @local as "local". */
static void read_policy(struct policy_view *v, int local)
{
	struct mempolicy *pol = NULL;

#ifdef CONFIG_NUMA
	pol = current->mempolicy;	/* only this task changes it: no lock */
#endif
	v->interleave = false;
	nodes_clear(v->nodes);
	if (!pol) {
		v->mode = "default";
		node_set(local, v->nodes);
		return;
	}
#ifdef CONFIG_NUMA
	v->nodes = pol->nodes;
	switch (pol->mode) {
	case MPOL_BIND:
		v->mode = "bind";
		break;
	case MPOL_PREFERRED:
		v->mode = "preferred";
		nodes_clear(v->nodes);
		node_set(first_node(pol->nodes), v->nodes);
		break;
	case MPOL_PREFERRED_MANY:
		v->mode = "preferred_many";
		break;
	case MPOL_INTERLEAVE:
		v->mode = "interleave";
		v->interleave = true;
		break;
	case MPOL_LOCAL:
		v->mode = "local";
		nodes_clear(v->nodes);
		node_set(local, v->nodes);
		break;
	default:
		v->mode = "other";
		v->nodes = node_states[N_MEMORY];
		break;
	}
#endif
}

/* KTAP verdict of one case; prints its placement as a metric line. */
static bool judge(const char *test, const struct policy_view *v, unsigned long want,
		  const char **why)
{
	struct placement *p = &placement;
	unsigned long outside = 0, lo = ULONG_MAX, hi = 0;
	struct kbulk_metric m;
	int nid;

	kbm_start(&m, test);
	kbm_str(&m, "policy", v->mode);
	kbm_add(&m, " policy_nodes=%*pbl", nodemask_pr_args(&v->nodes));
	kbm_u64(&m, "requested", want);
	kbm_u64(&m, "allocs", p->nr_allocs);
	kbm_u64(&m, "pages", p->nr_pages);
	for_each_online_node(nid) {
		char key[24];

		snprintf(key, sizeof(key), "node%d_pages", nid);
		kbm_u64(&m, key, p->pages[nid]);
		snprintf(key, sizeof(key), "node%d_allocs", nid);
		kbm_u64(&m, key, p->allocs[nid]);
		if (!node_isset(nid, v->nodes))
			outside += p->pages[nid];
	}
	for_each_node_mask(nid, v->nodes) {
		lo = min(lo, p->allocs[nid]);
		hi = max(hi, p->allocs[nid]);
	}
	kbm_u64(&m, "outside_pages", outside);
	kbm_print(&m);

	if (p->nr_allocs < want) {
		*why = "allocation failed with memory to spare";
		return false;
	}
	if (outside) {
		*why = "pages outside the policy's nodes";
		return false;
	}
	if (v->interleave && hi - lo > 1) {
		*why = "interleave: allocations per node differ by more than one";
		return false;
	}
	return true;
}

static void reset(void)
{
	memset(&placement, 0, sizeof(placement));
}

/* Each case fills @placement and frees what it got; returns allocations asked for. */
static unsigned long case_alloc_pages(struct page **pages)
{
	unsigned long i, n = nr_pages, got = 0;

	for (i = 0; i < n; i++) {
		pages[i] = alloc_pages(GFP_KERNEL, 0);
		if (!pages[i])
			break;
		place(&placement, pages[i], 0);
		got++;
	}
	for (i = 0; i < got; i++)
		__free_pages(pages[i], 0);
	return n;
}

static unsigned long case_folio_alloc(struct page **pages)
{
	unsigned long i, n = nr_pages >> FOLIO_ORDER, got = 0;
	struct folio **folios = (struct folio **)pages;

	for (i = 0; i < n; i++) {
		folios[i] = folio_alloc(GFP_KERNEL, FOLIO_ORDER);
		if (!folios[i])
			break;
		place(&placement, &folios[i]->page, FOLIO_ORDER);
		got++;
	}
	for (i = 0; i < got; i++)
		folio_put(folios[i]);
	return n;
}

static unsigned long case_alloc_pages_bulk(struct page **pages)
{
	unsigned long i, got;

	memset(pages, 0, nr_pages * sizeof(*pages));
	got = alloc_pages_bulk(GFP_KERNEL, nr_pages, pages);
	for (i = 0; i < got; i++)
		place(&placement, pages[i], 0);
	for (i = 0; i < got; i++)
		__free_pages(pages[i], 0);
	return nr_pages;
}

#if KBULK_HAVE_FOLIO_BULK
static unsigned long folio_bulk(struct page **pages, unsigned int min_order,
				unsigned int max_order)
{
	struct folio **folios = (struct folio **)pages;
	unsigned long i, got;

	got = folio_alloc_bulk(GFP_KERNEL, (size_t)nr_pages << PAGE_SHIFT, min_order,
			       max_order, folios, nr_pages);
	for (i = 0; i < got; i++)
		place(&placement, &folios[i]->page, folio_order(folios[i]));
	for (i = 0; i < got; i++)
		folio_put(folios[i]);
	return 0;	/* checked in pages below */
}

static unsigned long case_folio_bulk_order2(struct page **pages)
{
	folio_bulk(pages, FOLIO_ORDER, FOLIO_ORDER);
	return nr_pages >> FOLIO_ORDER;
}

static unsigned long case_folio_bulk_mixed(struct page **pages)
{
	folio_bulk(pages, 0, MIXED_MAX_ORDER);
	/* Complete means all of @size: as many allocations as it took. */
	return placement.nr_pages == nr_pages ? placement.nr_allocs : ULONG_MAX;
}
#else
/* 7.2 has no folio_alloc_bulk(): those cases are skipped. */
#define case_folio_bulk_order2	NULL
#define case_folio_bulk_mixed	NULL
#endif

struct numa_case {
	const char *name;
	unsigned long (*run)(struct page **pages);
	bool judged;	/* false: placement printed, not judged (see the header) */
	bool mixed;	/* allocations of several sizes: interleave is judged in pages */
};

static const struct numa_case cases[] = {
	{ "alloc_pages_order0", case_alloc_pages, true, false },
	{ "folio_alloc_order2", case_folio_alloc, true, false },
	{ "alloc_pages_bulk_order0", case_alloc_pages_bulk, false, false },
	{ "folio_alloc_bulk_order2", case_folio_bulk_order2, true, false },
	{ "folio_alloc_bulk_mixed", case_folio_bulk_mixed, true, true },
};

/* Interleave of mixed sizes: each node of the set gets at least half its share of pages. */
static bool mixed_spread_ok(const struct policy_view *v)
{
	unsigned long share = placement.nr_pages / max_t(unsigned int, 1, nodes_weight(v->nodes));
	int nid;

	for_each_node_mask(nid, v->nodes)
		if (placement.pages[nid] * 2 < share)
			return false;
	return true;
}

static int __init kbulk_numa_init(void)
{
	int nr = 0, nr_tests = ARRAY_SIZE(cases) + 1, local;
	cpumask_var_t saved;
	struct policy_view view;
	char suite[40];
	struct page **pages;
	bool all_ok = true, pinned = false;
	unsigned int i;

	if (!nr_pages || nr_pages % 16 || nr_pages > 65536)
		return -EINVAL;
	if (local_node >= 0 && (local_node >= MAX_NUMNODES || !node_online(local_node)))
		return -EINVAL;
	pages = kvmalloc_array(nr_pages, sizeof(*pages), GFP_KERNEL);
	if (!pages)
		return -ENOMEM;
	if (!alloc_cpumask_var(&saved, GFP_KERNEL)) {
		kvfree(pages);
		return -ENOMEM;
	}

	/* Run on the CPUs of @local_node (a memory-only node has none: stay put). */
	cpumask_copy(saved, current->cpus_ptr);
	if (local_node >= 0 && cpumask_intersects(cpumask_of_node(local_node), cpu_online_mask))
		pinned = !set_cpus_allowed_ptr(current, cpumask_of_node(local_node));
	local = numa_node_id();
	read_policy(&view, local);

	/* One suite per policy, so the steps of one run stay apart in the results. */
	snprintf(suite, sizeof(suite), "kbulk_numa_%s", view.mode);
	ktap_suite_start(suite, nr_tests);
	kbulk_print_env();
	ktap_diag("policy %s nodes %*pbl, running on node %d (%s), %u nodes online",
		  view.mode, nodemask_pr_args(&view.nodes), local,
		  pinned ? "pinned" : "not pinned", num_online_nodes());

	nr++;
	if (expect_nodes && num_online_nodes() < expect_nodes) {
		ktap_diag("expected at least %u online nodes", expect_nodes);
		ktap_result(nr, "numa_nodes_online", false, NULL);
		all_ok = false;
	} else {
		ktap_result(nr, "numa_nodes_online", true, NULL);
	}

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		const struct numa_case *c = &cases[i];
		const char *why = NULL;
		unsigned long want;
		bool ok;

		nr++;
		if (!c->run) {
			ktap_result(nr, c->name, true, "no folio_alloc_bulk() in this kernel");
			continue;
		}
		reset();
		want = c->run(pages);
		if (c->mixed) {
			struct policy_view pages_view = view;

			/* Sizes differ: the spread is judged in pages below. */
			pages_view.interleave = false;
			ok = judge(c->name, &pages_view, want, &why);
			if (ok && view.interleave && !mixed_spread_ok(&view)) {
				why = "interleave: a node got less than half its share of pages";
				ok = false;
			}
		} else {
			ok = judge(c->name, &view, want, &why);
		}
		if (!c->judged) {
			ktap_result(nr, c->name, true,
				    "placement reported, not judged: takes the local node by definition");
			continue;
		}
		if (!ok)
			ktap_diag("%s: %s", c->name, why);
		ktap_result(nr, c->name, ok, NULL);
		all_ok &= ok;
	}
	if (pinned)
		set_cpus_allowed_ptr(current, saved);
	free_cpumask_var(saved);
	kvfree(pages);
	ktap_suite_end(suite, all_ok);
	return 0;
}

static void __exit kbulk_numa_exit(void)
{
}

module_init(kbulk_numa_init);
module_exit(kbulk_numa_exit);
MODULE_DESCRIPTION("Page placement of the bulk allocator under the task's mempolicy");
MODULE_LICENSE("GPL");
