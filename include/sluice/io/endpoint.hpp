// HOST:PORT strings for the socket sources: "127.0.0.1:9000", "[::1]:9000", "localhost:0".
#pragma once

#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>

#include "sluice/io/bad_record.hpp"

namespace sluice {

/// Parse HOST:PORT (HOST a name, an IPv4 literal, or an IPv6 literal in brackets). A name is
/// resolved now; the first address wins. Throws bad_input_error saying what is wrong.
template <class Protocol>
typename Protocol::endpoint parse_endpoint(std::string_view text) {
  const std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    throw bad_input_error("bad address '" + std::string(text) + "': expected HOST:PORT");
  }
  std::string_view host = text.substr(0, colon);
  const std::string_view port_text = text.substr(colon + 1);
  std::uint16_t port = 0;
  const auto [end, err] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (err != std::errc{} || end != port_text.data() + port_text.size() || port_text.empty()) {
    throw bad_input_error("bad port in '" + std::string(text) + "': expected 0..65535");
  }
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  boost::system::error_code ec;
  const auto address = boost::asio::ip::make_address(std::string(host), ec);
  if (!ec) {
    return {address, port};
  }
  boost::asio::io_context io;
  typename Protocol::resolver resolver(io);
  const auto results = resolver.resolve(std::string(host), std::to_string(port), ec);
  if (ec || results.empty()) {
    throw bad_input_error("cannot resolve '" + std::string(host) + "': " + (ec ? ec.message() : "no address"));
  }
  return results.begin()->endpoint();
}

/// "127.0.0.1:9000" or "[::1]:9000".
template <class Endpoint>
std::string format_endpoint(const Endpoint& ep) {
  const auto a = ep.address();
  return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(ep.port());
}

}  // namespace sluice
