/* loopback-gen: sends the TCP segments of complete connections on the loopback interface at
 * a given packet rate for a bounded time, for Scripts/bench-live (issue 15: the highest rate
 * `finscope live` captures with 0 drops, beside tcpdump).
 *
 *   loopback-gen --rate PPS --seconds S [--concurrent K] [--batch B] [--interface lo]
 *                [--payload-request N] [--payload-response N]
 *   (--rate 0: as fast as it can; needs CAP_NET_RAW, i.e. root)
 *
 * Prints one line on stdout: "sent P packets, F connections, T s, R pps" (P = 11 x F).
 *
 * Every connection is 11 segments with consistent sequence numbers: SYN, SYN+ACK, ACK, a
 * request (PSH+ACK, an HTTP/1.1 head), its ACK, a response (PSH+ACK, a status line), its
 * ACK, the client's FIN, its ACK, the server's FIN, the last ACK: a client-first close. K
 * connections (default 1,000) are in flight at once, their segments interleaved round-robin;
 * each has its own 4-tuple (clients 127.77.x.y with ports 1024-65535, servers 127.78.0.1-16
 * on a few service ports), so every flow is tracked on its own. After S seconds no new
 * connection starts and the ones in flight are finished at the same rate, so every
 * connection the capture sees is complete.
 *
 * Frames are Ethernet (lo's link type) + IPv4 + TCP, written through an AF_PACKET socket
 * with PACKET_QDISC_BYPASS in batches of B (default 32) with sendmmsg. Pacing: the packets
 * due at RATE x elapsed time are sent, then the loop sleeps until the next batch is due.
 * The IPv4 header checksum is deliberately wrong: the capture taps see the frame before the
 * IP layer, which then discards it, so the kernel's TCP stack never answers these segments
 * with RSTs (nothing listens) nor spends the sender's CPU on them. finscope and tcpdump do
 * not verify checksums. Only 127.0.0.0/8 addresses are used: nothing leaves the host.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { SEGMENTS = 11, MAX_BATCH = 1024, FRAME_MAX = 2048 };
enum { FIN = 0x01, SYN = 0x02, RST = 0x04, PSH = 0x08, ACK = 0x10 };

struct conn {
    uint32_t client, server;  /* IPv4 addresses, host order */
    uint16_t cport, sport;
    uint32_t cseq, sseq;      /* initial sequence numbers */
    int step;                 /* next segment, 0..SEGMENTS-1 */
};

static uint64_t rng_state = 0x243F6A8885A308D3ull;
static uint64_t next_random(void) { /* SplitMix64 */
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double now_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void usage(void) {
    fprintf(stderr, "usage: loopback-gen --rate PPS --seconds S [--concurrent K] [--batch B] [--interface lo]\n"
                    "                    [--payload-request N] [--payload-response N]   (--rate 0: unlimited)\n");
    exit(2);
}

static uint64_t started = 0;
static int request_bytes = 300, response_bytes = 1200;
static const char request_head[] = "GET /loopback-gen HTTP/1.1\r\nHost: bench.local\r\nUser-Agent: loopback-gen/1\r\n\r\n";
static const char response_head[] = "HTTP/1.1 200 OK\r\nContent-Length: 1100\r\n\r\n";

static void start(struct conn *c) {
    uint64_t n = started++;
    /* Unique 4-tuples: 64,512 ports x 65,536 client addresses. */
    c->cport = (uint16_t)(1024 + n % 64512);
    c->client = 0x7F4D0000u | (uint32_t)((n / 64512) & 0xFFFF); /* 127.77.x.y */
    c->server = 0x7F4E0001u + (uint32_t)(next_random() % 16);   /* 127.78.0.1-16 */
    static const uint16_t ports[] = {80, 443, 8080, 5432, 6379, 9200};
    c->sport = ports[next_random() % (sizeof ports / sizeof ports[0])];
    c->cseq = (uint32_t)next_random();
    c->sseq = (uint32_t)next_random();
    c->step = 0;
}

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)(v >> 16)); put16(p + 2, (uint16_t)v); }

