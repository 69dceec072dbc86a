#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
# Routing through [[forward.map]]: longest prefix, segment boundaries, 404, 405 + Allow, HEAD via GET,
# and normalized paths that a prefix cannot be bypassed around.
import os

import http_harness
from http_harness import HttpTest, app_request, big_body, http_forward, request_bytes, route


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
        # The application receives the path it was routed by.
        r, _ = self.get(self.port, "/static/../api/v2/x")
        self.assertEqual((r.status, r.header("X-App")), (200, "v2"))
        self.assertEqual(r.body, b"tag=v2 path=/api/v2/x\n")
        # Dot segments never climb above the root: "/../api" is "/api".
        s, reader = self.open(self.port)
        s.sendall(request_bytes("GET", "/../api") + request_bytes("GET", "/api/x"))
        r = reader.response()
        self.assertEqual((r.status, r.header("X-App"), r.body), (200, "api", b"tag=api path=/api\n"))
        self.assertEqual(reader.response().header("X-App"), "api")
        self.assertEqual(self.calls("api"), 2)

    def test_a_target_that_cannot_be_normalized_is_400(self):
        for target in ("/api/%zz", "/api/a%00b", "/api/%4"):
            r, reader = self.get(self.port, target)
            self.assertEqual((r.status, r.body, r.header("Connection")), (400, b"400 Bad Request\n", "close"), target)
            self.assertTrue(reader.closed())
        self.assertEqual((self.calls("api"), self.calls("root")), (0, 0))

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
        self.daemon.wait_access_log(r'http forward=bare client=127\.0\.0\.1:\d+ method=GET path="/apix" status=404 ')

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


class NormalizedRouting(HttpTest):
    """GET /static -> file_opener, everything else -> a catch-all test app."""

    A_TXT = b"the a.txt file\n"

    def setUp(self):
        super().setUp()
        www = self.path("www")
        os.makedirs(os.path.join(www, "sub"))
        with open(os.path.join(www, "a.txt"), "wb") as f:
            f.write(self.A_TXT)
        files = self.start_app("files.door", www, "/static", program_name="file_opener")
        rest = self.start_app("rest.door", "--tag", "rest", "--log", self.path("rest.calls"))
        self.port = self.reserve_port()
        self.daemon = self.start_http([http_forward(self.port, rest.door, name="site",
                                                    maps=[route("/static", files.door, "GET")])])

    def rest_calls(self):
        return self.call_lines(self.path("rest.calls"))

    def test_every_spelling_of_a_static_path_is_served_by_the_static_door(self):
        for target in ("/static/a.txt", "/%73tatic/a.txt", "//static/a.txt", "/./static/a.txt",
                       "/static/../static/a.txt", "/static/sub/%2e%2e/a.txt", "/static//a.txt",
                       "/%73%74%61%74%69%63/%61.txt", "/x/%2E%2E/static/a.txt", "http://x/static/a.txt",
                       "HTTP://x//static/./a.txt"):
            r, _ = self.get(self.port, target)
            self.assertEqual((r.status, r.body), (200, self.A_TXT), f"{target}: {r}")
            self.assertIsNone(r.header("X-App"), target)
        self.assertEqual(self.rest_calls(), 0)
        # The access log shows the path as routed and served.
        lines = self.assert_access_lines(self.daemon, r'forward=site .*path="/static/a\.txt" status=200 ', 11)
        self.assertFalse([line for line in lines if "%" in line or "//" in line], lines)

    def test_matching_is_case_sensitive_and_an_encoded_slash_is_not_a_separator(self):
        for target in ("/STATIC/a.txt", "/static%2Fa.txt", "/static%2fa.txt"):
            r, _ = self.get(self.port, target)
            self.assertEqual((r.status, r.header("X-App")), (200, "rest"), target)
        r, _ = self.get(self.port, "/static%2fa.txt")
        self.assertEqual(r.body, b"tag=rest path=/static%2Fa.txt\n")
        self.assertEqual(self.rest_calls(), 4)

    def test_the_query_is_kept_as_sent(self):
        r, _ = self.get(self.port, "/%61/./b/?x=/../y&z=%7e%2f")
        self.assertEqual(r.body, b"tag=rest path=/a/b/?x=/../y&z=%7e%2f\n")

    def test_absolute_form_becomes_origin_form_with_its_authority_as_host(self):
        r, _ = self.send(self.port, b"GET http://evil.example/echo/abs?q=1 HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual((r.status, r.header("X-App")), (200, "rest"), r)
        line, fields, _ = app_request(r.body)
        self.assertEqual(line, "GET /echo/abs?q=1 HTTP/1.1")
        self.assertEqual([v for n, v in fields if n.lower() == "host"], ["evil.example"])
        # No path: "/", and the port stays in Host.
        r, _ = self.send(self.port, b"GET HTTP://evil.example:8080?q HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual((r.status, r.body), (200, b"tag=rest path=/?q\n"))
        # HTTP/1.0 without Host gets one.
        r, _ = self.send(self.port, b"GET http://h.example/echo HTTP/1.0\r\n\r\n")
        line, fields, _ = app_request(r.body)
        self.assertEqual((line, [v for n, v in fields if n.lower() == "host"]), ("GET /echo HTTP/1.0", ["h.example"]))

    def test_absolute_forms_not_served_are_400(self):
        for raw in (b"GET http://user@x/echo HTTP/1.1\r\nHost: x\r\n\r\n",
                    b"GET ftp://x/echo HTTP/1.1\r\nHost: x\r\n\r\n",
                    b"GET http:///echo HTTP/1.1\r\nHost: x\r\n\r\n"):
            r, reader = self.send(self.port, raw)
            self.assertEqual((r.status, r.header("Connection")), (400, "close"), raw)
            self.assertTrue(reader.closed())
        self.assertEqual(self.rest_calls(), 0)

    def test_http_1_2_is_served_as_http_1_1(self):
        s, reader = self.open(self.port)
        s.sendall(request_bytes("GET", "/echo/v", version="HTTP/1.2"))
        r = reader.response()
        self.assertEqual((r.status, r.version), (200, "HTTP/1.1"))
        self.assertTrue(r.raw.startswith(b"HTTP/1.1 200 "), r.raw[:40])
        line, _, _ = app_request(r.body)
        self.assertEqual(line, "GET /echo/v HTTP/1.1")
        # Kept alive, as HTTP/1.1 is by default.
        s.sendall(request_bytes("GET", "/static/a.txt", version="HTTP/1.2"))
        r = reader.response()
        self.assertEqual((r.status, r.version, r.body), (200, "HTTP/1.1", self.A_TXT))
        # 2.x and above stay unsupported.
        r, reader = self.get(self.port, "/echo", version="HTTP/2.0")
        self.assertEqual((r.status, r.version), (505, "HTTP/1.1"))
        self.assertTrue(reader.closed())
        # HTTP/1.0 stays 1.0 for the application.
        r, _ = self.get(self.port, "/echo", version="HTTP/1.0")
        self.assertEqual(app_request(r.body)[0], "GET /echo HTTP/1.0")


if __name__ == "__main__":
    http_harness.main()
