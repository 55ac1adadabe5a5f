// Kafka messages in and out, against librdkafka's mock cluster, in process. Out: kafka_sink's
// rows arrive once each, a key's rows in the order sent and all in one partition (what a
// compacted changelog needs); a row that cannot be delivered is an error from flush(), not a
// silent loss. In: event_time(source_time) windows by the messages' timestamps.
#include <doctest/doctest.h>

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "kafka_mock.hpp"
#include "sluice/io/kafka_sink.hpp"
#include "sluice/io/kafka_source.hpp"
#include "sluice/io/text_lines.hpp"
#include "sluice/run/stream.hpp"
#include "sluice/sluice.hpp"

namespace {

using test_support::mock_cluster;

struct received {
  std::int32_t partition;
  std::string key;
  std::string value;
};

/// Every message of `topic` (all partitions, from the start) until `expected` have come.
std::vector<received> read_topic(const std::string& brokers, const std::string& topic, std::size_t expected) {
  auto consumer = sluice::detail::kafka_client(
      RD_KAFKA_CONSUMER, sluice::detail::kafka_config({{"bootstrap.servers", brokers},
                                                       {"group.id", "sink-test-reader"},
                                                       {"enable.auto.commit", "false"}}));
  const std::int32_t partitions = sluice::detail::topic_partitions(consumer.get(), topic);
  sluice::detail::kafka_partition_list all(rd_kafka_topic_partition_list_new(partitions));
  for (std::int32_t p = 0; p < partitions; ++p) {
    rd_kafka_topic_partition_list_add(all.get(), topic.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
  }
  REQUIRE(rd_kafka_assign(consumer.get(), all.get()) == RD_KAFKA_RESP_ERR_NO_ERROR);
  std::vector<received> out;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (out.size() < expected && std::chrono::steady_clock::now() < deadline) {
    sluice::detail::kafka_message m(rd_kafka_consumer_poll(consumer.get(), 100));
    if (m && m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      out.push_back({m->partition, std::string(static_cast<const char*>(m->key), m->key_len),
                     std::string(static_cast<const char*>(m->payload), m->len)});
    }
  }
  rd_kafka_consumer_close(consumer.get());
  return out;
}

}  // namespace

TEST_CASE("kafka_sink: every row arrives once, a key's rows in order and in one partition") {
  const mock_cluster mock("rows", 4, 3);
  const std::string& brokers = mock.brokers();

  constexpr int rows = 5000;
  {
    sluice::kafka_sink sink(sluice::kafka_sink_options{.brokers = brokers, .topic = "rows"});
    for (int i = 0; i < rows; ++i) {
      const std::string key = "region-" + std::to_string(i % 37);
      sink.send(key, key + "," + std::to_string(i));
    }
    sink.flush();
    CHECK(sink.sent() == rows);
    CHECK(sink.delivered() == rows);
  }
  const auto got = read_topic(brokers, "rows", rows);
  REQUIRE(got.size() == rows);
  std::map<std::string, std::vector<int>> by_key;
  std::map<std::string, std::set<std::int32_t>> partitions_of;
  for (const received& r : got) {
    REQUIRE(r.value.rfind(r.key + ",", 0) == 0);
    by_key[r.key].push_back(std::stoi(r.value.substr(r.key.size() + 1)));
    partitions_of[r.key].insert(r.partition);
  }
  CHECK(by_key.size() == 37);
  std::set<int> seen;
  for (const auto& [key, values] : by_key) {
    CHECK(partitions_of[key].size() == 1);
    CHECK(std::is_sorted(values.begin(), values.end()));
    seen.insert(values.begin(), values.end());
  }
  CHECK(seen.size() == rows);  // each once
}

TEST_CASE("kafka_sink: a row that cannot be delivered is an error from flush, not a silent loss") {
  sluice::kafka_sink sink(sluice::kafka_sink_options{
      .brokers = "127.0.0.1:1", .topic = "nowhere", .config = {{"message.timeout.ms", "300"}}});
  sink.send("k", "v");
  CHECK_THROWS_AS(sink.flush(), sluice::kafka_error);
  CHECK(sink.delivered() == 0);
}

TEST_CASE("kafka_source + event_time(source_time): windows by the messages' timestamps, not a field") {
  const mock_cluster mock("stamped", 3);
  const std::string& brokers = mock.brokers();

  // Messages of one word each, stamped 7 ms apart, to the partitions in turn (in time order in
  // each): the word says nothing of time, the timestamp is all there is.
  constexpr std::int64_t base = 1'700'000'000'000;
  constexpr int messages = 3000;
  std::map<std::pair<std::string, std::int64_t>, std::uint64_t> expected;  // (word, window start) -> count
  {
    auto producer = sluice::detail::kafka_client(
        RD_KAFKA_PRODUCER, sluice::detail::kafka_config({{"bootstrap.servers", brokers}, {"linger.ms", "5"}}));
    for (int i = 0; i < messages; ++i) {
      const std::string word = "w" + std::to_string(i % 4);
      const std::int64_t stamp = base + i * 7;
      REQUIRE(rd_kafka_producev(producer.get(), RD_KAFKA_V_TOPIC("stamped"), RD_KAFKA_V_PARTITION(i % 3),
                                RD_KAFKA_V_VALUE(const_cast<char*>(word.data()), word.size()),
                                RD_KAFKA_V_TIMESTAMP(stamp), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR_NO_ERROR);
      ++expected[{word, stamp - stamp % 1000}];
      rd_kafka_poll(producer.get(), 0);
    }
    REQUIRE(rd_kafka_flush(producer.get(), 10'000) == RD_KAFKA_RESP_ERR_NO_ERROR);
  }

  struct word {
    std::string text;
  };
  auto format = sluice::lines_of<word>([](std::string_view line, word& out) -> const char* {
    out.text = std::string(line);
    return nullptr;
  });
  sluice::kafka_source source(format, {.brokers = brokers, .topic = "stamped", .group = "stamps", .stop_at_end = true});
  const auto per_second = sluice::flow<word>() | sluice::event_time(sluice::source_time) |
                          sluice::key_by(&word::text) | sluice::window(sluice::tumbling(std::chrono::seconds(1))) |
                          sluice::aggregate(sluice::count{});
  std::map<std::pair<std::string, std::int64_t>, std::uint64_t> got;
  std::uint64_t late = 0;
  sluice::stream_options opts{.threads = 2};
  opts.max_delay = std::chrono::milliseconds(100);
  const auto stats = sluice::run_stream(source, per_second, [&](const auto& store) {
    for (const auto& row : store.scan()) {
      got[{std::string(row.key.key), row.key.window.start.count()}] += row.value;
    }
  }, opts);
  late = stats.late_events;
  CHECK(stats.events == messages);
  CHECK(late == 0);
  CHECK(got == expected);
}
