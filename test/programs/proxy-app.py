"""A small web application behind `litefs mount`'s proxy, for the cluster
test: it keeps rows in a SQLite database in the mount, through python3's
sqlite3 module, like any application would.

    proxy-app.py PORT DB_PATH

Every answer carries `X-App-Port: PORT`, so a test sees which node's
application served it.

POST /rows           inserts one row (the request body) and answers {"id": N}
GET  /rows           answers {"count": C, "max": M}
GET  /rows/N         200 {"id": N, "v": ...} or 404 when row N is not there
Prints "listening" once it accepts connections.
"""
import json
import sqlite3
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port, db_path = int(sys.argv[1]), sys.argv[2]


def connect():
    conn = sqlite3.connect(db_path, timeout=10)
    conn.execute("PRAGMA busy_timeout = 10000")
    return conn


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-App-Port", str(port))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        value = self.rfile.read(length).decode()
        if self.path != "/rows":
            self.answer(404, {})
            return
        try:
            conn = connect()
            with conn:
                cur = conn.execute("INSERT INTO t(v) VALUES (?)", (value,))
            conn.close()
            self.answer(200, {"id": cur.lastrowid})
        except sqlite3.Error as err:
            self.answer(500, {"error": str(err)})

    def do_GET(self):
        conn = connect()
        try:
            if self.path == "/rows":
                count, top = conn.execute("SELECT count(*), coalesce(max(id), 0) FROM t").fetchone()
                self.answer(200, {"count": count, "max": top})
            elif self.path.startswith("/rows/"):
                row = conn.execute("SELECT id, v FROM t WHERE id = ?", (int(self.path[6:]),)).fetchone()
                if row is None:
                    self.answer(404, {"missing": int(self.path[6:])})
                else:
                    self.answer(200, {"id": row[0], "v": row[1]})
            else:
                self.answer(404, {})
        except sqlite3.Error as err:
            self.answer(500, {"error": str(err)})
        finally:
            conn.close()

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
print("listening", flush=True)
server.serve_forever()
