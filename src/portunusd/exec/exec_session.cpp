// SPDX-License-Identifier: MPL-2.0
// An exec connection: admission, spawn, the child's exit, and call_timeout.
#include "portunusd/exec/exec_session.hpp"

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <cstring>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

namespace portunusd {

exec_session::exec_session(accepted_connection c, std::shared_ptr<forward_state> forward, connection_limit& limit,
                           session_registry& registry, std::shared_ptr<exec_forward> exec)
    : session_core(std::move(c), std::move(forward), limit, registry), exec_(std::move(exec))
{
}

void exec_session::start_new(accepted_connection c, std::shared_ptr<forward_state> forward, connection_limit& limit,
                             session_registry& registry)
{
    auto exec = std::static_pointer_cast<exec_forward>(forward->room);
    std::make_shared<exec_session>(std::move(c), std::move(forward), limit, registry, std::move(exec))->start();
}

std::string exec_session::status_text(int status)
{
    if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) return "signal " + std::to_string(WTERMSIG(status));
    return "ended";
}

void exec_session::on_start(std::string_view)
{
    forward_->stats->request();
    arm_timer(forward_->config.call_timeout, "call timeout");
    auto self = self_as<exec_session>();
    const auto admitted = exec_->admit(
        [self] { boost::asio::post(self->socket_.executor(), [self] { self->on_turn(); }); }, queue_ticket_);
    switch (admitted) {
    case exec_forward::admission::run: holds_slot_ = true; return run();
    case exec_forward::admission::queued: return;
    case exec_forward::admission::refused: break;
    }
    close_queue_full("programs running");
}

void exec_session::on_turn()
{
    queue_ticket_ = 0;
    holds_slot_ = true;
    if (closed_) return give_back(); // timed out or drained while queued: the next one's turn
    run();
}

void exec_session::give_back()
{
    if (!holds_slot_) return;
    holds_slot_ = false;
    exec_->release();
}

void exec_session::run()
{
    const int fd = socket_.native_handle();
    // The program reads and writes as it likes; the daemon does neither from here on.
    const int flags = ::fcntl(fd, F_GETFL);
    if (flags >= 0 && (flags & O_NONBLOCK)) ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    sockaddr_storage local{};
    socklen_t len = sizeof local;
    boost::asio::ip::tcp::endpoint here = local_;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) == 0 && len <= here.capacity()) {
        std::memcpy(here.data(), &local, len);
        here.resize(len);
    }
    std::string error;
    job_ = std::make_unique<spawn_job>();
    const pid_t pid = exec_->spawn(fd, client_, here, *job_, error);
    if (pid < 0) {
        job_.reset();
        give_back();
        return cannot_start(error);
    }
    pid_ = pid;
    exec_->children().add(pid, socket_.executor(), [self = self_as<exec_session>()](int status) { self->on_exit(status); });
}

void exec_session::cannot_start(const std::string& error)
{
    forward_->stats->failed(failure_kind::other);
    std::uint64_t suppressed = 0;
    if (forward_->failure_log.allow(suppressed))
        spdlog::warn("forward {}: cannot start {}: {}; closing {} ({} more since last warning)", forward_->config.name,
                     exec_->program(), error, client_text_, suppressed);
    close("cannot start: " + error);
}

void exec_session::on_exit(int status)
{
    pid_ = -1;
    give_back();
    // The child has been reaped: its job is read for a failure before exec, then let go.
    const std::string failure = job_ ? job_->failure() : std::string();
    job_.reset();
    if (closed_) return;
    if (!failure.empty()) return cannot_start(failure);
    close(status_text(status));
}

void exec_session::on_timeout(const char* reason)
{
    if (pid_ > 0) {
        exec_->children().signal(pid_, SIGKILL);
        // Whatever else holds the socket (a process the program left behind in another
        // group) cannot keep the client waiting.
        ::shutdown(socket_.native_handle(), SHUT_RDWR);
        forward_->stats->failed(failure_kind::timeout);
        return close("call timeout: killed");
    }
    forward_->stats->failed(failure_kind::timeout);
    close(reason);
}

void exec_session::on_closed(std::string_view reason)
{
    // Closed while queued: its place goes now, not when its turn would have come.
    if (queue_ticket_ != 0 && exec_->withdraw(queue_ticket_)) queue_ticket_ = 0;
    // The bytes go between the client and the program: the daemon counts none.
    log_access({}, 0, 0, reason, started_);
}

} // namespace portunusd
