#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
# Routing through [[forward.map]]: longest prefix, segment boundaries, 404, 405 + Allow, HEAD via GET.
import http_harness
from http_harness import HttpTest, big_body, http_forward, request_bytes, route


class Routing(HttpTest):
    def setUp(self):
        super().setUp()
        self.apps = {}
        for tag in ("root", "api", "v2", "static"):
            self.apps[tag] = self.start_app(f"{tag}.door", "--tag", tag, "--log", self.path(f"{tag}.calls"))
        self.port = self.reserve_port()
        self.bare = self.reserve_port()
        door = {tag: app.door for tag, app in self.apps.items()}
        self.daemon = self.start_http([
            http_forward(self.port, door["root"], name="routed", maps=[
                route("/api", door["api"], ["GET", "POST"]),
                route("/api/v2", door["v2"], "*"),
                route("/static", door["static"], "GET"),
            ]),
            # No door of its own: nothing catches what no prefix matches.
            http_forward(self.bare, name="bare", maps=[route("/api", door["api"])]),
        ])

    def served_by(self, target, port=None, method="GET"):
        r, _ = self.get(port or self.port, target, method=method)
        self.assertEqual(r.status, 200, r)
        return r.header("X-App")

    def calls(self, tag):
        return self.call_lines(self.path(f"{tag}.calls"))

    def test_longest_prefix_wins(self):
        self.assertEqual(self.served_by("/api/v2/users"), "v2")
        self.assertEqual(self.served_by("/api/v2"), "v2")
        self.assertEqual(self.served_by("/api/v2/"), "v2")
        self.assertEqual(self.served_by("/api/users"), "api")
        self.assertEqual(self.served_by("/api"), "api")
        # /api/v2x is below /api but not below /api/v2.
        self.assertEqual(self.served_by("/api/v2x"), "api")
        # The query never takes part in routing.
        self.assertEqual(self.served_by("/api/x?next=/api/v2/y"), "api")
        r, _ = self.get(self.port, "/api/v2/a?b=c")
        self.assertEqual(r.body, b"tag=v2 path=/api/v2/a?b=c\n")

    def test_prefix_matches_on_segment_boundaries_only(self):
        self.assertEqual(self.served_by("/apix"), "root")
        self.assertEqual(self.served_by("/apix/v2"), "root")
        self.assertEqual(self.served_by("/staticfiles"), "root")
        self.assertEqual(self.calls("api"), 0)

    def test_dot_segments_are_resolved_before_routing(self):
        # The application still receives the target as sent.
        r, _ = self.get(self.port, "/static/../api/v2/x")
        self.assertEqual((r.status, r.header("X-App")), (200, "v2"))
        self.assertEqual(r.body, b"tag=v2 path=/static/../api/v2/x\n")
        # Climbing above the root is refused by the daemon itself; the request was framed
        # correctly, so the connection goes on.
        s, reader = self.open(self.port)
        s.sendall(request_bytes("GET", "/../api") + request_bytes("GET", "/api/x"))
        r = reader.response()
        self.assertEqual((r.status, r.body), (400, b"400 Bad Request\n"))
        self.assertEqual(reader.response().header("X-App"), "api")
        self.assertEqual(self.calls("api"), 1)

    def test_no_catch_all_answers_404_and_keeps_the_connection(self):
        s, reader = self.open(self.bare)
        s.sendall(request_bytes("GET", "/apix"))
        r = reader.response()
        self.assertEqual((r.status, r.reason), (404, "Not Found"))
        self.assertEqual(r.body, b"404 Not Found\n")
        self.assertEqual(r.header("Content-Length"), "14")
        self.assertIsNone(r.header("Connection"))
        # The 404 was the daemon's own answer; the connection serves the next request.
        s.sendall(request_bytes("GET", "/api/x"))
        r = reader.response()
        self.assertEqual((r.status, r.header("X-App")), (200, "api"))
        self.assertEqual(self.calls("api"), 1)
        self.daemon.wait_access_log(r'http forward=bare client=127\.0\.0\.1 method=GET path="/apix" status=404 ')

    def test_catch_all_door_serves_the_rest(self):
        self.assertEqual(self.served_by("/"), "root")
        self.assertEqual(self.served_by("/anything/else"), "root")
        self.assertEqual(self.served_by("/x", method="DELETE"), "root")

    def test_405_lists_the_methods_of_the_winning_prefix(self):
        s, reader = self.open(self.port)
        s.sendall(request_bytes("DELETE", "/api/users"))
        r = reader.response()
        self.assertEqual((r.status, r.reason), (405, "Method Not Allowed"))
        # HEAD is allowed wherever GET is.
        self.assertEqual(r.all("Allow"), ["GET, POST, HEAD"])
        self.assertEqual(r.body, b"405 Method Not Allowed\n")
        s.sendall(request_bytes("PUT", "/static/a.css"))
        r = reader.response()
        self.assertEqual((r.status, r.all("Allow")), (405, ["GET, HEAD"]))
        # Neither the shorter prefixes nor the catch-all are asked.
        self.assertEqual((self.calls("api"), self.calls("root"), self.calls("static")), (0, 0, 0))
        # POST is taken by /api.
        s.sendall(request_bytes("POST", "/api/users", body=b"x=1"))
        self.assertEqual(reader.response().header("X-App"), "api")

    def test_head_through_a_get_route_has_the_get_headers_and_no_body(self):
        get, _ = self.get(self.port, "/static/big/1000")
        self.assertEqual((get.status, len(get.body)), (200, 1000))
        s, reader = self.open(self.port)
        s.sendall(request_bytes("HEAD", "/static/big/1000"))
        head = reader.response(head=True)
        self.assertEqual(head.status, 200)
        self.assertEqual(head.headers, get.headers)
        self.assertEqual(head.header("Content-Length"), "1000")
        # The application sent the body anyway; had any of it been relayed, it would be read as
        # the next response here.
        s.sendall(request_bytes("GET", "/static/big/10"))
        r = reader.response()
        self.assertEqual((r.status, r.body), (200, big_body(10)))
        with open(self.path("static.calls")) as f:
            self.assertEqual(f.read().splitlines()[1], "call HEAD /static/big/1000")

        # curl agrees: the headers, and not a byte more.
        code, out, err = self.curl("-I", f"http://127.0.0.1:{self.port}/static/big/1000")
        self.assertEqual(code, 0, err)
        self.assertIn(b"HTTP/1.1 200 OK\r\n", out)
        self.assertIn(b"Content-Length: 1000\r\n", out)
        self.assertTrue(out.endswith(b"\r\n\r\n"), out)


if __name__ == "__main__":
    http_harness.main()
