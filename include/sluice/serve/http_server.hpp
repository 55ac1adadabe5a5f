// http_server: a small read-only HTTP/1.1 server (Boost.Beast, one I/O thread) for query answers
// and status pages, and http_router, which maps exact paths to handlers.
//
//   sluice::http_router routes;
//   routes.add("/by-category", [&](const sluice::http_request& r) { return sluice::http_response::csv(...); });
//   sluice::http_server server(routes);  // 127.0.0.1 and a free port: server.port()
//
// (The server keeps a copy of the router: add routes first, or pass std::ref(routes).)
//
// Read-only by construction: GET and HEAD only (405 with "Allow: GET, HEAD" otherwise), and a
// request with a body gets 400. A malformed request gets 400, a request line + headers over
// max_request_bytes 431; both close the connection. HTTP/1.1 connections are kept alive (and
// pipelined requests answered in order) unless the client says "Connection: close"; HTTP/1.0
// ones are closed after the response unless the client asks for keep-alive.
//
// Many clients, idle or slow: a monitoring server must keep answering while thousands of
// connections sit idle, so
// - an idle connection (accepted or kept alive, waiting for a request) is cheap: a socket and
//   about 1 KiB, no buffer, parser or response (those exist from a request's first byte until its
//   answer is written); it is closed after idle_timeout;
// - at max_connections (10000 by default) a new client closes the longest-idle connection and
//   takes its place; only when none is idle (every one mid-request) it gets 503 and is closed;
// - a request's line and headers must arrive within header_timeout of its first byte: a client
//   trickling header bytes (slowloris) is cut then, whatever idle_timeout says;
// - out of file descriptors (EMFILE, ENFILE), the accept loop closes the longest-idle connection
//   to admit the waiting client, or with none idle pauses 50 ms: it neither spins nor stops.
// Descriptors: if max_connections + 256 do not fit under the process's soft RLIMIT_NOFILE, the
// constructor raises that soft limit (as far as the hard limit allows: a process-wide change,
// inherited by child processes); if they still do not fit, it serves fewer connections, leaving
// min(256, a quarter of the limit) to the rest of the process. max_connections() says how many.
//
// Threading: the handler runs on the server's own thread, one request at a time (connections
// are interleaved between requests, never during one). It is never called concurrently with
// itself, but it is called concurrently with the host's other threads, so what it reads must be
// safe to read from another thread (an engine snapshot, an atomic, a mutex).
//
// Performance notes: one thread serves every connection; a slow handler delays all of them.
// Per request: one parse into a buffer reused across a connection's pipelined requests, one
// handler call, one write of header + body; an idle timeout costs no timer per connection (one
// timer watches the longest-idle one).
#pragma once

#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange

#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <unordered_set>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/intrusive/list.hpp>

#include "sluice/io/bad_record.hpp"
#include "sluice/io/endpoint.hpp"

namespace sluice {

/// A request as a handler sees it: already checked to be a GET or HEAD without a body.
struct http_request {
  std::string method;  // "GET", "HEAD"
  std::string path;    // percent-decoded path without the query: "/by-category"
  std::vector<std::pair<std::string, std::string>>
      params;  // percent-decoded query parameters in order ('+' is a space)

  /// The value of the first parameter named `name`.
  [[nodiscard]] std::optional<std::string_view> param(std::string_view name) const {
    for (const auto& [key, value] : params) {
      if (key == name) {
        return std::string_view(value);
      }
    }
    return std::nullopt;
  }
};

/// What a handler answers. For HEAD the server sends the headers (Content-Length included) only.
struct http_response {
  unsigned status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;

  /// A short plain-text message, newline-terminated.
  static http_response text(unsigned status, std::string message) {
    if (message.empty() || message.back() != '\n') {
      message += '\n';
    }
    return {status, "text/plain; charset=utf-8", std::move(message)};
  }
  static http_response csv(std::string body) { return {200, "text/csv; charset=utf-8", std::move(body)}; }
  static http_response json(std::string body) { return {200, "application/json", std::move(body)}; }
};

using http_handler = std::function<http_response(const http_request&)>;

/// Thrown by a handler to answer with `status` and `msg` as a plain-text message (400 for a bad
/// parameter, say).
class http_error : public std::runtime_error {
 public:
  http_error(unsigned status, const std::string& msg) : std::runtime_error(msg), status_(status) {}
  [[nodiscard]] unsigned status() const noexcept { return status_; }

