#ifndef FINSCOPE_CPCAP_SHIM_H
#define FINSCOPE_CPCAP_SHIM_H
#include <pcap/pcap.h>
#endif
