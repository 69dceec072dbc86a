// SPDX-License-Identifier: MPL-2.0
// tls_context: one forward's TLS server settings (certificate chain, key, versions) as an OpenSSL context.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

struct ssl_ctx_st;

namespace portunusd::tls {

/// What a context is made of: the PEM texts themselves (not their paths), so that a context
/// built at reload reflects the files as they are then.
struct material {
    std::string_view certificate_pem; ///< the server's certificate, then any intermediates
    std::string_view private_key_pem; ///< unencrypted
    std::string_view min_version;     ///< "1.2" or "1.3"
    bool http = false;                ///< offer "http/1.1" in ALPN (https forwards)
};

/// An immutable server context shared by every connection of one forward; safe to use from
/// every loop thread at once.
class context {
public:
    /// The context, or nullptr with `error` saying what is wrong with `m` in words an operator
    /// can act on (which part, and OpenSSL's reason).
    static std::shared_ptr<const context> build(const material& m, std::string& error);

    context(const context&) = delete;
    context& operator=(const context&) = delete;
    ~context();

    [[nodiscard]] ssl_ctx_st* native() const noexcept { return ctx_; }
    /// When the server's own certificate expires, in seconds since the epoch (UTC).
    [[nodiscard]] std::int64_t not_after() const noexcept { return not_after_; }

private:
    explicit context(ssl_ctx_st* ctx) noexcept : ctx_(ctx) {}
    ssl_ctx_st* ctx_;
    std::int64_t not_after_ = 0;
};

} // namespace portunusd::tls
