// kafka_source: the partitions a Kafka consumer group assigns to this process, as an unbounded
// source (librdkafka; built only with the meson option `kafka`). Each assigned partition is an
// input with its own parse state and watermark; a revoked one closes (it stops holding the
// watermark back), a newly assigned one opens. Message values carry one or more whole records
// in the source's format (CSV lines, JSON lines with lines_of, length-prefixed frames); a line
// format's last newline may be omitted.
//
//   sluice::kafka_source src(sluice::csv_lines(schema, header),
//                            {.brokers = "localhost:9092", .topic = "sales", .group = "sales-app"});
//   sluice::run_stream(src, flow, sink, opts, stop_token);
//
// Backpressure: when a partition's worker queue is full the message waits here and the source
// stops taking messages until the worker frees space (a short wait, the common case, costs
// nothing). A wait longer than `pause_after` pauses the partitions that have messages waiting,
// so librdkafka fetches no more of them, and the source polls again: the group does not take a
// consumer stalled by a slow sink for dead, and no more than one fetch is buffered here. They
// resume once their worker has taken what waited. (Pausing at once would cost a refetch each
// time: librdkafka drops what it prefetched for a paused partition.)
//
// Positions: no offsets are committed to Kafka. Each message's bytes go to the runner with the
// offset after it, so that a runner with checkpoints (stream_options::checkpoints) saves a
// partition's state with the offset it covers; an assigned partition that the runner restored
// from a checkpoint starts at that offset. Without checkpoints it starts where `start_at` says,
// else at the earliest offset Kafka keeps: one process's state is then exact for the partitions
// it owns, and several processes in one group each count only their own partitions. A revoked
// partition is handed off: with checkpoints its state leaves with its last checkpoint (for its
// next owner to restore) instead of being fired here.
// A start that Kafka no longer has (a checkpoint older than what retention kept, or one from
// before the topic was recreated) ends the run with a kafka_error naming the partition and the
// offset: reading from anywhere else would lose rows or count them twice, so the source never
// resets a restored position by itself (auto.offset.reset is "error" unless config says otherwise).
// `stop_at_end` ends the run once every assigned partition has been read to the end it had
// when it was assigned (a replay of what the topic holds: tests, backfills).
#pragma once

#include <librdkafka/rdkafka.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "sluice/io/bad_record.hpp"
#include "sluice/io/byte_feed.hpp"
#include "sluice/io/stream_format.hpp"

