// send_lines: the load generator for stream mode. Sends the data lines of a CSV file over N TCP
// connections, as fast as it can (throughput runs) or at a fixed rate (latency runs).
//
//   send_lines FILE --to HOST:PORT [--connections N] [--split interleaved|chunks] [--skip-header]
//              [--header-each] [--no-header] [--rate LINES_PER_S] [--repeat K]
//   send_lines FILE --kafka BROKERS --topic TOPIC [--message-bytes N] [--no-header]   (built with Kafka)
//
// The file's header line is never sent as data (--no-header: the file has none, as JSON lines); with --header-each every connection starts with
// it, for a server that binds columns by name. All N connections are open before the first byte
// goes out, so that a server waiting for N clients sees the load start on all of them at once.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <fmt/core.h>

#include "../common/cli.hpp"
#include "endpoint.hpp"
#if SLUICE_WITH_KAFKA
#include "kafka_produce.hpp"
#endif

namespace {

constexpr const char* usage =
    "usage: send_lines FILE --to HOST:PORT [--connections N] [--split interleaved|chunks]\n"
    "                  [--skip-header] [--header-each] [--no-header] [--rate LINES_PER_S] [--repeat K]\n"
    "  Sends the data lines of FILE (CSV with a header line) over N TCP connections.\n"
    "  --to HOST:PORT     the server; HOST is a name or an IPv4/IPv6 literal ([::1]:9000)\n"
    "  --connections N    connections, all open before any data is sent (default 1)\n"
    "  --split MODE       interleaved: line j goes to connection j % N (default)\n"
    "                     chunks: connection i sends the i-th contiguous 1/N of the lines\n"
    "  --skip-header      the default, accepted for clarity: the header is never sent as data\n"
    "  --header-each      every connection starts with the header line\n"
    "  --no-header        every line is data (a file without a header line, such as JSON lines)\n"
    "  --rate R           about R lines/s overall (default: as fast as possible)\n"
    "  --repeat K         send the data K times (default 1)\n"
    "  --kafka BROKERS    instead of TCP: produce the lines to a Kafka topic (--topic TOPIC), whole\n"
    "                     lines batched into messages of up to --message-bytes (default 65536),\n"
    "                     spread over the topic's partitions in turn (needs a build with Kafka)\n";

using clock_type = std::chrono::steady_clock;

// Big enough that a system call costs little per line, small enough that N connections take
// turns often.
constexpr std::size_t buffer_bytes = std::size_t{64} << 10U;
constexpr auto connect_patience = std::chrono::seconds(5);  // started right after the server
constexpr auto first_backoff = std::chrono::milliseconds(10);
constexpr auto last_backoff = std::chrono::milliseconds(200);

enum class split_mode { interleaved, chunks };

struct options {
  std::string file;
  tools::endpoint to;
  std::size_t connections = 1;
  split_mode split = split_mode::interleaved;
  bool header_each = false;
  bool no_header = false;  // every line is data
  std::uint64_t rate = 0;  // lines/s; 0: as fast as possible
  std::string kafka;       // --kafka BROKERS: produce to --topic instead of sending over TCP
  std::string topic;
  std::size_t message_bytes = buffer_bytes;
  std::uint64_t repeat = 1;
};

/// Ends the program with status 1, where a usage error ends it with status 2.
using failure = std::runtime_error;

std::string error_text(const std::string& what) {
  return what + ": " + std::strerror(errno);
}

std::string read_file(const std::string& path) {
  const std::unique_ptr<std::FILE, decltype(&std::fclose)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!file) {
    throw failure(error_text("cannot open " + path));
  }
  constexpr std::size_t step = std::size_t{1} << 20U;
  std::string text;
  for (std::size_t got = step; got == step;) {
    const std::size_t old = text.size();
    text.resize(old + step);
    got = std::fread(text.data() + old, 1, step, file.get());
    text.resize(old + got);
  }
  if (std::ferror(file.get()) != 0) {
    throw failure(error_text("cannot read " + path));
  }
  return text;
}

// ---- connections --------------------------------------------------------------------------

