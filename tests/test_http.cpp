// http_server and http_router over real loopback sockets. The client here is deliberately raw
// (request text in, status line + headers + body out) so that malformed, oversized and
// pipelined requests can be sent as they are. The properties: handlers' answers arrive with the
// right status, headers and exact length; the read-only rules (methods, bodies, limits) hold;
// keep-alive and close semantics follow HTTP/1.1 and 1.0; concurrent clients are all answered;
// no input crashes the server or hangs it; stop() returns with clients still connected; a query
// is answered while thousands of connections sit idle, slow clients trickle headers, the
// connection limit is reached or the process runs out of file descriptors.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>

#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>

#include "sluice/serve/http_client.hpp"
#include "sluice/serve/http_server.hpp"

using namespace std::chrono_literals;
using namespace std::string_view_literals;

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

/// How long the client waits for any byte before it fails the test (instead of hanging).
constexpr auto give_up_after = 30s;

struct reply {
  std::string version;  // "HTTP/1.1"
  unsigned status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names in lower case
  std::string body;

  /// The value of header `name` (lower case), "" if absent.
  [[nodiscard]] std::string header(std::string_view name) const {
    for (const auto& [key, value] : headers) {
      if (key == name) {
        return value;
      }
    }
    return "";
  }
  [[nodiscard]] bool has_header(std::string_view name) const {
    return std::any_of(headers.begin(), headers.end(), [&](const auto& h) { return h.first == name; });
  }
};

/// The io_context of every raw_client: one for all, so that thousands of clients do not each cost
/// the descriptors of an epoll instance.
asio::io_context& client_io() {
  static asio::io_context io;
  return io;
}

/// A blocking HTTP client on one connection that sends raw text and parses what comes back.
class raw_client {
 public:
  /// An open socket, not yet connected: connect() it later.
  raw_client() : socket_(client_io(), tcp::v4()) {}
  explicit raw_client(std::uint16_t port) : socket_(client_io()) { connect(port); }

  void connect(std::uint16_t port) { socket_.connect(tcp::endpoint(asio::ip::make_address_v4("127.0.0.1"), port)); }

  void send(std::string_view raw) { asio::write(socket_, asio::buffer(raw.data(), raw.size())); }

  /// No more requests from this side (the server reads end of stream).
  void finish_sending() {
    boost::system::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
  }

  /// One response. After a HEAD request no body is read, whatever Content-Length says.
  reply read_reply(bool head = false) {
    std::size_t end = 0;
    while ((end = buffered_.find("\r\n\r\n")) == std::string::npos) {
      if (!fill()) {
        throw std::runtime_error("connection closed before a whole response header; got '" + buffered_ + "'");
      }
    }
    reply r;
    const std::string head_text = buffered_.substr(0, end + 2);
    buffered_.erase(0, end + 4);
    std::size_t line_end = head_text.find("\r\n");
    const std::string status_line = head_text.substr(0, line_end);
    const std::size_t sp = status_line.find(' ');
    r.version = status_line.substr(0, sp);
    r.status = static_cast<unsigned>(std::stoul(status_line.substr(sp + 1, 3)));
    for (std::size_t start = line_end + 2; start < head_text.size(); start = line_end + 2) {
      line_end = head_text.find("\r\n", start);
      const std::string line = head_text.substr(start, line_end - start);
      const std::size_t colon = line.find(':');
      std::string name = line.substr(0, colon);
      std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
      std::string value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(' '));
      r.headers.emplace_back(std::move(name), std::move(value));
    }
    if (!head && r.has_header("content-length")) {
      const std::size_t length = std::stoul(r.header("content-length"));
      while (buffered_.size() < length) {
        if (!fill()) {
          throw std::runtime_error("connection closed after " + std::to_string(buffered_.size()) + " of " +
                                   std::to_string(length) + " body bytes");
        }
      }
      r.body = buffered_.substr(0, length);
      buffered_.erase(0, length);
    }
    return r;
  }

  reply request(std::string_view raw, bool head = false) {
    send(raw);
    return read_reply(head);
  }

  /// True if the server sends something or closes within `wait`.
  bool readable_within(std::chrono::milliseconds wait) {
    pollfd p{socket_.native_handle(), POLLIN, 0};
    return !buffered_.empty() || ::poll(&p, 1, static_cast<int>(wait.count())) > 0;
  }

  /// True if the server closes the connection (end of stream or reset) without sending more.
  bool closed_by_server() {
    while (fill()) {
    }
    return buffered_.empty();
  }

 private:
  // Reads what has arrived into buffered_; false at end of stream.
  bool fill() {
    pollfd p{socket_.native_handle(), POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(std::chrono::milliseconds(give_up_after).count()));
    if (ready <= 0) {
      throw std::runtime_error("no answer from the server within " + std::to_string(give_up_after.count()) + " s");
    }
    char chunk[4096];
    boost::system::error_code ec;
    const std::size_t n = socket_.read_some(asio::buffer(chunk), ec);
    if (ec == asio::error::eof || ec == asio::error::connection_reset) {
      return false;
    }
    if (ec) {
      throw std::system_error(ec, "read");
    }
    buffered_.append(chunk, n);
    return true;
  }

  tcp::socket socket_;
  std::string buffered_;
};

