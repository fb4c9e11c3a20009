#!/usr/bin/python3
# ws_echo.py: an independent WebSocket peer for nomade.ws's tests, on
# Debian's python3-websockets. Prints "LISTENING <port>", then on
# ws://127.0.0.1:<port>/echo answers each text message:
#   "close"      closes with code 4000, reason "bye"
#   "big N"      sends N bytes of 'x'
#   "frag"       sends "one two three" as three fragments
#   "binary"     sends the bytes 00 01 02
#   anything     sent back as it came
# and /forbidden refuses the upgrade with HTTP 403. A second port, printed
# as "SILENT <port>", accepts connections and never says a word.
#   ws_echo.py [--port N] [--tls CERT KEY]   (wss:// with that certificate)
import argparse
import asyncio
import http
import ssl
import sys

import websockets


async def handler(ws, path):
    async for message in ws:
        if message == "close":
            await ws.close(4000, "bye")
            return
        if isinstance(message, str) and message.startswith("big "):
            await ws.send("x" * int(message[4:]))
        elif message == "frag":
            await ws.send(iter(["one ", "two ", "three"]))
        elif message == "binary":
            await ws.send(b"\x00\x01\x02")
        else:
            await ws.send(message)


async def refuse(path, headers):
    if path == "/forbidden":
        return http.HTTPStatus.FORBIDDEN, [], b"no\n"
    return None


async def silent(reader, writer):
    await asyncio.sleep(3600)


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    args = ap.parse_args()
    tls = None
    if args.tls:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(*args.tls)
    quiet = await asyncio.start_server(silent, "127.0.0.1", 0)
    async with websockets.serve(handler, "127.0.0.1", args.port, process_request=refuse, max_size=None,
                                ssl=tls) as server:
        port = server.sockets[0].getsockname()[1]
        print("LISTENING %d SILENT %d" % (port, quiet.sockets[0].getsockname()[1]), flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
