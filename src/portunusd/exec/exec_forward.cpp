// SPDX-License-Identifier: MPL-2.0
// Admission, the child's environment and the stderr pipe of one exec forward.
#include "portunusd/exec/exec_forward.hpp"

#include "portunusd/exec/stderr_relay.hpp"

#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace portunusd {

exec_forward::exec_forward(const forward_config& f, std::shared_ptr<exec_children> children,
                           boost::asio::io_context& main)
    : config_(f), children_(std::move(children))
{
    spawn_spec spec;
    spec.argv = f.command;
    // A program started by inetd finds the usual commands; nothing of the daemon's own
    // environment (which a service manager fills) reaches it.
    spec.environment = {{"PATH", "/usr/local/bin:/usr/bin:/bin"}, {"PORTUNUS_FORWARD", f.name}, {"PROTO", "TCP"}};
    setup_error_ = set_account(spec, f.user, f.group);
    if (setup_error_.empty()) program_.emplace(std::move(spec));

    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
        spdlog::error("forward {}: cannot make a pipe for its programs' stderr: {}; they get none", f.name,
                      std::strerror(errno));
        return;
    }
    stderr_write_ = portunus::unique_fd(fds[1]);
    std::make_shared<stderr_relay>(main, portunus::unique_fd(fds[0]), f.name)->start();
}

exec_forward::admission exec_forward::admit(std::function<void()> turn, std::uint64_t& ticket)
{
    std::lock_guard lock(mutex_);
    if (running_ < config_.max_concurrency) {
        ++running_;
        return admission::run;
    }
    if (queue_.size() >= config_.queue) return admission::refused;
    ticket = next_ticket_++;
    queue_.emplace_back(ticket, std::move(turn));
    return admission::queued;
}

bool exec_forward::withdraw(std::uint64_t ticket)
{
    std::lock_guard lock(mutex_);
    const auto it = std::find_if(queue_.begin(), queue_.end(), [ticket](const auto& q) { return q.first == ticket; });
    if (it == queue_.end()) return false;
    queue_.erase(it);
    return true;
}

void exec_forward::release()
{
    std::function<void()> next;
    {
        std::lock_guard lock(mutex_);
        if (queue_.empty()) {
            --running_;
            return;
        }
        // The slot passes to the first in the queue as it is: running_ stays.
        next = std::move(queue_.front().second);
        queue_.pop_front();
    }
    next();
}

std::size_t exec_forward::running() const
{
    std::lock_guard lock(mutex_);
    return running_;
}

namespace {

std::string ip_text(const boost::asio::ip::address& a)
{
    // An IPv4 client of a dual-stack listener is shown as IPv4, as ucspi-tcp does.
    if (a.is_v6() && a.to_v6().is_v4_mapped())
        return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, a.to_v6()).to_string();
    return a.to_string();
}

} // namespace

pid_t exec_forward::spawn(int socket, const boost::asio::ip::tcp::endpoint& client,
                          const boost::asio::ip::tcp::endpoint& local, spawn_job& job, std::string& error) const
{
    if (!program_) {
        error = setup_error_;
        return -1;
    }
    std::vector<std::string> env{
        "TCPREMOTEIP=" + ip_text(client.address()), "TCPREMOTEPORT=" + std::to_string(client.port()),
        "TCPLOCALIP=" + ip_text(local.address()), "TCPLOCALPORT=" + std::to_string(local.port())};
    // Without the pipe, stderr goes where stdout goes, as inetd's programs often expect.
    return program_->spawn(socket, stderr_write_ ? stderr_write_.get() : socket, std::move(env), job, error);
}

} // namespace portunusd
