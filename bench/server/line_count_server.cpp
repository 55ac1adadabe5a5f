// line_count_server: the ceiling for TCP ingest benchmarks, a server that only receives lines and
// counts them. The sluice stream runner reading the same connections is measured against it.
//
//   line_count_server [--listen HOST:PORT] [--connections N]
//
// Prints "listening on HOST:PORT" on stderr as soon as it listens (scripts read the port from it
// when they asked for port 0), accepts N connections, reads all of them at once until each one
// is closed, then prints lines,bytes,seconds on stdout: seconds from the first accepted
// connection to the last close.
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/core.h>

#include "../../examples/common/cli.hpp"
#include "../../examples/tools/endpoint.hpp"

namespace {

constexpr const char* usage =
    "usage: line_count_server [--listen HOST:PORT] [--connections N]\n"
    "  Receives N TCP connections, counts their bytes and lines, and prints lines,bytes,seconds.\n"
    "  --listen HOST:PORT  address to listen on (default 127.0.0.1:0, port 0: any free port);\n"
    "                      the address is printed on stderr as 'listening on HOST:PORT'\n"
    "  --connections N     connections to accept and read to the end (default 1)\n";

using clock_type = std::chrono::steady_clock;

constexpr std::size_t read_bytes = std::size_t{64} << 10U;  // as send_lines writes

using failure = std::runtime_error;

std::string error_text(const std::string& what) {
  return what + ": " + std::strerror(errno);
}

/// A file descriptor closed when it goes out of scope.
class owned_fd {
 public:
  explicit owned_fd(int fd) : fd_(fd) {}
  owned_fd(owned_fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  owned_fd(const owned_fd&) = delete;
  owned_fd& operator=(const owned_fd&) = delete;
  owned_fd& operator=(owned_fd&&) = delete;
  ~owned_fd() { reset(); }
  [[nodiscard]] int get() const { return fd_; }
  void reset() {
    if (fd_ >= 0) {
      ::close(std::exchange(fd_, -1));
    }
  }

 private:
  int fd_;
};

/// A non-blocking listening socket on the first address of `where` that binds.
owned_fd listen_on(const tools::endpoint& where) {
  const auto addresses = tools::resolve(where, true);
  std::string last_error = "no address";
  for (const addrinfo* a = addresses.get(); a != nullptr; a = a->ai_next) {
    owned_fd fd(::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol));
    if (fd.get() < 0) {
      last_error = std::strerror(errno);
      continue;
    }
    const int on = 1;  // a benchmark script may rerun on the same port while the last run's sockets linger
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (::bind(fd.get(), a->ai_addr, a->ai_addrlen) == 0 && ::listen(fd.get(), SOMAXCONN) == 0) {
      return fd;
    }
    last_error = std::strerror(errno);
  }
  throw failure("cannot listen on " + where.text() + ": " + last_error);
}

std::string local_address(int fd) {
  sockaddr_storage address{};
  socklen_t length = sizeof address;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    throw failure(error_text("getsockname"));
  }
  return tools::describe(reinterpret_cast<const sockaddr*>(&address), length);
}

// memchr per line rather than std::count: glibc's memchr is vectorised, while g++ -O3 turns the
// count into a byte loop that took four times the CPU on sales rows (about 63 bytes a line).
std::uint64_t count_lines(const char* begin, const char* end) {
  std::uint64_t lines = 0;
  while (const void* newline = std::memchr(begin, '\n', static_cast<std::size_t>(end - begin))) {
    ++lines;
    begin = static_cast<const char*>(newline) + 1;
  }
  return lines;
}

struct tally {
  std::uint64_t lines = 0;
  std::uint64_t bytes = 0;
  double seconds = 0;
  bool broken = false;  // a connection ended in an error rather than a close
};

/// Accepts `expected` connections and reads them all, as they become readable, until every one
/// has been closed by its sender.
tally receive(owned_fd listener, std::size_t expected) {
  const owned_fd poller(::epoll_create1(EPOLL_CLOEXEC));
  if (poller.get() < 0) {
    throw failure(error_text("epoll_create1"));
  }
  const auto watch = [&](int fd) {
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.fd = fd;
    if (::epoll_ctl(poller.get(), EPOLL_CTL_ADD, fd, &event) != 0) {
      throw failure(error_text("epoll_ctl"));
    }
  };
  watch(listener.get());

  tally out;
  std::size_t accepted = 0;
  std::size_t closed = 0;
  clock_type::time_point first_accept;
  clock_type::time_point last_close;
  const auto accept_waiting = [&] {
    while (accepted < expected) {
      const int fd = ::accept4(listener.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          return;
        }
        if (errno == EINTR || errno == ECONNABORTED) {  // a client that gave up before we accepted
          continue;
        }
        throw failure(error_text("accept"));
      }
      if (accepted++ == 0) {
        first_accept = clock_type::now();
      }
      watch(fd);
    }
    listener.reset();  // all N are here: later clients are refused rather than left waiting
  };

  std::vector<char> buffer(read_bytes);
  std::array<epoll_event, 64> events{};
  while (closed < expected) {
    const int ready = ::epoll_wait(poller.get(), events.data(), static_cast<int>(events.size()), -1);
    if (ready < 0) {
      if (errno == EINTR) {
        continue;
      }
      throw failure(error_text("epoll_wait"));
    }
    for (int k = 0; k < ready; ++k) {
      const int fd = events[static_cast<std::size_t>(k)].data.fd;
      if (fd == listener.get()) {
        accept_waiting();
        continue;
      }
      // One read per readiness: every readable connection gets its turn before any gets another.
      const ssize_t got = ::read(fd, buffer.data(), buffer.size());
      if (got > 0) {
        out.bytes += static_cast<std::uint64_t>(got);
        out.lines += count_lines(buffer.data(), buffer.data() + got);
        continue;
      }
      if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        continue;
      }
      if (got < 0) {
        fmt::print(stderr, "line_count_server: {} (its lines so far are counted)\n", error_text("read from a client"));
        out.broken = true;
      }
      ::close(fd);
      ++closed;
      last_close = clock_type::now();
    }
  }
  out.seconds = std::chrono::duration<double>(last_close - first_accept).count();
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  tools::endpoint where{"127.0.0.1", "0"};
  std::size_t connections = 1;
  cli::args args("line_count_server", usage, argc, argv);
  while (args.next()) {
    const std::string_view a = args.current();
    if (a == "--listen") {
      const std::string v = args.value();
      const auto parsed = tools::parse_endpoint(v);
      if (!parsed) {
        args.fail("--listen must be HOST:PORT, not '" + v + "'");
      }
      where = *parsed;
    } else if (a == "--connections") {
      const std::string v = args.value();
      connections = static_cast<std::size_t>(args.whole_number(v, "--connections"));
      if (connections == 0) {
        args.fail("--connections must be at least 1");
      }
    } else {
      args.unexpected();
    }
  }
  try {
    owned_fd listener = listen_on(where);
    fmt::print(stderr, "listening on {}\n", local_address(listener.get()));
    std::fflush(stderr);
    const tally t = receive(std::move(listener), connections);
    fmt::print("{},{},{:.6f}\n", t.lines, t.bytes, t.seconds);
    return t.broken ? 1 : 0;
  } catch (const std::exception& e) {
    fmt::print(stderr, "line_count_server: {}\n", e.what());
    return 1;
  }
}
