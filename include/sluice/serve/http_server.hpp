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
// Threading: the handler runs on the server's own thread, one request at a time (connections
// are interleaved between requests, never during one). It is never called concurrently with
// itself, but it is called concurrently with the host's other threads, so what it reads must be
// safe to read from another thread (an engine snapshot, an atomic, a mutex).
//
// Performance notes: one thread serves every connection; a slow handler delays all of them.
// Per request: one parse into a buffer reused across a connection's requests, one handler call,
// one write of header + body.
#pragma once

#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange

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
  std::string listen = "127.0.0.1:0";             // HOST:PORT; loopback by default; port 0: any free port
  std::size_t max_connections = 256;              // more are accepted and closed at once (503)
  std::size_t max_request_bytes = 8192;           // request line + headers; beyond: 431, connection closed
  std::chrono::milliseconds idle_timeout{30000};  // a keep-alive connection idle this long is closed
                                                  // (also: a request line + headers, or the client's
                                                  // reading of a response, taking this long)
};

/// Serves `handler` on its own thread (an io_context) from construction until stop()/destruction.
class http_server {
 public:
  /// Binds and listens now: port() is known when the constructor returns. Throws
  /// std::invalid_argument for a bad listen address or option, std::system_error if the address
  /// cannot be bound (in use, not local).
  explicit http_server(http_handler handler, http_options opts = {})
      : handler_(std::move(handler)), opts_(std::move(opts)), acceptor_(io_), accept_retry_(io_) {
    namespace ip = boost::asio::ip;
    if (!handler_) {
      throw std::invalid_argument("http_server: empty handler");
    }
    if (opts_.max_connections == 0 || opts_.max_request_bytes == 0 || opts_.idle_timeout.count() <= 0) {
      throw std::invalid_argument("http_server: max_connections, max_request_bytes and idle_timeout must be > 0");
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

 private:
  struct connection {
    connection(boost::asio::ip::tcp::socket&& socket, std::size_t max_request_bytes)
        : stream(std::move(socket)), buffer(max_request_bytes) {}
    boost::beast::tcp_stream stream;
    boost::beast::flat_buffer buffer;  // its limit bounds the request line + headers
    std::optional<boost::beast::http::request_parser<boost::beast::http::empty_body>> parser;
    boost::beast::http::response<boost::beast::http::string_body> response;
    bool rejected = false;  // over max_connections: answered 503 and closed
  };
  using connection_ptr = std::shared_ptr<connection>;

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
        // Out of file descriptors, or a client that reset before the accept: try again, not in
        // a busy loop.
        accept_retry_.expires_after(std::chrono::milliseconds(50));
        accept_retry_.async_wait([this](const boost::system::error_code& wait_ec) {
          if (!wait_ec && !stopping_) {
            accept();
          }
        });
        return;
      }
      open(std::move(socket));
      accept();
    });
  }

  void open(boost::asio::ip::tcp::socket socket) {
    boost::system::error_code ignored;
    socket.set_option(boost::asio::ip::tcp::no_delay(true), ignored);
    const std::size_t serving = open_.size() - rejecting_;
    if (serving >= opts_.max_connections && rejecting_ >= opts_.max_connections) {
      socket.close(ignored);  // a flood: not even a 503
      return;
    }
    auto conn = std::make_shared<connection>(std::move(socket), opts_.max_request_bytes);
    open_.insert(conn);
    if (serving >= opts_.max_connections) {
      conn->rejected = true;
      ++rejecting_;
      send(conn, http_response::text(503, "too many connections; try again later"), 11, false, false);
      return;
    }
    read_request(conn);
  }

  void read_request(const connection_ptr& conn) {
    namespace http = boost::beast::http;
    conn->parser.emplace();
    conn->parser->header_limit(static_cast<std::uint32_t>(
        std::min<std::size_t>(opts_.max_request_bytes, std::numeric_limits<std::uint32_t>::max())));
    // A body is refused after the header, with its own message. (Not boost::none: Beast 1.74
    // compares the length with the optional limit, and any length is "greater" than none.)
    conn->parser->body_limit(std::numeric_limits<std::uint64_t>::max());
    conn->stream.expires_after(opts_.idle_timeout);
    http::async_read_header(conn->stream, conn->buffer, *conn->parser,
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
        close(conn);  // the client closed or reset, or was idle past idle_timeout
      }
      return;
    }
    const auto& message = conn->parser->get();
    const unsigned version = message.version();  // 10 or 11: Beast refuses others (400 bad version)
    // After the header the parser is done unless a body follows (Content-Length > 0, chunked).
    const bool has_body = !conn->parser->is_done();
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
    auto& res = conn->response;
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
                          read_request(conn);
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
    conn->buffer.clear();
    conn->stream.async_read_some(conn->buffer.prepare(std::min<std::size_t>(conn->buffer.max_size(), 4096)),
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
    if (open_.erase(conn) > 0 && conn->rejected) {
      --rejecting_;
    }
  }

  void shut_down() {
    stopping_ = true;
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    accept_retry_.cancel();
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
  boost::asio::io_context io_{1};  // one thread runs it; before everything that uses it: destroyed last
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer accept_retry_;
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