/// One TCP connection; send() blocks until the kernel has taken every byte.
class connection {
 public:
  connection(int fd, std::string name) : fd_(fd), name_(std::move(name)) {}
  connection(connection&& other) noexcept : fd_(std::exchange(other.fd_, -1)), name_(std::move(other.name_)) {}
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;
  connection& operator=(connection&&) = delete;
  ~connection() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }

  void send(std::string_view bytes) const {
    while (!bytes.empty()) {
      // MSG_NOSIGNAL: a server that hangs up is an error message and exit 1, not death by SIGPIPE.
      const ssize_t sent = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (sent < 0) {
        if (errno == EINTR) {
          continue;
        }
        throw failure(error_text(name_));
      }
      bytes.remove_prefix(static_cast<std::size_t>(sent));
    }
  }

  /// The server reads to end of file: shut down our side, then close.
  void finish() {
    if (::shutdown(fd_, SHUT_WR) != 0) {
      throw failure(error_text(name_));
    }
    if (::close(std::exchange(fd_, -1)) != 0) {
      throw failure(error_text(name_));
    }
  }

 private:
  int fd_;
  std::string name_;
};

/// A socket connected to the first address that accepts, retrying with backoff until
/// `deadline`: the server may not be listening yet.
int connect_before(const tools::address_list& addresses, const tools::endpoint& to, clock_type::time_point deadline) {
  auto backoff = std::chrono::duration_cast<clock_type::duration>(first_backoff);
  for (;;) {
    int last_error = 0;
    for (const addrinfo* a = addresses.get(); a != nullptr; a = a->ai_next) {
      const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
      if (fd < 0) {
        last_error = errno;
        continue;
      }
      if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
        return fd;
      }
      last_error = errno;
      ::close(fd);
    }
    if (clock_type::now() + backoff > deadline) {
      throw failure(fmt::format("cannot connect to {} within {} s: {}", to.text(), connect_patience.count(),
                                std::strerror(last_error)));
    }
    std::this_thread::sleep_for(backoff);
    backoff = std::min<clock_type::duration>(backoff * 2, last_backoff);
  }
}

std::vector<connection> open_connections(const options& o) {
  const auto addresses = tools::resolve(o.to, false);
  const auto deadline = clock_type::now() + connect_patience;
  std::vector<connection> out;
  out.reserve(o.connections);
  for (std::size_t i = 0; i < o.connections; ++i) {
    const int fd = connect_before(addresses, o.to, deadline);
    out.emplace_back(fd, fmt::format("connection {} to {}", i, o.to.text()));
    // Every write is a whole buffer, so Nagle's algorithm could only hold back the small paced
    // writes of --rate (until the previous one is acknowledged), adding latency.
    const int on = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
  }
  return out;
}

// ---- sending ------------------------------------------------------------------------------

/// How much one write may carry: up to 64 KiB of whole lines, and with --rate about 1 ms of one
/// connection's share, so that paced lines do not sit in a buffer.
struct write_limit {
  std::size_t bytes = buffer_bytes;
  std::uint64_t lines = std::numeric_limits<std::uint64_t>::max();
};

write_limit write_limit_for(const options& o) {
  if (o.rate == 0) {
    return {};
  }
  return {buffer_bytes, std::max<std::uint64_t>(1, o.rate / 1000 / o.connections)};
}

/// The connections and the totals; every write goes through here, held back to the rate.
class sender {
 public:
  sender(std::vector<connection> connections, std::uint64_t rate)
      : connections_(std::move(connections)), rate_(rate), start_(clock_type::now()) {}

  [[nodiscard]] std::size_t connections() const { return connections_.size(); }
  [[nodiscard]] std::uint64_t lines() const { return lines_; }
  [[nodiscard]] std::uint64_t bytes() const { return bytes_; }
  [[nodiscard]] double seconds() const { return std::chrono::duration<double>(clock_type::now() - start_).count(); }

  void send_header_on_each(std::string_view header) {
    for (const connection& c : connections_) {
      c.send(header);
      bytes_ += header.size();
    }
  }

  void send_lines(std::size_t to, std::string_view text, std::uint64_t lines) {
    if (rate_ != 0) {  // the lines sent so far are due at lines_ / rate_ seconds after the start
      std::this_thread::sleep_until(
          start_ + std::chrono::duration_cast<clock_type::duration>(
                       std::chrono::duration<double>(static_cast<double>(lines_) / static_cast<double>(rate_))));
    }
    connections_[to].send(text);
    lines_ += lines;
    bytes_ += text.size();
  }

