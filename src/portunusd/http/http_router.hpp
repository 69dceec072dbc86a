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

/// The normalized path (http::normalize_target()) of an origin- or absolute-form target, without
/// its query: "/api/../admin", "//admin" and "/%61dmin" are all routed as "/admin". nullopt when
/// the target is neither form or cannot be normalized.
std::optional<std::string> routing_path(std::string_view target);

/// Immutable after construction, so sessions on any thread may share one.
class http_router {
public:
    /// `catch_all`: the door for requests no prefix matches (the forward's own `door`).
    http_router(std::vector<http_route> routes, std::optional<std::size_t> catch_all);

    /// The longest matching prefix wins; a prefix matches the path itself and everything
    /// below it ("/api" matches "/api" and "/api/x", not "/apix"), byte for byte after both
    /// are normalized, so case matters and "%2F" is not a separator. If the winning prefix has no
    /// route for the method, the answer is 405 with the methods it does take. HEAD is served
    /// by a GET route unless a HEAD route exists.
    [[nodiscard]] route_match match(std::string_view method, std::string_view target) const;

private:
    std::vector<http_route> routes_; // longest prefix first
    std::optional<std::size_t> catch_all_;
};

} // namespace portunusd