std::string get(std::string_view target, std::string_view extra_headers = "") {
  return "GET " + std::string(target) + " HTTP/1.1\r\nHost: localhost\r\n" + std::string(extra_headers) + "\r\n";
}

/// One request on a fresh connection that closes after it.
reply fetch(std::uint16_t port, std::string_view target) {
  raw_client c(port);
  return c.request(get(target, "Connection: close\r\n"));
}

/// fetch(), again while the server answers 503 or closes at once (over max_connections: it has not
/// yet seen the previous clients go). A connection the server leaked would make this give up.
reply fetch_when_admitted(std::uint16_t port, std::string_view target) {
  for (int attempt = 0;; ++attempt) {
    try {
      reply r = fetch(port, target);
      if (r.status != 503 || attempt == 2000) {
        return r;
      }
    } catch (const std::runtime_error&) {
      if (attempt == 2000) {
        throw;
      }
    }
    std::this_thread::sleep_for(1ms);
  }
}

/// Raises this process's soft limit on file descriptors to `n` if it is lower; false if the hard
/// limit is lower.
bool fd_limit_at_least(rlim_t n) {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_max < n) {
    return false;
  }
  if (limit.rlim_cur < n) {
    limit.rlim_cur = n;
    return ::setrlimit(RLIMIT_NOFILE, &limit) == 0;
  }
  return true;
}

/// While it lives, this process can open only `spare` more file descriptors: the soft limit is
/// lowered to just above the spare numbers. It is restored after.
class fd_limit_override {
 public:
  explicit fd_limit_override(int spare) {
    REQUIRE(::getrlimit(RLIMIT_NOFILE, &saved_) == 0);
    int fd = 0;
    for (int free = 0;; ++fd) {
      if (::fcntl(fd, F_GETFD) == -1 && errno == EBADF && ++free == spare) {
        break;
      }
    }
    rlimit lowered = saved_;
    lowered.rlim_cur = static_cast<rlim_t>(fd) + 1;
    REQUIRE(::setrlimit(RLIMIT_NOFILE, &lowered) == 0);
  }
  fd_limit_override(const fd_limit_override&) = delete;
  fd_limit_override& operator=(const fd_limit_override&) = delete;
  ~fd_limit_override() { ::setrlimit(RLIMIT_NOFILE, &saved_); }

 private:
  rlimit saved_{};
};

/// Answers "PATH\nname=value\n..." for any request: what the server decoded.
sluice::http_response echo(const sluice::http_request& r) {
  std::string body = r.method + " " + r.path + "\n";
  for (const auto& [name, value] : r.params) {
    body.append(name).append("=").append(value).append("\n");
  }
  return sluice::http_response::text(200, body);
}

sluice::http_router test_routes() {
  sluice::http_router routes;
  routes.add("/a", [](const sluice::http_request&) { return sluice::http_response::csv("x,y\n1,2\n"); });
  routes.add("/b", [](const sluice::http_request&) { return sluice::http_response::json(R"({"ok":true})"); });
  routes.add("/bad-param", [](const sluice::http_request& r) -> sluice::http_response {
    throw sluice::http_error(400, "bad parameter 'n': '" + std::string(r.param("n").value_or("")) + "'");
  });
  routes.add("/boom", [](const sluice::http_request&) -> sluice::http_response {
    throw std::runtime_error("the answer went missing");
  });
  routes.add("/echo", echo);
  return routes;
}

}  // namespace

