// SPDX-License-Identifier: MPL-2.0
// hello_web: answers every request with a small HTTP/1.1 page that counts its visitors.
#include "app_arguments.hpp"

#include <portunus/http.hpp>
#include <portunus/server.hpp>

#include <time.h>

#include <atomic>
#include <cstdio>
#include <ctime>
#include <string>

namespace {

// One counter for the whole process: the pool runs hello() on several threads at once.
std::atomic<unsigned long long> visitors{0};

std::string http_date()
{
    // gmtime_r, not std::gmtime: the latter returns a buffer shared by all threads.
    const std::time_t now = std::time(nullptr);
    std::tm utc{};
    char text[64];
    ::gmtime_r(&now, &utc);
    return {text, std::strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S GMT", &utc)};
}

portunus::door_reply hello(portunus::door_request& call)
{
    // Behind an http forward the request says whether the connection stays open; behind a raw
    // tcp forward (or for anything unparseable) the reply ends the exchange.
    portunus::http::request request;
    const bool keep_open = portunus::http::parse_request(call.data, request) &&
                           request.header("Connection") == "keep-alive";
    const unsigned long long visitor = visitors.fetch_add(1, std::memory_order_relaxed) + 1;
    const std::string body = "Hello from a door! You are visitor " + std::to_string(visitor) + ".\n";
    std::string response = "HTTP/1.1 200 OK\r\n"
                           "Date: " + http_date() + "\r\n"
                           "Content-Type: text/plain; charset=utf-8\r\n"
                           "Content-Length: " + std::to_string(body.size()) + "\r\n"
                           "Connection: " + std::string(keep_open ? "keep-alive" : "close") + "\r\n"
                           "\r\n";
    response += body;
    return {std::move(response), {}};
}

} // namespace

int main(int argc, char** argv)
{
    if (const auto status = portunus_apps::check_arguments(argc, argv, 1, 1, "DOOR_PATH")) return *status;
    const std::string path = argv[1];
    return portunus::serve(path, hello);
}
