#!/usr/bin/env python3
"""Long-lived TCP traffic for zero-loss checks (stdlib only), run inside a pod's network namespace.

  traffic.py echo --port P              a TCP echo server (one thread per connection)
  traffic.py stream --ip X --port P --duration S [--interval-ms 10]
        ONE TCP connection for the whole duration: every interval it sends an 8-byte sequence number and
        waits for the echo. At the end it prints one JSON line: messages sent and echoed, the longest gap
        between two consecutive echoes (ms), and whether the connection survived.
The duration bounds the run; the caller also kills the process by pid.
"""
import argparse
import json
import signal
import socket
import struct
import sys
import threading
import time


def echo(port):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("0.0.0.0", port))
    srv.listen(64)
    print(json.dumps({"event": "ready", "port": port}), flush=True)

    def handle(conn):
        with conn:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            while True:
                try:
                    data = conn.recv(4096)
                except OSError:
                    return
                if not data:
                    return
                try:
                    conn.sendall(data)
                except OSError:
                    return

    while True:
        conn, _ = srv.accept()
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed by peer")
        buf += chunk
    return buf


STOP = [False]


def stream(ip, port, duration, interval_ms):
    result = {"sent": 0, "echoed": 0, "maxGapMs": 0.0, "alive": False, "error": None}
    deadline = time.monotonic() + duration
    # SIGTERM ends the stream early but cleanly: the result is still printed.
    signal.signal(signal.SIGTERM, lambda *_: STOP.__setitem__(0, True))
    try:
        sock = socket.create_connection((ip, port), timeout=5)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(max(5.0, duration))
        print(json.dumps({"event": "connected"}), flush=True)
        last = time.monotonic()
        seq = 0
        while time.monotonic() < deadline and not STOP[0]:
            seq += 1
            sock.sendall(struct.pack("!Q", seq))
            result["sent"] += 1
            back = struct.unpack("!Q", recv_exact(sock, 8))[0]
            if back != seq:
                raise ValueError("echo out of order: %d != %d" % (back, seq))
            now = time.monotonic()
            result["echoed"] += 1
            result["maxGapMs"] = max(result["maxGapMs"], (now - last) * 1000.0)
            last = now
            pause = interval_ms / 1000.0 - (time.monotonic() - now)
            if pause > 0:
                time.sleep(pause)
        result["alive"] = True
        sock.close()
    except Exception as e:  # report, never a traceback
        result["error"] = "%s: %s" % (type(e).__name__, e)
    result["maxGapMs"] = round(result["maxGapMs"], 1)
    print(json.dumps(result), flush=True)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("echo")
    e.add_argument("--port", type=int, required=True)
    s = sub.add_parser("stream")
    s.add_argument("--ip", required=True)
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--duration", type=float, required=True)
    s.add_argument("--interval-ms", type=float, default=10.0)
    a = ap.parse_args()
    if a.cmd == "echo":
        echo(a.port)
    else:
        stream(a.ip, a.port, a.duration, a.interval_ms)


if __name__ == "__main__":
    sys.exit(main())