 private:
  unsigned status_;
};

namespace detail {

inline std::string_view std_view(boost::beast::string_view s) {
  return {s.data(), s.size()};
}

inline int hex_value(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

/// `s` with %XX escapes decoded (and '+' as a space in a query); nullopt for a '%' not followed
/// by two hex digits.
inline std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%') {
      const int hi = i + 2 < s.size() ? hex_value(s[i + 1]) : -1;
      const int lo = i + 2 < s.size() ? hex_value(s[i + 2]) : -1;
      if (hi < 0 || lo < 0) {
        return std::nullopt;
      }
      out += static_cast<char>((hi << 4U) | lo);
      i += 2;
    } else if (s[i] == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += s[i];
    }
  }
  return out;
}

/// Client text quoted in a message: clipped, control bytes shown as '?'.
inline std::string printable(std::string_view s, std::size_t max_bytes = 200) {
  std::string out(s.substr(0, max_bytes));
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      c = '?';
    }
  }
  if (s.size() > max_bytes) {
    out += "...";
  }
  return out;
}

/// The answer for the exception in flight (call in a catch block).
inline http_response response_for_current_exception() {
  try {
    throw;
  } catch (const http_error& e) {
    return http_response::text(e.status(), e.what());
  } catch (const std::exception& e) {
    return http_response::text(500, std::string("internal error: ") + e.what());
  } catch (...) {
    return http_response::text(500, "internal error: unknown exception");
  }
}

/// Fills `into.path` and `into.params` from a request target in origin form ("/p?a=1") or
/// absolute form ("http://host/p?a=1"). Throws http_error(400) saying what is wrong.
inline void parse_target(std::string_view target, http_request& into) {
  if (const std::size_t scheme_end = target.find("://");
      !target.empty() && target.front() != '/' && scheme_end != std::string_view::npos) {
    const std::size_t path_start = target.find_first_of("/?", scheme_end + 3);
    target = path_start == std::string_view::npos ? std::string_view("/") : target.substr(path_start);
  }
  if (target.empty() || (target.front() != '/' && target.front() != '?')) {
    throw http_error(400, "bad request target: " + printable(target) + " (expected /PATH?QUERY)");
  }
  target = target.substr(0, target.find('#'));
  const std::size_t question = target.find('?');
  const std::string_view raw_path = target.substr(0, question);
  auto path = percent_decode(raw_path.empty() ? std::string_view("/") : raw_path, false);
  if (!path) {
    throw http_error(400, "bad percent-encoding in the path: " + printable(raw_path));
  }
  into.path = std::move(*path);
  into.params.clear();
  std::string_view query = question == std::string_view::npos ? std::string_view() : target.substr(question + 1);
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view field = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (field.empty()) {
      continue;  // "a=1&&b=2", a trailing '&'
    }
    const std::size_t eq = field.find('=');
    auto name = percent_decode(field.substr(0, eq), true);
    auto value = percent_decode(eq == std::string_view::npos ? std::string_view() : field.substr(eq + 1), true);
    if (!name || !value) {
      throw http_error(400, "bad percent-encoding in the query: " + printable(field));
    }
    into.params.emplace_back(std::move(*name), std::move(*value));
  }
}

/// How many of `wanted` connections fit under the process's descriptor limit, after raising the
/// soft RLIMIT_NOFILE toward the hard one if they do not (see the top comment).
inline std::size_t connections_within_fd_limit(std::size_t wanted) {
  constexpr rlim_t headroom = 256;  // for the rest of the process: its files, log, other sockets
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) {
    return wanted;
  }
  const rlim_t needed = wanted < RLIM_INFINITY - headroom ? static_cast<rlim_t>(wanted) + headroom : RLIM_INFINITY - 1;
  if (limit.rlim_cur < needed) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max == RLIM_INFINITY ? needed : std::min(needed, limit.rlim_max);
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) {
      limit = raised;
    }
  }
  const rlim_t left = limit.rlim_cur - std::min(headroom, limit.rlim_cur / 4);
  return static_cast<std::size_t>(std::clamp<rlim_t>(left, 1, static_cast<rlim_t>(wanted)));
}

}  // namespace detail

