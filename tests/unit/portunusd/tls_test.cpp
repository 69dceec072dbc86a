// SPDX-License-Identifier: MPL-2.0
// TLS: contexts from PEM material, a channel's handshake, reads and writes against an OpenSSL
// client over a real socket pair, and loading certificate files with the configuration.
#include "portunusd/config/config.hpp"
#include "portunusd/tls/tls_channel.hpp"
#include "portunusd/tls/tls_context.hpp"

#include "tls_test_support.hpp"

#include <catch2/catch.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <portunus/unique_fd.hpp>

namespace fs = std::filesystem;
using portunusd::tls::channel;
using portunusd::tls::context;
using portunusd_test::self_signed;

namespace {

std::shared_ptr<const context> make_context(const portunusd_test::pem_pair& pem, std::string_view min = "1.2",
                                            bool http = false)
{
    std::string error;
    auto ctx = context::build({pem.certificate, pem.private_key, min, http}, error);
    INFO(error);
    REQUIRE(ctx);
    return ctx;
}

/// A non-blocking socket pair: `server` for the channel, `client` for an OpenSSL client.
struct tls_pair {
    portunus::unique_fd server, client;
    SSL_CTX* client_ctx = nullptr;
    SSL* ssl = nullptr;

    explicit tls_pair(int max_version = 0)
    {
        int fds[2];
        REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) == 0);
        server = portunus::unique_fd(fds[0]);
        client = portunus::unique_fd(fds[1]);
        client_ctx = SSL_CTX_new(TLS_client_method());
        REQUIRE(client_ctx);
        if (max_version) SSL_CTX_set_max_proto_version(client_ctx, max_version);
        ssl = SSL_new(client_ctx);
        REQUIRE(ssl);
        SSL_set_fd(ssl, client.get());
        SSL_set_connect_state(ssl);
    }
    tls_pair(const tls_pair&) = delete;
    tls_pair& operator=(const tls_pair&) = delete;
    ~tls_pair()
    {
        SSL_free(ssl);
        SSL_CTX_free(client_ctx);
    }

    /// Steps both sides until the server's handshake ends; its last step.
    channel::step handshake(channel& c)
    {
        channel::step s = channel::step::want_read;
        for (int i = 0; i < 100 && s != channel::step::done && s != channel::step::failed; ++i) {
            ERR_clear_error();
            SSL_do_handshake(ssl);
            s = c.handshake();
        }
        // The client takes the server's last flight (TLS 1.3: its Finished and tickets).
        for (int i = 0; i < 10 && !SSL_is_init_finished(ssl); ++i) SSL_do_handshake(ssl);
        return s;
    }

    /// Everything the client can read now.
    std::string client_read()
    {
        std::string got;
        char buf[16384];
        for (;;) {
            const int n = SSL_read(ssl, buf, sizeof buf);
            if (n <= 0) break;
            got.append(buf, static_cast<std::size_t>(n));
        }
        return got;
    }
};

} // namespace

TEST_CASE("tls context: built from a certificate and its key", "[tls]")
{
    const auto pem = self_signed();
    CHECK(make_context(pem));
    CHECK(make_context(pem, "1.3", true));
}

TEST_CASE("tls context: knows when its certificate expires", "[tls]")
{
    // self_signed() makes a certificate valid for a day from now.
    const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    const auto ctx = make_context(self_signed());
    CHECK(ctx->not_after() > now + 86400 - 60);
    CHECK(ctx->not_after() <= now + 86400 + 60);
}

TEST_CASE("tls context: errors name the part that is wrong", "[tls]")
{
    const auto pem = self_signed();
    const auto other = self_signed("other");
    std::string error;
    CHECK_FALSE(context::build({"not a certificate", pem.private_key, "1.2", false}, error));
    CHECK_THAT(error, Catch::StartsWith("certificate: no PEM certificate found"));
    CHECK_FALSE(context::build({pem.certificate, "", "1.2", false}, error));
    CHECK_THAT(error, Catch::StartsWith("private_key: no unencrypted PEM private key found"));
    CHECK_FALSE(context::build({pem.certificate, other.private_key, "1.2", false}, error));
    CHECK_THAT(error, Catch::StartsWith("private_key does not match the certificate"));
    // One file with the key and the certificate may serve as both.
    const std::string both = pem.private_key + pem.certificate;
    CHECK(context::build({both, both, "1.2", false}, error));
}

