// SPDX-License-Identifier: MPL-2.0
// echo: the RFC 862 echo service; every reply is exactly the bytes of its request.
#include <portunus/server.hpp>

#include <cstdio>
#include <string>

namespace {

portunus::door_reply echo(portunus::door_request& request)
{
    return {std::string(request.data), {}};
}

} // namespace

int main(int argc, char** argv)
{
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s DOOR_PATH\n", argv[0]);
        return 64; // EX_USAGE
    }
    const std::string path = argv[1];
    return portunus::serve(path, echo);
}
