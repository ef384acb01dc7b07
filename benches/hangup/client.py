# Drives benches/hangup/worker.js (issue 22, item 4; RELIABILITY.md): sends one POST /stream,
# leaves in the way `mode` says, then prints what the worker observed (GET /report).
#
#   python3 benches/hangup/client.py <port> <mode> <unique id> [query, default wait=500&writes=3&gap=100]
#
# modes: stay (reads to the end), rst / fin (reset or close right after sending), rst_later
# (reset 200 ms after sending), rst_after_head (after the response head), rst_after_first
# (after the first frame). Start the worker under wrangler dev or bare workerd first:
#   npx wrangler dev -c benches/hangup/wrangler.toml --ip 127.0.0.1 --port 18931
#   echo '{}' > /tmp/b.json && npx node benches/serve.mjs benches/hangup/wrangler.toml /tmp/p /tmp/b.json
import socket, struct, sys, time, json, urllib.request
base_port = int(sys.argv[1]); mode = sys.argv[2]; ident = sys.argv[3]
params = sys.argv[4] if len(sys.argv) > 4 else "wait=500&writes=3&gap=100"
body = b'{"x":1}'
req = (f"POST /stream?id={ident}&{params} HTTP/1.1\r\nHost: 127.0.0.1:{base_port}\r\n"
       f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body
s = socket.create_connection(("127.0.0.1", base_port))
s.sendall(req)
got = b""
if mode == "rst":          # reset right after sending the request
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)); s.close()
elif mode == "fin":        # orderly close right after sending
    s.close()
elif mode == "rst_after_head":   # read the head, then reset before any body byte
    s.settimeout(5)
    while b"\r\n\r\n" not in got: got += s.recv(1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)); s.close()
elif mode == "rst_after_first":  # read the first frame, then reset
    s.settimeout(5)
    while b"\n\n" not in got.split(b"\r\n\r\n",1)[-1] or b"\r\n\r\n" not in got: got += s.recv(1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)); s.close()
elif mode == "rst_later":   # reset 200 ms after sending, while the worker waits
    time.sleep(0.2)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)); s.close()
elif mode == "stay":
    s.settimeout(10)
    while True:
        d = s.recv(4096)
        if not d: break
        got += d
    s.close()
t0 = time.time()
while time.time() - t0 < 10:
    r = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{base_port}/report?id={ident}").read())
    if r and r["done"]: break
    time.sleep(0.2)
print(mode, "head received" if b"\r\n\r\n" in got else "no head")
for e in (r or {}).get("events", []): print(f"  {e['ms']:5d} ms  {e['what']}")
