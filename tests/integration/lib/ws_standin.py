# A stand-in for edge + connector in front of one TCP service, for testing `cfdtunnel access`
# alone: a TLS server taking the client's WebSocket Upgrade (RFC 6455 server role; the Host
# must be HOSTNAME), then carrying frame payloads to 127.0.0.1:TARGET and back.
#   python3 ws_standin.py PORT TARGET CERT KEY HOSTNAME
import asyncio, base64, hashlib, ssl, struct, sys

HOSTNAME = b""
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
def frame(op, payload):
    n = len(payload)
    if n < 126:
        h = struct.pack("!BB", 0x80 | op, n)
    elif n < 65536:
        h = struct.pack("!BBH", 0x80 | op, 126, n)
    else:
        h = struct.pack("!BBQ", 0x80 | op, 127, n)
    return h + payload
async def handle(reader, writer, target):
    head = await reader.readuntil(b"\r\n\r\n")
    key = [l.split(b":", 1)[1].strip() for l in head.split(b"\r\n")
           if l.lower().startswith(b"sec-websocket-key:")][0]
    host = [l.split(b":", 1)[1].strip() for l in head.split(b"\r\n")
            if l.lower().startswith(b"host:")][0]
    assert host == HOSTNAME, host
    accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
    writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                 b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
    o_reader, o_writer = await asyncio.open_connection("127.0.0.1", target)
    closed = False
    async def up():
        nonlocal closed
        try:
            while True:
                b0, b1 = await reader.readexactly(2)
                assert b1 & 0x80, "client frame not masked"
                n = b1 & 0x7F
                if n == 126:
                    n = struct.unpack("!H", await reader.readexactly(2))[0]
                elif n == 127:
                    n = struct.unpack("!Q", await reader.readexactly(8))[0]
                mask = await reader.readexactly(4)
                raw = await reader.readexactly(n)
                k = (mask * (n // 4 + 1))[:n]
                data = (int.from_bytes(raw, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big")
                op = b0 & 0x0F
                if op == 8:
                    if not closed:
                        closed = True
                        writer.write(frame(8, b"\x03\xe8"))
                        await writer.drain()
                    break
                if op == 9:
                    writer.write(frame(10, data))
                    continue
                o_writer.write(data)
                await o_writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        o_writer.close()
    async def down():
        nonlocal closed
        try:
            while True:
                data = await o_reader.read(65536)
                if not data:
                    break
                if not closed:
                    writer.write(frame(2, data))
                    await writer.drain()
            if not closed:
                closed = True
                writer.write(frame(8, b"\x03\xe8"))
                await writer.drain()
        except ConnectionError:
            pass
    await asyncio.gather(up(), down())
    writer.close()
async def main():
    global HOSTNAME
    port, target, cert, key = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    HOSTNAME = sys.argv[5].encode()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server = await asyncio.start_server(lambda r, w: handle(r, w, target), "127.0.0.1", port,
                                        ssl=ctx)
    async with server:
        await server.serve_forever()
asyncio.run(main())