TEST_CASE("a handler's answer arrives with its status, Content-Type, exact Content-Length and the fixed headers") {
  sluice::http_server server(test_routes());
  const reply csv = fetch(server.port(), "/a");
  CHECK(csv.status == 200);
  CHECK(csv.header("content-type") == "text/csv; charset=utf-8");
  CHECK(csv.header("content-length") == "8");
  CHECK(csv.body == "x,y\n1,2\n");
  CHECK(csv.header("server") == "sluice");
  CHECK(csv.header("cache-control") == "no-store");
  const reply json = fetch(server.port(), "/b");
  CHECK(json.status == 200);
  CHECK(json.header("content-type") == "application/json");
  CHECK(json.header("content-length") == std::to_string(json.body.size()));
  CHECK(json.body == R"({"ok":true})");
  CHECK(server.requests_served() == 2);
}

TEST_CASE("http_response::text ends the message with one newline; http_request::param finds the first of a name") {
  CHECK(sluice::http_response::text(400, "no").body == "no\n");
  CHECK(sluice::http_response::text(400, "no\n").body == "no\n");
  CHECK(sluice::http_response::text(400, "no").content_type == "text/plain; charset=utf-8");
  const sluice::http_request r{"GET", "/x", {{"a", "1"}, {"b", ""}, {"a", "2"}}};
  CHECK(r.param("a") == "1");
  CHECK(r.param("b") == "");
  CHECK_FALSE(r.param("c").has_value());
}

TEST_CASE("path and query are percent-decoded: %2F, '+' a space in the query only, repeated names kept in order") {
  sluice::http_server server(echo);
  const reply r = fetch(server.port(), "/by%2Dcat%2Fx+y?a=1%2F2&b=x+y&a=second&flag&c=%26%3D%25&&e=&%C3%A9=%c3%A9");
  CHECK(r.status == 200);
  CHECK(r.body == "GET /by-cat/x+y\na=1/2\nb=x y\na=second\nflag=\nc=&=%\ne=\n\xC3\xA9=\xC3\xA9\n");
  // The absolute form a proxy would send names the same resource.
  CHECK(fetch(server.port(), "http://localhost:8080/q?x=1").body == "GET /q\nx=1\n");
}

TEST_CASE("a bad percent-escape is 400 naming the part, and the connection goes on serving") {
  sluice::http_server server(echo);
  raw_client c(server.port());
  const reply bad_query = c.request(get("/echo?a=%zz"));
  CHECK(bad_query.status == 400);
  CHECK(bad_query.body == "bad percent-encoding in the query: a=%zz\n");
  const reply bad_path = c.request(get("/ec%4"));
  CHECK(bad_path.status == 400);
  CHECK(bad_path.body == "bad percent-encoding in the path: /ec%4\n");
  CHECK(c.request(get("/echo?a=%41")).body == "GET /echo\na=A\n");
}

TEST_CASE("the router answers 404 listing its paths, http_error with its status, other exceptions 500 with what()") {
  sluice::http_server server(test_routes());
  const reply missing = fetch(server.port(), "/nope");
  CHECK(missing.status == 404);
  CHECK(missing.header("content-type") == "text/plain; charset=utf-8");
  CHECK(missing.body == "no such path: /nope (try /a, /b, /bad-param, /boom, /echo)\n");
  const reply bad = fetch(server.port(), "/bad-param?n=x");
  CHECK(bad.status == 400);
  CHECK(bad.body == "bad parameter 'n': 'x'\n");
  const reply boom = fetch(server.port(), "/boom");
  CHECK(boom.status == 500);
  CHECK(boom.body == "internal error: the answer went missing\n");

  // The router on its own, as a handler for something other than a server.
  const sluice::http_router routes = test_routes();
  CHECK(routes({"GET", "/x", {}}).status == 404);
  CHECK(routes({"GET", "/bad-param", {{"n", "7"}}}).body == "bad parameter 'n': '7'\n");
  CHECK(sluice::http_router{}({"GET", "/x", {}}).body == "no such path: /x (no paths are served)\n");
  CHECK_THROWS_AS(sluice::http_router{}.add("x", echo), std::invalid_argument);
}