/// Routes by exact path. An unknown path gets 404 "no such path: /x (try /a, /b)"; a handler
/// that throws http_error(status, message) answers that status with the message, any other
/// exception 500 "internal error: what()". Paths are listed in the order they were added.
class http_router {
 public:
  /// Serve `path` ("/by-category") with `handler`; a path added again gets the new handler.
  http_router& add(std::string path, http_handler handler) {
    if (path.empty() || path.front() != '/') {
      throw std::invalid_argument("http_router: path '" + path + "' must start with '/'");
    }
    if (!handler) {
      throw std::invalid_argument("http_router: empty handler for '" + path + "'");
    }
    for (auto& [known, known_handler] : routes_) {
      if (known == path) {
        known_handler = std::move(handler);
        return *this;
      }
    }
    routes_.emplace_back(std::move(path), std::move(handler));
    return *this;
  }

  http_response operator()(const http_request& request) const {
    for (const auto& [path, handler] : routes_) {
      if (path == request.path) {
        try {
          return handler(request);
        } catch (...) {
          return detail::response_for_current_exception();
        }
      }
    }
    std::string message = "no such path: " + detail::printable(request.path) + " (";
    if (routes_.empty()) {
      message += "no paths are served)";
    } else {
      message += "try ";
      for (std::size_t i = 0; i < routes_.size(); ++i) {
        message += (i == 0 ? "" : ", ") + routes_[i].first;
      }
      message += ')';
    }
    return http_response::text(404, std::move(message));
  }

 private:
  std::vector<std::pair<std::string, http_handler>> routes_;
};

struct http_options {
  std::string listen = "127.0.0.1:0";               // HOST:PORT; loopback by default; port 0: any free port
  std::size_t max_connections = 10000;              // at the limit a new client replaces the longest-idle
                                                    // connection (503 if none is idle); lowered if the
                                                    // descriptor limit is too low (see the top comment)
  std::size_t max_request_bytes = 8192;             // request line + headers; beyond: 431, connection closed
  std::chrono::milliseconds idle_timeout{30000};    // a connection waiting this long for a request is
                                                    // closed (also: a client this long reading a response)
  std::chrono::milliseconds header_timeout{10000};  // from a request's first byte to the end of its
                                                    // headers; a slower client is closed
};

/// Serves `handler` on its own thread (an io_context) from construction until stop()/destruction.
class http_server {
 public:
  /// Binds and listens now: port() is known when the constructor returns. Throws
  /// std::invalid_argument for a bad listen address or option, std::system_error if the address
  /// cannot be bound (in use, not local).
  explicit http_server(http_handler handler, http_options opts = {})
      : handler_(std::move(handler)), opts_(std::move(opts)), acceptor_(io_), accept_retry_(io_), idle_sweep_(io_) {
    namespace ip = boost::asio::ip;
    if (!handler_) {
      throw std::invalid_argument("http_server: empty handler");
    }
    if (opts_.max_connections == 0 || opts_.max_request_bytes == 0 || opts_.idle_timeout.count() <= 0 ||
        opts_.header_timeout.count() <= 0) {
      throw std::invalid_argument(
          "http_server: max_connections, max_request_bytes, idle_timeout and header_timeout must be > 0");
    }
    ip::tcp::endpoint ep;
    try {
      ep = parse_endpoint<ip::tcp>(opts_.listen);
    } catch (const bad_input_error& e) {
      throw std::invalid_argument(std::string("http_server: ") + e.what());
    }
    boost::system::error_code ec;
    acceptor_.open(ep.protocol(), ec);
    if (!ec) {
      acceptor_.set_option(ip::tcp::acceptor::reuse_address(true), ec);
    }
    if (!ec) {
      acceptor_.bind(ep, ec);
    }
    if (!ec) {
      acceptor_.listen(boost::asio::socket_base::max_listen_connections, ec);
    }
    if (ec) {
      throw std::system_error(ec, "http_server: cannot listen on " + opts_.listen);
    }
    const ip::tcp::endpoint local = acceptor_.local_endpoint();
    port_ = local.port();
    local_endpoint_ = format_endpoint(local);
    max_connections_ = detail::connections_within_fd_limit(opts_.max_connections);
    accept();
    thread_ = std::thread([this] { serve(); });
  }

  http_server(const http_server&) = delete;
  http_server& operator=(const http_server&) = delete;

  ~http_server() { stop(); }

  /// Stop accepting, close every connection (idle keep-alive ones too, and one in the middle of
  /// a request once its handler returns), join the thread. Idempotent; safe from any thread.
  /// Called from a handler it only starts the shutdown (the destructor joins).
  void stop() {
    const std::lock_guard lock(stop_mutex_);
    if (!thread_.joinable()) {
      return;
    }
    boost::asio::post(io_, [this] { shut_down(); });
    if (std::this_thread::get_id() != thread_.get_id()) {
      thread_.join();
    }
  }

