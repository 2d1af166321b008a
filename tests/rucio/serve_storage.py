"""Static file server standing in for the storage element behind the test RSEs (GET/HEAD, plus WebDAV-style PUT).
Usage: serve_storage.py PORT ROOT [PEM]   (PEM = cert+key -> serve https). Binds 127.0.0.1.
Each request is logged to stderr ("GET /rucio/... 200"), which the tests read to see which replica was used."""

import functools
import http.server
import os
import ssl
import sys
import tempfile

MAX_PUT = 1 << 30


class Handler(http.server.SimpleHTTPRequestHandler):
    def do_PUT(self) -> None:  # noqa: N802 - http.server's naming
        # Parent folders are created, as dCache/EOS WebDAV doors do; the file appears whole or not at all.
        length = int(self.headers.get("Content-Length") or -1)
        if not 0 <= length <= MAX_PUT:
            self.send_error(411 if length < 0 else 413)
            return
        dest = self.translate_path(self.path)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(dest), prefix=".put-")
        with os.fdopen(fd, "wb") as out:
            left = length
            while left:
                chunk = self.rfile.read(min(left, 1 << 20))
                if not chunk:
                    break
                out.write(chunk)
                left -= len(chunk)
        if left:
            os.unlink(tmp)
            self.send_error(400, "body shorter than Content-Length")
            return
        os.replace(tmp, dest)
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()


port, root = int(sys.argv[1]), sys.argv[2]
srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), functools.partial(Handler, directory=root))
if len(sys.argv) > 3:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[3])
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
