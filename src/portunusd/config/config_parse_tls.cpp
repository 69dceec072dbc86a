// SPDX-License-Identifier: MPL-2.0
// The tls part of [[forward]]: certificate, key, versions and the handshake's deadline; and
// reading the two PEM files when the configuration is loaded.
#include "portunusd/config/config_parse_tls.hpp"

#include "portunusd/tls/tls_context.hpp"

#include <string>

namespace portunusd::config_detail {
namespace {

using namespace std::string_view_literals;

constexpr std::array tls_versions{"1.2"sv, "1.3"sv};
// A certificate chain or a key is a few kilobytes; anything this large is a wrong path.
constexpr std::size_t max_pem_bytes = 1024 * 1024;

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
        if (!tls::context::build({f.tls->certificate_pem, f.tls->private_key_pem, f.tls->min_version,
                                  f.proto == protocol::http},
                                 error))
            diag.error({f.certificate_at.line, f.certificate_at.column}, error);
    }
}

}  // namespace portunusd::config_detail
