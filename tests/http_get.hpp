// A tiny blocking HTTP/1.1 GET over loopback for end-to-end tests (POSIX sockets, no Boost, so
// that e2e_tests builds without it). Every wait is bounded by one deadline: a server that hangs
// fails the test with a message instead of hanging it.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

namespace e2e {

struct http_reply {
  int status = 0;       // from the status line
  std::string headers;  // the header lines as sent, each after its CRLF (the status line's, then theirs)
  std::string body;     // de-chunked if the server sent it chunked
};

namespace detail {

class http_socket {
 public:
  http_socket() : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) {
    if (fd_ < 0) {
      throw std::runtime_error(std::string("http_get: socket: ") + std::strerror(errno));
    }
  }
  http_socket(const http_socket&) = delete;
  http_socket& operator=(const http_socket&) = delete;
  ~http_socket() { ::close(fd_); }
  [[nodiscard]] int fd() const { return fd_; }

 private:
  int fd_;
};

/// Wait until `fd` is ready for `events` or the deadline passes (then throw, naming `what`).
inline void wait_ready(int fd, short events, std::chrono::steady_clock::time_point deadline, const std::string& what) {
  while (true) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      throw std::runtime_error("http_get: timed out " + what);
    }
    pollfd p{fd, events, 0};
    const int n = ::poll(&p, 1, static_cast<int>(left.count()));
    if (n > 0) {
      return;
    }
    if (n < 0 && errno != EINTR) {
      throw std::runtime_error("http_get: poll: " + std::string(std::strerror(errno)));
    }
  }
}

/// A chunked body (RFC 9112 section 7.1) without its framing; trailers are dropped.
inline std::string dechunk(const std::string& framed) {
  std::string out;
  std::size_t pos = 0;
  while (true) {
    const std::size_t eol = framed.find("\r\n", pos);
    if (eol == std::string::npos) {
      throw std::runtime_error("http_get: chunked body ends inside a chunk size line");
    }
    const std::size_t size = std::stoul(framed.substr(pos, eol - pos), nullptr, 16);
    if (size == 0) {
      return out;
    }
    if (eol + 2 + size > framed.size()) {
      throw std::runtime_error("http_get: chunked body ends inside a chunk");
    }
    out.append(framed, eol + 2, size);
    pos = eol + 2 + size + 2;
  }
}

inline bool has_header(const std::string& headers, const std::string& name, const std::string& value) {
  auto lower = [](std::string s) {
    for (char& c : s) {
      c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    }
    return s;
  };
  const std::string h = lower(headers);
  const std::size_t at = h.find("\r\n" + lower(name) + ":");
  return at != std::string::npos && h.find(lower(value), at) < h.find("\r\n", at + 2);
}

}  // namespace detail

/// GET `path` from 127.0.0.1:`port` with "Connection: close", reading until the server closes.
/// Throws std::runtime_error when it cannot connect, when `timeout` passes, or when the answer
/// is not an HTTP/1.x response.
inline http_reply http_get(int port, const std::string& path,
                           std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  const std::string where = "GET 127.0.0.1:" + std::to_string(port) + path;
  detail::http_socket s;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(s.fd(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    if (errno != EINPROGRESS) {
      throw std::runtime_error("http_get: " + where + ": connect: " + std::strerror(errno));
    }
    detail::wait_ready(s.fd(), POLLOUT, deadline, "connecting for " + where);
    int error = 0;
    socklen_t len = sizeof error;
    ::getsockopt(s.fd(), SOL_SOCKET, SO_ERROR, &error, &len);
    if (error != 0) {
      throw std::runtime_error("http_get: " + where + ": connect: " + std::strerror(error));
    }
  }

  const std::string request = "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  for (std::size_t sent = 0; sent < request.size();) {
    detail::wait_ready(s.fd(), POLLOUT, deadline, "sending " + where);
    const ssize_t n = ::send(s.fd(), request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN && errno != EINTR) {
      throw std::runtime_error("http_get: " + where + ": send: " + std::strerror(errno));
    }
    sent += n > 0 ? static_cast<std::size_t>(n) : 0;
  }

  std::string response;
  char buf[16384];
  while (true) {
    detail::wait_ready(s.fd(), POLLIN, deadline, "reading the answer to " + where);
    const ssize_t n = ::recv(s.fd(), buf, sizeof buf, 0);
    if (n == 0) {
      break;
    }
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) {
        continue;
      }
      throw std::runtime_error("http_get: " + where + ": recv: " + std::strerror(errno));
    }
    response.append(buf, static_cast<std::size_t>(n));
  }

  const std::size_t status_end = response.find("\r\n");
  const std::size_t head_end = response.find("\r\n\r\n");
  if (!response.starts_with("HTTP/1.") || status_end == std::string::npos || head_end == std::string::npos ||
      response.size() < 12) {
    throw std::runtime_error("http_get: " + where + ": not an HTTP response: '" + response.substr(0, 200) + "'");
  }
  http_reply reply;
  reply.status = std::stoi(response.substr(9, 3));
  reply.headers = response.substr(status_end, head_end + 2 - status_end);
  reply.body = response.substr(head_end + 4);
  if (detail::has_header(reply.headers, "Transfer-Encoding", "chunked")) {
    reply.body = detail::dechunk(reply.body);
  }
  return reply;
}

}  // namespace e2e