/* Writes segment `c->step` of the connection into `frame`; returns the frame's length. */
static size_t build(const struct conn *c, uint8_t *frame) {
    uint32_t q = (uint32_t)request_bytes, r = (uint32_t)response_bytes;
    uint32_t ci = c->cseq, si = c->sseq;
    int from_client;
    uint8_t flags;
    uint32_t seq, ack;
    int payload = 0;
    switch (c->step) {
    case 0: from_client = 1; flags = SYN; seq = ci; ack = 0; break;
    case 1: from_client = 0; flags = SYN | ACK; seq = si; ack = ci + 1; break;
    case 2: from_client = 1; flags = ACK; seq = ci + 1; ack = si + 1; break;
    case 3: from_client = 1; flags = PSH | ACK; seq = ci + 1; ack = si + 1; payload = 1; break;
    case 4: from_client = 0; flags = ACK; seq = si + 1; ack = ci + 1 + q; break;
    case 5: from_client = 0; flags = PSH | ACK; seq = si + 1; ack = ci + 1 + q; payload = 2; break;
    case 6: from_client = 1; flags = ACK; seq = ci + 1 + q; ack = si + 1 + r; break;
    case 7: from_client = 1; flags = FIN | ACK; seq = ci + 1 + q; ack = si + 1 + r; break;
    case 8: from_client = 0; flags = ACK; seq = si + 1 + r; ack = ci + 2 + q; break;
    case 9: from_client = 0; flags = FIN | ACK; seq = si + 1 + r; ack = ci + 2 + q; break;
    default: from_client = 1; flags = ACK; seq = ci + 2 + q; ack = si + 2 + r; break;
    }
    size_t length = payload == 1 ? (size_t)request_bytes : payload == 2 ? (size_t)response_bytes : 0;
    int syn = flags & SYN;
    size_t tcp_header = syn ? 24 : 20;
    size_t ip_length = 20 + tcp_header + length;
    /* Ethernet: lo carries zero MAC addresses. */
    memset(frame, 0, 12);
    put16(frame + 12, ETHERTYPE_IP);
    uint8_t *ip = frame + 14;
    ip[0] = 0x45; ip[1] = 0;
    put16(ip + 2, (uint16_t)ip_length);
    put16(ip + 4, (uint16_t)started); put16(ip + 6, 0x4000); /* DF */
    ip[8] = 64; ip[9] = 6;
    put16(ip + 10, 0xDEAD); /* wrong on purpose: the IP layer drops it after the taps (see top) */
    put32(ip + 12, from_client ? c->client : c->server);
    put32(ip + 16, from_client ? c->server : c->client);
    uint8_t *tcp = ip + 20;
    put16(tcp, from_client ? c->cport : c->sport);
    put16(tcp + 2, from_client ? c->sport : c->cport);
    put32(tcp + 4, seq);
    put32(tcp + 8, ack);
    tcp[12] = (uint8_t)((tcp_header / 4) << 4);
    tcp[13] = flags;
    put16(tcp + 14, 65535);
    put16(tcp + 16, 0); put16(tcp + 18, 0);
    if (syn) { tcp[20] = 2; tcp[21] = 4; put16(tcp + 22, 65495); } /* MSS, as lo's MTU gives */
    uint8_t *data = tcp + tcp_header;
    if (length > 0) {
        const char *head = payload == 1 ? request_head : response_head;
        size_t head_length = strlen(head);
        if (head_length > length) head_length = length;
        memcpy(data, head, head_length);
        memset(data + head_length, 'x', length - head_length);
    }
    return 14 + ip_length;
}

