// SPDX-License-Identifier: MPL-2.0
// echo: the RFC 862 echo service; every reply is exactly the bytes of its request.
#include "app_arguments.hpp"

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
    if (const auto status = portunus_apps::check_arguments(argc, argv, 1, 1, "DOOR_PATH")) return *status;
    const std::string path = argv[1];
    return portunus::serve(path, echo);
}