TEST_CASE("tls channel: handshake, then reads and writes like recv and send", "[tls]")
{
    const auto ctx = make_context(self_signed());
    tls_pair p;
    channel c(*ctx, p.server.get(), {});
    REQUIRE(p.handshake(c) == channel::step::done);
    CHECK(std::string(c.version()) == "TLSv1.3");

    char buf[65536];
    // Nothing sent yet: EAGAIN, as recv says it.
    errno = 0;
    CHECK(c.receive(buf, sizeof buf) == -1);
    CHECK(errno == EAGAIN);

    REQUIRE(SSL_write(p.ssl, "hello", 5) == 5);
    REQUIRE(c.receive(buf, sizeof buf) == 5);
    CHECK(std::string(buf, 5) == "hello");

    // Three records in the socket: one receive takes them all, so that a short read means
    // nothing is left inside OpenSSL that no readiness edge would announce.
    const std::string record(10000, 'r');
    for (int i = 0; i < 3; ++i) REQUIRE(SSL_write(p.ssl, record.data(), static_cast<int>(record.size())) > 0);
    CHECK(c.receive(buf, sizeof buf) == 30000);
    // A room smaller than what is there is filled exactly.
    for (int i = 0; i < 3; ++i) REQUIRE(SSL_write(p.ssl, record.data(), static_cast<int>(record.size())) > 0);
    CHECK(c.receive(buf, 25000) == 25000);
    CHECK(c.receive(buf, sizeof buf) == 5000);

    // The server's side: a write larger than the socket buffer stops short without an error,
    // and the rest goes once the client has read.
    std::string big(4 * 1024 * 1024, 'b');
    for (std::size_t i = 0; i < big.size(); i += 4096) big[i] = static_cast<char>('a' + (i / 4096) % 26);
    std::size_t sent = 0;
    std::string got;
    for (int round = 0; round < 10000 && (sent < big.size() || got.size() < big.size()); ++round) {
        int error = 0;
        if (sent < big.size()) {
            const std::size_t took = c.send_some(big.data() + sent, big.size() - sent, error);
            REQUIRE(error == 0);
            if (round == 0) CHECK(took < big.size());
            sent += took;
        }
        got += p.client_read();
    }
    CHECK(sent == big.size());
    CHECK(got == big);

    // The client's close_notify ends the stream: 0, as recv says at EOF.
    SSL_shutdown(p.ssl);
    CHECK(c.receive(buf, sizeof buf) == 0);
}

TEST_CASE("tls channel: data and close_notify in one read: the data, then the end", "[tls]")
{
    const auto ctx = make_context(self_signed());
    tls_pair p;
    channel c(*ctx, p.server.get(), {});
    REQUIRE(p.handshake(c) == channel::step::done);
    REQUIRE(SSL_write(p.ssl, "bye", 3) == 3);
    SSL_shutdown(p.ssl);
    char buf[64];
    CHECK_FALSE(c.done_reading());
    REQUIRE(c.receive(buf, sizeof buf) == 3);
    // OpenSSL has taken the close_notify off the socket already: no edge will announce it.
    CHECK(c.done_reading());
    CHECK(c.receive(buf, sizeof buf) == 0);
}

TEST_CASE("tls channel: the server's close_notify reaches the client", "[tls]")
{
    const auto ctx = make_context(self_signed());
    tls_pair p;
    channel c(*ctx, p.server.get(), {});
    REQUIRE(p.handshake(c) == channel::step::done);
    c.close_notify();
    char buf[16];
    CHECK(SSL_read(p.ssl, buf, sizeof buf) == 0);
    CHECK(SSL_get_error(p.ssl, 0) == SSL_ERROR_ZERO_RETURN);
}

TEST_CASE("tls channel: bytes read before TLS began (behind a PROXY header) come first", "[tls]")
{
    const auto ctx = make_context(self_signed());
    tls_pair p;
    // The client's hello, taken off the socket as the PROXY header's read would take it.
    ERR_clear_error();
    SSL_do_handshake(p.ssl);
    char hello[16384];
    const ssize_t n = ::recv(p.server.get(), hello, sizeof hello, 0);
    REQUIRE(n > 0);
    channel c(*ctx, p.server.get(), std::string_view(hello, static_cast<std::size_t>(n)));
    REQUIRE(p.handshake(c) == channel::step::done);
    REQUIRE(SSL_write(p.ssl, "after", 5) == 5);
    char buf[16];
    REQUIRE(c.receive(buf, sizeof buf) == 5);
    CHECK(std::string(buf, 5) == "after");
}

