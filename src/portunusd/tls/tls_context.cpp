// SPDX-License-Identifier: MPL-2.0
// Building a TLS server context from PEM material, with errors an operator can act on.
#include "portunusd/tls/tls_context.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <climits>
#include <cstring>
#include <ctime>

namespace portunusd::tls {
namespace {

// OpenSSL's reason for the first error on this thread's queue (the most specific one), which
// it then clears.
std::string openssl_reason(const char* fallback)
{
    const unsigned long first = ERR_get_error();
    ERR_clear_error();
    if (first == 0) return fallback;
    const char* reason = ERR_reason_error_string(first);
    return reason ? reason : fallback;
}

struct bio_deleter {
    void operator()(BIO* b) const noexcept { BIO_free(b); }
};
using bio_ptr = std::unique_ptr<BIO, bio_deleter>;

bio_ptr memory_bio(std::string_view text)
{
    if (text.size() > INT_MAX) return {};
    return bio_ptr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

// "http/1.1" when the client offers it; otherwise the handshake goes on without ALPN, as a
// server that knows no ALPN would answer, and a client that insists on h2 gives up itself.
int select_http11(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned inlen, void*)
{
    static const unsigned char http11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    unsigned char* chosen = nullptr;
    if (SSL_select_next_proto(&chosen, outlen, http11, sizeof http11, in, inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = chosen;
    return SSL_TLSEXT_ERR_OK;
}

bool load_chain(SSL_CTX* ctx, std::string_view pem, std::string& error)
{
    bio_ptr in = memory_bio(pem);
    X509* leaf = in ? PEM_read_bio_X509_AUX(in.get(), nullptr, nullptr, nullptr) : nullptr;
    if (!leaf) {
        error = "certificate: no PEM certificate found (" + openssl_reason("unreadable") + ")";
        return false;
    }
    const int used = SSL_CTX_use_certificate(ctx, leaf);
    X509_free(leaf);
    if (used != 1) {
        error = "certificate: " + openssl_reason("refused");
        return false;
    }
    // Whatever follows the server's own certificate is its chain, sent to clients in order.
    while (X509* extra = PEM_read_bio_X509(in.get(), nullptr, nullptr, nullptr)) {
        if (SSL_CTX_add0_chain_cert(ctx, extra) != 1) {
            X509_free(extra);
            error = "certificate: a chain certificate was refused (" + openssl_reason("refused") + ")";
            return false;
        }
    }
    // The loop ends at the end of the text, which OpenSSL records as an error: not one here.
    ERR_clear_error();
    return true;
}

bool load_key(SSL_CTX* ctx, std::string_view pem, std::string& error)
{
    bio_ptr in = memory_bio(pem);
    // No passphrase callback: an encrypted key would make the daemon prompt, so it is refused.
    EVP_PKEY* key = in ? PEM_read_bio_PrivateKey(in.get(), nullptr,
                                                 [](char*, int, int, void*) { return 0; }, nullptr)
                       : nullptr;
    if (!key) {
        error = "private_key: no unencrypted PEM private key found (" + openssl_reason("unreadable") + ")";
        return false;
    }
    const int used = SSL_CTX_use_PrivateKey(ctx, key);
    EVP_PKEY_free(key);
    if (used != 1) {
        const std::string reason = openssl_reason("refused");
        error = reason == "key values mismatch" ? "private_key does not match the certificate (" + reason + ")"
                                                : "private_key: " + reason;
        return false;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        error = "private_key does not match the certificate (" + openssl_reason("mismatch") + ")";
        return false;
    }
    return true;
}

} // namespace

std::shared_ptr<const context> context::build(const material& m, std::string& error)
{
    ERR_clear_error();
    SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        error = "cannot make a TLS context: " + openssl_reason("out of memory");
        return nullptr;
    }
    std::shared_ptr<context> made(new context(ctx));
    const int min = m.min_version == "1.3" ? TLS1_3_VERSION : TLS1_2_VERSION;
    SSL_CTX_set_min_proto_version(ctx, min);
    // Renegotiation lets one client make the server redo its costliest step at will; nothing
    // a relay serves needs it. Compression leaks secrets through lengths (CRIME).
    long options = SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE;
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
    // A client that closes without close_notify has ended its stream; the protocol's own
    // framing (an HTTP length, a tcp exchange) says whether anything was cut short.
    options |= SSL_OP_IGNORE_UNEXPECTED_EOF;
#endif
    SSL_CTX_set_options(ctx, options);
    // An idle connection keeps no read or write buffer: memory per idle client stays small.
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (m.http) SSL_CTX_set_alpn_select_cb(ctx, select_http11, nullptr);
    if (!load_chain(ctx, m.certificate_pem, error) || !load_key(ctx, m.private_key_pem, error)) return nullptr;
    // For the expiry warning at load and the metric an alert can watch.
    std::tm expires{};
    if (const X509* leaf = SSL_CTX_get0_certificate(ctx);
        leaf && ASN1_TIME_to_tm(X509_get0_notAfter(leaf), &expires) == 1)
        made->not_after_ = static_cast<std::int64_t>(::timegm(&expires));
    return made;
}

context::~context()
{
    SSL_CTX_free(ctx_);
}

} // namespace portunusd::tls