  [[nodiscard]] std::uint16_t port() const { return port_; }
  [[nodiscard]] std::string local_endpoint() const { return local_endpoint_; }  // "127.0.0.1:PORT"
  /// Responses sent so far, of every status (the 400s for malformed requests too).
  [[nodiscard]] std::uint64_t requests_served() const { return served_.load(); }
  /// Connections served at once: opts.max_connections, or fewer under a low descriptor limit.
  [[nodiscard]] std::size_t max_connections() const { return max_connections_; }

 private:
  /// What a request needs while it is read and answered. Idle connections hold none, so that
  /// thousands of them cost little.
  struct exchange {
    explicit exchange(std::size_t max_request_bytes) : buffer(max_request_bytes) {}
    boost::beast::flat_buffer buffer;  // its limit bounds the request line + headers; may hold the
                                       // next pipelined request
    std::optional<boost::beast::http::request_parser<boost::beast::http::empty_body>> parser;
    boost::beast::http::response<boost::beast::http::string_body> response;
  };

  using idle_hook = boost::intrusive::list_member_hook<boost::intrusive::link_mode<boost::intrusive::auto_unlink>>;

  struct connection : std::enable_shared_from_this<connection> {
    explicit connection(boost::asio::ip::tcp::socket&& socket) : stream(std::move(socket)) {}
    boost::beast::tcp_stream stream;
    std::unique_ptr<exchange> busy;  // from a request's first byte until the wait for the next one
    idle_hook idle;                  // in idle_ while waiting for a request
    std::chrono::steady_clock::time_point idle_since;
    bool rejected = false;  // over max_connections: answered 503 and closed
  };
  using connection_ptr = std::shared_ptr<connection>;
  // Longest-idle first: connections join at the back when they start waiting for a request.
  using idle_list =
      boost::intrusive::list<connection, boost::intrusive::member_hook<connection, idle_hook, &connection::idle>,
                             boost::intrusive::constant_time_size<false>>;

  void serve() {
    for (;;) {
      try {
        io_.run();
        return;
      } catch (...) {
        // Only an allocation failure gets here: one connection is lost, the server goes on.
      }
    }
  }

  void accept() {
    acceptor_.async_accept(io_, [this](const boost::system::error_code& ec, boost::asio::ip::tcp::socket socket) {
      if (stopping_ || ec == boost::asio::error::operation_aborted) {
        return;
      }
      if (ec) {
        // Out of file descriptors, the client waits in the backlog: closing the longest-idle
        // connection frees one for it.
        if ((ec == boost::asio::error::no_descriptors || ec == boost::system::errc::too_many_files_open_in_system) &&
            close_longest_idle()) {
          accept();
          return;
        }
        // None idle, or a client that reset before the accept: try again, not in a busy loop.
        accept_retry_.expires_after(std::chrono::milliseconds(50));
        accept_retry_.async_wait([this](const boost::system::error_code& wait_ec) {
          if (!wait_ec && !stopping_) {
            accept();
          }
        });
        return;
      }
      try {
        open(std::move(socket));
      } catch (const std::bad_alloc&) {
        // Out of memory for this client: it is dropped (its socket closes), the server goes on
        // accepting; an exception out of this handler would leave no accept pending.
      }
      accept();
    });
  }

  void open(boost::asio::ip::tcp::socket socket) {
    boost::system::error_code ignored;
    socket.set_option(boost::asio::ip::tcp::no_delay(true), ignored);
    if (open_.size() - rejecting_ >= max_connections_) {
      close_longest_idle();  // a client about to ask comes before one with nothing to ask
    }
    const std::size_t serving = open_.size() - rejecting_;
    if (serving >= max_connections_ && rejecting_ >= max_connections_) {
      socket.close(ignored);  // a flood: not even a 503
      return;
    }
    auto conn = std::make_shared<connection>(std::move(socket));
    open_.insert(conn);
    if (serving >= max_connections_) {
      conn->rejected = true;
      ++rejecting_;
      send(conn, http_response::text(503, "too many connections; try again later"), 11, false, false);
      return;
    }
    wait_for_request(conn);
  }

  exchange& exchange_of(const connection_ptr& conn) {
    if (!conn->busy) {
      conn->busy = std::make_unique<exchange>(opts_.max_request_bytes);
    }
    return *conn->busy;
  }

