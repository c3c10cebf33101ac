/*
 * workers.c — native threads that own vCPUs. KVM ties a vCPU to the thread
 * that last ran it (running it elsewhere is slow), so every job touching one
 * vm goes to the same worker; each worker runs its FIFO queue in order.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>

#include "internal.h"

struct job { struct job *next; vmm_job_fn fn; void *arg; };

struct worker {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct job *head, *tail;
    int stop;
    pthread_t thread;
};

struct vmm_workers { int n; struct worker *w; };

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (!w->head && !w->stop) pthread_cond_wait(&w->cond, &w->lock);
        struct job *j = w->head;
        if (!j) break;               /* stop and drained */
        w->head = j->next;
        if (!w->head) w->tail = NULL;
        pthread_mutex_unlock(&w->lock);
        j->fn(j->arg);
        free(j);
        pthread_mutex_lock(&w->lock);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

static void stop_and_join(struct vmm_workers *ws, int started)
{
    for (int i = 0; i < started; i++) {
        pthread_mutex_lock(&ws->w[i].lock);
        ws->w[i].stop = 1;
        pthread_cond_signal(&ws->w[i].cond);
        pthread_mutex_unlock(&ws->w[i].lock);
    }
    for (int i = 0; i < started; i++) {
        pthread_join(ws->w[i].thread, NULL);
        pthread_cond_destroy(&ws->w[i].cond);
        pthread_mutex_destroy(&ws->w[i].lock);
    }
}

int vmm_workers_create(int n, struct vmm_workers **out, struct vmm_err *err)
{
    if (n < 1 || n > 1024 || !out) return vmm_fail(err, -EINVAL, "vmm_workers_create", "n must be 1..1024");
    struct vmm_workers *ws = calloc(1, sizeof *ws);
    if (!ws) return vmm_fail(err, -ENOMEM, "calloc", "workers");
    ws->w = calloc((size_t)n, sizeof *ws->w);
    if (!ws->w) { free(ws); return vmm_fail(err, -ENOMEM, "calloc", "workers"); }
    ws->n = n;
    /* Workers must not block signals (the run deadline/kick signal interrupts
     * KVM_RUN); start them with an empty mask whatever the caller's is. */
    sigset_t all, old;
    sigemptyset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    for (int i = 0; i < n; i++) {
        pthread_mutex_init(&ws->w[i].lock, NULL);
        pthread_cond_init(&ws->w[i].cond, NULL);
        int rc = pthread_create(&ws->w[i].thread, NULL, worker_main, &ws->w[i]);
        if (rc) {
            pthread_cond_destroy(&ws->w[i].cond);
            pthread_mutex_destroy(&ws->w[i].lock);
            stop_and_join(ws, i);
            pthread_sigmask(SIG_SETMASK, &old, NULL);
            free(ws->w);
            free(ws);
            return vmm_fail(err, -rc, "pthread_create", "worker %d", i);
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    *out = ws;
    return 0;
}

int vmm_workers_submit(struct vmm_workers *ws, unsigned index, vmm_job_fn fn, void *arg)
{
    if (!ws || !fn) return -EINVAL;
    struct job *j = malloc(sizeof *j);
    if (!j) return -ENOMEM;
    j->next = NULL; j->fn = fn; j->arg = arg;
    struct worker *w = &ws->w[index % (unsigned)ws->n];
    pthread_mutex_lock(&w->lock);
    if (w->stop) { pthread_mutex_unlock(&w->lock); free(j); return -ESHUTDOWN; }
    if (w->tail) w->tail->next = j; else w->head = j;
    w->tail = j;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
    return 0;
}

void vmm_workers_destroy(struct vmm_workers *ws)
{
    if (!ws) return;
    stop_and_join(ws, ws->n);
    free(ws->w);
    free(ws);
}