namespace sluice {

struct kafka_options {
  std::string brokers{};  // bootstrap.servers: HOST:PORT[,HOST:PORT...]
  std::string topic{};
  std::string group{};                          // group.id: processes with the same group split the partitions
  bool stop_at_end = false;                     // end once every assigned partition is read to its end at assignment
  std::map<std::string, std::string> config{};  // more librdkafka properties (security, timeouts, ...)
  std::chrono::milliseconds poll_timeout{50};   // how long one poll waits for a message or a stop
  std::chrono::milliseconds pause_after{1000};  // a full worker queue this long pauses the partition
  /// Where a newly assigned partition starts reading: its next offset after a restored
  /// checkpoint; nullopt (or no function): the earliest offset Kafka keeps. Called on the
  /// source's thread; what it throws ends the run (after the poll, never through librdkafka).
  std::function<std::optional<std::int64_t>(std::int32_t partition)> start_at{};
};

/// A librdkafka error, with librdkafka's reason.
class kafka_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {
struct kafka_handle_deleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
using kafka_handle = std::unique_ptr<rd_kafka_t, kafka_handle_deleter>;

struct kafka_partitions_deleter {
  void operator()(rd_kafka_topic_partition_list_t* l) const { rd_kafka_topic_partition_list_destroy(l); }
};
using kafka_partition_list = std::unique_ptr<rd_kafka_topic_partition_list_t, kafka_partitions_deleter>;

struct kafka_message_deleter {
  void operator()(rd_kafka_message_t* m) const { rd_kafka_message_destroy(m); }
};
using kafka_message = std::unique_ptr<rd_kafka_message_t, kafka_message_deleter>;

/// A client configuration from `properties`: a bad name or value is a kafka_error naming it.
inline rd_kafka_conf_t* kafka_config(const std::map<std::string, std::string>& properties) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char reason[512];
  for (const auto& [name, value] : properties) {
    if (rd_kafka_conf_set(conf, name.c_str(), value.c_str(), reason, sizeof reason) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      throw kafka_error("kafka: " + name + "=" + value + ": " + reason);
    }
  }
  return conf;
}

/// A client of `type` made from `conf` (which it then owns).
inline kafka_handle kafka_client(rd_kafka_type_t type, rd_kafka_conf_t* conf) {
  char reason[512];
  rd_kafka_t* rk = rd_kafka_new(type, conf, reason, sizeof reason);
  if (rk == nullptr) {
    rd_kafka_conf_destroy(conf);  // not taken on failure
    throw kafka_error(std::string("kafka: cannot create a client: ") + reason);
  }
  return kafka_handle(rk);
}

/// How many partitions `topic` has, asked through client `rk`; a topic Kafka does not know (or
/// cannot tell about within `timeout`) is a kafka_error.
/// Queues a copy of `value` with `key` for `topic` on `producer`; `opaque` comes back with its
/// delivery report. rd_kafka_producev in one place: its argument macros are GNU statement
/// expressions, which clang flags under -Wpedantic in every file that expands them.
inline rd_kafka_resp_err_t produce_copy(rd_kafka_t* producer, const std::string& topic, std::string_view key,
                                        std::string_view value, void* opaque = nullptr) {
#if defined(__clang__)
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wgnu-statement-expression"
#endif
  return rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(topic.c_str()),
                           RD_KAFKA_V_KEY(const_cast<char*>(key.data()), key.size()),  // NOLINT: librdkafka's signature
                           RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),  // NOLINT: as above
                           RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
#if defined(__clang__)
#pragma clang diagnostic pop
#endif
}

inline std::int32_t topic_partitions(rd_kafka_t* rk, const std::string& topic,
                                     std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  rd_kafka_topic_t* handle = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
  const rd_kafka_metadata_t* metadata = nullptr;
  const rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, handle, &metadata, static_cast<int>(timeout.count()));
  rd_kafka_topic_destroy(handle);
  const std::int32_t n = err == RD_KAFKA_RESP_ERR_NO_ERROR && metadata->topic_cnt == 1 &&
                                 metadata->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR
                             ? metadata->topics[0].partition_cnt
                             : 0;
  if (metadata != nullptr) {
    rd_kafka_metadata_destroy(metadata);
  }
  if (n < 1) {
    throw kafka_error("kafka: no partitions for topic " + topic +
                      (err != RD_KAFKA_RESP_ERR_NO_ERROR ? std::string(": ") + rd_kafka_err2str(err) : ""));
  }
  return n;
}

/// The offset after the last message of `topic`'s partition `partition` (its high watermark),
/// asked through client `rk`; nullopt if Kafka does not answer within `timeout`.
inline std::optional<std::int64_t> partition_end(rd_kafka_t* rk, const std::string& topic, std::int32_t partition,
                                                 std::chrono::milliseconds timeout = std::chrono::seconds(1)) {
  std::int64_t low = 0;
  std::int64_t high = 0;
  if (rd_kafka_query_watermark_offsets(rk, topic.c_str(), partition, &low, &high, static_cast<int>(timeout.count())) !=
      RD_KAFKA_RESP_ERR_NO_ERROR) {
    return std::nullopt;
  }
  return high;
}

template <class Format>
inline constexpr bool length_framed_v = false;
template <class T, class Decode>
inline constexpr bool length_framed_v<length_prefixed<T, Decode>> = true;
}  // namespace detail

template <class Format>
class kafka_source {
 public:
  using value_type = typename Format::value_type;

  kafka_source(Format format, kafka_options opts) : format_(std::move(format)), opts_(std::move(opts)) {
    if (opts_.brokers.empty() || opts_.topic.empty() || opts_.group.empty()) {
      throw std::invalid_argument("kafka_source: brokers, topic and group are required");
    }
  }

