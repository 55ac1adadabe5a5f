// http_client: a small blocking HTTP/1.1 client (Boost.Beast) on one keep-alive connection, for
// a program that reads its own or another sluice server's answers (examples, benchmarks).
#pragma once

#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange

#include <stdexcept>
#include <string>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
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

}  // namespace sluice
