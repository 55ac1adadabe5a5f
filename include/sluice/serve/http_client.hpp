// http_client: a small blocking HTTP/1.1 client (Boost.Beast) on one keep-alive connection, for
// a program that reads its own or another sluice server's answers (examples, benchmarks); and
// http_get_within, one GET on a fresh connection that gives up after a deadline (a server asking
// its peers, one of which may be a dead machine that never answers).
#pragma once

#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange

#include <chrono>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <system_error>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include "sluice/io/endpoint.hpp"

namespace sluice {

class http_client {
 public:
  /// Connects to `endpoint` ("127.0.0.1:PORT"); throws std::system_error if it cannot.
  explicit http_client(const std::string& endpoint) : host_(endpoint), socket_(io_) {
    socket_.connect(parse_endpoint<boost::asio::ip::tcp>(endpoint));
    socket_.set_option(boost::asio::ip::tcp::no_delay(true));
  }

  /// GET `target`: the body of a 200 answer; any other status throws std::runtime_error with
  /// the status and the server's message.
  std::string get(const std::string& target) {
    namespace http = boost::beast::http;
    http::request<http::empty_body> request{http::verb::get, target, 11};
    request.set(http::field::host, host_);
    http::write(socket_, request);
    http::response<http::string_body> response;
    http::read(socket_, buffer_, response);
    if (response.result_int() != 200) {
      throw std::runtime_error("GET " + target + ": " + std::to_string(response.result_int()) + " " + response.body());
    }
    return std::move(response.body());
  }

 private:
  std::string host_;
  boost::asio::io_context io_;
  boost::asio::ip::tcp::socket socket_;
  boost::beast::flat_buffer buffer_;
};

/// GET `target` from `endpoint` ("HOST:PORT") on a fresh connection: the body of a 200 answer.
/// Connecting, sending and the whole answer must take at most `timeout`; a timeout or a refused
/// connection is a std::system_error, another status a std::runtime_error with the server's
/// message. The body has no size limit (a peer's state may be large).
inline std::string http_get_within(const std::string& endpoint, const std::string& target,
                                   std::chrono::milliseconds timeout) {
  namespace http = boost::beast::http;
  using boost::beast::error_code;
  boost::asio::io_context io;
  boost::beast::tcp_stream stream(io);
  http::request<http::empty_body> request{http::verb::get, target, 11};
  request.set(http::field::host, endpoint);
  request.set(http::field::connection, "close");
  boost::beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  error_code failed;
  stream.expires_after(timeout);  // one deadline for the three steps
  stream.async_connect(parse_endpoint<boost::asio::ip::tcp>(endpoint), [&](error_code ec) {
    if (ec) {
      failed = ec;
      return;
    }
    http::async_write(stream, request, [&](error_code wrote, std::size_t /*bytes*/) {
      if (wrote) {
        failed = wrote;
        return;
      }
      http::async_read(stream, buffer, parser, [&](error_code read, std::size_t /*bytes*/) { failed = read; });
    });
  });
  io.run();
  if (failed) {
    throw std::system_error(failed, "GET http://" + endpoint + target);
  }
  auto response = parser.release();
  if (response.result_int() != 200) {
    throw std::runtime_error("GET http://" + endpoint + target + ": " + std::to_string(response.result_int()) + " " +
                             response.body());
  }
  return std::move(response.body());
}

}  // namespace sluice
