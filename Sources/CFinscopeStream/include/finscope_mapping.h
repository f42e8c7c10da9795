#ifndef FINSCOPE_MAPPING_H
#define FINSCOPE_MAPPING_H

#include <stddef.h>
#include <stdint.h>

// A read-only mapping of a capture file that survives the file being truncated while it is
// mapped: touching a page past the new end raises SIGBUS, and a crash is not an allowed
// answer to bad input. A SIGBUS handler (installed once) replaces the mapping from the
// faulting page on with zero pages and notes the offset; the reader checks the offset
// (fs_mapping_fault) and stops with a warning. Faults outside every guarded mapping go to
// the handler that was there before.
//
// Also the few atomics of the analysis's single-producer/single-consumer ring (no locks on
// the per-packet path; static inline, so they compile to plain loads and stores on x86).

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fs_mapping fs_mapping;

/// Maps `length` bytes of `fd` read-only (MADV_SEQUENTIAL), guarded; NULL with errno set
/// (also when every guard slot is taken: the caller then reads the file another way).
fs_mapping *fs_mapping_open(int fd, size_t length);
/// Unmaps and frees the guard slot.
void fs_mapping_close(fs_mapping *mapping);
/// The mapped bytes.
const unsigned char *fs_mapping_bytes(const fs_mapping *mapping);
/// Drops the pages below `offset` from this process's memory (MADV_DONTNEED): the read has
/// passed them, and a mapped file should not count as the reader's memory. They stay
/// readable (a touch reads them again from the page cache).
void fs_mapping_release(fs_mapping *mapping, size_t offset);
/// The first offset whose page faulted (the file shrank), or SIZE_MAX while none did.
size_t fs_mapping_fault(const fs_mapping *mapping);
/// Where that offset is kept, for a per-record check without a call (fs_atomic_load_acquire).
const size_t *fs_mapping_fault_slot(const fs_mapping *mapping);

/// The CPUs this process may run on (sched_getaffinity; Swift's Glibc lacks it), at least 1.
int fs_usable_cpus(void);

static inline size_t fs_atomic_load_acquire(const size_t *address) {
    return __atomic_load_n(address, __ATOMIC_ACQUIRE);
}
static inline void fs_atomic_store_release(size_t *address, size_t value) {
    __atomic_store_n(address, value, __ATOMIC_RELEASE);
}
/// Reads one byte so that a page cut off by a truncation faults now (volatile: kept).
static inline void fs_touch(const unsigned char *address) {
    (void)*(const volatile unsigned char *)address;
}
/// A hint to the CPU inside a spin-wait loop.
static inline void fs_spin_pause(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

#ifdef __cplusplus
}
#endif

#endif