TEST_CASE("a bare handler that throws, or answers an impossible status, gets 500 from the server itself") {
  std::atomic<int> calls{0};
  sluice::http_server server([&](const sluice::http_request& r) -> sluice::http_response {
    ++calls;
    if (r.path == "/status-42") {
      return {42, "text/plain", "?"};
    }
    if (r.path == "/injected") {
      return {200, "text/plain\r\nSet-Cookie: x=1", "?"};
    }
    if (r.path == "/teapot") {
      throw sluice::http_error(418, "short and stout");
    }
    throw std::logic_error("no answer for " + r.path);
  });
  const reply thrown = fetch(server.port(), "/x");
  CHECK(thrown.status == 500);
  CHECK(thrown.body == "internal error: no answer for /x\n");
  CHECK(fetch(server.port(), "/teapot").status == 418);
  CHECK(fetch(server.port(), "/teapot").body == "short and stout\n");
  const reply impossible = fetch(server.port(), "/status-42");
  CHECK(impossible.status == 500);
  CHECK(impossible.body == "internal error: the handler answered status 42\n");
  const reply injected = fetch(server.port(), "/injected");
  CHECK(injected.status == 500);
  CHECK_FALSE(injected.has_header("set-cookie"));
  CHECK(calls == 5);
}

TEST_CASE("methods other than GET and HEAD get 405 with 'Allow: GET, HEAD' and never reach the handler") {
  std::atomic<int> calls{0};
  sluice::http_server server([&](const sluice::http_request& r) {
    ++calls;
    return echo(r);
  });
  for (const std::string method : {"POST", "PUT", "DELETE", "PATCH", "OPTIONS", "BREW"}) {
    CAPTURE(method);
    raw_client c(server.port());
    const reply r = c.request(method + " /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\na=1");
    CHECK(r.status == 405);
    CHECK(r.header("allow") == "GET, HEAD");
    CHECK(r.body.find("method not allowed: " + method) == 0);
    CHECK(c.closed_by_server());  // its body was never read: the connection cannot go on
  }
  // Without a body the connection goes on serving.
  raw_client c(server.port());
  CHECK(c.request("DELETE /echo HTTP/1.1\r\nHost: x\r\n\r\n").status == 405);
  CHECK(c.request(get("/echo")).status == 200);
  CHECK(calls == 1);
}

TEST_CASE("a GET with a body (Content-Length or chunked) is 400 read-only and the connection closes") {
  sluice::http_server server(echo);
  for (const std::string framing :
       {"Content-Length: 5\r\n\r\nhello", "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"}) {
    CAPTURE(framing);
    raw_client c(server.port());
    const reply r = c.request("GET /echo HTTP/1.1\r\nHost: x\r\n" + framing);
    CHECK(r.status == 400);
    CHECK(r.body.find("this endpoint is read-only") == 0);
    CHECK(r.header("connection") == "close");
    CHECK(c.closed_by_server());
  }
  // Content-Length: 0 is no body.
  raw_client c(server.port());
  CHECK(c.request("GET /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n").status == 200);
}

TEST_CASE("a malformed request gets 400 'malformed request' and the connection closes") {
  sluice::http_server server(echo);
  // Literals with a NUL inside are string_views with their whole length.
  const std::string_view garbage_requests[] = {
      "GARBAGE\r\n\r\n"sv,
      "GET /\r\n\r\n"sv,           // HTTP/0.9
      "GET / HTTP/x.y\r\n\r\n"sv,  // no version
      "GET / HTTP/2.0\r\n\r\n"sv,  // a version past 1.1
      "GET / HTTP/1.1\r\nno colon here\r\n\r\n"sv, "GET / HTTP/1.1\r\nContent-Length: zz\r\n\r\n"sv,
      "G\x00T / HTTP/1.1\r\n\r\n"sv,  // NOLINT(bugprone-string-literal-with-embedded-nul)
      // The start of a TLS client hello: a client that took the port for HTTPS.
      "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"sv,  // NOLINT(bugprone-string-literal-with-embedded-nul)
  };
  for (const std::string_view garbage : garbage_requests) {
    CAPTURE(garbage);
    raw_client c(server.port());
    const reply r = c.request(garbage);
    CHECK(r.status == 400);
    CHECK(r.body.find("malformed request: ") == 0);
    CHECK(c.closed_by_server());
  }
  CHECK(fetch(server.port(), "/echo").status == 200);
}

