// SPDX-License-Identifier: MPL-2.0
// Addresses and endpoints as logs show them: IPv6 in brackets, so the port stays readable.
#pragma once

#include <boost/asio/ip/address.hpp>

#include <string>

namespace portunusd {

inline std::string address_text(const boost::asio::ip::address& a)
{
    return a.is_v6() ? "[" + a.to_string() + "]" : a.to_string();
}

template <typename Endpoint>
std::string endpoint_text(const Endpoint& ep)
{
    return address_text(ep.address()) + ":" + std::to_string(ep.port());
}

} // namespace portunusd
