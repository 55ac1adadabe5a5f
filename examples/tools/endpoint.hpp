// HOST:PORT endpoints for the TCP tools (send_lines, line_count_server): parsing the argument,
// resolving it with getaddrinfo, and printing a socket address back in the same form.
#pragma once

#include <netdb.h>
#include <sys/socket.h>

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace tools {

struct endpoint {
  std::string host;  // a name or an IPv4/IPv6 literal, without brackets
  std::string port;  // digits, 0 to 65535

  /// The form it was given in; IPv6 literals are bracketed so that the port stays unambiguous.
  [[nodiscard]] std::string text() const {
    return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + port;
  }
};

/// "HOST:PORT", "[IPv6]:PORT" or "IPv6:PORT" (the last colon separates the port); nullopt when malformed.
inline std::optional<endpoint> parse_endpoint(std::string_view text) {
  const std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    return std::nullopt;
  }
  std::string_view host = text.substr(0, colon);
  const std::string_view port = text.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty() || port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string_view::npos || std::stoul(std::string(port)) > 65535) {
    return std::nullopt;
  }
  return endpoint{std::string(host), std::string(port)};
}

/// The addresses of an endpoint, in getaddrinfo's order of preference.
using address_list = std::unique_ptr<addrinfo, decltype(&freeaddrinfo)>;

/// Resolve for a TCP client, or with `passive` for a listening socket. Throws naming the endpoint.
inline address_list resolve(const endpoint& where, bool passive) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  // No AI_ADDRCONFIG: on a host whose only interface is loopback it hides "localhost" itself.
  hints.ai_flags = passive ? AI_PASSIVE : 0;
  addrinfo* list = nullptr;
  if (const int rc = getaddrinfo(where.host.c_str(), where.port.c_str(), &hints, &list); rc != 0) {
    throw std::runtime_error("cannot resolve " + where.text() + ": " + gai_strerror(rc));
  }
  return {list, &freeaddrinfo};
}

/// A numeric HOST:PORT for a socket address, e.g. to report the port the kernel chose for port 0.
inline std::string describe(const sockaddr* address, socklen_t length) {
  char host[NI_MAXHOST];
  char port[NI_MAXSERV];
  if (getnameinfo(address, length, host, sizeof host, port, sizeof port, NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
    return "?";
  }
  return endpoint{host, port}.text();
}

}  // namespace tools