int main(int argc, char **argv) {
    double rate = -1, seconds = -1;
    int concurrent = 1000, batch = 32;
    const char *interface = "lo";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc) usage();
        const char *v = argv[++i];
        if (!strcmp(a, "--rate")) rate = atof(v);
        else if (!strcmp(a, "--seconds")) seconds = atof(v);
        else if (!strcmp(a, "--concurrent")) concurrent = atoi(v);
        else if (!strcmp(a, "--batch")) batch = atoi(v);
        else if (!strcmp(a, "--interface")) interface = v;
        else if (!strcmp(a, "--payload-request")) request_bytes = atoi(v);
        else if (!strcmp(a, "--payload-response")) response_bytes = atoi(v);
        else usage();
    }
    if (rate < 0 || seconds <= 0 || seconds > 600 || concurrent < 1 || batch < 1 || batch > MAX_BATCH
        || request_bytes < 1 || request_bytes > 1400 || response_bytes < 1 || response_bytes > 1400) usage();

    int fd = socket(AF_PACKET, SOCK_RAW, 0); /* protocol 0: sends only, receives nothing */
    if (fd < 0) { perror("loopback-gen: socket(AF_PACKET) (needs root or CAP_NET_RAW)"); return 2; }
    int one = 1;
    if (setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one) < 0)
        perror("loopback-gen: PACKET_QDISC_BYPASS (going on without)");
    struct sockaddr_ll address = {0};
    address.sll_family = AF_PACKET;
    address.sll_protocol = htons(ETH_P_IP);
    address.sll_ifindex = (int)if_nametoindex(interface);
    address.sll_halen = 6;
    if (address.sll_ifindex == 0) { fprintf(stderr, "loopback-gen: no interface %s\n", interface); return 2; }

    struct conn *conns = calloc((size_t)concurrent, sizeof *conns);
    uint8_t *frames = malloc((size_t)MAX_BATCH * FRAME_MAX);
    struct mmsghdr *messages = calloc(MAX_BATCH, sizeof *messages);
    struct iovec *vectors = calloc(MAX_BATCH, sizeof *vectors);
    if (!conns || !frames || !messages || !vectors) { fprintf(stderr, "loopback-gen: out of memory\n"); return 2; }
    for (int i = 0; i < concurrent; i++) start(&conns[i]);
    int active = concurrent; /* conns[0..active) are in flight */
    int cursor = 0;

    uint64_t sent = 0;
    double begin = now_seconds();
    int draining = 0;
    while (active > 0) {
        double elapsed = now_seconds() - begin;
        if (!draining && elapsed >= seconds) draining = 1;
        uint64_t due = rate > 0 ? (uint64_t)(rate * elapsed) + 1 : sent + (uint64_t)batch;
        if (due <= sent) {
            /* Ahead of the rate: sleep until the next batch is due (at least ~20 µs). */
            double wait = ((double)(sent + (uint64_t)batch) / rate) - elapsed;
            if (wait > 0.00002) {
                struct timespec t = {(time_t)wait, (long)((wait - (double)(time_t)wait) * 1e9)};
                nanosleep(&t, NULL);
            }
            continue;
        }
        int n = 0;
        uint64_t want = due - sent;
        int limit = want < (uint64_t)batch ? (int)want : batch;
        while (n < limit && active > 0) {
            if (cursor >= active) cursor = 0;
            struct conn *c = &conns[cursor];
            uint8_t *frame = frames + (size_t)n * FRAME_MAX;
            vectors[n].iov_base = frame;
            vectors[n].iov_len = build(c, frame);
            memset(&messages[n].msg_hdr, 0, sizeof messages[n].msg_hdr);
            messages[n].msg_hdr.msg_name = &address;
            messages[n].msg_hdr.msg_namelen = sizeof address;
            messages[n].msg_hdr.msg_iov = &vectors[n];
            messages[n].msg_hdr.msg_iovlen = 1;
            n++;
            if (++c->step == SEGMENTS) {
                if (draining) conns[cursor] = conns[--active]; /* finished: no new one */
                else { start(c); cursor++; }
            } else {
                cursor++;
            }
        }
        int offset = 0;
        while (offset < n) {
            int done = sendmmsg(fd, messages + offset, (unsigned)(n - offset), 0);
            if (done < 0) {
                if (errno == EINTR || errno == ENOBUFS || errno == EAGAIN) continue;
                perror("loopback-gen: sendmmsg");
                return 1;
            }
            offset += done;
        }
        sent += (uint64_t)n;
    }
    double total = now_seconds() - begin;
    printf("sent %llu packets, %llu connections, %.3f s, %.0f pps\n", (unsigned long long)sent,
           (unsigned long long)started, total, (double)sent / total);
    close(fd);
    return 0;
}
