// udp_source: records in UDP datagrams (Boost.Asio). Each datagram holds whole records (one or
// more newline-delimited lines; the last newline may be omitted). All datagrams form one input.
// UDP has no flow control: while the worker queue is full the source stops receiving and the
// kernel's socket buffer absorbs what it can; datagrams it drops never reach sluice (raise
// net.core.rmem_max / the receive buffer for bursts).
#pragma once

#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange

#include <cstdint>
#include <optional>
#include <stop_token>
#include <string>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/post.hpp>

#include "sluice/io/bad_record.hpp"
#include "sluice/io/byte_feed.hpp"
#include "sluice/io/endpoint.hpp"

namespace sluice {

struct udp_options {
  std::string listen = "127.0.0.1:0";
  int receive_buffer_bytes = 4 << 20;  // SO_RCVBUF asked of the kernel (it may cap it)
};

template <class Format>
class udp_source {
 public:
  using value_type = typename Format::value_type;

  udp_source(Format format, udp_options opts) : format_(std::move(format)), opts_(std::move(opts)), socket_(io_) {
    const auto ep = parse_endpoint<boost::asio::ip::udp>(opts_.listen);
    socket_.open(ep.protocol());
    boost::system::error_code ec;
    socket_.set_option(boost::asio::socket_base::receive_buffer_size(opts_.receive_buffer_bytes), ec);
    socket_.bind(ep, ec);
    if (ec) {
      throw bad_input_error("cannot listen on udp " + opts_.listen + ": " + ec.message());
    }
  }

  [[nodiscard]] const Format& format() const { return format_; }
  [[nodiscard]] static constexpr bool needs_final_newline() { return false; }
  [[nodiscard]] std::uint16_t port() const { return socket_.local_endpoint().port(); }
  [[nodiscard]] std::string local_endpoint() const { return format_endpoint(socket_.local_endpoint()); }

  /// Receive until `stop` is requested.
  void run(byte_feed& feed, std::stop_token stop) {
    feed_ = &feed;
    input_ = feed.open_input("udp " + local_endpoint());
    feed.on_space([this] {
      boost::asio::post(io_, [this] {
        if (std::exchange(parked_, false)) {
          resume();
        }
      });
    });
    auto work = std::make_optional(boost::asio::make_work_guard(io_));  // also while parked
    const std::stop_callback on_stop(stop, [this, &work] {
      boost::asio::post(io_, [this, &work] {
        stopping_ = true;
        boost::system::error_code ignored;
        socket_.close(ignored);
        if (std::exchange(parked_, false)) {
          resume();
        }
        work.reset();
      });
    });
    receive();
    io_.run();
    feed.on_space({});
    feed.close_input(input_);
  }

 private:
  static constexpr std::size_t max_datagram = 65536;

  void receive() {
    datagram_.resize(max_datagram);
    socket_.async_receive_from(boost::asio::buffer(datagram_), sender_,
                               [this](const boost::system::error_code& ec, std::size_t n) {
                                 if (ec) {
                                   return;  // closed by stop
                                 }
                                 datagram_.resize(n);
                                 if (!datagram_.empty() && datagram_.back() != '\n') {
                                   datagram_ += '\n';  // a datagram ends its last record
                                 }
                                 resume();
                               });
  }

  // Hand the datagram over, or wait for on_space (the socket is not read meanwhile).
  void resume() {
    if (!datagram_.empty() && !feed_->try_push(input_, datagram_)) {
      if (!stopping_) {
        parked_ = true;
        return;
      }
      feed_->push(input_, std::move(datagram_));
    }
    datagram_.clear();
    if (!stopping_) {
      receive();
    }
  }

  Format format_;
  udp_options opts_;
  boost::asio::io_context io_;
  boost::asio::ip::udp::socket socket_;
  boost::asio::ip::udp::endpoint sender_;
  byte_feed* feed_ = nullptr;
  byte_feed::input_handle input_ = 0;
  std::string datagram_;
  bool stopping_ = false;
  bool parked_ = false;  // holding a datagram the worker queue had no room for
};

}  // namespace sluice
