// SPDX-License-Identifier: MPL-2.0
// Method and path-prefix routing for http forwards.
#include "portunusd/http/http_router.hpp"

#include "portunusd/http/target.hpp"

#include <algorithm>

namespace portunusd {
namespace {

bool under(std::string_view path, std::string_view prefix)
{
    if (prefix.empty() || prefix == "/") return true;
    if (path.substr(0, prefix.size()) != prefix) return false;
    return path.size() == prefix.size() || prefix.back() == '/' || path[prefix.size()] == '/';
}

bool takes(const http_route& r, std::string_view method)
{
    if (r.methods.empty()) return true;
    for (const auto& m : r.methods)
        if (m == method || m == "*") return true;
    return false;
}

} // namespace

std::optional<std::string> routing_path(std::string_view target)
{
    // The parser hands out normalized targets already; normalizing here as well keeps the
    // router's answer the same for any caller, and a second pass changes nothing.
    target = target.substr(0, target.find('#'));
    std::optional<std::string> path;
    if (!target.empty() && target.front() == '/') {
        path = http::normalize_target(target);
    } else if (const auto absolute = http::split_absolute_form(target)) {
        // Built by append, not "/" + string: GCC 12 at -O3 misreads the latter (-Wrestrict).
        std::string origin(1, '/');
        origin.append(absolute->rest);
        path = http::normalize_target(origin);
    }
    if (path) path->resize(std::min(path->find('?'), path->size()));
    return path;
}

http_router::http_router(std::vector<http_route> routes, std::optional<std::size_t> catch_all)
    : routes_(std::move(routes)), catch_all_(catch_all)
{
    // Prefixes are compared with normalized paths, so they are normalized the same way: a
    // prefix written "/%7Euser" or "/a%2fb" still matches what clients send.
    for (http_route& r : routes_)
        if (auto normalized = http::normalize_target(r.prefix); normalized && normalized->find('?') == std::string::npos)
            r.prefix = std::move(*normalized);
    std::stable_sort(routes_.begin(), routes_.end(),
                     [](const http_route& a, const http_route& b) { return a.prefix.size() > b.prefix.size(); });
}

route_match http_router::match(std::string_view method, std::string_view target) const
{
    route_match m;
    if (target == "*" && method == "OPTIONS") {
        // Asks about the server, not a resource: no prefix can own it.
        if (catch_all_) {
            m.outcome = route_match::result::found;
            m.target = *catch_all_;
        }
        return m;
    }
    const std::optional<std::string> path = routing_path(target);
    if (!path) {
        m.outcome = route_match::result::bad_path;
        return m;
    }
    std::size_t best = std::string::npos;
    for (std::size_t i = 0; i < routes_.size(); ++i) {
        const auto& r = routes_[i];
        if (best != std::string::npos && r.prefix.size() < routes_[best].prefix.size()) break;
        if (!under(*path, r.prefix)) continue;
        if (best == std::string::npos) best = i;
        if (takes(r, method) || (method == "HEAD" && takes(r, "GET"))) {
            m.outcome = route_match::result::found;
            m.target = r.target;
            return m;
        }
    }
    if (best == std::string::npos) {
        if (catch_all_) {
            m.outcome = route_match::result::found;
            m.target = *catch_all_;
        }
        return m;
    }
    // Every route with the winning prefix refused the method: list what they take.
    std::vector<std::string> allowed;
    for (const auto& r : routes_) {
        if (r.prefix != routes_[best].prefix) continue;
        for (const auto& meth : r.methods)
            if (std::find(allowed.begin(), allowed.end(), meth) == allowed.end()) allowed.push_back(meth);
    }
    if (std::find(allowed.begin(), allowed.end(), "GET") != allowed.end() &&
        std::find(allowed.begin(), allowed.end(), "HEAD") == allowed.end())
        allowed.emplace_back("HEAD");
    for (const auto& a : allowed) m.allow += (m.allow.empty() ? "" : ", ") + a;
    m.outcome = route_match::result::method_not_allowed;
    return m;
}

} // namespace portunusd
