// kafka_sink: result rows (or a changelog of updates) to a Kafka topic. Each row is a message
// whose key names the row (a query's key, with the window for a windowed one) and whose value
// is the row: Kafka's default partitioner sends one key always to one partition, so a row's
// updates stay in order, and a compacted topic keeps the latest value of each row, as a Kafka
// Streams KTable's changelog does.
//
// send() blocks while librdkafka's queue is full (backpressure: the stream waits for Kafka, it
// does not buffer without bound). Deliveries are acknowledged by every in-sync replica
// (acks=all) with idempotence on, so a retried send is not written twice. A refused delivery is
// thrown as a kafka_error from the next send() or from flush(), which waits until every row sent
// so far is acknowledged (a caller's checkpoint of "what was sent" belongs after a flush).
#pragma once

#include <librdkafka/rdkafka.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "sluice/io/kafka_source.hpp"

namespace sluice {

struct kafka_sink_options {
  std::string brokers{};
  std::string topic{};
  std::map<std::string, std::string> config{};  // more librdkafka properties (security, linger.ms, ...)
};

class kafka_sink {
 public:
  explicit kafka_sink(kafka_sink_options opts) : opts_(std::move(opts)) {
    auto properties = opts_.config;
    properties.emplace("bootstrap.servers", opts_.brokers);
    properties.emplace("acks", "all");
    properties.emplace("enable.idempotence", "true");
    properties.emplace("linger.ms", "5");
    rd_kafka_conf_t* conf = detail::kafka_config(properties);
    rd_kafka_conf_set_opaque(conf, this);
    rd_kafka_conf_set_dr_msg_cb(conf, &kafka_sink::on_delivery);
    producer_ = detail::kafka_client(RD_KAFKA_PRODUCER, conf);
  }
  kafka_sink(const kafka_sink&) = delete;
  kafka_sink& operator=(const kafka_sink&) = delete;
  ~kafka_sink() { rd_kafka_flush(producer_.get(), 10'000); }  // best effort: flush() reports failures

  /// Sends one row: `key` (empty: none) and `value`, both copied.
  void send(std::string_view key, std::string_view value) {
    throw_if_failed();
    while (true) {
      const rd_kafka_resp_err_t err = detail::produce_copy(producer_.get(), opts_.topic, key, value);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        break;
      }
      if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        throw kafka_error("kafka: send to " + opts_.topic + ": " + rd_kafka_err2str(err));
      }
      rd_kafka_poll(producer_.get(), 10);  // full: wait for deliveries to make room
    }
    ++sent_;
    rd_kafka_poll(producer_.get(), 0);
  }

  /// Waits until every row sent so far is acknowledged; throws kafka_error if any was refused
  /// or `timeout` passed first.
  void flush(std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    const rd_kafka_resp_err_t err = rd_kafka_flush(producer_.get(), static_cast<int>(timeout.count()));
    throw_if_failed();
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      throw kafka_error("kafka: flush to " + opts_.topic + ": " + rd_kafka_err2str(err));
    }
  }

  /// Rows sent, and rows Kafka acknowledged.
  [[nodiscard]] std::uint64_t sent() const { return sent_; }
  [[nodiscard]] std::uint64_t delivered() const { return delivered_.load(std::memory_order_relaxed); }

 private:
  static void on_delivery(rd_kafka_t* /*rk*/, const rd_kafka_message_t* m, void* opaque) {
    auto* self = static_cast<kafka_sink*>(opaque);
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      self->delivered_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    std::lock_guard lock(self->mutex_);
    if (self->failure_.empty()) {
      self->failure_ = "kafka: a row to " + self->opts_.topic + " was not delivered: " + rd_kafka_err2str(m->err);
    }
  }
  void throw_if_failed() {
    std::lock_guard lock(mutex_);
    if (!failure_.empty()) {
      throw kafka_error(failure_);
    }
  }

  kafka_sink_options opts_;
  detail::kafka_handle producer_;
  std::uint64_t sent_ = 0;
  std::atomic<std::uint64_t> delivered_{0};
  std::mutex mutex_;
  std::string failure_;  // the first refused delivery
};

}  // namespace sluice
