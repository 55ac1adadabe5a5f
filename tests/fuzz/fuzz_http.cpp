// Fuzz target: the HTTP request path of the server (sluice/serve/http_server.hpp), through its
// public API only: one http_server with an http_router on 127.0.0.1 (a free port) for the whole
// run; each input is written raw to a fresh connection, our side is shut for writing, and the
// answer is read until the server closes. The server must answer (or close) within seconds,
// every answer must be an HTTP/1.x status line with a status the server documents, and it must
// go on serving: every 64th input is followed by a plain GET that must get its 200. (The
// server's own thread runs the requests, so coverage varies a little between runs.)
//
// Input: the bytes a client sends (one request, several pipelined, or garbage).
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include "fuzz_support.hpp"
#include "sluice/serve/http_server.hpp"

namespace {

sluice::http_router routes() {
  sluice::http_router r;
  r.add("/health", [](const sluice::http_request&) { return sluice::http_response::text(200, "ok"); });
  r.add("/echo", [](const sluice::http_request& q) {
    std::string body = q.method + ' ' + q.path;
    for (const auto& [k, v] : q.params) {
      body += '\n' + k + '=' + v;
    }
    return sluice::http_response::csv(body);
  });
  // A handler's own status and content type, which the server must check before sending.
  r.add("/status", [](const sluice::http_request& q) {
    sluice::http_response res = sluice::http_response::json("{}");
    res.status = static_cast<unsigned>(std::stoul(std::string(q.param("code").value_or("200"))));
    res.content_type = std::string(q.param("type").value_or("application/json"));
    return res;
  });
  r.add("/fail", [](const sluice::http_request& q) -> sluice::http_response {
    throw sluice::http_error(static_cast<unsigned>(std::stoul(std::string(q.param("code").value_or("400")))),
                             std::string(q.param("why").value_or("bad parameter")));
  });
  r.add("/boom", [](const sluice::http_request&) -> sluice::http_response { throw std::runtime_error("boom"); });
  return r;
}

sluice::http_server& server() {
  static sluice::http_server s = [] {
    sluice::http_options opts;
    opts.max_request_bytes = 1024;  // inputs over it reach the 431 path
    opts.idle_timeout = std::chrono::milliseconds(3000);
    return sluice::http_server(routes(), opts);
  }();
  return s;
}

/// A connected socket. Our side shuts first (so that the server sees where the input ends), so
/// each connection leaves a socket in TIME_WAIT for a minute: the connections come from
/// 127.0.0.1-127.0.0.250 in turn, so as not to run out of local ports at a thousand inputs a
/// second. A connect that still fails for want of a port is retried; any other failure (the
/// server no longer listening) fails the run.
int connect_to(std::uint16_t port) {
  static std::uint32_t connections = 0;
  sockaddr_in local{};
  local.sin_family = AF_INET;
  local.sin_addr.s_addr = htonl(INADDR_LOOPBACK + connections++ % 250);
  sockaddr_in server{};
  server.sin_family = AF_INET;
  server.sin_port = htons(port);
  server.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (int attempt = 0;; ++attempt) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    FUZZ_CHECK(fd >= 0);
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&local), sizeof local) == 0 &&
        ::connect(fd, reinterpret_cast<const sockaddr*>(&server), sizeof server) == 0) {
      return fd;
    }
    const int err = errno;
    ::close(fd);
    if ((err != EADDRNOTAVAIL && err != EADDRINUSE && err != EAGAIN && err != EINTR) || attempt == 500) {
      std::fprintf(stderr, "connect to the server: %s (attempt %d)\n", std::strerror(err), attempt + 1);
      FUZZ_CHECK(!"the server accepts connections");
    }
    ::usleep(10000);
  }
}

/// Sends `request` on a fresh connection, shuts our side for writing, and returns everything
/// the server sends until it closes. Fails the run if the server neither answers nor closes.
std::string exchange(std::uint16_t port, std::string_view request) {
  const int fd = connect_to(port);
  std::size_t sent = 0;
  while (sent < request.size()) {
    const ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) {
      break;  // the server answered early (431, 400) and closed: fine
    }
    sent += static_cast<std::size_t>(n);
  }
  ::shutdown(fd, SHUT_WR);
  std::string answer;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    FUZZ_CHECK(left > 0);  // the server neither answered nor closed
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) {
      continue;
    }
    char buf[4096];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      break;  // closed (or reset after an error answer)
    }
    answer.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return answer;
}

/// An answer starts with "HTTP/1.x NNN " (NNN in 200-599: the server turns a handler's other
/// statuses into 500) and has a whole header.
void check_answer(std::string_view answer) {
  if (answer.empty()) {
    return;  // nothing that looked like a request: closed without an answer
  }
  FUZZ_CHECK(answer.starts_with("HTTP/1.1 ") || answer.starts_with("HTTP/1.0 "));
  FUZZ_CHECK(answer.size() > 13 && answer[12] == ' ');
  unsigned code = 0;
  for (const char c : answer.substr(9, 3)) {
    FUZZ_CHECK(c >= '0' && c <= '9');
    code = code * 10 + static_cast<unsigned>(c - '0');
  }
  FUZZ_CHECK(code >= 200 && code <= 599);
  FUZZ_CHECK(answer.find("\r\n\r\n") != std::string_view::npos);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static unsigned long long run = 0;
  const std::uint16_t port = server().port();
  check_answer(exchange(port, std::string_view(reinterpret_cast<const char*>(data), size)));
  if (++run % 64 == 0) {
    const std::string ok = exchange(port, "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    FUZZ_CHECK(ok.starts_with("HTTP/1.1 200 "));
  }
  return 0;
}