  [[nodiscard]] const Format& format() const { return format_; }
  // Every message ends its last record (a missing final newline is added), so an input's end
  // never holds a record cut in two.
  [[nodiscard]] static constexpr bool needs_final_newline() { return true; }

  /// Messages and bytes taken from Kafka so far (any thread).
  [[nodiscard]] std::uint64_t messages() const { return messages_.load(std::memory_order_relaxed); }
  [[nodiscard]] std::uint64_t bytes() const { return bytes_.load(std::memory_order_relaxed); }
  /// Times a partition was paused because its worker stayed full (any thread).
  [[nodiscard]] std::uint64_t pauses() const { return pauses_.load(std::memory_order_relaxed); }

  /// Consume until `stop` is requested (or, with stop_at_end, until every assigned partition is
  /// read to its end), then leave the group.
  void run(byte_feed& feed, std::stop_token stop) {
    feed_ = &feed;
    auto properties = opts_.config;
    properties.emplace("bootstrap.servers", opts_.brokers);
    properties.emplace("group.id", opts_.group);
    properties.emplace("enable.auto.commit", "false");  // positions are not kept yet (see top)
    properties.emplace("auto.offset.reset", "error");   // only restored starts can be out of range
    properties.emplace("partition.assignment.strategy", "cooperative-sticky");
    properties.emplace("enable.partition.eof", opts_.stop_at_end ? "true" : "false");
    rd_kafka_conf_t* conf = detail::kafka_config(properties);
    rd_kafka_conf_set_opaque(conf, this);
    rd_kafka_conf_set_rebalance_cb(conf, &kafka_source::on_rebalance);
    consumer_ = detail::kafka_client(RD_KAFKA_CONSUMER, conf);
    rd_kafka_poll_set_consumer(consumer_.get());
    feed.on_space([this] { space_.store(true, std::memory_order_release); });

    detail::kafka_partition_list topics(rd_kafka_topic_partition_list_new(1));
    rd_kafka_topic_partition_list_add(topics.get(), opts_.topic.c_str(), RD_KAFKA_PARTITION_UA);
    check(rd_kafka_subscribe(consumer_.get(), topics.get()), "subscribe to " + opts_.topic);

    try {
      while (!stop.stop_requested() && !(opts_.stop_at_end && all_at_end())) {
        if (space_.exchange(false, std::memory_order_acq_rel)) {
          retry_waiting();
        }
        if (stalled()) {
          continue;  // a worker is full: wait for space rather than take more messages
        }
        detail::kafka_message m(rd_kafka_consumer_poll(consumer_.get(), static_cast<int>(opts_.poll_timeout.count())));
        if (m) {
          take(std::move(m));
        }
        fail_if_fatal();
      }
    } catch (...) {
      // The run fails: let go of the consumer now, while the feed is still there, and without
      // touching it again (destroying the consumer revokes its partitions through on_rebalance).
      feed_ = nullptr;
      partitions_.clear();
      consumer_.reset();
      throw;
    }
    closing_ = true;  // what is revoked from now on closes here, as the run ends: nothing is handed off
    rd_kafka_consumer_close(consumer_.get());  // leaves the group: the revocation closes every input
    for (auto& [partition, p] : partitions_) {
      close(p);
    }
    partitions_.clear();
    consumer_.reset();
  }

 private:
  struct partition {
    byte_feed::input_handle input = 0;
    bool open = false;
    bool at_end = false;  // stop_at_end: read to its end
    bool paused = false;
    std::int64_t start = RD_KAFKA_OFFSET_BEGINNING;               // where its reading began
    std::deque<std::pair<std::string, source_position>> waiting;  // messages (with the offset after
                                                                  // each) its worker could not take yet
  };