TEST_CASE("tls channel: a handshake that cannot succeed fails with OpenSSL's reason", "[tls]")
{
    const auto ctx = make_context(self_signed());
    SECTION("plain HTTP")
    {
        tls_pair p;
        const std::string request = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        REQUIRE(::send(p.client.get(), request.data(), request.size(), 0) == static_cast<ssize_t>(request.size()));
        channel c(*ctx, p.server.get(), {});
        CHECK(c.handshake() == channel::step::failed);
        CHECK(c.failure() == "http request");
        // A failed channel refuses everything after, without touching the socket.
        char buf[16];
        CHECK(c.receive(buf, sizeof buf) == -1);
        int error = 0;
        CHECK(c.send_some("x", 1, error) == 0);
        CHECK(error != 0);
    }
    SECTION("the client closes half way")
    {
        tls_pair p;
        channel c(*ctx, p.server.get(), {});
        CHECK(c.handshake() == channel::step::want_read);
        p.client.reset();
        CHECK(c.handshake() == channel::step::failed);
        CHECK(c.failure() == "the client closed the connection");
        // Not a byte came: a probe, not a failed handshake.
        CHECK_FALSE(c.heard_from_client());
    }
    SECTION("the client closes after part of its hello")
    {
        tls_pair p;
        ERR_clear_error();
        SSL_do_handshake(p.ssl); // the ClientHello, now in the socket
        char hello[16384];
        const ssize_t n = ::recv(p.server.get(), hello, sizeof hello, MSG_PEEK);
        REQUIRE(n > 10);
        // Only the first bytes reach the server: the client's socket goes away with the rest
        // unread, so take the rest off and close.
        char first[10];
        REQUIRE(::recv(p.server.get(), first, sizeof first, 0) == 10);
        channel partial(*ctx, p.server.get(), std::string_view(first, sizeof first));
        char rest[16384];
        while (::recv(p.server.get(), rest, sizeof rest, 0) > 0) {
        }
        p.client.reset();
        CHECK(partial.handshake() == channel::step::failed);
        CHECK(partial.heard_from_client());
    }
    SECTION("a client too old for tls_min_version 1.3")
    {
        const auto strict = make_context(self_signed(), "1.3");
        tls_pair p(TLS1_2_VERSION);
        channel c(*strict, p.server.get(), {});
        CHECK(p.handshake(c) == channel::step::failed);
        CHECK_FALSE(c.failure().empty());
    }
}

TEST_CASE("tls config: load_config reads the certificate and key and checks they match", "[tls][config]")
{
    char dir_template[] = "/tmp/portunus-tls-test-XXXXXX";
    REQUIRE(::mkdtemp(dir_template));
    const fs::path dir = dir_template;
    const auto pem = self_signed();
    const auto other = self_signed("other");
    std::ofstream(dir / "cert.pem") << pem.certificate;
    std::ofstream(dir / "key.pem") << pem.private_key;
    std::ofstream(dir / "other.key") << other.private_key;
    const auto config_with = [&](const std::string& cert, const std::string& key) {
        const fs::path file = dir / "portunusd.toml";
        std::ofstream(file) << "[daemon]\nallow_insecure_door_dir = true\n\n[[forward]]\nprotocol = \"https\"\n"
                               "listen = \"127.0.0.1:8443\"\ndoor = \""
                            << (dir / "app.door").string() << "\"\ncertificate = \"" << cert
                            << "\"\nprivate_key = \"" << key << "\"\n";
        return portunusd::load_config(file.string());
    };

    const auto good = config_with((dir / "cert.pem").string(), (dir / "key.pem").string());
    const std::string first_error = good.errors.empty() ? std::string() : good.errors.front().to_string();
    INFO(first_error);
    REQUIRE(good.value);
    const auto& f = good.value->forwards.at(0);
    REQUIRE(f.tls);
    CHECK(f.tls->certificate_pem == pem.certificate);
    CHECK(f.tls->private_key_pem == pem.private_key);
    CHECK(f.name == "https:127.0.0.1:8443");
    CHECK(portunusd::protocol_name(f) == "https");
    CHECK(f.proto == portunusd::protocol::http);

    const auto missing = config_with((dir / "nope.pem").string(), (dir / "key.pem").string());
    REQUIRE_FALSE(missing.value);
    REQUIRE(missing.errors.size() == 1);
    CHECK(missing.errors[0].line == 8);
    CHECK(missing.errors[0].message == "certificate: cannot read " + (dir / "nope.pem").string() +
                                           ": No such file or directory");

    const auto mismatched = config_with((dir / "cert.pem").string(), (dir / "other.key").string());
    REQUIRE_FALSE(mismatched.value);
    REQUIRE(mismatched.errors.size() == 1);
    CHECK_THAT(mismatched.errors[0].message, Catch::StartsWith("private_key does not match the certificate"));

    // A certificate about to expire is served, with a warning at every load.
    const auto warned = config_with((dir / "cert.pem").string(), (dir / "key.pem").string());
    REQUIRE(warned.value);
    REQUIRE(warned.warnings.size() == 1);
    CHECK(warned.warnings[0].line == 8);
    CHECK_THAT(warned.warnings[0].message, Catch::Matches(".*cert\\.pem expires on 20[0-9-]+ [0-9:]+ UTC, in [01] day\\(s\\)"));

    fs::remove_all(dir);
}
