// Producing a file's lines to a Kafka topic, for send_lines --kafka: whole lines batched into
// messages, spread over the topic's partitions in turn, each partition's messages in file order.
#pragma once

#include <librdkafka/rdkafka.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "sluice/io/kafka_source.hpp"

namespace tools {

struct produced {
  std::uint64_t messages = 0;
  std::int32_t partitions = 0;
};

/// Sends `data` (lines, each ending in '\n') to `topic` at `brokers`: messages of whole lines of
/// up to `message_bytes` (a longer line is a message of its own), message j to partition
/// j % partitions. Returns once Kafka has acknowledged every message; a message it refused is a
/// sluice::kafka_error. `data` must outlive the call (messages point into it, uncopied).
inline produced produce_lines(const std::string& brokers, const std::string& topic, std::string_view data,
                              std::size_t message_bytes) {
  using sluice::kafka_error;
  std::uint64_t failed = 0;
  rd_kafka_conf_t* conf = sluice::detail::kafka_config({{"bootstrap.servers", brokers}, {"linger.ms", "5"}});
  rd_kafka_conf_set_opaque(conf, &failed);
  rd_kafka_conf_set_dr_msg_cb(conf, [](rd_kafka_t* /*rk*/, const rd_kafka_message_t* m, void* opaque) {
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      ++*static_cast<std::uint64_t*>(opaque);
    }
  });
  auto producer = sluice::detail::kafka_client(RD_KAFKA_PRODUCER, conf);

  produced out;
  out.partitions = sluice::detail::topic_partitions(producer.get(), topic);
  rd_kafka_topic_t* handle = rd_kafka_topic_new(producer.get(), topic.c_str(), nullptr);

  std::size_t at = 0;
  while (at < data.size()) {
    const auto line_end = [&](std::size_t from) {  // past the '\n' of the line at `from`
      const std::size_t nl = data.find('\n', from);
      return nl == std::string_view::npos ? data.size() : nl + 1;
    };
    std::size_t end = line_end(at);  // at least one line, however long
    while (end < data.size() && line_end(end) - at <= message_bytes) {
      end = line_end(end);
    }
    const auto partition = static_cast<std::int32_t>(out.messages % static_cast<std::uint64_t>(out.partitions));
    while (rd_kafka_produce(handle, partition, 0, const_cast<char*>(data.data() + at), end - at, nullptr, 0,
                            nullptr) != 0) {
      if (rd_kafka_last_error() != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        rd_kafka_topic_destroy(handle);
        throw kafka_error(std::string("kafka: produce: ") + rd_kafka_err2str(rd_kafka_last_error()));
      }
      rd_kafka_poll(producer.get(), 10);  // delivers acknowledgements, freeing queue space
    }
    rd_kafka_poll(producer.get(), 0);
    ++out.messages;
    at = end;
  }
  rd_kafka_topic_destroy(handle);
  while (rd_kafka_outq_len(producer.get()) > 0) {
    rd_kafka_flush(producer.get(), 1000);
  }
  if (failed > 0) {
    throw kafka_error("kafka: " + std::to_string(failed) + " of " + std::to_string(out.messages) +
                      " messages were not acknowledged");
  }
  return out;
}

}  // namespace tools
