// tcp_source: a TCP server as an unbounded source (Boost.Asio, one I/O thread). Each accepted
// connection is an input with its own parse state and watermark; its bytes go to a worker in
// read-sized chunks. When that worker's queue is full the connection stops reading until the
// worker frees space: the kernel's receive buffer fills and TCP flow control slows the sender.
//
//   sluice::tcp_source src(sluice::csv_lines(schema, "ts,region,qty"), {.listen = "127.0.0.1:9000"});
//   sluice::run_stream(src, flow, sink, opts, stop_token);
//
// The server listens from construction (so port() is known before run). It ends after
// `stop_after` connections have been accepted and all have closed (scripted runs), or when stop
// is requested: it stops accepting, hands over what the connections had received (read or
// still in the kernel's buffers), closes them and returns. A connection closed in the middle of a record has that record dead-lettered; the
// next connection starts clean.
#pragma once

#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <unordered_set>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>

#include "sluice/io/bad_record.hpp"
#include "sluice/io/byte_feed.hpp"
#include "sluice/io/endpoint.hpp"

namespace sluice {

struct tcp_options {
  std::string listen = "127.0.0.1:0";     // HOST:PORT; port 0 picks a free one (see port())
  std::size_t max_connections = 1024;     // further clients wait in the listen backlog
  std::size_t stop_after = 0;             // end after this many connections closed (0: until stopped)
  std::size_t read_bytes = std::size_t{64} << 10U;  // bytes per read, the unit handed to workers
};

template <class Format>
class tcp_source {
 public:
  using value_type = typename Format::value_type;

  tcp_source(Format format, tcp_options opts)
      : format_(std::move(format)), opts_(std::move(opts)), acceptor_(io_) {
    namespace ip = boost::asio::ip;
    const ip::tcp::endpoint ep = parse_endpoint<ip::tcp>(opts_.listen);
    acceptor_.open(ep.protocol());
    acceptor_.set_option(ip::tcp::acceptor::reuse_address(true));
    boost::system::error_code ec;
    acceptor_.bind(ep, ec);
    if (ec) {
      throw bad_input_error("cannot listen on " + opts_.listen + ": " + ec.message());
    }
    acceptor_.listen(boost::asio::socket_base::max_listen_connections);
  }

  [[nodiscard]] const Format& format() const { return format_; }
  [[nodiscard]] static constexpr bool needs_final_newline() { return true; }
  [[nodiscard]] std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  [[nodiscard]] std::string local_endpoint() const { return format_endpoint(acceptor_.local_endpoint()); }

  /// Serve until the scripted number of connections is done or `stop` is requested.
  void run(byte_feed& feed, std::stop_token stop) {
    feed_ = &feed;
    feed.on_space([this] { boost::asio::post(io_, [this] { resume_parked(); }); });
    const std::stop_callback on_stop(stop, [this] { boost::asio::post(io_, [this] { shut_down(); }); });
    // A parked connection has no read pending: keep run() going until the source is done.
    work_.emplace(io_.get_executor());
    accept();
    io_.run();
    feed.on_space({});
  }

 private:
  struct connection {
    explicit connection(boost::asio::io_context& io) : socket(io) {}
    boost::asio::ip::tcp::socket socket;
    byte_feed::input_handle input = 0;
    std::string chunk;     // read into, then handed to the worker
    bool closing = false;  // the peer closed (or we stop) once the parked chunk is handed over
  };
  using connection_ptr = std::shared_ptr<connection>;

  void accept() {
    if (stopping_ || (opts_.stop_after > 0 && accepted_ >= opts_.stop_after)) {
      boost::system::error_code ignored;
      acceptor_.close(ignored);
      finish_if_done();
      return;
    }
    if (open_.size() >= opts_.max_connections) {
      accept_paused_ = true;  // resumed when a connection closes
      return;
    }
    auto conn = std::make_shared<connection>(io_);
    acceptor_.async_accept(conn->socket, [this, conn](const boost::system::error_code& ec) {
      if (ec) {
        if (ec != boost::asio::error::operation_aborted && !stopping_) {
          accept();  // a failed handshake or too many open files: keep serving
        }
        return;
      }
      ++accepted_;
      boost::system::error_code ignored;
      conn->socket.set_option(boost::asio::ip::tcp::no_delay(true), ignored);
      const auto peer = conn->socket.remote_endpoint(ignored);
      conn->input = feed_->open_input("tcp " + format_endpoint(peer));
      open_.insert(conn);
      read(conn);
      accept();
    });
  }

  void read(const connection_ptr& conn) {
    conn->chunk.resize(opts_.read_bytes);
    conn->socket.async_read_some(boost::asio::buffer(conn->chunk),
                                 [this, conn](const boost::system::error_code& ec, std::size_t n) {
                                   conn->chunk.resize(n);
                                   conn->closing = static_cast<bool>(ec) || stopping_;
                                   hand_over(conn);
                                 });
  }

  // Give the chunk to the worker; if its queue is full, park the connection (no more reads).
  void hand_over(const connection_ptr& conn) {
    if (!conn->chunk.empty() && !feed_->try_push(conn->input, conn->chunk)) {
      if (!stopping_) {
        parked_.push_back(conn);
        return;
      }
      feed_->push(conn->input, std::move(conn->chunk));  // stopping: the workers are draining
    }
    conn->chunk.clear();
    if (conn->closing || stopping_) {
      close(conn);
    } else {
      read(conn);
    }
  }

  void resume_parked() {
    std::deque<connection_ptr> waiting;
    waiting.swap(parked_);
    while (!waiting.empty()) {
      connection_ptr conn = std::move(waiting.front());
      waiting.pop_front();
      hand_over(conn);
    }
  }

  void close(const connection_ptr& conn) {
    boost::system::error_code ignored;
    if (stopping_ && conn->socket.is_open()) {
      drain(conn);
    }
    conn->socket.close(ignored);
    feed_->close_input(conn->input);
    open_.erase(conn);
    if (accept_paused_ && !stopping_) {
      accept_paused_ = false;
      accept();
    }
    finish_if_done();
  }

  // Done once no connection is open and none will be accepted any more.
  void finish_if_done() {
    if (open_.empty() && !acceptor_.is_open()) {
      work_.reset();
    }
  }

  // Stopping: what the kernel had received on this connection when the stop came is still
  // processed; what arrives after is not (a sender that never pauses must not hold the stop up).
  void drain(const connection_ptr& conn) {
    boost::system::error_code ec;
    std::size_t left = conn->socket.available(ec);  // received, not yet read
    conn->socket.non_blocking(true, ec);
    while (!ec && left > 0) {
      std::string chunk(std::min(left, opts_.read_bytes), '\0');
      const std::size_t n = conn->socket.read_some(boost::asio::buffer(chunk), ec);
      if (n == 0) {
        break;
      }
      chunk.resize(n);
      left -= n;
      feed_->push(conn->input, std::move(chunk));
    }
  }

  void shut_down() {
    stopping_ = true;
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    for (const auto& conn : open_) {
      conn->socket.cancel(ignored);  // pending reads complete with operation_aborted, then close
    }
    resume_parked();  // now hands parked chunks over with a waiting push
    finish_if_done();
  }

  Format format_;
  tcp_options opts_;
  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  byte_feed* feed_ = nullptr;
  std::unordered_set<connection_ptr> open_;
  std::deque<connection_ptr> parked_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
  std::size_t accepted_ = 0;
  bool stopping_ = false;
  bool accept_paused_ = false;
};

}  // namespace sluice
