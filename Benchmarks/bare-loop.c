/* The floor for any libpcap-based analyzer: read every frame with pcap_next_ex and count
 * it (and its captured bytes, so the loop cannot be optimised away). Scripts/bench
 * compiles it with cc -O2 -lpcap. */
#include <pcap/pcap.h>
#include <stdio.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: bare-loop FILE\n");
        return 2;
    }
    char errbuf[PCAP_ERRBUF_SIZE];
    pcap_t *p = pcap_open_offline(argv[1], errbuf);
    if (!p) {
        fprintf(stderr, "bare-loop: %s\n", errbuf);
        return 2;
    }
    struct pcap_pkthdr *header;
    const u_char *data;
    unsigned long long packets = 0, bytes = 0;
    int status;
    while ((status = pcap_next_ex(p, &header, &data)) == 1) {
        packets++;
        bytes += header->caplen;
    }
    if (status == PCAP_ERROR) fprintf(stderr, "bare-loop: %s\n", pcap_geterr(p));
    printf("%llu packets, %llu bytes\n", packets, bytes);
    pcap_close(p);
    return 0;
}
