#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
# file_opener end to end behind a GET /static map: files, index.html, 301, 304, and every escape refused.
import email.utils
import os
import socket
import time

import http_harness
from http_harness import HttpTest, http_forward, request_bytes, route
from harness import thread_count

INDEX = b"<!doctype html><title>root</title>\n"
SUB_INDEX = b"<!doctype html><title>sub</title>\n"
SECRET = b"the secret outside the root\n"


def release_fifo_reader(path):
    """Opens `path` for writing and closes it, which ends a blocked open() for reading with EOF."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return  # nobody is waiting on it
    os.close(fd)


class FileOpener(HttpTest):
    def setUp(self):
        super().setUp()
        www = self.path("www")
        os.makedirs(os.path.join(www, "sub"))
        os.makedirs(os.path.join(www, "empty"))
        files = {"index.html": INDEX, "sub/index.html": SUB_INDEX, "a.txt": b"plain text\n",
                 "style.css": b"body { margin: 0 }\n", "data.bin": bytes(range(256))}
        for name, content in files.items():
            with open(os.path.join(www, name), "wb") as f:
                f.write(content)
        with open(self.path("secret.txt"), "wb") as f:
            f.write(SECRET)
        os.symlink(self.path("secret.txt"), os.path.join(www, "outside"))
        os.symlink("a.txt", os.path.join(www, "inside"))
        # A fixed, whole-second modification time makes If-Modified-Since exact.
        self.mtime = 1_700_000_000
        os.utime(os.path.join(www, "a.txt"), (self.mtime, self.mtime))

        self.app = self.start_app("files.door", www, "/static", program_name="file_opener")
        self.port = self.reserve_port()
        # Short enough that a call stuck in the application shows up as a 504 well within the
        # reader's wait, rather than as a client timeout.
        self.daemon = self.start_http([http_forward(self.port, name="site", call_timeout="2s",
                                                    maps=[route("/static", self.app.door, "GET")])])
        self.url = f"http://127.0.0.1:{self.port}"

    def fetch(self, target, headers=(), method="GET"):
        r, _ = self.get(self.port, target, method=method, headers=headers)
        self.assertNotIn(SECRET, r.body)
        return r

    def test_files_and_content_types(self):
        for target, body, ctype in (("/static/a.txt", b"plain text\n", "text/plain; charset=utf-8"),
                                    ("/static/style.css", b"body { margin: 0 }\n", "text/css; charset=utf-8"),
                                    ("/static/data.bin", bytes(range(256)), "application/octet-stream")):
            r = self.fetch(target)
            self.assertEqual((r.status, r.body, r.header("Content-Type")), (200, body, ctype), target)
            self.assertEqual(r.header("Content-Length"), str(len(body)))
        r = self.fetch("/static/a.txt", method="HEAD")
        self.assertEqual((r.status, r.header("Content-Length"), r.body), (200, "11", b""))
        code, out, err = self.curl(self.url + "/static/data.bin")
        self.assertEqual((code, out), (0, bytes(range(256))), err)

    def test_index_html_and_directory_redirect(self):
        for target, body in (("/static/", INDEX), ("/static", INDEX), ("/static/sub/", SUB_INDEX)):
            r = self.fetch(target)
            self.assertEqual((r.status, r.body, r.header("Content-Type")), (200, body, "text/html; charset=utf-8"),
                             target)
        r = self.fetch("/static/sub")
        self.assertEqual((r.status, r.header("Location")), (301, "/static/sub/"))
        code, out, err = self.curl("-L", self.url + "/static/sub")
        self.assertEqual((code, out), (0, SUB_INDEX), err)
        self.assertEqual(self.fetch("/static/empty/").status, 404)

    def test_missing_files_and_paths_outside_the_map_are_404(self):
        r = self.fetch("/static/missing.txt")
        self.assertEqual((r.status, r.body), (404, b"404 Not Found\n"))
        # No catch-all door: the daemon answers for paths no map owns.
        self.assertEqual(self.fetch("/other").status, 404)
        # The map is GET only.
        r, _ = self.send(self.port, request_bytes("POST", "/static/a.txt", body=b"x"))
        self.assertEqual((r.status, r.all("Allow")), (405, ["GET, HEAD"]))

    def test_if_modified_since_gives_304(self):
        r = self.fetch("/static/a.txt")
        last_modified = email.utils.formatdate(self.mtime, usegmt=True)
        self.assertEqual(r.header("Last-Modified"), last_modified)
        r = self.fetch("/static/a.txt", headers=[("If-Modified-Since", last_modified)])
        self.assertEqual((r.status, r.body), (304, b""))
        self.assertEqual(r.header("Last-Modified"), last_modified)
        later = email.utils.formatdate(self.mtime + 3600, usegmt=True)
        self.assertEqual(self.fetch("/static/a.txt", headers=[("If-Modified-Since", later)]).status, 304)
        earlier = email.utils.formatdate(self.mtime - 1, usegmt=True)
        r = self.fetch("/static/a.txt", headers=[("If-Modified-Since", earlier)])
        self.assertEqual((r.status, r.body), (200, b"plain text\n"))
        code, out, err = self.curl("-w", "%{http_code}", "-z", last_modified, self.url + "/static/a.txt")
        self.assertEqual((code, out), (0, b"304"), err)

    def test_escapes_are_refused(self):
        # Encoded dot segments reach the application, which refuses to climb.
        for target in ("/static/%2e%2e/secret.txt", "/static/%2E%2E/secret.txt", "/static/sub/%2e%2e/%2e%2e/secret.txt",
                       "/static/..%2fsecret.txt", "/static/sub/../../secret.txt", "/static/../secret.txt"):
            self.assertEqual(self.fetch(target).status, 404, target)
        code, out, err = self.curl("--path-as-is", "-w", "%{http_code}", self.url + "/static/../secret.txt")
        self.assertEqual(code, 0, err)
        self.assertTrue(out.endswith(b"404"), out)
        self.assertNotIn(SECRET, out)

    def test_symlinks_are_refused(self):
        for target in ("/static/outside", "/static/inside"):
            r = self.fetch(target)
            self.assertEqual((r.status, r.body), (404, b"404 Not Found\n"), target)

    def test_only_regular_files_are_served(self):
        # Opening a FIFO for reading waits for a writer, which would hold an application thread
        # per request for good; a socket cannot be opened at all. Both are 404, like a file that
        # is not there.
        www = self.path("www")
        fifo = os.path.join(www, "pipe.txt")
        os.mkfifo(fifo)
        self.addCleanup(release_fifo_reader, fifo)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.addCleanup(listener.close)
        listener.bind(os.path.join(www, "sock.txt"))
        listener.listen()
        os.mkdir(os.path.join(www, "piped"))
        os.mkfifo(os.path.join(www, "piped", "index.html"))
        self.addCleanup(release_fifo_reader, os.path.join(www, "piped", "index.html"))

        self.assertEqual(self.fetch("/static/a.txt").status, 200)
        threads_before = thread_count(self.app.pid)
        results = []
        for i in range(10):
            target = ("/static/pipe.txt", "/static/sock.txt", "/static/piped/")[i % 3]
            started = time.monotonic()
            r = self.fetch(target)
            results.append((target, r.status, round(time.monotonic() - started, 2)))
        threads_after = thread_count(self.app.pid)
        report = f"(target, status, seconds): {results}; file_opener threads: {threads_before} before, " \
                 f"{threads_after} after"
        self.assertTrue(all(status == 404 and elapsed < 1.0 for _, status, elapsed in results), report)
        self.assertLessEqual(threads_after, threads_before + 1, report)
        # Still serving.
        self.assertEqual(self.fetch("/static/a.txt").body, b"plain text\n")

    def test_nul_is_400(self):
        r = self.fetch("/static/a.txt%00.html")
        self.assertEqual((r.status, r.body), (400, b"400 Bad Request\n"))
        self.assertEqual(self.fetch("/static/%zz").status, 400)


if __name__ == "__main__":
    http_harness.main()