  void finish() {
    for (connection& c : connections_) {
      c.finish();
    }
  }

 private:
  std::vector<connection> connections_;
  std::uint64_t rate_;
  clock_type::time_point start_;
  std::uint64_t lines_ = 0;
  std::uint64_t bytes_ = 0;
};

/// The whole lines at the start of `text` that fit one write (at least one line, however long),
/// and how many there are. Every line of `text` ends in '\n'.
std::pair<std::string_view, std::uint64_t> leading_lines(std::string_view text, write_limit limit) {
  std::size_t end = 0;
  std::uint64_t lines = 0;
  while (end < text.size() && lines < limit.lines) {
    const std::size_t next = text.find('\n', end) + 1;
    if (lines > 0 && next > limit.bytes) {
      break;
    }
    end = next;
    ++lines;
  }
  return {text.substr(0, end), lines};
}

/// chunks: connection i sends lines [i*L/N, (i+1)*L/N) straight from the file's text, the
/// connections taking turns one write each.
void send_chunks(sender& out, std::string_view data, std::uint64_t data_lines, write_limit limit) {
  const std::size_t n = out.connections();
  std::vector<std::string_view> rest(n);
  std::size_t begin = 0;
  std::size_t end = 0;
  std::uint64_t line = 0;
  for (std::size_t i = 0; i < n; ++i) {
    for (const std::uint64_t last = data_lines * (i + 1) / n; line < last; ++line) {
      end = data.find('\n', end) + 1;
    }
    rest[i] = data.substr(begin, end - begin);
    begin = end;
  }
  for (bool more = true; more;) {
    more = false;
    for (std::size_t i = 0; i < n; ++i) {
      if (rest[i].empty()) {
        continue;
      }
      const auto [text, lines] = leading_lines(rest[i], limit);
      out.send_lines(i, text, lines);
      rest[i].remove_prefix(text.size());
      more = more || !rest[i].empty();
    }
  }
}

/// interleaved: line j goes to connection j % N. Each connection's lines gather in its own
/// buffer, written when the next line would not fit; as the lines are dealt in turn, the buffers
/// fill, and the connections write, in turn too.
void send_interleaved(sender& out, std::string_view data, std::uint64_t repeat, write_limit limit) {
  struct pending {
    std::string text;
    std::uint64_t lines = 0;
  };
  std::vector<pending> buffers(out.connections());
  for (pending& b : buffers) {
    b.text.reserve(limit.bytes);
  }
  const auto write = [&](std::size_t to) {
    out.send_lines(to, buffers[to].text, buffers[to].lines);
    buffers[to].text.clear();
    buffers[to].lines = 0;
  };
  for (std::uint64_t pass = 0; pass < repeat; ++pass) {
    std::size_t to = 0;
    for (std::size_t begin = 0; begin < data.size();) {
      const std::size_t end = data.find('\n', begin) + 1;
      pending& b = buffers[to];
      if (b.lines > 0 && b.text.size() + (end - begin) > limit.bytes) {
        write(to);
      }
      b.text.append(data, begin, end - begin);
      if (++b.lines == limit.lines) {
        write(to);
      }
      to = to + 1 == buffers.size() ? 0 : to + 1;
      begin = end;
    }
  }
  for (std::size_t to = 0; to < buffers.size(); ++to) {
    if (buffers[to].lines > 0) {
      write(to);
    }
  }
}

// ---- command line -------------------------------------------------------------------------

std::uint64_t at_least_one(cli::args& args, std::string_view flag) {
  const std::string v = args.value();
  const std::uint64_t n = args.whole_number(v, flag);
  if (n == 0) {
    args.fail(std::string(flag) + " must be at least 1");
  }
  return n;
}

