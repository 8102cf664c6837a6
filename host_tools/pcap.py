# pcap writer (host only): every SIP datagram the simulated phone sends or receives, as IPv4/UDP in a classic
# libpcap file (linktype 101 = raw IP) that Wireshark and tshark open.
import struct
import time


class PcapWriter:
    def __init__(self, path):
        self.f = open(path, "wb")
        self.f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 101))
        self.f.flush()

    def write(self, data, src, dst):
        ip_src = bytes(int(x) for x in src[0].split("."))
        ip_dst = bytes(int(x) for x in dst[0].split("."))
        udp = struct.pack("!HHHH", src[1], dst[1], 8 + len(data), 0) + data
        hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, ip_src, ip_dst)
        csum = _ip_checksum(hdr)
        hdr = hdr[:10] + struct.pack("!H", csum) + hdr[12:]
        pkt = hdr + udp
        t = time.time()
        self.f.write(struct.pack("<IIII", int(t), int((t % 1) * 1e6), len(pkt), len(pkt)) + pkt)
        self.f.flush()

    def close(self):
        self.f.close()


def _ip_checksum(hdr):
    s = sum(struct.unpack("!10H", hdr))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def read_pcap(path):
    """[(src, dst, payload)] of a file written by PcapWriter (tests use it)."""
    out = []
    with open(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack_from("<I", data, 0)
    assert magic == 0xA1B2C3D4, "not a pcap file"
    o = 24
    while o + 16 <= len(data):
        _ts, _us, incl, _orig = struct.unpack_from("<IIII", data, o)
        pkt = data[o + 16:o + 16 + incl]
        o += 16 + incl
        src = ".".join(str(b) for b in pkt[12:16])
        dst = ".".join(str(b) for b in pkt[16:20])
        sport, dport = struct.unpack_from("!HH", pkt, 20)
        out.append(((src, sport), (dst, dport), pkt[28:]))
    return out
