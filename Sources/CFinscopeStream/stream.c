#define _GNU_SOURCE
#include "finscope_stream.h"

#include <errno.h>
#include <lzma.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#define FS_INPUT_SIZE (256 * 1024)
#define FS_PEEK_MAX 64
/// The most memory an xz stream may ask for (its dictionary): a hostile header cannot make
/// finscope allocate more. xz -9 needs 65 MiB.
#define FS_XZ_MEMLIMIT (512ull * 1024 * 1024)

struct fs_stream {
    int fd;
    int spool_fd;
    int spool_errno;
    int kind;
    int eof;       // the descriptor is exhausted
    int finished;  // the decoder reached the end (or stopped at damage)
    int64_t consumed;
    unsigned char *input;
    size_t input_pos, input_len;
    unsigned char peeked[FS_PEEK_MAX];
    size_t peek_pos, peek_len;
    char error[256];
    int has_error;
    // gzip
    z_stream z;
    int z_member_done;  // the last member ended; another may follow
    // zstd
    ZSTD_DCtx *zstd;
    size_t zstd_last;  // ZSTD_decompressStream's last hint: 0 when a frame just ended
    // xz
    lzma_stream lzma;
};

int fs_sniff(const unsigned char *b, size_t n) {
    if (n >= 2 && b[0] == 0x1f && b[1] == 0x8b) return FS_GZIP;
    if (n >= 4 && b[0] == 0x28 && b[1] == 0xb5 && b[2] == 0x2f && b[3] == 0xfd) return FS_ZSTD;
    if (n >= 6 && b[0] == 0xfd && b[1] == 0x37 && b[2] == 0x7a && b[3] == 0x58 && b[4] == 0x5a && b[5] == 0x00)
        return FS_XZ;
    return FS_PLAIN;
}

static const char *kind_name(int kind) {
    switch (kind) {
    case FS_GZIP: return "gzip";
    case FS_ZSTD: return "zstd";
    case FS_XZ: return "xz";
    default: return "";
    }
}

/// Records the first reason reading stopped early; "%s" in `format` is the compression's name.
static void fail(fs_stream *s, const char *format, const char *detail) {
    if (!s->has_error) {
        char message[200];
        snprintf(message, sizeof message, format, kind_name(s->kind));
        if (detail) {
            snprintf(s->error, sizeof s->error, "%s (%s)", message, detail);
        } else {
            snprintf(s->error, sizeof s->error, "%s", message);
        }
        s->has_error = 1;
    }
    s->finished = 1;
}

static void spool(fs_stream *s, const unsigned char *bytes, size_t count) {
    if (s->spool_fd < 0 || s->spool_errno) return;
    while (count > 0) {
        ssize_t written = write(s->spool_fd, bytes, count);
        if (written < 0) {
            if (errno == EINTR) continue;
            s->spool_errno = errno;
            return;
        }
        bytes += written;
        count -= (size_t)written;
    }
}

/// One read(2) of up to n bytes into buffer, counted and spooled; 0 at the end or on an
/// error (then the stream is at its end and says why).
static size_t read_raw(fs_stream *s, unsigned char *buffer, size_t n) {
    for (;;) {
        ssize_t got = read(s->fd, buffer, n);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) {
            s->eof = 1;
            if (got < 0) fail(s, "read error", strerror(errno));
            return 0;
        }
        s->consumed += got;
        spool(s, buffer, (size_t)got);
        return (size_t)got;
    }
}

/// Reads more raw bytes when the input buffer is used up; false at the end or on error.
static int refill(fs_stream *s) {
    if (s->input_pos < s->input_len) return 1;
    if (s->eof) return 0;
    size_t got = read_raw(s, s->input, FS_INPUT_SIZE);
    if (got == 0) return 0;
    s->input_pos = 0;
    s->input_len = got;
    return 1;
}

