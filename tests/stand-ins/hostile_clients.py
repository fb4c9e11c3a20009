#!/usr/bin/env python3
"""hostile_clients.py: clients that do what no browser does, for the tests
of the servers' limits (tests/lua/dashboard.test.lua, tests/lua/listen.test.lua).

  hold PORT N FROM[,FROM...] SEND SECONDS [RCVBUF]
      N TCP connections to 127.0.0.1:PORT, spread over the source addresses
      FROM (127.0.0.2 ... are loopback too), each sending SEND (\\r \\n
      escapes) and then never reading: a half-open request, or a stream
      never read (RCVBUF: a small receive buffer). Prints "HELD N", then
      watches them for SECONDS without reading and prints one JSON line:
      {"closed": [s after HELD at which the server closed it, or null]}.
  unix PATH N
      N connects to the Unix socket PATH at once, none of them accepted
      meanwhile; prints {"failed": how many were refused}.
"""
import json
import select
import socket
import sys
import time


def hold(port, n, sources, send, seconds, rcvbuf=0):
    data = send.encode().decode("unicode_escape").encode("latin-1")
    conns = []
    for k in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.bind((sources[k % len(sources)], 0))
        s.connect(("127.0.0.1", port))
        if data:
            s.sendall(data)
        conns.append(s)
    start = time.monotonic()
    print("HELD", n, flush=True)
    closed = [None] * n
    poll = select.poll()
    for k, s in enumerate(conns):
        poll.register(s, select.POLLRDHUP | select.POLLHUP | select.POLLERR)
    fds = {s.fileno(): k for k, s in enumerate(conns)}
    while time.monotonic() - start < seconds and None in closed:
        for fd, _ in poll.poll(50):
            k = fds[fd]
            if closed[k] is None:
                closed[k] = round(time.monotonic() - start, 3)
                poll.unregister(fd)
    print(json.dumps({"closed": closed}), flush=True)


def unix(path, n):
    conns, failed = [], 0
    for _ in range(n):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect(path)
        except OSError:
            failed += 1
        conns.append(s)
    print(json.dumps({"failed": failed}), flush=True)


if __name__ == "__main__":
    a = sys.argv[1:]
    if a[0] == "hold":
        hold(int(a[1]), int(a[2]), a[3].split(","), a[4], float(a[5]), int(a[6]) if len(a) > 6 else 0)
    elif a[0] == "unix":
        unix(a[1], int(a[2]))
    else:
        sys.exit(__doc__)
