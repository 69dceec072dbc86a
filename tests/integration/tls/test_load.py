#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
# A short https load with wrk: 32 kept-alive TLS connections for two seconds, no socket errors,
# no failed handshakes, and every request answered 2xx.
import re
import subprocess

import tls_harness
from tls_harness import TlsTest, https_forward


class Load(TlsTest):
    def test_wrk_https_load_has_no_errors(self):
        web = self.start_app("hello.door", program_name="hello_web")
        port = self.reserve_port()
        settings = self.metrics_settings()
        settings["access_log"] = "off"
        d = self.start_tls([https_forward(port, web.door, cert=self.cert, key=self.key)], daemon=settings)
        p = subprocess.run(["wrk", "-t", "2", "-c", "32", "-d", "2s", "--timeout", "2s",
                            f"https://127.0.0.1:{port}/"], capture_output=True, timeout=30)
        out = p.stdout.decode() + p.stderr.decode()
        print(out)
        self.assertEqual(p.returncode, 0, out)
        # wrk prints these two lines only when there is something to count.
        self.assertNotIn("Socket errors", out)
        self.assertNotIn("Non-2xx or 3xx responses", out)
        m = re.search(r"^\s*(\d+) requests in ", out, re.MULTILINE)
        self.assertIsNotNone(m, out)
        self.assertGreater(int(m.group(1)), 100, out)
        # wrk makes one bare connection to check the address before its threads start (a probe,
        # not counted) and may cut one connection short of its handshake when it stops, which
        # counts as a failure ("the client closed the connection"). Anything more is a real one.
        failures = self.handshake_failures("web")
        print(f"handshake failures counted: {failures}")
        self.assertLessEqual(failures, 2)
        self.assertTrue(d.alive())
        self.assertNotRegex(d.log(), r"\b(warning|error|critical):", d.tail())


if __name__ == "__main__":
    tls_harness.main()