fs_stream *fs_open_fd(int fd, int spool_fd, char *error, size_t error_length) {
    fs_stream *s = calloc(1, sizeof *s);
    if (s) s->input = malloc(FS_INPUT_SIZE);
    if (!s || !s->input) {
        if (s) free(s);
        snprintf(error, error_length, "out of memory");
        close(fd);
        return NULL;
    }
    s->fd = fd;
    s->spool_fd = spool_fd;
    // The first raw bytes name the compression; they stay in the input buffer.
    while (s->input_len < 6 && !s->eof) {
        ssize_t got = read(fd, s->input + s->input_len, FS_INPUT_SIZE - s->input_len);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) {
            snprintf(error, error_length, "%s", strerror(errno));
            fs_close(s);
            return NULL;
        }
        if (got == 0) s->eof = 1;
        spool(s, s->input + s->input_len, (size_t)got);
        s->input_len += (size_t)got;
        s->consumed += got;
    }
    s->kind = fs_sniff(s->input, s->input_len);
    switch (s->kind) {
    case FS_GZIP:
        // 15 + 32: a zlib or gzip header, detected.
        if (inflateInit2(&s->z, 15 + 32) != Z_OK) {
            snprintf(error, error_length, "cannot set up the gzip decoder");
            fs_close(s);
            return NULL;
        }
        break;
    case FS_ZSTD:
        s->zstd = ZSTD_createDCtx();
        if (!s->zstd) {
            snprintf(error, error_length, "cannot set up the zstd decoder");
            fs_close(s);
            return NULL;
        }
        s->zstd_last = 1;
        break;
    case FS_XZ: {
        lzma_stream init = LZMA_STREAM_INIT;
        s->lzma = init;
        if (lzma_stream_decoder(&s->lzma, FS_XZ_MEMLIMIT, LZMA_CONCATENATED) != LZMA_OK) {
            snprintf(error, error_length, "cannot set up the xz decoder");
            fs_close(s);
            return NULL;
        }
        break;
    }
    default:
        break;
    }
    return s;
}

void fs_close(fs_stream *s) {
    if (!s) return;
    if (s->kind == FS_GZIP) inflateEnd(&s->z);
    if (s->zstd) ZSTD_freeDCtx(s->zstd);
    if (s->kind == FS_XZ) lzma_end(&s->lzma);
    if (s->fd >= 0) close(s->fd);
    free(s->input);
    free(s);
}

static size_t read_plain(fs_stream *s, unsigned char *out, size_t n) {
    if (s->input_pos < s->input_len) {
        size_t take = s->input_len - s->input_pos;
        if (take > n) take = n;
        memcpy(out, s->input + s->input_pos, take);
        s->input_pos += take;
        return take;
    }
    if (s->eof) return 0;
    // Large reads go straight to the caller's buffer.
    if (n >= FS_INPUT_SIZE / 4) return read_raw(s, out, n);
    if (!refill(s)) return 0;
    return read_plain(s, out, n);
}

static size_t read_gzip(fs_stream *s, unsigned char *out, size_t n) {
    uInt want = (uInt)(n > (1u << 30) ? (1u << 30) : n);
    s->z.next_out = out;
    s->z.avail_out = want;
    while (s->z.avail_out == want) {
        if (s->input_pos >= s->input_len && !refill(s)) {
            if (!s->z_member_done) fail(s, "the %s data ends early (the compressed file is cut short)", NULL);
            s->finished = 1;
            break;
        }
        if (s->z_member_done) {
            // Another member follows (gzip files may be concatenated).
            inflateReset(&s->z);
            s->z_member_done = 0;
        }
        s->z.next_in = s->input + s->input_pos;
        s->z.avail_in = (uInt)(s->input_len - s->input_pos);
        int ret = inflate(&s->z, Z_NO_FLUSH);
        s->input_pos = s->input_len - s->z.avail_in;
        if (ret == Z_STREAM_END) {
            s->z_member_done = 1;
        } else if (ret != Z_OK && ret != Z_BUF_ERROR) {
            fail(s, "the %s data is damaged", s->z.msg ? s->z.msg : "inflate failed");
            break;
        }
    }
    return want - s->z.avail_out;
}

static size_t read_zstd(fs_stream *s, unsigned char *out, size_t n) {
    ZSTD_outBuffer output = { out, n, 0 };
    while (output.pos == 0) {
        if (s->input_pos >= s->input_len) refill(s);
        ZSTD_inBuffer input = { s->input + s->input_pos, s->input_len - s->input_pos, 0 };
        if (input.size == 0 && s->eof) {
            // 0 from the last call: a frame ended and was flushed whole, a clean end.
            if (s->zstd_last == 0) {
                s->finished = 1;
                break;
            }
            // The decoder may still hold output of the last frame.
            size_t r = ZSTD_decompressStream(s->zstd, &output, &input);
            if (ZSTD_isError(r)) {
                fail(s, "the %s data is damaged", ZSTD_getErrorName(r));
                break;
            }
            s->zstd_last = r;
            if (output.pos > 0) break;
            if (r != 0) fail(s, "the %s data ends early (the compressed file is cut short)", NULL);
            s->finished = 1;
            break;
        }
        size_t r = ZSTD_decompressStream(s->zstd, &output, &input);
        s->input_pos += input.pos;
        if (ZSTD_isError(r)) {
            fail(s, "the %s data is damaged", ZSTD_getErrorName(r));
            break;
        }
        s->zstd_last = r;
    }
    return output.pos;
}

