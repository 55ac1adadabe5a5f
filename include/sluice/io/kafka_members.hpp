// kafka_members: who else serves a consumer group's answer, learnt through Kafka itself. Each
// instance of a group announces its serving address (HOST:PORT) on a small members topic every
// `every` (key "GROUP ADDRESS", value the address; an empty value when it leaves gracefully),
// and reads that topic from its beginning, so that every instance knows the others' addresses:
// GET /QUERY on any of them can then ask all of them for their partitions (DESIGN §10). An
// address not announced for `3 * every` counts as gone (a killed instance stops announcing),
// and one that announced leaving is gone at once. Kafka's own group membership (DescribeGroups)
// would tell the members too, but not where they serve, and librdkafka's mock cluster does not
// answer it; a compacted topic keyed by group and address keeps only the latest of each, as
// Kafka Streams' and Kafka Connect's internal topics do.
//
// Needs the topic to exist or the brokers to create topics on first use (the mock cluster and a
// default Kafka do); give it cleanup.policy=compact on a real cluster.
#pragma once

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "sluice/io/kafka_source.hpp"

namespace sluice {

struct kafka_members_options {
  std::string brokers;
  std::string topic = "sluice-members";
  std::string group;    // the consumer group whose instances these are
  std::string address;  // this instance's serving address, HOST:PORT
  std::chrono::milliseconds every{1000};
};

class kafka_members {
 public:
  explicit kafka_members(kafka_members_options opts) : opts_(std::move(opts)) {
    producer_ = detail::kafka_client(RD_KAFKA_PRODUCER,
                                     detail::kafka_config({{"bootstrap.servers", opts_.brokers}, {"linger.ms", "0"}}));
    announce(opts_.address);  // creates the topic where brokers create topics on first use
    rd_kafka_flush(producer_.get(), 10'000);
    // A consumer of its own that joins no group: it reads every partition of the topic.
    consumer_ = detail::kafka_client(RD_KAFKA_CONSUMER, detail::kafka_config({{"bootstrap.servers", opts_.brokers},
                                                                              {"group.id", "sluice-members-reader"},
                                                                              {"enable.auto.commit", "false"}}));
    const std::int32_t partitions = detail::topic_partitions(consumer_.get(), opts_.topic);
    detail::kafka_partition_list all(rd_kafka_topic_partition_list_new(partitions));
    for (std::int32_t p = 0; p < partitions; ++p) {
      rd_kafka_topic_partition_list_add(all.get(), opts_.topic.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    }
    if (const rd_kafka_resp_err_t err = rd_kafka_assign(consumer_.get(), all.get());
        err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      throw kafka_error("kafka: read " + opts_.topic + ": " + rd_kafka_err2str(err));
    }
    thread_ = std::jthread([this](std::stop_token stop) { loop(stop); });
  }
  kafka_members(const kafka_members&) = delete;
  kafka_members& operator=(const kafka_members&) = delete;
  /// Announces leaving, so that the others stop asking this instance at once.
  ~kafka_members() {
    thread_.request_stop();
    thread_.join();
    announce("");
    rd_kafka_flush(producer_.get(), 2'000);
  }

  /// The serving addresses of the group's other instances heard from lately.
  [[nodiscard]] std::vector<std::string> peers() const {
    const auto now = now_ms();
    const auto max_age = 3 * opts_.every.count();
    std::lock_guard lock(mutex_);
    std::vector<std::string> out;
    for (const auto& [address, seen_ms] : seen_) {
      if (address != opts_.address && now - seen_ms <= max_age) {
        out.push_back(address);
      }
    }
    return out;
  }

 private:
  static std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
  }

  // `address` empty: this instance leaves.
  void announce(const std::string& address) {
    const std::string key = opts_.group + " " + opts_.address;
    detail::produce_copy(producer_.get(), opts_.topic, key, address);
    rd_kafka_poll(producer_.get(), 0);
  }

  void loop(const std::stop_token& stop) {
    auto next_announcement = std::chrono::steady_clock::now() + opts_.every;
    const std::string prefix = opts_.group + " ";
    while (!stop.stop_requested()) {
      if (std::chrono::steady_clock::now() >= next_announcement) {
        announce(opts_.address);
        next_announcement += opts_.every;
      }
      detail::kafka_message m(rd_kafka_consumer_poll(consumer_.get(), 50));
      if (!m || m->err != RD_KAFKA_RESP_ERR_NO_ERROR || m->key == nullptr) {
        continue;
      }
      const std::string key(static_cast<const char*>(m->key), m->key_len);
      if (key.compare(0, prefix.size(), prefix) != 0) {
        continue;  // another group's instance
      }
      const std::string address = key.substr(prefix.size());
      rd_kafka_timestamp_type_t type{};
      const std::int64_t at = rd_kafka_message_timestamp(m.get(), &type);
      std::lock_guard lock(mutex_);
      if (m->len == 0) {
        seen_.erase(address);
      } else {
        seen_[address] = std::max(seen_[address], at >= 0 ? at : now_ms());
      }
    }
  }

  kafka_members_options opts_;
  detail::kafka_handle producer_;
  detail::kafka_handle consumer_;
  mutable std::mutex mutex_;
  std::map<std::string, std::int64_t> seen_;  // address -> its latest announcement (ms since the epoch)
  std::jthread thread_;
};

}  // namespace sluice