  /// Reads the next request at once if it is already buffered (pipelined); otherwise waits idle,
  /// holding no buffer, parser or response, until its first byte arrives.
  void wait_for_request(const connection_ptr& conn) {
    if (conn->busy && conn->busy->buffer.size() > 0) {
      read_request(conn);
      return;
    }
    conn->busy.reset();
    conn->idle_since = std::chrono::steady_clock::now();
    idle_.push_back(*conn);
    watch_idle();
    conn->stream.socket().async_wait(boost::asio::ip::tcp::socket::wait_read,
                                     [this, conn](const boost::system::error_code& ec) {
                                       conn->idle.unlink();
                                       if (ec || stopping_) {
                                         close(conn);  // closed as the longest idle, or stopping
                                         return;
                                       }
                                       try {
                                         read_request(conn);
                                       } catch (...) {
                                         close(conn);  // out of memory: lose this connection, not the server
                                       }
                                     });
  }

  void read_request(const connection_ptr& conn) {
    namespace http = boost::beast::http;
    exchange& ex = exchange_of(conn);
    auto& parser = ex.parser.emplace();
    parser.header_limit(static_cast<std::uint32_t>(
        std::min<std::size_t>(opts_.max_request_bytes, std::numeric_limits<std::uint32_t>::max())));
    // A body is refused after the header, with its own message. (Not boost::none: Beast 1.74
    // compares the length with the optional limit, and any length is "greater" than none.)
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    // One deadline for the whole header, not per read: a client trickling bytes is cut too.
    conn->stream.expires_after(opts_.header_timeout);
    http::async_read_header(conn->stream, ex.buffer, parser,
                            [this, conn](const boost::system::error_code& ec, std::size_t /*bytes*/) {
                              try {
                                on_request(conn, ec);
                              } catch (...) {
                                close(conn);  // out of memory: lose this connection, not the server
                              }
                            });
  }

