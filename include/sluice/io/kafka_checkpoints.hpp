// kafka_checkpoint_store: checkpoints in a compacted Kafka topic, so that any machine can restore
// any partition's state (the directory of checkpoint_dir is one machine's). Each checkpoint is a
// message keyed by `key_prefix` + its name ("GROUP/" + "sales/3"), whose value is the checkpoint
// file's bytes (encode_checkpoint: versioned, checksummed, naming its flow); compaction keeps the
// latest value of each key, as Kafka Streams' changelog topics do.
//
//   auto store = std::make_shared<sluice::kafka_checkpoint_store>(sluice::kafka_checkpoint_options{
//       .brokers = "localhost:9092", .topic = "sales-checkpoints", .key_prefix = "sales-app/"});
//   sluice::stream_checkpoints checkpoints(store, 10s, "per-site");
//
// save() produces with acks=all and an idempotent producer and returns only once Kafka
// acknowledged the message: a checkpoint is durable before the source position it covers is
// relied on. A checkpoint larger than `max_bytes` (key and value) is a checkpoint_error naming
// both sizes, before anything is sent; a broker whose topic allows less refuses it, and that is
// a checkpoint_error naming the topic's max.message.bytes.
//
// load() first reads the topic up to its end as of this call (each partition's high watermark,
// asked first), keeping the newest value of each key (a later message of a key replaces an
// earlier one; an empty value, a tombstone, removes it), so that a checkpoint another process
// saved before this one was given the partition is seen. What was read is kept: a later load
// reads only the messages since. Then it decodes the key's value: a damaged one, a newer format
// or another flow's is a checkpoint_error, never half-applied.
//
// The topic is created if missing (one partition, cleanup.policy=compact, max.message.bytes
// from `max_bytes`, the brokers' replication factor) through the admin API; an existing topic is
// used as it is (give it cleanup.policy=compact). Keep its partition count fixed: a key always
// goes to one partition only while the count does not change.
#pragma once

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sluice/io/kafka_source.hpp"
#include "sluice/store/checkpoint.hpp"

namespace sluice {

struct kafka_checkpoint_options {
  std::string brokers{};
  std::string topic{};
  std::string key_prefix{};                     // before each checkpoint's name in its key: "GROUP/" keeps groups apart
  std::size_t max_bytes = 16U << 20U;           // the largest checkpoint (key and value); the created topic's
                                                // max.message.bytes allows it
  std::chrono::milliseconds timeout{30'000};    // for an acknowledgement, and for reading the topic's end
  std::map<std::string, std::string> config{};  // more librdkafka properties (security, ...), both clients
};

class kafka_checkpoint_store final : public checkpoint_store {
 public:
  explicit kafka_checkpoint_store(kafka_checkpoint_options opts) : opts_(std::move(opts)) {
    if (opts_.brokers.empty() || opts_.topic.empty()) {
      throw std::invalid_argument("kafka_checkpoint_store: brokers and topic are required");
    }
    const std::string limit = std::to_string(opts_.max_bytes + record_overhead);
    auto producer = properties();
    producer.emplace("acks", "all");
    producer.emplace("enable.idempotence", "true");
    producer.emplace("linger.ms", "0");  // a save waits for its message: send it at once
    producer.emplace("message.max.bytes", limit);
    producer.emplace("message.timeout.ms", std::to_string(opts_.timeout.count()));
    rd_kafka_conf_t* conf = detail::kafka_config(producer);
    rd_kafka_conf_set_dr_msg_cb(conf, &kafka_checkpoint_store::on_delivery);
    producer_ = detail::kafka_client(RD_KAFKA_PRODUCER, conf);
    create_topic_if_missing();

    // A consumer of its own that joins no group: it is assigned every partition for each read.
    auto consumer = properties();
    consumer.emplace("group.id", "sluice-checkpoint-reader");
    consumer.emplace("enable.auto.commit", "false");
    consumer.emplace("enable.partition.eof", "true");
    consumer.emplace("auto.offset.reset", "earliest");
    consumer.emplace("fetch.wait.max.ms", "10");  // read to a known end: do not wait for more
    const std::size_t fetch = std::max<std::size_t>(52'428'800, opts_.max_bytes + 2 * record_overhead);
    consumer.emplace("fetch.max.bytes", std::to_string(fetch));
    consumer.emplace("receive.message.max.bytes", std::to_string(fetch + 1'000'000));
    consumer_ = detail::kafka_client(RD_KAFKA_CONSUMER, detail::kafka_config(consumer));
  }
  kafka_checkpoint_store(const kafka_checkpoint_store&) = delete;
  kafka_checkpoint_store& operator=(const kafka_checkpoint_store&) = delete;
  kafka_checkpoint_store(kafka_checkpoint_store&&) = delete;
  kafka_checkpoint_store& operator=(kafka_checkpoint_store&&) = delete;
  ~kafka_checkpoint_store() override = default;

