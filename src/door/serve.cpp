// SPDX-License-Identifier: MPL-2.0
// portunus::serve: the whole life of a simple door application in one call.
#include <portunus/server.hpp>

#include <csignal>
#include <cstdio>
#include <cstdlib>

namespace portunus {
namespace {

const char* program_name()
{
#if defined(__linux__)
    return program_invocation_short_name;
#else
    return getprogname();
#endif
}

int fail(const std::string& path, const std::error_code& ec)
{
    std::fprintf(stderr, "%s: cannot serve %s: %s\n", program_name(), path.c_str(), ec.message().c_str());
    return 95;
}

} // namespace

int serve(const std::string& path, door_handler handler, door_options options)
{
    // Block the stop signals before the pool exists so that every pool thread inherits the mask
    // and only sigwait() below ever sees them: a handler thread is never interrupted.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
    // A client that goes away must not kill the application with SIGPIPE.
    std::signal(SIGPIPE, SIG_IGN);

    std::error_code ec;
    door_server server = door_server::create(std::move(handler), options, ec);
    if (ec) return fail(path, ec);
    server.attach(path, ec);
    if (ec) return fail(path, ec);

    int signal_number = 0;
    while (sigwait(&stop_signals, &signal_number) != 0) {
    }
    server.revoke();
    server = door_server{}; // waits for the calls in flight
    return 0;
}

} // namespace portunus
