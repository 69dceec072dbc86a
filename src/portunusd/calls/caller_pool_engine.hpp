// SPDX-License-Identifier: MPL-2.0
// caller_pool_engine: door calls made by blocking on caller-pool threads, on every backend.
#pragma once

#include "portunusd/calls/call_engine.hpp"
#include "portunusd/calls/caller_pool.hpp"

namespace portunusd {

class door_gate;

/// Makes each call with door_client::call() on a caller-pool thread: the only engine on
/// illumos, whose door_call(3C) blocks, and on userland doors the one that opens doors, waits
/// for a full accept queue and retries after EBADF. Its completions run on the pool thread.
class caller_pool_engine final : public call_engine {
public:
    caller_pool_engine(door_gate& gate, caller_pool& pool) : gate_(gate), pool_(pool) {}
    /// Always takes the call.
    bool start(call_job& j) override;

private:
    /// `reached` is set once a door was open: an EBADF before that is a door that failed to
    /// open, which a retry would only open again.
    call_outcome call(const call_job& j, std::uint64_t& generation, bool& reached);

    door_gate& gate_;
    caller_pool& pool_;
};

} // namespace portunusd