  /// Produces `c` under `name` and waits until every in-sync replica has it.
  void save(std::string_view name, const checkpoint& c) const override {
    const std::string key = opts_.key_prefix + std::string(name);
    const std::string value = encode_checkpoint(c);
    if (key.size() + value.size() > opts_.max_bytes) {
      throw checkpoint_error("checkpoint " + where(name) + ": " + std::to_string(key.size() + value.size()) +
                             " bytes, more than the checkpoint topic's limit of " + std::to_string(opts_.max_bytes) +
                             " (kafka_checkpoint_options::max_bytes, the topic's max.message.bytes)");
    }
    delivery d;
    while (true) {
      const rd_kafka_resp_err_t err = detail::produce_copy(producer_.get(), opts_.topic, key, value, &d);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        break;
      }
      if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        throw checkpoint_error("checkpoint " + where(name) + ": cannot send it: " + rd_kafka_err2str(err));
      }
      rd_kafka_poll(producer_.get(), 10);
    }
    // Delivery reports are served by whichever thread polls; each save polls until its own came
    // (message.timeout.ms bounds the wait: a message not acknowledged by then is reported failed).
    while (!d.done.load(std::memory_order_acquire)) {
      rd_kafka_poll(producer_.get(), 10);
    }
    if (d.err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE) {
      throw checkpoint_error("checkpoint " + where(name) + ": the brokers refused its " +
                             std::to_string(key.size() + value.size()) +
                             " bytes as too large: raise the topic's max.message.bytes");
    }
    if (d.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      throw checkpoint_error("checkpoint " + where(name) +
                             ": Kafka did not acknowledge it: " + rd_kafka_err2str(d.err));
    }
  }

  /// The newest checkpoint saved under `name` by any process, read up to the topic's end as of now.
  [[nodiscard]] std::optional<checkpoint> load(std::string_view name,
                                               std::optional<std::uint64_t> flow = std::nullopt) const override {
    std::lock_guard lock(mutex_);
    read_to_end();
    const auto it = latest_.find(opts_.key_prefix + std::string(name));
    if (it == latest_.end()) {
      return std::nullopt;
    }
    const held& h = it->second;
    return decode_checkpoint(
        h.value,
        where(name) + " (partition " + std::to_string(h.partition) + ", offset " + std::to_string(h.offset) + ")",
        flow);
  }

  [[nodiscard]] std::string where(std::string_view name) const override {
    return "topic " + opts_.topic + " key " + opts_.key_prefix + std::string(name);
  }

  /// Messages of the topic read so far (any thread): each load reads only the new ones.
  [[nodiscard]] std::uint64_t messages_read() const { return read_.load(std::memory_order_relaxed); }
  [[nodiscard]] const kafka_checkpoint_options& options() const { return opts_; }

 private:
  // Room for a message's framing beside its key and value, in the limits given to Kafka.
  static constexpr std::size_t record_overhead = 4096;

  struct delivery {
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
    std::atomic<bool> done{false};
  };
  static void on_delivery(rd_kafka_t* /*rk*/, const rd_kafka_message_t* m, void* /*opaque*/) {
    auto* d = static_cast<delivery*>(m->_private);
    d->err = m->err;
    d->done.store(true, std::memory_order_release);  // last: the saving thread may go on at once
  }

  struct held {
    std::string value;
    std::int32_t partition = 0;
    std::int64_t offset = 0;
  };

  [[nodiscard]] std::map<std::string, std::string> properties() const {
    auto p = opts_.config;
    p.emplace("bootstrap.servers", opts_.brokers);
    return p;
  }

  [[nodiscard]] checkpoint_error topic_error(const std::string& why) const {
    return checkpoint_error("checkpoint topic " + opts_.topic + ": " + why);
  }

