#ifndef FINSCOPE_STREAM_H
#define FINSCOPE_STREAM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

// A byte stream over a file descriptor that decompresses gzip, zstd and xz on the fly
// (detected by their magic bytes) and passes anything else through. Bounded memory: one
// input buffer and the decoder's own state, never the whole content. Optionally every raw
// byte read is also written to a spool descriptor (standard input kept for a second pass).

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fs_stream fs_stream;

enum {
    FS_PLAIN = 0,
    FS_GZIP = 1,
    FS_ZSTD = 2,
    FS_XZ = 3,
};

/// The compression the first bytes name (FS_PLAIN when none).
int fs_sniff(const unsigned char *bytes, size_t count);

/// Opens a stream over `fd` (the stream owns it and closes it); `spool_fd` < 0 for none
/// (not owned). NULL with a message in `error` when the decoder cannot be set up.
fs_stream *fs_open_fd(int fd, int spool_fd, char *error, size_t error_length);

void fs_close(fs_stream *stream);

/// Up to `count` decompressed bytes; 0 at the end or at damage (see `fs_error`).
size_t fs_read(fs_stream *stream, void *buffer, size_t count);

/// Reads up to `count` (at most 64) bytes that later reads return again.
size_t fs_peek(fs_stream *stream, void *buffer, size_t count);

/// FS_PLAIN, FS_GZIP, FS_ZSTD or FS_XZ.
int fs_kind(const fs_stream *stream);

/// "gzip", "zstd", "xz" or "" (plain).
const char *fs_kind_name(const fs_stream *stream);

/// Raw (compressed) bytes read from the descriptor so far.
int64_t fs_consumed(const fs_stream *stream);

/// Why reading stopped early (a cut-short or damaged compressed stream, a read error),
/// or NULL.
const char *fs_error(const fs_stream *stream);

/// errno of the first failed write to the spool descriptor, or 0.
int fs_spool_errno(const fs_stream *stream);

/// A read-only stdio FILE over the stream (glibc's fopencookie, BSD funopen), for libpcap. Closing the
/// FILE does not close the stream.
FILE *fs_fopen(fs_stream *stream);

#ifdef __cplusplus
}
#endif

#endif
