// kafka_source against librdkafka's mock cluster, in process (built only with the meson option
// `kafka`): random sales rows produced to a 4-partition topic as messages of a few rows each,
// consumed by run_stream through a kafka_source, give the batch answer over the same rows in a
// run that keeps the source stalled (a one-chunk worker queue, workers that take 50 us a row), so that partitions
// are paused and resumed (librdkafka refetches what a pause dropped: nothing may be lost or read
// twice).
#include <doctest/doctest.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "../examples/tools/kafka_produce.hpp"
#include "random_sales.hpp"
#include "sluice/io/kafka_source.hpp"
#include "sluice/io/memory_source.hpp"
#include "sluice/run/batch.hpp"
#include "sluice/run/stream.hpp"

namespace {

/// A mock cluster of one broker with topic `topic` of `partitions` partitions, for the test's life.
class mock_cluster {
 public:
  mock_cluster(const std::string& topic, int partitions)
      : client_(sluice::detail::kafka_client(RD_KAFKA_PRODUCER,
                                             sluice::detail::kafka_config({{"test.mock.num.brokers", "1"}}))) {
    rd_kafka_mock_cluster_t* cluster = rd_kafka_handle_mock_cluster(client_.get());
    REQUIRE(cluster != nullptr);
    REQUIRE(rd_kafka_mock_topic_create(cluster, topic.c_str(), partitions, 1) == RD_KAFKA_RESP_ERR_NO_ERROR);
    brokers_ = rd_kafka_mock_cluster_bootstraps(cluster);
  }
  [[nodiscard]] const std::string& brokers() const { return brokers_; }

 private:
  sluice::detail::kafka_handle client_;
  std::string brokers_;
};

}  // namespace

TEST_CASE("kafka_source: a topic's rows give the batch answer while a full worker stalls the source and pauses partitions") {
  const mock_cluster cluster("sales", 4);
  const auto rows = test_data::random_sales(5, 3000);
  const std::string csv = test_data::to_csv(rows);
  const std::string data = csv.substr(csv.find('\n') + 1);  // the rows without the header
  const tools::produced sent = tools::produce_lines(cluster.brokers(), "sales", data, 1000);
  CHECK(sent.partitions == 4);
  CHECK(sent.messages > 100);  // several rows a message, many messages a partition

  std::vector<sales::sale> events;  // views into `rows`
  for (const auto& r : rows) {
    events.push_back(
        {sluice::millis{r.ts}, r.order_id, r.user_id, r.region, r.category, r.product, r.qty, r.price_cents});
  }
  const auto expected = test_data::to_map(
      sluice::run_batch(sluice::from_range(events), sales::by_category(), sluice::batch_options{.threads = 1}));
  // (The end-to-end test runs sales --kafka with room to spare; this run is the stalled one.)
  sluice::kafka_options opts{.brokers = cluster.brokers(), .topic = "sales", .group = "stalled", .stop_at_end = true};
  opts.pause_after = std::chrono::milliseconds(0);  // pause at the first full queue
  // A resumed partition is fetched again at once, not after the default 500 ms fetch wait.
  opts.config = {{"fetch.wait.max.ms", "5"}, {"fetch.error.backoff.ms", "5"}};
  sluice::stream_options stream;
  stream.threads = 2;
  stream.queue_chunks = 1;
  sluice::kafka_source source(sluice::csv_lines(sales::csv_schema(), sales::csv_header), opts);
  // Workers slow on purpose, so that the source outruns them.
  const auto slow = [](const sales::sale& s) {
    std::this_thread::sleep_for(std::chrono::microseconds(50));
    return s;
  };
  const auto slow_by_category = sluice::flow<sales::sale>() | sluice::map(slow) | sluice::key_by(&sales::sale::category) |
                                sluice::aggregate(sluice::count{}, sluice::sum(sales::revenue_cents));
  test_data::category_ref got;
  const auto stats = sluice::run_stream(
      source, slow_by_category, [&](const auto& store) { got = test_data::to_map(store); }, stream);  // once, at the end
  CHECK(stats.events == rows.size());
  CHECK(stats.bad_records == 0);
  CHECK(source.messages() == sent.messages);
  CHECK(got == expected);
  WARN(source.pauses() > 0);  // how often depends on the machine: shown, not asserted
}

TEST_CASE("kafka_source: start_at starts each assigned partition at the offset it gives") {
  const mock_cluster cluster("positions", 4);
  const auto rows = test_data::random_sales(8, 800);
  const std::string csv = test_data::to_csv(rows);
  const std::string data = csv.substr(csv.find('\n') + 1);
  // One row a message: row i is message i, at offset i / 4 of partition i % 4.
  const tools::produced sent = tools::produce_lines(cluster.brokers(), "positions", data, 1);
  REQUIRE(sent.messages == rows.size());
  const std::map<std::int32_t, std::int64_t> start{{0, 0}, {1, 17}, {2, 199}};  // partition 3: no checkpoint

  std::vector<sales::sale> events;  // the rows at or after their partition's start
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto it = start.find(static_cast<std::int32_t>(i % 4));
    if (it == start.end() || static_cast<std::int64_t>(i / 4) >= it->second) {
      const auto& r = rows[i];
      events.push_back(
          {sluice::millis{r.ts}, r.order_id, r.user_id, r.region, r.category, r.product, r.qty, r.price_cents});
    }
  }
  const auto expected = test_data::to_map(
      sluice::run_batch(sluice::from_range(events), sales::by_category(), sluice::batch_options{.threads = 1}));

  sluice::kafka_options opts{.brokers = cluster.brokers(), .topic = "positions", .group = "restored", .stop_at_end = true};
  std::vector<std::int32_t> asked;
  opts.start_at = [&](std::int32_t partition) -> std::optional<std::int64_t> {
    asked.push_back(partition);
    const auto it = start.find(partition);
    return it == start.end() ? std::nullopt : std::optional<std::int64_t>(it->second);
  };
  sluice::kafka_source source(sluice::csv_lines(sales::csv_schema(), sales::csv_header), opts);
  test_data::category_ref got;
  const auto stats = sluice::run_stream(source, sales::by_category(), [&](const auto& store) { got = test_data::to_map(store); },
                                        sluice::stream_options{.threads = 2});
  CHECK(stats.events == events.size());
  CHECK(got == expected);
  std::sort(asked.begin(), asked.end());
  CHECK(asked == std::vector<std::int32_t>{0, 1, 2, 3});
}
