// SPDX-License-Identifier: MPL-2.0
// The tls part of [[forward]]: certificate, key, versions and the handshake's deadline; and
// reading the two PEM files when the configuration is loaded.
#include "portunusd/config/config_parse_tls.hpp"

#include "portunusd/tls/tls_context.hpp"

#include <chrono>
#include <ctime>
#include <string>

namespace portunusd::config_detail {
namespace {

using namespace std::string_view_literals;

constexpr std::array tls_versions{"1.2"sv, "1.3"sv};
// A certificate chain or a key is a few kilobytes; anything this large is a wrong path.
constexpr std::size_t max_pem_bytes = 1024 * 1024;
// Renewal tools renew a month ahead; a certificate this close to its end was missed.
constexpr std::int64_t expiry_warning_days = 14;

std::string utc_date(std::int64_t seconds)
{
    const std::time_t t = static_cast<std::time_t>(seconds);
    std::tm tm{};
    ::gmtime_r(&t, &tm);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%d %H:%M UTC", &tm);
    return text;
}

std::optional<std::string> pem_path(table_reader& r, std::string_view key, file_position& at)
{
    auto path = r.string(key);
    if (!path) return std::nullopt;
    at = file_position{r.where(key).line, r.where(key).column};
    if (path->empty() || path->front() != '/' || path->find('\0') != std::string::npos) {
        r.error(key, "expected an absolute path to a PEM file, found \"" + *path + "\"");
        return std::nullopt;
    }
    return path;
}

}  // namespace

void read_tls_keys(table_reader& r, std::optional<protocol> proto, forward_config& f, diagnostics& diag)
{
    if (proto && !f.tls) {
        for (std::string_view key : tls_forward_keys)
            if (r.find(key))
                diag.error(r.where(key), std::string{key} + " applies only to TLS forwards (protocol = \"tls\" or "
                                                            "\"https\"); this one is " +
                                             std::string{to_string(*proto)});
        return;
    }
    tls_settings parsed;
    if (auto path = pem_path(r, "certificate", f.certificate_at)) parsed.certificate = std::move(*path);
    if (auto path = pem_path(r, "private_key", f.private_key_at)) parsed.private_key = std::move(*path);
    if (auto version = r.one_of("tls_min_version", tls_versions)) parsed.min_version = std::move(*version);
    if (auto v = r.duration("handshake_timeout")) parsed.handshake_timeout = *v;
    if (!f.tls) return; // protocol missing or invalid: reported already
    const position header{f.line, f.column};
    for (std::string_view key : {"certificate"sv, "private_key"sv})
        if (!r.find(key))
            diag.error(header, "[[forward]] is missing the required key \"" + std::string{key} +
                                   "\"; TLS forwards need a certificate and its private key");
    *f.tls = std::move(parsed);
}

void read_tls_files(config& cfg, diagnostics& diag)
{
    for (forward_config& f : cfg.forwards) {
        if (!f.tls || f.tls->certificate.empty() || f.tls->private_key.empty()) continue;
        const auto read = [&](const std::string& path, std::string& into, file_position at, std::string_view key) {
            into.clear();
            const std::string reason = read_regular_file(path, into, max_pem_bytes);
            if (!reason.empty()) diag.error({at.line, at.column}, std::string{key} + ": cannot read " + path + ": " + reason);
            return reason.empty();
        };
        const bool have_cert = read(f.tls->certificate, f.tls->certificate_pem, f.certificate_at, "certificate");
        const bool have_key = read(f.tls->private_key, f.tls->private_key_pem, f.private_key_at, "private_key");
        if (!have_cert || !have_key) continue;
        std::string error;
        const auto ctx = tls::context::build(
            {f.tls->certificate_pem, f.tls->private_key_pem, f.tls->min_version, f.proto == protocol::http}, error);
        const position at{f.certificate_at.line, f.certificate_at.column};
        if (!ctx) {
            diag.error(at, error);
            continue;
        }
        // Served all the same (clients decide), but said at every load until it is renewed.
        const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
        const std::int64_t left = ctx->not_after() - now;
        if (left <= 0)
            diag.warning(at, "certificate: " + f.tls->certificate + " expired on " + utc_date(ctx->not_after()) +
                                 "; clients that check it will refuse the connection");
        else if (left < expiry_warning_days * 86400)
            diag.warning(at, "certificate: " + f.tls->certificate + " expires on " + utc_date(ctx->not_after()) +
                                 ", in " + std::to_string(left / 86400) + " day(s)");
    }
}

}  // namespace portunusd::config_detail
