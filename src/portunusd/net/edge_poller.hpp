// SPDX-License-Identifier: MPL-2.0
// edge_poller: readiness waits on descriptors of one event loop, without a system call per wait.
#pragma once

#include <boost/asio/execution_context.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include <portunus/unique_fd.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

// epoll where there is one; elsewhere (illumos) each registration waits through Asio's reactor,
// which is correct everywhere and only costs the re-arm this class exists to avoid.
#if defined(__linux__) && !defined(PORTUNUSD_EDGE_POLLER_ASIO)
#define PORTUNUSD_EDGE_POLLER_EPOLL 1
#endif

namespace portunusd {

/// A per-loop set of descriptors that stay registered, edge-triggered, for their whole life.
/// Asio's reactor re-arms a descriptor with EPOLL_CTL_MOD every time a wait starts, which on a
/// busy relay is a system call per door call and another per client request; here a wait is a
/// note in user space, and the loop pays one epoll_wait and one re-arm per batch of readiness
/// events, however many descriptors the batch covers.
///
/// An Asio service of one io_context (`use_service<edge_poller>(loop)`). Waits run their
/// callbacks on that io_context's thread; registrations may be dropped from any thread.
class edge_poller : public boost::asio::execution_context::service {
public:
    using key_type = edge_poller;
    static inline boost::asio::execution_context::id id;
    /// Runs once: with an empty error when the descriptor became ready (or hung up, or has an
    /// error: the next read or write tells which), with operation_aborted after cancel().
    using callback = std::function<void(const boost::system::error_code&)>;
    enum class wait_for : unsigned char { read = 0, write = 1 };

    /// `context` must be an io_context.
    explicit edge_poller(boost::asio::execution_context& context);
    ~edge_poller() override;

    /// A descriptor's place in the set. Move-only; destroying it (or remove()) takes the
    /// descriptor out of the set and drops pending waits without running them.
    class registration {
    public:
        registration() = default;
        registration(registration&& other) noexcept;
        registration& operator=(registration&& other) noexcept;
        registration(const registration&) = delete;
        registration& operator=(const registration&) = delete;
        ~registration() { remove(); }

        /// `done` runs on the loop once the descriptor has become ready for `what` since the
        /// last such wait completed. Callers wait only after a read or write found the
        /// descriptor not ready (EAGAIN), and treat a completion as a hint: the edge that woke
        /// them may be one their last call already consumed. One wait per direction at a time.
        /// Precondition: registered().
        void async_wait(wait_for what, callback done);
        /// Pending waits complete now (posted) with operation_aborted.
        void cancel();
        /// Takes the descriptor out of the set (EPOLL_CTL_DEL) and forgets it.
        void remove() noexcept;
        /// Forgets the descriptor without telling the kernel: for a caller about to close a
        /// descriptor nothing else shares, which takes it out of the set by itself.
        void forget() noexcept;
        [[nodiscard]] bool registered() const noexcept { return poller_ != nullptr; }

    private:
        friend class edge_poller;
        registration(edge_poller* p, std::uint32_t slot, std::uint32_t generation) noexcept
            : poller_(p), slot_(slot), generation_(generation)
        {
        }
        void drop(bool tell_kernel) noexcept;
        edge_poller* poller_ = nullptr;
        std::uint32_t slot_ = 0;
        std::uint32_t generation_ = 0;
    };

    /// Adds `fd`, which the caller keeps open while the registration lives. On failure `ec` is
    /// epoll_ctl's error and the registration is empty.
    registration add(int fd, boost::system::error_code& ec);

private:
    struct slot {
        int fd = -1;
        std::uint32_t generation = 0;
        bool ready[2] = {false, false}; ///< an edge came while nobody waited
        /// The peer hung up (reading) or the socket failed (both): no edge follows such an
        /// event, so every later wait on that side completes at once and the caller's next
        /// call reports it.
        bool ended[2] = {false, false};
        callback waiter[2];
#if !defined(PORTUNUSD_EDGE_POLLER_EPOLL)
        std::unique_ptr<boost::asio::posix::stream_descriptor> view; ///< of fd; never closes it
#endif
    };

    void shutdown() override;
    /// Frees the slot if it is still (index, generation); returns its descriptor, or -1.
    int release(std::uint32_t index, std::uint32_t generation) noexcept;
    slot* find(std::uint32_t index, std::uint32_t generation) noexcept;

    // What each way of waiting does (edge_poller_epoll.cpp, edge_poller_asio.cpp); the rest,
    // slots and registrations, is the same for both (edge_poller.cpp).
    /// Starts watching the descriptor of a slot just taken; `ec` set on failure.
    void watch(std::uint32_t index, std::uint32_t generation, int fd, boost::system::error_code& ec);
    /// Stops watching `fd`, which is still open. Called before release().
    void unwatch(int fd) noexcept;
    /// Lets go of what watching the slot's descriptor holds, with mutex_ held; never closes it.
    static void forget_watch(slot& s) noexcept;
    void start_wait(std::uint32_t index, wait_for what, callback done);
    void cancel_waits(std::uint32_t index);
#if defined(PORTUNUSD_EDGE_POLLER_EPOLL)
    void arm();
    void on_events(const boost::system::error_code& ec);
    void deliver(std::uint32_t index, std::uint32_t generation, std::uint32_t events);
#endif

    boost::asio::io_context& loop_;
#if defined(PORTUNUSD_EDGE_POLLER_EPOLL)
    portunus::unique_fd epoll_;
    boost::asio::posix::stream_descriptor epoll_waiter_; ///< a view of epoll_ in Asio's reactor
    bool armed_ = false;
#endif
    std::size_t waiting_ = 0; ///< waits held in slots (epoll only: Asio holds its own)
    std::mutex mutex_; ///< the loop's thread, and any thread that drops a registration
    std::vector<slot> slots_;
    std::vector<std::uint32_t> free_;
    bool stopped_ = false;
};

} // namespace portunusd
