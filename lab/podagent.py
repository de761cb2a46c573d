#!/usr/bin/env python3
"""Switchyard lab pod agent: the servers and the prober of one lab pod, in one long-lived process.

Why one process per pod: probing a 9x9 matrix with one `ip netns exec ... nc` per cell costs ~81 process
starts per matrix; an agent that already lives in the pod's network namespace answers a probe request in
about a millisecond and runs many probes at once. Stdlib only, so the lab needs nothing but python3.

Started as `ip netns exec POD python3 podagent.py --name NS/NAME --servers '[{"port":80,"protocol":"TCP"}]'`.
  * servers: TCP (accept, then close), UDP (reply to any datagram with the pod name), SCTP over a RAW IP
    socket (protocol 132): this kernel has no SCTP sockets, so the agent answers a well-formed INIT to a
    served port with an INIT-ACK (verification tag = the INIT's initiate tag, valid CRC32c: conntrack
    drops SCTP packets with a bad checksum as invalid) and ignores everything else. The raw socket also
    keeps the kernel from answering SCTP with ICMP protocol-unreachable while the agent runs.
  * prober: one JSON object per stdin line, {"id", "ip", "port", "protocol", "timeoutMs"}; one JSON result
    per stdout line, {"id", "ok", "ms", "error"?}. Probes run concurrently (one thread each), every one
    bounded by its own timeout. TCP: the connect completes; UDP: a reply arrives; SCTP: an INIT from a
    random port with a random initiate tag gets an INIT-ACK from that address and port with the right tag.
  * lifecycle: prints {"event": "ready"} once every server is bound (or {"event": "error"} and exits 1);
    exits when stdin closes, so a crashed parent never leaves an agent behind.
"""

import argparse
import json
import os
import random
import select
import socket
import struct
import sys
import threading
import time

SCTP_PROTO = 132
CHUNK_INIT = 1
CHUNK_INIT_ACK = 2
MAX_CONCURRENT_PROBES = 256

_out_lock = threading.Lock()


def emit(obj):
    line = json.dumps(obj, separators=(",", ":")) + "\n"
    with _out_lock:
        sys.stdout.write(line)
        sys.stdout.flush()


# ---- SCTP packet helpers (RFC 9260) ----

def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = _CRC_TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def sctp_packet(sport, dport, vtag, chunks):
    """Common header + chunks, with the CRC32c stored the way the kernel stores it (little-endian)."""
    body = struct.pack("!HHII", sport, dport, vtag, 0) + chunks
    crc = crc32c(body)
    return body[:8] + struct.pack("<I", crc) + body[12:]


def sctp_checksum_ok(pkt):
    if len(pkt) < 12:
        return False
    zeroed = pkt[:8] + b"\x00\x00\x00\x00" + pkt[12:]
    return struct.unpack("<I", pkt[8:12])[0] == crc32c(zeroed)


def init_chunk(chunk_type, initiate_tag, tsn, params=b""):
    # type, flags, length | initiate tag | a_rwnd | outbound streams, inbound streams | initial TSN
    length = 20 + len(params)
    return struct.pack("!BBHIIHHI", chunk_type, 0, length, initiate_tag, 65535, 10, 10, tsn) + params


def parse_ip_sctp(data):
    """Raw-socket datagram (IP header included) -> (src_ip, sport, dport, vtag, chunk_type, chunk_value, sctp_bytes) or None."""
    if len(data) < 20:
        return None
    ihl = (data[0] & 0x0F) * 4
    if data[9] != SCTP_PROTO or len(data) < ihl + 12 + 4:
        return None
    src_ip = socket.inet_ntoa(data[12:16])
    sctp = data[ihl:]
    sport, dport, vtag = struct.unpack("!HHI", sctp[:8])
    chunk_type = sctp[12]
    chunk_value = sctp[16:]
    return src_ip, sport, dport, vtag, chunk_type, chunk_value, sctp


def random_tag():
    return random.randint(1, 0xFFFFFFFF)


# ---- servers ----

def serve_tcp(sock):
    while True:
        try:
            conn, _ = sock.accept()
            conn.close()
        except OSError:
            continue


def serve_udp(sock, reply):
    while True:
        try:
            _, addr = sock.recvfrom(65535)
            sock.sendto(reply, addr)
        except OSError:
            continue


