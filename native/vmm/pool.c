/*
 * pool.c — pre-created vm shells (VM + vCPU + CPUID + kvm_run mapping +
 * mailbox slot) so a fork only maps RAM and restores state. A refill thread
 * keeps `target` shells ready; vmm_fork takes one under a mutex (the hot path
 * is a pop). Unbound shells carry nothing of any snapshot, so such a pool
 * serves all; a pool bound to a snapshot also maps its RAM in each shell.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct vmm_pool {
    atomic_int refs;              /* the creator's + one per async fork in flight */
    pthread_mutex_t lock;
    pthread_cond_t need;          /* refill thread waits here */
    pthread_t thread;
    int stop;
    int target, ready;
    struct vmm_shell *shells;     /* stack of `ready` shells, capacity `target` */
    uint64_t created, taken, misses, failures;
    atomic_uint_least64_t busy_misses;  /* lock held by the refill thread at a take */
    struct vmm_snapshot *snap;    /* binding (referenced), or NULL */
};

static void *refill_main(void *arg)
{
    struct vmm_pool *p = arg;
    /* Refilling is background work: it must not take CPU from vCPUs and forks. */
    struct sched_param sp = { .sched_priority = 0 };
    pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp);
    pthread_mutex_lock(&p->lock);
    while (!p->stop) {
        if (p->ready >= p->target) {
            pthread_cond_wait(&p->need, &p->lock);
            continue;
        }
        struct vmm_snapshot *snap = p->snap;
        if (snap) atomic_fetch_add(&snap->refs, 1);
        pthread_mutex_unlock(&p->lock);
        struct vmm_shell sh;
        int rc = shell_create(&sh, NULL);
        if (!rc && snap) {
            uint8_t *ram;
            rc = shell_bind(&sh, snap, &ram, NULL);
            if (rc) {
                shell_destroy(&sh);
            } else {
                sh.ram = ram;
                sh.ram_size = snap->ram_size;
                sh.bound = snap;   /* the reference moves into the shell */
                snap = NULL;
            }
        }
        if (snap) snapshot_put(snap);
        pthread_mutex_lock(&p->lock);
        if (rc) {
            /* Out of fds or memory: stop refilling until the next take asks again;
             * forks then create shells inline and report their own errors. */
            p->failures++;
            pthread_cond_wait(&p->need, &p->lock);
            continue;
        }
        if (p->stop || p->ready >= p->target || sh.bound != p->snap) {
            pthread_mutex_unlock(&p->lock);
            shell_destroy(&sh);
            pthread_mutex_lock(&p->lock);
            continue;
        }
        p->shells[p->ready++] = sh;
        p->created++;
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

int vmm_pool_create(const struct vmm_pool_config *cfg, struct vmm_pool **out, struct vmm_err *err)
{
    if (!cfg || !out || cfg->target < 0 || cfg->target > 100000)
        return vmm_fail(err, -EINVAL, "vmm_pool_create", "target must be 0..100000");
    if (!kvm_global(err)) return err ? err->code : -ENODEV;
    struct vmm_pool *p = calloc(1, sizeof *p);
    if (!p) return vmm_fail(err, -ENOMEM, "calloc", "pool");
    atomic_init(&p->refs, 1);
    p->target = cfg->target;
    p->shells = calloc((size_t)(cfg->target ? cfg->target : 1), sizeof *p->shells);
    if (!p->shells) { free(p); return vmm_fail(err, -ENOMEM, "calloc", "pool shells"); }
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->need, NULL);
    int rc = pthread_create(&p->thread, NULL, refill_main, p);
    if (rc) {
        pthread_cond_destroy(&p->need);
        pthread_mutex_destroy(&p->lock);
        free(p->shells);
        free(p);
        return vmm_fail(err, -rc, "pthread_create", "pool refill thread");
    }
    *out = p;
    return 0;
}

/* Never waits for the refill thread: it runs at SCHED_IDLE and could be
 * preempted holding the lock, so a busy lock counts as a miss (the fork then
 * creates its shell inline). */
int pool_take(struct vmm_pool *p, struct vmm_shell *out)
{
    if (pthread_mutex_trylock(&p->lock) != 0) {
        atomic_fetch_add(&p->busy_misses, 1);
        return -EAGAIN;
    }
    int hit = p->ready > 0;
    if (hit) { *out = p->shells[--p->ready]; p->taken++; }
    else p->misses++;
    pthread_mutex_unlock(&p->lock);
    pthread_cond_signal(&p->need);
    return hit ? 0 : -EAGAIN;
}

int vmm_pool_bind(struct vmm_pool *p, struct vmm_snapshot *snap, struct vmm_err *err)
{
    if (!p) return vmm_fail(err, -EINVAL, "vmm_pool_bind", "no pool");
    if (snap) atomic_fetch_add(&snap->refs, 1);
    pthread_mutex_lock(&p->lock);
    struct vmm_snapshot *old = p->snap;
    p->snap = snap;
    int n = p->ready;
    struct vmm_shell *drop = NULL;
    if (n) {
        drop = malloc((size_t)n * sizeof *drop);
        if (drop) {
            memcpy(drop, p->shells, (size_t)n * sizeof *drop);
            p->ready = 0;
        }
    }
    pthread_cond_signal(&p->need);
    pthread_mutex_unlock(&p->lock);
    /* Without memory for the list the old shells stay; vmm_fork replaces any
     * shell bound to another snapshot, so that is only slower, not wrong. */
    for (int i = 0; drop && i < n; i++) shell_destroy(&drop[i]);
    free(drop);
    if (old) snapshot_put(old);
    return 0;
}

void vmm_pool_stats(struct vmm_pool *p, struct vmm_pool_stats *out)
{
    pthread_mutex_lock(&p->lock);
    out->ready = p->ready;
    out->target = p->target;
    out->created = p->created;
    out->taken = p->taken;
    out->misses = p->misses + atomic_load(&p->busy_misses);
    pthread_mutex_unlock(&p->lock);
}

void pool_get(struct vmm_pool *p)
{
    atomic_fetch_add(&p->refs, 1);
}

void vmm_pool_destroy(struct vmm_pool *p)
{
    if (!p || atomic_fetch_sub(&p->refs, 1) != 1) return;
    pthread_mutex_lock(&p->lock);
    p->stop = 1;
    pthread_cond_signal(&p->need);
    pthread_mutex_unlock(&p->lock);
    pthread_join(p->thread, NULL);
    for (int i = 0; i < p->ready; i++) shell_destroy(&p->shells[i]);
    if (p->snap) snapshot_put(p->snap);
    pthread_cond_destroy(&p->need);
    pthread_mutex_destroy(&p->lock);
    free(p->shells);
    free(p);
}