TEST_CASE("a request line or headers over max_request_bytes get 431 and close; the next client is served") {
  sluice::http_server server(echo, {.max_request_bytes = 1024});
  {
    raw_client c(server.port());
    const reply r = c.request(get("/echo", "X-Big: " + std::string(20000, 'a') + "\r\n"));
    CHECK((r.status == 431 || r.status == 400));
    CHECK(r.body == "request header too large (limit: 1024 bytes)\n");
    CHECK(c.closed_by_server());
  }
  {
    raw_client c(server.port());
    CHECK(c.request(get("/echo?q=" + std::string(2000, 'q'))).status == 431);
    CHECK(c.closed_by_server());
  }
  // Just under the limit is fine.
  const std::string fits = get("/echo", "X-Fill: " + std::string(900, 'f') + "\r\n");
  REQUIRE(fits.size() < 1024);
  raw_client c(server.port());
  CHECK(c.request(fits).status == 200);
  CHECK(fetch(server.port(), "/echo").status == 200);
}

TEST_CASE("HTTP/1.1 keeps the connection alive: three requests in turn, then three pipelined in one write") {
  sluice::http_server server(echo);
  raw_client c(server.port());
  for (int i = 0; i < 3; ++i) {
    const reply r = c.request(get("/echo?i=" + std::to_string(i)));
    CHECK(r.status == 200);
    CHECK(r.body == "GET /echo\ni=" + std::to_string(i) + "\n");
    CHECK(r.header("connection") != "close");
  }
  c.send(get("/echo?p=1") + get("/echo?p=2") + get("/echo?p=3", "Connection: close\r\n"));
  CHECK(c.read_reply().body == "GET /echo\np=1\n");
  CHECK(c.read_reply().body == "GET /echo\np=2\n");
  const reply last = c.read_reply();
  CHECK(last.body == "GET /echo\np=3\n");
  CHECK(last.header("connection") == "close");
  CHECK(c.closed_by_server());
  CHECK(server.requests_served() == 6);
}