def serve_sctp(sock, ports):
    cookie_param = struct.pack("!HH", 7, 12) + os.urandom(8)  # State Cookie (mandatory in an INIT-ACK)
    while True:
        try:
            data = sock.recv(65535)
        except OSError:
            continue
        parsed = parse_ip_sctp(data)
        if parsed is None:
            continue
        src_ip, sport, dport, vtag, chunk_type, value, sctp = parsed
        if chunk_type != CHUNK_INIT or vtag != 0 or dport not in ports or len(value) < 16:
            continue
        if not sctp_checksum_ok(sctp):
            continue
        peer_tag = struct.unpack("!I", value[:4])[0]
        if peer_tag == 0:
            continue
        ack = init_chunk(CHUNK_INIT_ACK, random_tag(), random_tag(), cookie_param)
        try:
            sock.sendto(sctp_packet(dport, sport, peer_tag, ack), (src_ip, 0))
        except OSError:
            pass


def start_servers(name, servers):
    threads = []
    sctp_ports = set()
    reply = name.encode()
    for s in servers:
        port, proto = int(s["port"]), str(s["protocol"]).upper()
        if proto == "TCP":
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("0.0.0.0", port))
            sock.listen(256)
            threads.append(threading.Thread(target=serve_tcp, args=(sock,), daemon=True))
        elif proto == "UDP":
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind(("0.0.0.0", port))
            threads.append(threading.Thread(target=serve_udp, args=(sock, reply), daemon=True))
        elif proto == "SCTP":
            sctp_ports.add(port)
        else:
            raise ValueError("unknown protocol %r" % proto)
    if sctp_ports:
        raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, SCTP_PROTO)
        threads.append(threading.Thread(target=serve_sctp, args=(raw, frozenset(sctp_ports)), daemon=True))
    for t in threads:
        t.start()


# ---- probes ----

def probe_tcp(ip, port, timeout):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect((ip, port))
        return None
    finally:
        sock.close()


def probe_udp(ip, port, timeout):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.settimeout(timeout)
        sock.connect((ip, port))
        sock.send(b"probe")
        sock.recv(65535)
        return None
    finally:
        sock.close()


def probe_sctp(ip, port, timeout):
    deadline = time.monotonic() + timeout
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, SCTP_PROTO)
    try:
        sport = random.randint(1024, 65535)
        tag = random_tag()
        sock.sendto(sctp_packet(sport, port, 0, init_chunk(CHUNK_INIT, tag, random_tag())), (ip, 0))
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise socket.timeout("timed out")
            ready, _, _ = select.select([sock], [], [], remaining)
            if not ready:
                continue
            parsed = parse_ip_sctp(sock.recv(65535))
            if parsed is None:
                continue
            src_ip, psport, pdport, vtag, chunk_type, _, sctp = parsed
            if src_ip == ip and psport == port and pdport == sport and vtag == tag and chunk_type == CHUNK_INIT_ACK:
                if not sctp_checksum_ok(sctp):
                    return "INIT-ACK with a bad checksum"
                return None
    finally:
        sock.close()


PROBES = {"TCP": probe_tcp, "UDP": probe_udp, "SCTP": probe_sctp}


def describe(exc):
    if isinstance(exc, socket.timeout):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    return "%s: %s" % (type(exc).__name__, exc)


def run_probe(req, slots):
    started = time.monotonic()
    rid = req.get("id")
    try:
        fn = PROBES.get(str(req.get("protocol", "")).upper())
        if fn is None:
            raise ValueError("unknown protocol %r" % req.get("protocol"))
        timeout = max(1, int(req.get("timeoutMs", 1000))) / 1000.0
        error = fn(str(req["ip"]), int(req["port"]), timeout)
    except Exception as exc:  # every failure is a result, never a crash of the agent
        error = describe(exc)
    finally:
        slots.release()
    result = {"id": rid, "ok": error is None, "ms": round((time.monotonic() - started) * 1000, 2)}
    if error is not None:
        result["error"] = error
    emit(result)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--name", required=True, help="the pod's namespace/name (the UDP reply)")
    ap.add_argument("--servers", default="[]", help='JSON list of {"port", "protocol"}')
    args = ap.parse_args()
    try:
        start_servers(args.name, json.loads(args.servers))
    except Exception as exc:
        emit({"event": "error", "error": describe(exc)})
        sys.exit(1)
    emit({"event": "ready", "pid": os.getpid()})
    slots = threading.BoundedSemaphore(MAX_CONCURRENT_PROBES)
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            req = json.loads(line)
        except ValueError:
            emit({"event": "error", "error": "bad request line"})
            continue
        if req.get("op") == "exit":
            break
        slots.acquire()
        threading.Thread(target=run_probe, args=(req, slots), daemon=True).start()
    # stdin closed (parent gone) or asked to exit: daemon threads die with the process.
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