  static void on_rebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* list,
                           void* opaque) {
    auto* self = static_cast<kafka_source*>(opaque);
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
      for (int i = 0; i < list->cnt; ++i) {
        self->assigned(list->elems[i]);
      }
      self->note_error(rd_kafka_incremental_assign(rk, list), "assign partitions");
    } else {
      for (int i = 0; i < list->cnt; ++i) {
        self->revoked(list->elems[i].partition);
      }
      self->note_error(rd_kafka_incremental_unassign(rk, list), "unassign partitions");
    }
  }

  // Opens the partition's input (which restores its checkpoint, if the runner keeps them) and
  // sets where it starts. On a librdkafka thread's callback: what throws is kept, not thrown.
  void assigned(rd_kafka_topic_partition_t& assignment) {
    const std::int32_t id = assignment.partition;
    if (feed_ == nullptr) {
      return;  // the run failed: nothing reads any more
    }
    try {
      partition& p = partitions_[id];
      p = partition{};
      p.input = feed_->open_input(opts_.topic + "/" + std::to_string(id));
      p.open = true;
      std::optional<std::int64_t> start = feed_->restored_position(p.input);
      if (!start && opts_.start_at) {
        start = opts_.start_at(id);
      }
      // No start: the earliest offset Kafka keeps, named as such, not left to auto.offset.reset.
      assignment.offset = start ? *start : RD_KAFKA_OFFSET_BEGINNING;
      p.start = assignment.offset;
    } catch (const std::exception& e) {
      if (callback_error_.empty()) {
        callback_error_ = "kafka: partition " + std::to_string(id) + " of " + opts_.topic + ": " + e.what();
      }
    }
  }

  // The partition moved to another process: what it read here is handed on, then it stops
  // holding the watermark back.
  void revoked(std::int32_t id) {
    if (feed_ == nullptr) {
      return;
    }
    const auto it = partitions_.find(id);
    if (it != partitions_.end()) {
      close(it->second, !closing_);
      partitions_.erase(it);
    }
  }

  void close(partition& p, bool hand_off = false) {
    if (!p.open) {
      return;
    }
    for (auto& [bytes, at] : p.waiting) {
      feed_->push_at(p.input, std::move(bytes), at);  // waits for space: the run is ending or moving on
    }
    p.waiting.clear();
    if (hand_off) {
      feed_->hand_off_input(p.input);
    } else {
      feed_->close_input(p.input);
    }
    p.open = false;
  }

  void take(detail::kafka_message m) {
    const auto it = partitions_.find(m->partition);
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      if (it != partitions_.end() && opts_.stop_at_end) {
        it->second.at_end = true;
      }
      return;
    }
    if (m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET || m->err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE) {
      if (callback_error_.empty()) {
        const std::int64_t start = it != partitions_.end() ? it->second.start : m->offset;
        callback_error_ = "kafka: partition " + std::to_string(m->partition) + " of " + opts_.topic +
                          ": cannot resume at offset " + std::to_string(start) + " (" +
                          rd_kafka_message_errstr(m.get()) +
                          "): Kafka no longer has it (retention deleted older messages, or the topic was "
                          "recreated); reading from elsewhere would lose rows or count them twice. Remove the "
                          "partition's checkpoint to read it afresh";
      }
      return;
    }
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      // Transient (a broker down, a rebalance): librdkafka retries by itself. Fatal ones are
      // thrown by fail_if_fatal.
      return;
    }
    if (it == partitions_.end() || !it->second.open) {
      return;  // a message of a partition revoked meanwhile: its next owner reads it
    }
    partition& p = it->second;
    std::string bytes(static_cast<const char*>(m->payload), m->len);
    if constexpr (!detail::length_framed_v<Format>) {
      if (!bytes.empty() && bytes.back() != '\n') {
        bytes += '\n';  // a message ends its last record
      }
    }
    messages_.fetch_add(1, std::memory_order_relaxed);
    bytes_.fetch_add(m->len, std::memory_order_relaxed);
    // The offset to resume at after this message, and its timestamp (producer's or broker's;
    // none: 0) for flows that take event_time(source_time).
    const std::int64_t stamp = rd_kafka_message_timestamp(m.get(), nullptr);
    const source_position at{m->offset + 1, millis{stamp >= 0 ? stamp : 0}};
    if (p.waiting.empty() && feed_->try_push_at(p.input, bytes, at)) {
      return;
    }
    if (waiting_since_ == std::chrono::steady_clock::time_point{}) {
      waiting_since_ = std::chrono::steady_clock::now();
    }
    p.waiting.emplace_back(std::move(bytes), at);
  }

  // Whether messages wait for a full worker and the source should not poll for more: it waits
  // a little for space instead. Past pause_after it pauses their partitions and polls again.
  bool stalled() {
    bool unpaused_waiting = false;
    for (const auto& [id, p] : partitions_) {
      unpaused_waiting = unpaused_waiting || (!p.waiting.empty() && !p.paused);
    }
    if (!unpaused_waiting) {
      return false;
    }
    if (std::chrono::steady_clock::now() - waiting_since_ < opts_.pause_after) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));  // on_space sets space_ meanwhile
      return true;
    }
    for (auto& [id, p] : partitions_) {
      if (!p.waiting.empty() && !p.paused) {
        pause(id, p, true);
      }
    }
    return false;
  }

  // A worker freed space: hand on what waits, in order, and resume the partitions emptied.
  void retry_waiting() {
    bool any_waiting = false;
    for (auto& [id, p] : partitions_) {
      while (!p.waiting.empty() && feed_->try_push_at(p.input, p.waiting.front().first, p.waiting.front().second)) {
        p.waiting.pop_front();
      }
      if (p.waiting.empty() && p.paused) {
        pause(id, p, false);
      }
      any_waiting = any_waiting || !p.waiting.empty();
    }
    if (!any_waiting) {
      waiting_since_ = {};
    }
  }

  void pause(std::int32_t id, partition& p, bool on) {
    detail::kafka_partition_list list(rd_kafka_topic_partition_list_new(1));
    rd_kafka_topic_partition_list_add(list.get(), opts_.topic.c_str(), id);
    if (on) {
      rd_kafka_pause_partitions(consumer_.get(), list.get());
      pauses_.fetch_add(1, std::memory_order_relaxed);
    } else {
      rd_kafka_resume_partitions(consumer_.get(), list.get());
    }
    p.paused = on;
  }

  [[nodiscard]] bool all_at_end() const {
    if (partitions_.empty()) {
      return false;  // not assigned yet
    }
    for (const auto& [id, p] : partitions_) {
      if (!p.at_end || !p.waiting.empty()) {
        return false;
      }
    }
    return true;
  }

  // An error in a callback is kept and thrown after the poll returns: no exception crosses
  // librdkafka's C frames.
  void fail_if_fatal() {
    if (!callback_error_.empty()) {
      throw kafka_error(std::exchange(callback_error_, {}));
    }
    char reason[512];
    if (rd_kafka_fatal_error(consumer_.get(), reason, sizeof reason) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      throw kafka_error(std::string("kafka: ") + reason);
    }
  }
  static void check(rd_kafka_resp_err_t err, const std::string& what) {
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      throw kafka_error("kafka: " + what + ": " + rd_kafka_err2str(err));
    }
  }
  void note_error(rd_kafka_error_t* error, const std::string& what) {
    if (error != nullptr) {
      if (callback_error_.empty()) {
        callback_error_ = "kafka: " + what + ": " + rd_kafka_error_string(error);
      }
      rd_kafka_error_destroy(error);
    }
  }

  Format format_;
  kafka_options opts_;
  byte_feed* feed_ = nullptr;
  detail::kafka_handle consumer_;
  std::map<std::int32_t, partition> partitions_;
  std::string callback_error_;  // thrown by fail_if_fatal
  bool closing_ = false;        // leaving the group at the end of the run
  std::atomic<bool> space_{false};
  std::chrono::steady_clock::time_point waiting_since_{};  // when messages began to wait (none: epoch)
  std::atomic<std::uint64_t> messages_{0};
  std::atomic<std::uint64_t> bytes_{0};
  std::atomic<std::uint64_t> pauses_{0};
};

}  // namespace sluice