options parse_options(int argc, char** argv) {
  options o;
  bool have_to = false;
  std::vector<std::string> positional;
  cli::args args("send_lines", usage, argc, argv);
  while (args.next()) {
    const std::string_view a = args.current();
    if (a == "--to") {
      const std::string v = args.value();
      const auto to = tools::parse_endpoint(v);
      if (!to) {
        args.fail("--to must be HOST:PORT, not '" + v + "'");
      }
      o.to = *to;
      have_to = true;
    } else if (a == "--connections") {
      o.connections = static_cast<std::size_t>(at_least_one(args, "--connections"));
    } else if (a == "--split") {
      const std::string v = args.value();
      if (v != "interleaved" && v != "chunks") {
        args.fail("--split is interleaved or chunks, not '" + v + "'");
      }
      o.split = v == "chunks" ? split_mode::chunks : split_mode::interleaved;
    } else if (a == "--skip-header") {
      // nothing to do: the header is never sent as data
    } else if (a == "--header-each") {
      o.header_each = true;
    } else if (a == "--no-header") {
      o.no_header = true;
    } else if (a == "--rate") {
      o.rate = at_least_one(args, "--rate");
    } else if (a == "--repeat") {
      o.repeat = at_least_one(args, "--repeat");
    } else if (a == "--kafka") {
      o.kafka = args.value();
    } else if (a == "--topic") {
      o.topic = args.value();
    } else if (a == "--message-bytes") {
      o.message_bytes = static_cast<std::size_t>(at_least_one(args, "--message-bytes"));
    } else {
      args.take_positional(positional, 1);
    }
  }
  if (positional.size() != 1) {
    args.fail("expected FILE");
  }
  if (!o.kafka.empty()) {
#if !SLUICE_WITH_KAFKA
    args.fail("--kafka: this send_lines was built without Kafka (meson -Dkafka=enabled, librdkafka-dev)");
#endif
    if (o.topic.empty() || have_to) {
      args.fail("--kafka BROKERS takes --topic TOPIC and no --to");
    }
  } else if (!have_to) {
    args.fail("expected --to HOST:PORT");
  }
  o.file = positional[0];
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  const options o = parse_options(argc, argv);
  try {
    std::string text = read_file(o.file);
    if (text.empty()) {
      throw failure(o.file + " is empty: expected a header line");
    }
    if (text.back() != '\n') {
      text += '\n';  // so that the server counts the last line as one
    }
    const std::size_t header_end = o.no_header ? 0 : text.find('\n') + 1;
    const std::string_view header = std::string_view(text).substr(0, header_end);
    const std::string_view data = std::string_view(text).substr(header_end);
    const auto data_lines = static_cast<std::uint64_t>(std::count(data.begin(), data.end(), '\n'));
#if SLUICE_WITH_KAFKA
    if (!o.kafka.empty()) {
      const auto started = clock_type::now();
      const tools::produced p = tools::produce_lines(o.kafka, o.topic, data, o.message_bytes);
      const double seconds = std::chrono::duration<double>(clock_type::now() - started).count();
      std::fprintf(stderr, "send_lines: %llu lines in %llu messages to %s (%d partitions) in %.3f s\n",
                   static_cast<unsigned long long>(data_lines), static_cast<unsigned long long>(p.messages),
                   o.topic.c_str(), p.partitions, seconds);
      return 0;
    }
#endif
    const write_limit limit = write_limit_for(o);

    sender out(open_connections(o), o.rate);
    if (o.header_each) {
      out.send_header_on_each(header);
    }
    if (o.split == split_mode::chunks || o.connections == 1) {  // one connection: the same, without copying
      for (std::uint64_t pass = 0; pass < o.repeat; ++pass) {
        send_chunks(out, data, data_lines, limit);
      }
    } else {
      send_interleaved(out, data, o.repeat, limit);
    }
    out.finish();

    const double seconds = out.seconds();
    const double per_second = seconds > 0 ? 1 / seconds : 0;
    fmt::print(stderr, "send_lines: {} lines, {} bytes over {} connections in {:.3f} s ({:.0f} lines/s, {:.1f} MB/s)\n",
               out.lines(), out.bytes(), out.connections(), seconds, static_cast<double>(out.lines()) * per_second,
               static_cast<double>(out.bytes()) * per_second / 1e6);
    return 0;
  } catch (const std::exception& e) {
    fmt::print(stderr, "send_lines: {}\n", e.what());
    return 1;
  }
}