TEST_CASE("HTTP/1.0 gets an HTTP/1.0 answer and the connection closes after it, unless it asks for keep-alive") {
  sluice::http_server server(echo);
  {
    raw_client c(server.port());
    const reply r = c.request("GET /echo?v=10 HTTP/1.0\r\n\r\n");
    CHECK(r.version == "HTTP/1.0");
    CHECK(r.status == 200);
    CHECK(r.body == "GET /echo\nv=10\n");
    CHECK(c.closed_by_server());
  }
  raw_client c(server.port());
  const reply r = c.request("GET /echo HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  CHECK(r.header("connection") == "keep-alive");
  CHECK(c.request("GET /echo?again HTTP/1.0\r\n\r\n").body == "GET /echo\nagain=\n");
  CHECK(c.closed_by_server());
}

TEST_CASE("HEAD answers the headers of GET, Content-Length included, and no body") {
  sluice::http_server server(test_routes());
  raw_client c(server.port());
  const reply head = c.request("HEAD /a HTTP/1.1\r\nHost: x\r\n\r\n", true);
  CHECK(head.status == 200);
  CHECK(head.header("content-length") == "8");
  CHECK(head.header("content-type") == "text/csv; charset=utf-8");
  const reply missing = c.request("HEAD /nope HTTP/1.1\r\nHost: x\r\n\r\n", true);
  CHECK(missing.status == 404);
  CHECK(missing.header("content-length") != "0");
  // Had a body been sent, it would be read here as the next response's status line.
  const reply after = c.request(get("/a"));
  CHECK(after.status == 200);
  CHECK(after.body == "x,y\n1,2\n");
}

TEST_CASE("8 client threads x 50 requests, on kept-alive and on fresh connections, all get their own answers") {
  sluice::http_server server(echo);
  constexpr int threads = 8;
  constexpr int requests = 50;
  std::atomic<int> right{0};
  std::mutex mutex;
  std::string first_wrong;
  std::vector<std::thread> clients;
  clients.reserve(threads);
  for (int t = 0; t < threads; ++t) {
    clients.emplace_back([&, t] {
      try {
        std::optional<raw_client> kept;
        for (int i = 0; i < requests; ++i) {
          const std::string query = "t=" + std::to_string(t) + "&i=" + std::to_string(i);
          reply r;
          if (t % 2 == 0) {  // even threads: one connection for all their requests
            if (!kept) {
              kept.emplace(server.port());
            }
            r = kept->request(get("/echo?" + query));
          } else {
            r = fetch(server.port(), "/echo?" + query);
          }
          const std::string want = "GET /echo\nt=" + std::to_string(t) + "\ni=" + std::to_string(i) + "\n";
          if (r.status == 200 && r.body == want) {
            ++right;
          } else {
            const std::lock_guard lock(mutex);
            first_wrong = query + ": " + std::to_string(r.status) + " '" + r.body + "'";
          }
        }
      } catch (const std::exception& e) {
        const std::lock_guard lock(mutex);
        first_wrong = std::string("client thread failed: ") + e.what();
      }
    });
  }
  for (auto& t : clients) {
    t.join();
  }
  CHECK(first_wrong == "");
  CHECK(right == threads * requests);
  CHECK(server.requests_served() == threads * requests);
}

TEST_CASE("stop() returns while clients hold idle keep-alive connections, half-sent requests or nothing at all") {
  std::optional<sluice::http_server> server(std::in_place, echo);
  const std::uint16_t port = server->port();
  raw_client idle(port);
  CHECK(idle.request(get("/echo")).status == 200);
  raw_client half(server->port());
  half.send("GET /echo HTTP/1.1\r\nHo");
  raw_client silent(server->port());
  CHECK(fetch(server->port(), "/echo").status == 200);  // all three have been accepted by now
  server->stop();
  CHECK(idle.closed_by_server());
  CHECK(half.closed_by_server());
  CHECK(silent.closed_by_server());
  server->stop();                  // idempotent
  server.reset();                  // and the destructor after it
  CHECK_THROWS(raw_client(port));  // nothing listens there any more
}

TEST_CASE("a handler may call stop(): its answer may or may not go out, and the destructor joins") {
  std::optional<sluice::http_server> server;
  server.emplace([&](const sluice::http_request&) {
    server->stop();
    return sluice::http_response::text(200, "bye");
  });
  raw_client c(server->port());
  c.send(get("/stop"));
  c.closed_by_server();  // whether the answer came first is a race this test does not judge
  server.reset();
}

TEST_CASE("the destructor stops a server that is in the middle of a keep-alive conversation") {
  std::uint16_t port = 0;
  std::optional<raw_client> c;
  {
    sluice::http_server server(echo);
    port = server.port();
    c.emplace(port);
    CHECK(c->request(get("/echo")).status == 200);
  }
  CHECK(c->closed_by_server());
}

TEST_CASE("a keep-alive connection idle past idle_timeout is closed by the server") {
  sluice::http_server server(echo, {.idle_timeout = 100ms});
  raw_client c(server.port());
  CHECK(c.request(get("/echo")).status == 200);
  CHECK(c.closed_by_server());  // within give_up_after, not a timing assertion
  CHECK(fetch(server.port(), "/echo").status == 200);
}

TEST_CASE("at max_connections a new client closes the longest-idle connection; the newer ones and it are served") {
  sluice::http_server server(echo, {.max_connections = 3});
  raw_client a(server.port());
  raw_client b(server.port());
  raw_client c(server.port());
  CHECK(a.request(get("/echo?a")).status == 200);
  CHECK(b.request(get("/echo?b")).status == 200);
  CHECK(c.request(get("/echo?c")).status == 200);
  CHECK(a.request(get("/echo?a")).status == 200);  // a has waited least now: b longest
  raw_client d(server.port());
  const reply admitted = d.request(get("/echo?d"));
  CHECK(admitted.status == 200);
  CHECK(admitted.body == "GET /echo\nd=\n");
  CHECK(b.closed_by_server());  // end of stream: closed to make room
  CHECK(c.request(get("/echo?c")).body == "GET /echo\nc=\n");
  CHECK(a.request(get("/echo?a")).body == "GET /echo\na=\n");
  CHECK(d.request(get("/echo?d")).body == "GET /echo\nd=\n");
}

TEST_CASE("at max_connections with every connection mid-request a new client gets 503 and is closed") {
  sluice::http_server server(echo, {.max_connections = 2});
  raw_client one(server.port());
  raw_client two(server.port());
  // A request, then half of the next in the same write: once the answer is here, the server holds
  // the half request, so neither connection is ever idle again.
  one.send(get("/echo?one") + "GET /echo?one-more HTTP/1.1\r\n");
  CHECK(one.read_reply().status == 200);
  two.send(get("/echo?two") + "GET /echo?two-more HTTP/1.1\r\n");
  CHECK(two.read_reply().status == 200);
  raw_client three(server.port());
  const reply busy = three.request(get("/echo"));
  CHECK(busy.status == 503);
  CHECK(busy.body == "too many connections; try again later\n");
  CHECK(three.closed_by_server());
  one.send("Host: x\r\n\r\n");
  CHECK(one.read_reply().body == "GET /echo\none-more=\n");
}

TEST_CASE("a query is answered while 3000 idle connections are held open, and each of them is served after it") {
  constexpr std::size_t idle_count = 3000;
  // Client and server share this process: two descriptors per connection.
  if (!fd_limit_at_least(2 * idle_count + 256)) {
    MESSAGE("skipped: the hard limit on open files (ulimit -Hn) is below " << 2 * idle_count + 256);
    return;
  }
  sluice::http_server server(echo);
  REQUIRE(server.max_connections() > idle_count);
  std::vector<raw_client> idle;
  idle.reserve(idle_count);
  for (std::size_t i = 0; i < idle_count; ++i) {
    idle.emplace_back(server.port());
  }
  // Its connection waits in the backlog behind the idle ones: the server accepts it after them.
  const reply r = fetch(server.port(), "/echo?while=idle");
  CHECK(r.status == 200);
  CHECK(r.body == "GET /echo\nwhile=idle\n");
  // None was dropped to make room: each answers now (all asked first, then all read).
  for (auto& c : idle) {
    c.send(get("/echo?again"));
  }
  std::size_t answered = 0;
  for (auto& c : idle) {
    answered += c.read_reply().body == "GET /echo\nagain=\n" ? 1 : 0;
  }
  CHECK(answered == idle_count);
}

TEST_CASE("a client trickling its header is closed after header_timeout; other clients are served meanwhile") {
  // idle_timeout is far beyond give_up_after: only header_timeout can close the slow client in time.
  sluice::http_server server(echo, {.max_request_bytes = 1 << 20, .idle_timeout = 600s, .header_timeout = 200ms});
  raw_client patient(server.port());  // connected, silent: idle, which header_timeout does not limit
  raw_client slow(server.port());
  const std::string header = get("/echo", "X-Slow: " + std::string(100000, 'a') + "\r\n");
  const auto give_up = std::chrono::steady_clock::now() + give_up_after;
  std::size_t sent = 0;
  bool server_acted = false;
  while (!server_acted && std::chrono::steady_clock::now() < give_up && sent < header.size()) {
    try {
      slow.send(header.substr(sent++, 1));
    } catch (const std::system_error&) {
      break;  // reset by the server: it closed
    }
    if (sent == 3) {
      const reply meanwhile = fetch(server.port(), "/echo?meanwhile");
      CHECK(meanwhile.status == 200);
      CHECK(meanwhile.body == "GET /echo\nmeanwhile=\n");
    }
    server_acted = slow.readable_within(20ms);  // about a byte per 20 ms
  }
  INFO("sent " << sent << " header bytes");
  CHECK(slow.closed_by_server());
  // patient has been idle longer than header_timeout (the slow client's header took longer):
  CHECK(patient.request(get("/echo?patient")).body == "GET /echo\npatient=\n");
}

TEST_CASE("out of file descriptors, the server closes its longest-idle connection to admit a waiting client") {
  sluice::http_server server(echo);
  std::vector<raw_client> idle(12);  // sockets opened now, connected once descriptors are scarce
  raw_client asking;
  const fd_limit_override scarce(4);  // the server can accept 4 more connections, then gets EMFILE
  for (auto& c : idle) {
    c.connect(server.port());  // the kernel completes the handshake: the server accepts when it can
  }
  asking.connect(server.port());
  const reply r = asking.request(get("/echo?asking"));
  CHECK(r.status == 200);
  CHECK(r.body == "GET /echo\nasking=\n");
  CHECK(idle.front().closed_by_server());
  CHECK(idle.back().request(get("/echo?newest")).body == "GET /echo\nnewest=\n");
}

TEST_CASE("connections are not leaked: 200 clients one after another through max_connections = 3 are all served") {
  sluice::http_server server(echo, {.max_connections = 3});
  int served = 0;
  for (int i = 0; i < 200; ++i) {
    served += fetch_when_admitted(server.port(), "/echo").status == 200 ? 1 : 0;
  }
  CHECK(served == 200);
}

TEST_CASE("listen on 127.0.0.1:0 picks a free port; a bad listen address throws saying which") {
  sluice::http_server a(echo);
  sluice::http_server b(echo, {.listen = "127.0.0.1:0"});
  CHECK(a.port() != 0);
  CHECK(a.port() != b.port());
  CHECK(a.local_endpoint() == "127.0.0.1:" + std::to_string(a.port()));
  CHECK(fetch(b.port(), "/echo").status == 200);

  CHECK_THROWS_AS(sluice::http_server(echo, {.listen = "nonsense"}), std::invalid_argument);
  CHECK_THROWS_AS(sluice::http_server(echo, {.listen = "127.0.0.1:65536"}), std::invalid_argument);
  CHECK_THROWS_AS(sluice::http_server(echo, {.listen = "127.0.0.1:http"}), std::invalid_argument);
  CHECK_THROWS_AS(sluice::http_server(echo, {.max_request_bytes = 0}), std::invalid_argument);
  CHECK_THROWS_AS(sluice::http_server(echo, {.header_timeout = 0ms}), std::invalid_argument);
  CHECK_THROWS_AS(sluice::http_server(sluice::http_handler{}), std::invalid_argument);
  try {
    const sluice::http_server taken(echo, {.listen = a.local_endpoint()});
    FAIL("a second server on a port in use");
  } catch (const std::system_error& e) {
    CHECK(std::string(e.what()).find("http_server: cannot listen on " + a.local_endpoint()) == 0);
  }
  CHECK_THROWS_AS(sluice::http_server(echo, {.listen = "192.0.2.1:0"}), std::system_error);  // not ours
}

TEST_CASE("random bytes and mangled requests never crash or wedge the server") {
  // Few connections allowed: one the server failed to close would soon lock the last client out.
  sluice::http_server server(test_routes(), {.max_connections = 4, .max_request_bytes = 2048, .idle_timeout = 2s});
  const std::vector<std::string> seeds = {
      get("/echo?a=1&b=%20"),
      "HEAD /a HTTP/1.0\r\n\r\n",
      "POST /b HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody",
      "GET /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n",
      get("/a") + get("/b"),
  };
  std::mt19937 rng(20240611);
  const auto pick = [&](std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng); };
  for (int round = 0; round < 1000; ++round) {
    std::string text = seeds[pick(seeds.size())];
    const std::size_t edits = pick(8);
    for (std::size_t e = 0; e < edits && !text.empty(); ++e) {
      const std::size_t at = pick(text.size());
      const char byte = "\0\r\n %:/?&=+\x80\xff"[pick(14)];
      switch (pick(4)) {
        case 0:
          text[at] = byte;
          break;
        case 1:
          text.insert(text.begin() + static_cast<std::ptrdiff_t>(at), byte);
          break;
        case 2:
          text.erase(at, 1 + pick(4));
          break;
        default:
          text.resize(at);
      }
    }
    if (round % 10 == 0) {
      text.resize(1 + pick(3000));
      for (char& c : text) {
        c = static_cast<char>(pick(256));
      }
    }
    CAPTURE(round);
    raw_client c(server.port());
    c.send(text);
    c.finish_sending();
    c.closed_by_server();  // reads whatever comes until the server closes
  }
  const reply after = fetch_when_admitted(server.port(), "/a");
  CHECK(after.status == 200);
  CHECK(after.body == "x,y\n1,2\n");
}