  void on_request(const connection_ptr& conn, const boost::system::error_code& ec) {
    namespace http = boost::beast::http;
    if (stopping_) {
      close(conn);
      return;
    }
    if (ec) {
      if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
        send(conn,
             http_response::text(
                 431, "request header too large (limit: " + std::to_string(opts_.max_request_bytes) + " bytes)"),
             11, false, false);
      } else if (ec.category() == http::make_error_code(http::error::end_of_stream).category() &&
                 ec != http::error::end_of_stream) {
        send(conn, http_response::text(400, "malformed request: " + ec.message()), 11, false, false);
      } else {
        close(conn);  // the client closed or reset, or was slower than header_timeout
      }
      return;
    }
    const auto& parser = *conn->busy->parser;
    const auto& message = parser.get();
    const unsigned version = message.version();  // 10 or 11: Beast refuses others (400 bad version)
    // After the header the parser is done unless a body follows (Content-Length > 0, chunked).
    const bool has_body = !parser.is_done();
    const bool keep_alive = message.keep_alive() && !has_body;
    const bool head = message.method() == http::verb::head;
    if (message.method() != http::verb::get && !head) {
      send(conn,
           http_response::text(405,
                               "method not allowed: " + detail::printable(detail::std_view(message.method_string())) +
                                   " (this server is read-only: GET, HEAD)"),
           version, keep_alive, false, true);
      return;
    }
    if (has_body) {
      send(conn, http_response::text(400, "this endpoint is read-only: a request must not have a body"), version, false,
           head);
      return;
    }
    http_request request;
    request.method = head ? "HEAD" : "GET";
    http_response response;
    try {
      detail::parse_target(detail::std_view(message.target()), request);
      response = handler_(request);
    } catch (...) {
      response = detail::response_for_current_exception();
    }
    send(conn, std::move(response), version, keep_alive, head);
  }

  /// Write `r` (headers only for HEAD); then read the next request, or close the connection.
  void send(const connection_ptr& conn, http_response r, unsigned version, bool keep_alive, bool head,
            bool allow_header = false) {
    namespace http = boost::beast::http;
    if (r.status < 200 || r.status > 599) {
      r = http_response::text(500, "internal error: the handler answered status " + std::to_string(r.status));
    } else if (std::any_of(r.content_type.begin(), r.content_type.end(),
                           [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; })) {
      r = http_response::text(500, "internal error: the handler's content type has a control character");
    }
    auto& res = exchange_of(conn).response;
    res = {};
    res.version(version);
    res.result(r.status);
    if (http::int_to_status(r.status) == http::status::unknown) {
      res.reason("Status " + std::to_string(r.status));
    }
    res.set(http::field::server, "sluice");
    res.set(http::field::cache_control, "no-store");
    res.set(http::field::content_type, r.content_type);
    if (allow_header) {
      res.set(http::field::allow, "GET, HEAD");
    }
    if (r.status != 204 && r.status != 304) {  // these two have no body and no length
      res.content_length(r.body.size());
      if (!head) {
        res.body() = std::move(r.body);
      }
    }
    res.keep_alive(keep_alive);
    served_.fetch_add(1);
    conn->stream.expires_after(opts_.idle_timeout);  // a client that does not read is dropped
    http::async_write(conn->stream, res,
                      [this, conn, keep_alive](const boost::system::error_code& ec, std::size_t /*bytes*/) {
                        if (ec || stopping_) {
                          close(conn);
                        } else if (keep_alive) {
                          wait_for_request(conn);
                        } else {
                          linger(conn);
                        }
                      });
  }

  // Closing a socket with unread input makes the kernel send a reset, which can destroy the
  // response before the client reads it (a 431 or a refused body is sent before the request has
  // been read). So: end our side, then read and discard until the client closes, for a second
  // at most.
  void linger(const connection_ptr& conn) {
    boost::system::error_code ignored;
    conn->stream.socket().shutdown(boost::asio::ip::tcp::socket::shutdown_send, ignored);
    conn->stream.expires_after(std::min<std::chrono::milliseconds>(opts_.idle_timeout, std::chrono::seconds(1)));
    discard_input(conn);
  }

  void discard_input(const connection_ptr& conn) {
    auto& buffer = conn->busy->buffer;
    buffer.clear();
    conn->stream.async_read_some(buffer.prepare(std::min<std::size_t>(buffer.max_size(), 4096)),
                                 [this, conn](const boost::system::error_code& ec, std::size_t /*bytes*/) {
                                   if (ec || stopping_) {
                                     close(conn);
                                   } else {
                                     discard_input(conn);
                                   }
                                 });
  }

  void close(const connection_ptr& conn) {
    conn->stream.close();
    conn->idle.unlink();
    if (open_.erase(conn) > 0 && conn->rejected) {
      --rejecting_;
    }
  }

  bool close_longest_idle() {
    if (idle_.empty()) {
      return false;
    }
    close(idle_.front().shared_from_this());
    return true;
  }

  // One timer for all idle connections, set for the longest-idle one: the others started waiting
  // later, so they time out later. (It may fire early, for a connection that has since become
  // busy: it then sets itself for the new longest-idle one.)
  void watch_idle() {
    if (idle_watched_ || idle_.empty()) {
      return;
    }
    idle_watched_ = true;
    idle_sweep_.expires_at(idle_.front().idle_since + opts_.idle_timeout);
    idle_sweep_.async_wait([this](const boost::system::error_code& ec) {
      idle_watched_ = false;
      if (ec || stopping_) {
        return;
      }
      const auto now = std::chrono::steady_clock::now();
      while (!idle_.empty() && idle_.front().idle_since + opts_.idle_timeout <= now) {
        close_longest_idle();
      }
      watch_idle();
    });
  }

  void shut_down() {
    stopping_ = true;
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    accept_retry_.cancel();
    idle_sweep_.cancel();
    idle_.clear();
    // Pending reads and writes complete with operation_aborted; then io_.run() runs out of work.
    const auto closing = std::move(open_);
    open_.clear();
    rejecting_ = 0;
    for (const auto& conn : closing) {
      conn->stream.close();
    }
  }

  http_handler handler_;
  http_options opts_;
  std::size_t max_connections_ = 0;
  // Of open_, those waiting for a request (the server thread's). Before io_: a connection that io_
  // destroys with a pending handler unlinks itself from it.
  idle_list idle_;
  boost::asio::io_context io_{1};  // one thread runs it; before everything that uses it: destroyed last
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer accept_retry_;
  boost::asio::steady_timer idle_sweep_;     // closes connections idle past idle_timeout
  bool idle_watched_ = false;                // idle_sweep_ is set
  std::unordered_set<connection_ptr> open_;  // accepted, not yet closed (the server thread's)
  std::size_t rejecting_ = 0;                // of open_, those answered 503
  bool stopping_ = false;                    // the server thread's
  std::uint16_t port_ = 0;
  std::string local_endpoint_;
  std::atomic<std::uint64_t> served_{0};
  std::mutex stop_mutex_;
  std::thread thread_;
};

}  // namespace sluice
