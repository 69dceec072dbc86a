#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
# tls_min_version: "1.3" refuses a TLS 1.2 client (and counts and logs the failure), serves a
# TLS 1.3 one; beside it, a forward with the default still serves TLS 1.2.
import re

import tls_harness
from tls_harness import TlsTest, https_forward


class MinVersion(TlsTest):
    def setUp(self):
        super().setUp()
        self.web = self.start_app("hello.door", program_name="hello_web")
        self.p13 = self.reserve_port()
        self.p12 = self.reserve_port()
        self.daemon = self.start_tls([
            https_forward(self.p13, self.web.door, name="only13", cert=self.cert, key=self.key,
                          tls_min_version="1.3"),
            https_forward(self.p12, self.web.door, name="default", cert=self.cert, key=self.key),
        ], daemon=self.metrics_settings())

    def test_tls12_client_refused_when_the_minimum_is_13(self):
        code, out = self.s_client(self.p13, "-tls1_2", "-brief")
        self.assertNotEqual(code, 0, out)
        self.assertRegex(out, r"alert protocol version|unsupported protocol|no protocols available", out)
        line = self.assert_access_lines(self.daemon, r'forward=only13 client=127\.0\.0\.1:\d+ .*'
                                                     r'result="TLS handshake failed: [^"]+"', 1)[0]
        self.assertIn("unsupported protocol", line)
        self.wait_handshake_failures("only13", 1)
        self.assertEqual(self.handshake_failures("default"), 0)

    def test_tls13_client_served_when_the_minimum_is_13(self):
        code, out = self.s_client(self.p13, "-tls1_3", "-brief")
        self.assertEqual(code, 0, out)
        self.assertIn("Protocol version: TLSv1.3", out)
        code, body, err = self.curl("--cacert", self.pki.root, "--tlsv1.3", "--resolve",
                                    f"localhost:{self.p13}:127.0.0.1", f"https://localhost:{self.p13}/v13")
        self.assertEqual(code, 0, err)
        self.assertTrue(body.startswith(b"Hello from a door!"), body)
        self.assertEqual(self.handshake_failures("only13"), 0)

    def test_tls12_client_served_by_the_default_minimum(self):
        code, out = self.s_client(self.p12, "-tls1_2", "-brief")
        self.assertEqual(code, 0, out)
        self.assertIn("Protocol version: TLSv1.2", out)
        code, body, err = self.curl("--cacert", self.pki.root, "--tls-max", "1.2", "-w", "%{http_code}",
                                    "--resolve", f"localhost:{self.p12}:127.0.0.1", f"https://localhost:{self.p12}/")
        self.assertEqual(code, 0, err)
        self.assertTrue(re.search(rb"Hello from a door!.*200$", body, re.DOTALL), body)


if __name__ == "__main__":
    tls_harness.main()