TEST_CASE("http_get_within: a body larger than Beast's default limit; a peer that never answers times out; "
          "a refused connection and a non-200 status are errors") {
  sluice::http_router routes = test_routes();
  const std::string big(20U << 20U, 'x');  // 20 MiB: over Beast's default 8 MiB body limit
  routes.add("/big", [&](const sluice::http_request&) { return sluice::http_response::csv(big); });
  sluice::http_server server(std::move(routes));
  const std::string at = "127.0.0.1:" + std::to_string(server.port());
  CHECK(sluice::http_get_within(at, "/a", std::chrono::seconds(10)) == "x,y\n1,2\n");
  CHECK(sluice::http_get_within(at, "/big", std::chrono::seconds(30)) == big);
  CHECK_THROWS_WITH_AS(sluice::http_get_within(at, "/boom", std::chrono::seconds(10)), doctest::Contains("500"),
                       std::runtime_error);

  // A socket that listens but never accepts: the connection completes in its backlog and the
  // request is never read, so nothing ever answers.
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor silent(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  const std::string mute = "127.0.0.1:" + std::to_string(silent.local_endpoint().port());
  CHECK_THROWS_AS(sluice::http_get_within(mute, "/a", std::chrono::milliseconds(200)), std::system_error);

  const std::string closed = "127.0.0.1:" + std::to_string(silent.local_endpoint().port());
  silent.close();
  CHECK_THROWS_AS(sluice::http_get_within(closed, "/a", std::chrono::seconds(10)), std::system_error);
}
