"""Origin helper for the ha_*.sh tests: GET /slow?k=KEY (proxied by nginx with X-Replica set to
the replica whose origin it is) creates DIR/held-REPLICA-KEY, waits until DIR/release-KEY exists
(60 s at most), then answers 200 "slow-KEY-REPLICA". Usage: ha_hold.py PORT DIR"""
import http.server
import os
import sys
import time
import urllib.parse

DIR = sys.argv[2]


class Hold(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        q = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
        key = q.get("k", ["none"])[0]
        replica = self.headers.get("X-Replica", "unknown")
        open(os.path.join(DIR, "held-%s-%s" % (replica, key)), "w").close()
        deadline = time.time() + 60
        while not os.path.exists(os.path.join(DIR, "release-" + key)) and time.time() < deadline:
            time.sleep(0.02)
        body = ("slow-%s-%s\n" % (key, replica)).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Hold).serve_forever()