  /// Whether the brokers know the topic (asked for all topics, which creates none).
  [[nodiscard]] bool topic_exists() const {
    const rd_kafka_metadata_t* metadata = nullptr;
    const rd_kafka_resp_err_t err =
        rd_kafka_metadata(producer_.get(), 1, nullptr, &metadata, static_cast<int>(opts_.timeout.count()));
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      throw topic_error(std::string("cannot ask the brokers about it: ") + rd_kafka_err2str(err));
    }
    bool found = false;
    for (int i = 0; i < metadata->topic_cnt; ++i) {
      found =
          found || (opts_.topic == metadata->topics[i].topic && metadata->topics[i].err == RD_KAFKA_RESP_ERR_NO_ERROR);
    }
    rd_kafka_metadata_destroy(metadata);
    return found;
  }

  void create_topic_if_missing() {
    if (topic_exists()) {
      return;
    }
    char reason[512];
    rd_kafka_NewTopic_t* topic = rd_kafka_NewTopic_new(opts_.topic.c_str(), 1, -1, reason, sizeof reason);
    if (topic == nullptr) {
      throw topic_error(std::string("cannot describe it for creation: ") + reason);
    }
    rd_kafka_NewTopic_set_config(topic, "cleanup.policy", "compact");
    rd_kafka_NewTopic_set_config(topic, "max.message.bytes", std::to_string(opts_.max_bytes + record_overhead).c_str());
    rd_kafka_queue_t* queue = rd_kafka_queue_new(producer_.get());
    rd_kafka_CreateTopics(producer_.get(), &topic, 1, nullptr, queue);
    rd_kafka_event_t* event = rd_kafka_queue_poll(queue, static_cast<int>(opts_.timeout.count()));
    std::string failed;
    if (event == nullptr) {
      failed = "no answer from the brokers";
    } else if (rd_kafka_event_error(event) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      failed = rd_kafka_event_error_string(event);
    } else if (const rd_kafka_CreateTopics_result_t* result = rd_kafka_event_CreateTopics_result(event)) {
      std::size_t n = 0;
      const rd_kafka_topic_result_t** topics = rd_kafka_CreateTopics_result_topics(result, &n);
      for (std::size_t i = 0; i < n; ++i) {
        const rd_kafka_resp_err_t err = rd_kafka_topic_result_error(topics[i]);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
          failed = rd_kafka_err2str(err);
        }
      }
    }
    if (event != nullptr) {
      rd_kafka_event_destroy(event);
    }
    rd_kafka_queue_destroy(queue);
    rd_kafka_NewTopic_destroy(topic);
    if (!failed.empty()) {
      throw topic_error("cannot create it (" + failed + "): create it with cleanup.policy=compact");
    }
  }

  /// Reads every partition from where the last read stopped to its end as of now.
  void read_to_end() const {
    const std::int32_t partitions = detail::topic_partitions(consumer_.get(), opts_.topic, opts_.timeout);
    std::map<std::int32_t, std::int64_t> end;  // partitions with messages not read yet
    detail::kafka_partition_list list(rd_kafka_topic_partition_list_new(partitions));
    for (std::int32_t p = 0; p < partitions; ++p) {
      std::int64_t low = 0;
      std::int64_t high = 0;
      const rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(consumer_.get(), opts_.topic.c_str(), p, &low,
                                                                       &high, static_cast<int>(opts_.timeout.count()));
      if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        throw topic_error("cannot learn where partition " + std::to_string(p) + " ends: " + rd_kafka_err2str(err));
      }
      std::int64_t& next = next_[p];
      if (next < high) {
        end[p] = high;
        rd_kafka_topic_partition_list_add(list.get(), opts_.topic.c_str(), p)->offset = std::max(next, low);
      }
    }
    if (end.empty()) {
      return;
    }
    if (const rd_kafka_resp_err_t err = rd_kafka_assign(consumer_.get(), list.get());
        err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      throw topic_error(std::string("cannot read it: ") + rd_kafka_err2str(err));
    }
    const auto deadline = std::chrono::steady_clock::now() + opts_.timeout;
    while (!end.empty()) {
      if (std::chrono::steady_clock::now() > deadline) {
        rd_kafka_assign(consumer_.get(), nullptr);
        throw topic_error("not read to its end within " + std::to_string(opts_.timeout.count()) + " ms");
      }
      detail::kafka_message m(rd_kafka_consumer_poll(consumer_.get(), 50));
      if (!m || (m->err != RD_KAFKA_RESP_ERR_NO_ERROR && m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)) {
        continue;  // nothing yet, or a transient error librdkafka retries by itself
      }
      std::int64_t& next = next_[m->partition];
      if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        next = std::max(next, m->offset);  // gaps (compacted away) up to the end
      } else {
        next = m->offset + 1;
        read_.fetch_add(1, std::memory_order_relaxed);
        keep(*m);
      }
      if (const auto it = end.find(m->partition); it != end.end() && next >= it->second) {
        end.erase(it);
      }
    }
    rd_kafka_assign(consumer_.get(), nullptr);  // fetch nothing between loads
  }

  /// A message replaces its key's value; an empty one (a tombstone) removes it. Keys without
  /// the prefix (another group's) are not kept.
  void keep(const rd_kafka_message_t& m) const {
    std::string key(m.key != nullptr ? static_cast<const char*>(m.key) : "", m.key_len);
    if (m.key == nullptr || !key.starts_with(opts_.key_prefix)) {
      return;
    }
    if (m.payload == nullptr || m.len == 0) {
      latest_.erase(key);
      return;
    }
    latest_.insert_or_assign(std::move(key),
                             held{std::string(static_cast<const char*>(m.payload), m.len), m.partition, m.offset});
  }

  kafka_checkpoint_options opts_;
  detail::kafka_handle producer_;
  detail::kafka_handle consumer_;
  mutable std::mutex mutex_;                           // loads, one at a time: the consumer and what it read
  mutable std::map<std::string, held> latest_;         // key -> its newest value read
  mutable std::map<std::int32_t, std::int64_t> next_;  // partition -> the offset after what was read
  mutable std::atomic<std::uint64_t> read_{0};
};

}  // namespace sluice
