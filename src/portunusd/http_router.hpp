// SPDX-License-Identifier: MPL-2.0
// http_router: picks the door for a request by method and path prefix. Pure.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace portunusd {

/// One `[[forward.map]]`: requests whose path lies under `prefix` and whose method is one of
/// `methods` (empty: any) go to door number `target`.
struct http_route {
    std::vector<std::string> methods;
    std::string prefix;
    std::size_t target = 0;
};

struct route_match {
    enum class result { found, not_found, method_not_allowed, bad_path };
    result outcome = result::not_found;
    std::size_t target = 0;
    std::string allow; ///< for method_not_allowed: the methods the matching prefix takes, "GET, HEAD"
};

/// The path of an origin-form target with its query dropped and its dot segments removed
/// (RFC 3986 §5.2.4), so "/api/../admin" is routed as "/admin". nullopt when the target is not
/// origin-form or climbs above the root.
std::optional<std::string> routing_path(std::string_view target);

/// Immutable after construction, so sessions on any thread may share one.
class http_router {
public:
    /// `catch_all`: the door for requests no prefix matches (the forward's own `door`).
    http_router(std::vector<http_route> routes, std::optional<std::size_t> catch_all);

    /// The longest matching prefix wins; a prefix matches the path itself and everything
    /// below it ("/api" matches "/api" and "/api/x", not "/apix"). If the winning prefix has no
    /// route for the method, the answer is 405 with the methods it does take. HEAD is served
    /// by a GET route unless a HEAD route exists.
    [[nodiscard]] route_match match(std::string_view method, std::string_view target) const;

private:
    std::vector<http_route> routes_; // longest prefix first
    std::optional<std::size_t> catch_all_;
};

} // namespace portunusd