static size_t read_xz(fs_stream *s, unsigned char *out, size_t n) {
    s->lzma.next_out = out;
    s->lzma.avail_out = n;
    while (s->lzma.avail_out == n) {
        if (s->input_pos >= s->input_len) refill(s);
        s->lzma.next_in = s->input + s->input_pos;
        s->lzma.avail_in = s->input_len - s->input_pos;
        lzma_action action = (s->lzma.avail_in == 0 && s->eof) ? LZMA_FINISH : LZMA_RUN;
        lzma_ret ret = lzma_code(&s->lzma, action);
        s->input_pos = s->input_len - s->lzma.avail_in;
        if (ret == LZMA_STREAM_END) {
            s->finished = 1;
            break;
        }
        if (ret == LZMA_OK) continue;
        if (ret == LZMA_BUF_ERROR && action == LZMA_FINISH) {
            if (s->lzma.avail_out < n) break;  // return what came out; the next call says it
            fail(s, "the %s data ends early (the compressed file is cut short)", NULL);
            break;
        }
        if (ret == LZMA_MEMLIMIT_ERROR) {
            fail(s, "the %s data asks for more than 512 MiB of decoder memory", NULL);
        } else if (ret == LZMA_FORMAT_ERROR || ret == LZMA_DATA_ERROR) {
            fail(s, "the %s data is damaged", NULL);
        } else if (ret != LZMA_BUF_ERROR) {
            fail(s, "the %s decoder failed", NULL);
        }
        break;
    }
    return n - s->lzma.avail_out;
}

size_t fs_read(fs_stream *s, void *buffer, size_t count) {
    unsigned char *out = buffer;
    size_t total = 0;
    if (s->peek_pos < s->peek_len) {
        size_t take = s->peek_len - s->peek_pos;
        if (take > count) take = count;
        memcpy(out, s->peeked + s->peek_pos, take);
        s->peek_pos += take;
        total += take;
        if (total == count) return total;
    }
    if (s->finished) return total;
    size_t n = count - total;
    size_t got;
    switch (s->kind) {
    case FS_GZIP: got = read_gzip(s, out + total, n); break;
    case FS_ZSTD: got = read_zstd(s, out + total, n); break;
    case FS_XZ: got = read_xz(s, out + total, n); break;
    default: got = read_plain(s, out + total, n); break;
    }
    return total + got;
}

size_t fs_peek(fs_stream *s, void *buffer, size_t count) {
    if (count > FS_PEEK_MAX) count = FS_PEEK_MAX;
    // Unread bytes already peeked come first.
    size_t have = s->peek_len - s->peek_pos;
    memmove(s->peeked, s->peeked + s->peek_pos, have);
    s->peek_pos = 0;
    s->peek_len = have;
    while (s->peek_len < count) {
        size_t saved = s->peek_len;
        s->peek_len = 0;  // so fs_read decodes rather than returning the peeked bytes
        unsigned char scratch[FS_PEEK_MAX];
        size_t got = fs_read(s, scratch, count - saved);
        s->peek_len = saved;
        if (got == 0) break;
        memcpy(s->peeked + s->peek_len, scratch, got);
        s->peek_len += got;
    }
    size_t give = s->peek_len < count ? s->peek_len : count;
    memcpy(buffer, s->peeked, give);
    return give;
}

int fs_kind(const fs_stream *s) { return s->kind; }
const char *fs_kind_name(const fs_stream *s) { return kind_name(s->kind); }
int64_t fs_consumed(const fs_stream *s) { return s->consumed; }
const char *fs_error(const fs_stream *s) { return s->has_error ? s->error : NULL; }
int fs_spool_errno(const fs_stream *s) { return s->spool_errno; }

static int cookie_close(void *cookie) {
    (void)cookie;
    return 0;
}

#ifdef __APPLE__
// BSD's funopen plays the part of glibc's fopencookie.
static int cookie_read(void *cookie, char *buffer, int count) {
    return (int)fs_read(cookie, buffer, (size_t)count);
}

FILE *fs_fopen(fs_stream *s) {
    FILE *file = funopen(s, cookie_read, NULL, NULL, cookie_close);
    if (file) setvbuf(file, NULL, _IOFBF, 256 * 1024);
    return file;
}
#else
static ssize_t cookie_read(void *cookie, char *buffer, size_t count) {
    return (ssize_t)fs_read(cookie, buffer, count);
}

FILE *fs_fopen(fs_stream *s) {
    cookie_io_functions_t io = { cookie_read, NULL, NULL, cookie_close };
    FILE *file = fopencookie(s, "r", io);
    if (file) setvbuf(file, NULL, _IOFBF, 256 * 1024);
    return file;
}
#endif
