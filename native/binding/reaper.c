/*
 * reaper.c — one low-priority thread that destroys finished forks. Tearing a
 * VM down costs hundreds of µs of CPU (KVM VM release, unmaps); done on the
 * worker it competes with the next fork and run for the few cores. Past a
 * backlog of REAP_MAX (a saturated host) the worker destroys inline, so dead
 * VMs never pile up. Each queued bookkeeping job is posted once its vm is gone.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include "binding.h"

#define REAP_MAX 32
#define REAP_NICE 5   /* a third of a normal thread's share under contention: never starved for long */

static pthread_mutex_t g_reap_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_reap_cv = PTHREAD_COND_INITIALIZER;
static struct job *g_reap_head, *g_reap_tail;
static int g_reap_len;
static bool g_reap_running, g_reap_stop;
static pthread_t g_reaper;

static void *reaper_main(void *arg)
{
    (void)arg;
    setpriority(PRIO_PROCESS, (id_t)gettid(), REAP_NICE);   /* per-thread nice on Linux */
    pthread_mutex_lock(&g_reap_mu);
    for (;;) {
        while (!g_reap_head && !g_reap_stop) pthread_cond_wait(&g_reap_cv, &g_reap_mu);
        struct job *f = g_reap_head;
        if (!f) break;                                /* stopping and drained */
        g_reap_head = f->reap_next;
        if (!g_reap_head) g_reap_tail = NULL;
        g_reap_len--;
        pthread_mutex_unlock(&g_reap_mu);
        if (f->reap_vm) vmm_vm_destroy(f->reap_vm);
        f->reap_vm = NULL;
        f->vm_gone = true;
        job_post(f);
        pthread_mutex_lock(&g_reap_mu);
    }
    pthread_mutex_unlock(&g_reap_mu);
    return NULL;
}

/* Worker side: destroys `vm` (may be NULL) off the latency path, then posts f. */
void reap(struct vmm_vm *vm, struct job *f)
{
    pthread_mutex_lock(&g_reap_mu);
    if (g_reap_running && !g_reap_stop && g_reap_len < REAP_MAX) {
        f->reap_vm = vm;
        f->reap_next = NULL;
        if (g_reap_tail) g_reap_tail->reap_next = f; else g_reap_head = f;
        g_reap_tail = f;
        g_reap_len++;
        pthread_cond_signal(&g_reap_cv);
        pthread_mutex_unlock(&g_reap_mu);
        return;
    }
    pthread_mutex_unlock(&g_reap_mu);
    if (vm) vmm_vm_destroy(vm);
    f->vm_gone = true;
    job_post(f);
}

/* JS thread: starts the reaper once (without it, workers destroy inline). */
void reaper_start(void)
{
    pthread_mutex_lock(&g_reap_mu);
    if (!g_reap_running && !g_reap_stop && pthread_create(&g_reaper, NULL, reaper_main, NULL) == 0)
        g_reap_running = true;
    pthread_mutex_unlock(&g_reap_mu);
}

/* Cleanup hook: lets the reaper drain its queue, then joins it. */
void reaper_stop(void)
{
    pthread_mutex_lock(&g_reap_mu);
    bool running = g_reap_running;
    g_reap_stop = true;
    pthread_cond_signal(&g_reap_cv);
    pthread_mutex_unlock(&g_reap_mu);
    if (running) pthread_join(g_reaper, NULL);
}
