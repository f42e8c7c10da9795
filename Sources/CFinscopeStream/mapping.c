#define _GNU_SOURCE
#include "finscope_mapping.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

// Fixed slots rather than a list: the signal handler must not take locks or allocate.
#define FS_GUARD_SLOTS 64

struct fs_mapping {
    unsigned char *base;
    size_t length;   // bytes mapped (a whole number of pages)
    size_t fault;    // SIZE_MAX, or the offset of the first page that faulted
    size_t released; // pages below it were given back (fs_mapping_release)
    int slot;
};

static fs_mapping *guard_slots[FS_GUARD_SLOTS];
static struct sigaction previous_action;
static pthread_once_t install_once = PTHREAD_ONCE_INIT;
static int installed = 0;

static void on_sigbus(int signal_number, siginfo_t *info, void *context) {
    uintptr_t address = (uintptr_t)info->si_addr;
    for (int index = 0; index < FS_GUARD_SLOTS; index++) {
        fs_mapping *mapping = __atomic_load_n(&guard_slots[index], __ATOMIC_ACQUIRE);
        if (mapping == NULL) continue;
        uintptr_t base = (uintptr_t)mapping->base;
        if (address < base || address >= base + mapping->length) continue;
        uintptr_t page = address & ~((uintptr_t)sysconf(_SC_PAGESIZE) - 1);
        // Zero pages from the fault to the end: the faulting load then reads 0 and goes on.
        if (mmap((void *)page, base + mapping->length - page, PROT_READ,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED) {
            break;
        }
        size_t offset = page - base;
        size_t seen = __atomic_load_n(&mapping->fault, __ATOMIC_RELAXED);
        while (offset < seen && !__atomic_compare_exchange_n(&mapping->fault, &seen, offset, 0,
                                                              __ATOMIC_RELEASE, __ATOMIC_RELAXED)) {}
        return;
    }
    // Not ours: the handler before ours decides (re-raised by returning to the fault).
    sigaction(SIGBUS, &previous_action, NULL);
    (void)signal_number;
    (void)context;
}

static void install_handler(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_sigbus;
    action.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&action.sa_mask);
    installed = sigaction(SIGBUS, &action, &previous_action) == 0;
}

fs_mapping *fs_mapping_open(int fd, size_t length) {
    pthread_once(&install_once, install_handler);
    if (!installed || length == 0) {
        errno = installed ? EINVAL : ENOTSUP;
        return NULL;
    }
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t mapped = (length + page - 1) / page * page;
    fs_mapping *mapping = calloc(1, sizeof *mapping);
    if (mapping == NULL) return NULL;
    void *base = mmap(NULL, mapped, PROT_READ, MAP_PRIVATE, fd, 0);
    if (base == MAP_FAILED) {
        int saved = errno;
        free(mapping);
        errno = saved;
        return NULL;
    }
    (void)madvise(base, mapped, MADV_SEQUENTIAL);
    mapping->base = base;
    mapping->length = mapped;
    mapping->fault = SIZE_MAX;
    mapping->slot = -1;
    for (int index = 0; index < FS_GUARD_SLOTS; index++) {
        fs_mapping *expected = NULL;
        if (__atomic_compare_exchange_n(&guard_slots[index], &expected, mapping, 0,
                                        __ATOMIC_RELEASE, __ATOMIC_RELAXED)) {
            mapping->slot = index;
            return mapping;
        }
    }
    munmap(base, mapped);
    free(mapping);
    errno = EMFILE;
    return NULL;
}

void fs_mapping_close(fs_mapping *mapping) {
    if (mapping == NULL) return;
    __atomic_store_n(&guard_slots[mapping->slot], NULL, __ATOMIC_RELEASE);
    munmap(mapping->base, mapping->length);
    free(mapping);
}

const unsigned char *fs_mapping_bytes(const fs_mapping *mapping) {
    return mapping->base;
}

void fs_mapping_release(fs_mapping *mapping, size_t offset) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t end = offset / page * page;
    if (end > mapping->length) end = mapping->length;
    if (end > mapping->released) {
        (void)madvise(mapping->base + mapping->released, end - mapping->released, MADV_DONTNEED);
        mapping->released = end;
    }
}

size_t fs_mapping_fault(const fs_mapping *mapping) {
    return __atomic_load_n(&mapping->fault, __ATOMIC_ACQUIRE);
}

int fs_usable_cpus(void) {
#ifdef __linux__
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int count = CPU_COUNT(&set);
        return count > 0 ? count : 1;
    }
#endif
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    return online > 0 ? (int)online : 1;
}

const size_t *fs_mapping_fault_slot(const fs_mapping *mapping) {
    return &mapping->fault;
}
