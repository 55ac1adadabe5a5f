// kafka_source and kafka_checkpoint_store against librdkafka's mock cluster, in process (built
// only with the meson option `kafka`; the checkpoint store's tests use SLUICE_KAFKA_BROKERS
// instead when it is set): random sales rows produced to a 4-partition topic as messages of a few rows each,
// consumed by run_stream through a kafka_source, give the batch answer over the same rows in a
// run that keeps the source stalled (a one-chunk worker queue, workers that take 50 us a row), so that partitions
// are paused and resumed (librdkafka refetches what a pause dropped: nothing may be lost or read
// twice).
#include <doctest/doctest.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <stop_token>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "../examples/tools/kafka_produce.hpp"
#include "checkpoint_files.hpp"
#include "kafka_mock.hpp"
#include "random_sales.hpp"
#include "sluice/io/kafka_checkpoints.hpp"
#include "sluice/io/kafka_sink.hpp"
#include "sluice/io/kafka_source.hpp"
#include "sluice/io/memory_source.hpp"
#include "sluice/run/batch.hpp"
#include "sluice/run/stream.hpp"
#include "sluice/store/checkpoint.hpp"
#include "temp_dir.hpp"

namespace {

using test_support::mock_cluster;

}  // namespace

TEST_CASE(
    "kafka_source: a topic's rows give the batch answer while a full worker stalls the source and pauses partitions") {
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
  const auto slow_by_category = sluice::flow<sales::sale>() | sluice::map(slow) |
                                sluice::key_by(&sales::sale::category) |
                                sluice::aggregate(sluice::count{}, sluice::sum(sales::revenue_cents));
  test_data::category_ref got;
  const auto stats = sluice::run_stream(
      source, slow_by_category, [&](const auto& store) { got = test_data::to_map(store); },
      stream);  // once, at the end
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

  sluice::kafka_options opts{
      .brokers = cluster.brokers(), .topic = "positions", .group = "restored", .stop_at_end = true};
  std::vector<std::int32_t> asked;
  opts.start_at = [&](std::int32_t partition) -> std::optional<std::int64_t> {
    asked.push_back(partition);
    const auto it = start.find(partition);
    return it == start.end() ? std::nullopt : std::optional<std::int64_t>(it->second);
  };
  sluice::kafka_source source(sluice::csv_lines(sales::csv_schema(), sales::csv_header), opts);
  test_data::category_ref got;
  const auto stats = sluice::run_stream(
      source, sales::by_category(), [&](const auto& store) { got = test_data::to_map(store); },
      sluice::stream_options{.threads = 2});
  CHECK(stats.events == events.size());
  CHECK(got == expected);
  std::sort(asked.begin(), asked.end());
  CHECK(asked == std::vector<std::int32_t>{0, 1, 2, 3});
}

TEST_CASE(
    "kafka_source: a start Kafka does not have ends the run with the partition and offset, never a silent reset") {
  // A checkpoint from before the topic was recreated (or older than what retention kept) names
  // an offset the partition does not have. Resetting to the earliest offset would count the
  // partition's rows on top of the restored state that already has them.
  const mock_cluster cluster("recreated", 2);
  const auto rows = test_data::random_sales(9, 100);
  const std::string csv = test_data::to_csv(rows);
  REQUIRE(tools::produce_lines(cluster.brokers(), "recreated", csv.substr(csv.find('\n') + 1), 1).messages ==
          rows.size());
  sluice::kafka_options opts{.brokers = cluster.brokers(), .topic = "recreated", .group = "stale", .stop_at_end = true};
  opts.start_at = [](std::int32_t partition) -> std::optional<std::int64_t> {
    return partition == 1 ? std::optional<std::int64_t>(5000) : std::nullopt;  // 50 messages in each
  };
  sluice::kafka_source source(sluice::csv_lines(sales::csv_schema(), sales::csv_header), opts);
  std::string error;
  try {
    (void)sluice::run_stream(
        source, sales::by_category(), [](const auto&) {}, sluice::stream_options{.threads = 1});
  } catch (const sluice::kafka_error& e) {
    error = e.what();
  }
  CHECK(error.find("partition 1 of recreated: cannot resume at offset 5000") != std::string::npos);
  CHECK(error.find("Remove the partition's checkpoint") != std::string::npos);
}

namespace {

std::uint64_t checkpoint_files(const std::string& dir) {
  std::uint64_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    n += e.path().extension() == ".ckpt" ? 1 : 0;
  }
  return n;
}

/// The offsets the checkpoints in `dir` cover, summed over partitions: messages a restart skips.
std::int64_t covered_messages(const std::string& dir) {
  std::int64_t sum = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() == ".ckpt") {
      const auto next = test_support::checkpoint_position(dir, e.path().stem().string());
      REQUIRE(next.has_value());
      sum += *next;
    }
  }
  return sum;
}

}  // namespace

TEST_CASE("kafka_source with checkpoints: a run stopped midway, or killed at any instant, resumes exactly") {
  const mock_cluster cluster("ckpt", 4);
  const auto rows = test_data::random_sales(13, 4000);
  const std::string csv = test_data::to_csv(rows);
  const std::string data = csv.substr(csv.find('\n') + 1);
  const tools::produced sent = tools::produce_lines(cluster.brokers(), "ckpt", data, 300);
  std::vector<sales::sale> events;
  for (const auto& r : rows) {
    events.push_back(
        {sluice::millis{r.ts}, r.order_id, r.user_id, r.region, r.category, r.product, r.qty, r.price_cents});
  }
  const auto expected = test_data::to_map(
      sluice::run_batch(sluice::from_range(events), sales::by_category(), sluice::batch_options{.threads = 1}));
  const test_support::temp_dir dir;
  const auto format = sluice::csv_lines(sales::csv_schema(), sales::csv_header);
  const auto consume = [&](const std::string& group, sluice::stream_checkpoints* cp, bool to_end,
                           const std::function<void(const sluice::stream_metrics&, std::stop_source&)>& watch) {
    sluice::kafka_source source(format,
                                {.brokers = cluster.brokers(), .topic = "ckpt", .group = group, .stop_at_end = to_end});
    sluice::stream_metrics metrics;
    std::stop_source stop;
    std::jthread watcher([&](const std::stop_token& over) {  // stopped and joined however the run ends
      while (!over.stop_requested()) {
        watch(metrics, stop);
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    });
    test_data::category_ref got;
    sluice::stream_options opts{.threads = 2};
    opts.metrics = &metrics;
    opts.checkpoints = cp;
    sluice::run_stream(
        source, sales::by_category(), [&](const auto& store) { got = test_data::to_map(store); }, opts,
        stop.get_token());
    watcher.request_stop();
    watcher.join();
    return std::make_pair(got, source.messages());
  };

  // Run 1 stops (as on SIGTERM) once half the rows went through; a copy of its checkpoints
  // taken at a quarter is what it would have left had it been killed then.
  sluice::stream_checkpoints live(dir / "live", std::chrono::milliseconds(5), "by-category");
  bool copied = false;
  const auto [partial_answer, first_messages] = consume("run-1", &live, false, [&](const auto& m, auto& stop) {
    // Copied again until the copy covers something: the first checkpoints may come after a
    // quarter of the rows, on a busy machine, or before any row of their partition.
    if (!copied && m.events.load() >= rows.size() / 4 && std::filesystem::exists(dir / "live")) {
      test_support::copy_checkpoints(dir / "live", dir / "killed");
      copied = covered_messages(dir / "killed") > 0;
    }
    if (m.events.load() >= rows.size() / 2) {
      stop.request_stop();
    }
  });
  CHECK(partial_answer != expected);
  CHECK(first_messages < sent.messages);
  CHECK(live.saved.load() > 4);
  CHECK(covered_messages(dir / "live") == static_cast<std::int64_t>(first_messages));  // the final checkpoints

  // Checkpoints of another flow are refused, never restored.
  sluice::stream_checkpoints other(dir / "live", std::chrono::milliseconds(5), "by-region");
  CHECK_THROWS_WITH_AS(consume("run-2", &other, true, [](const auto&, auto&) {}),
                       doctest::Contains("written by another flow"), sluice::kafka_error);

  // Restarted from what a kill at a quarter would have left: exact, rereading only what followed.
  REQUIRE(copied);
  const std::int64_t covered = covered_messages(dir / "killed");
  const std::uint64_t killed_files = checkpoint_files(dir / "killed");  // partitions read by then
  CHECK(covered > 0);
  sluice::stream_checkpoints after_kill(dir / "killed", std::chrono::milliseconds(5), "by-category");
  const auto [after_kill_answer, after_kill_messages] = consume("run-3", &after_kill, true, [](const auto&, auto&) {});
  CHECK(after_kill.restored.load() == killed_files);
  CHECK(static_cast<std::int64_t>(after_kill_messages) == static_cast<std::int64_t>(sent.messages) - covered);
  CHECK(after_kill_answer == expected);

  // Restarted after the graceful stop: the rest of the topic, exactly.
  const std::uint64_t live_files = checkpoint_files(dir / "live");  // a partition run 1 never read has none
  sluice::stream_checkpoints again(dir / "live", std::chrono::milliseconds(5), "by-category");
  const auto [answer, messages] = consume("run-4", &again, true, [](const auto&, auto&) {});
  CHECK(again.restored.load() == live_files);
  CHECK(messages == sent.messages - first_messages);
  CHECK(answer == expected);
}

namespace {

/// The brokers of SLUICE_KAFKA_BROKERS (a real cluster, where the store creates `topic`), or of
/// a mock cluster of this object's life with `topic` (the mock cluster does not answer the admin
/// API's CreateTopics).
class brokers_for_test {
 public:
  explicit brokers_for_test(const std::string& topic) {
    if (const char* real = std::getenv("SLUICE_KAFKA_BROKERS"); real != nullptr && *real != '\0') {
      brokers_ = real;
    } else {
      brokers_ = mock_.emplace(topic, 1, 3).brokers();
    }
  }
  [[nodiscard]] const std::string& list() const { return brokers_; }

 private:
  std::optional<mock_cluster> mock_;
  std::string brokers_;
};

/// A checkpoint topic of its own for each test (fresh on a real cluster too): created by the store.
std::string fresh_topic(const std::string& name) {
  static int n = 0;
  return name + "-" + std::to_string(::getpid()) + "-" + std::to_string(++n);
}

/// A checkpoint of flow 7 with random parts.
sluice::checkpoint random_checkpoint(std::mt19937_64& rng) {
  sluice::checkpoint c;
  c.flow = 7;
  const std::size_t parts = 1 + rng() % 3;
  for (std::size_t i = 0; i < parts; ++i) {
    std::string bytes(rng() % 2000, '\0');
    for (char& b : bytes) {
      b = static_cast<char>(rng());
    }
    c.add("part" + std::to_string(i), std::move(bytes));
  }
  return c;
}

}  // namespace

TEST_CASE("kafka_checkpoint_store: the newest save of each name is what any store on the topic loads") {
  const std::string topic = fresh_topic("ckpt-topic");
  const brokers_for_test brokers(topic);
  const sluice::kafka_checkpoint_options opts{.brokers = brokers.list(), .topic = topic, .key_prefix = "group/"};
  const sluice::kafka_checkpoint_store writer(opts);
  CHECK(!writer.load("sales/0", 7).has_value());
  // Random saves over a few names, several of each, loaded between saves by the writer itself.
  std::mt19937_64 rng(41);
  std::map<std::string, sluice::checkpoint> newest;
  for (int i = 0; i < 40; ++i) {
    const std::string name = "sales/" + std::to_string(rng() % 4);
    newest[name] = random_checkpoint(rng);
    writer.save(name, newest[name]);
    if (i % 10 == 9) {
      const auto got = writer.load(name, 7);
      REQUIRE(got.has_value());
      CHECK(got->parts == newest[name].parts);
    }
  }
  // A store that starts afterwards (another machine) reads the topic from its beginning.
  const sluice::kafka_checkpoint_store reader(opts);
  for (const auto& [name, c] : newest) {
    const auto got = reader.load(name, 7);
    REQUIRE(got.has_value());
    CHECK(got->flow == 7);
    CHECK(got->parts == c.parts);
  }
  CHECK(reader.messages_read() == 40);
  CHECK(!reader.load("sales/9", 7).has_value());
  // Another group's prefix keeps its own names apart; another flow's checkpoint is refused.
  sluice::kafka_checkpoint_options other_group = opts;
  other_group.key_prefix = "other/";
  CHECK(!sluice::kafka_checkpoint_store(other_group).load(newest.begin()->first, 7).has_value());
  CHECK_THROWS_WITH_AS((void)reader.load(newest.begin()->first, 8), doctest::Contains("written by another flow"),
                       sluice::checkpoint_error);
}

TEST_CASE("kafka_checkpoint_store: a later save by another process is seen at the next load, which reads only it") {
  const std::string topic = fresh_topic("ckpt-tail");
  const brokers_for_test brokers(topic);
  const sluice::kafka_checkpoint_options opts{.brokers = brokers.list(), .topic = topic, .key_prefix = "g/"};
  const sluice::kafka_checkpoint_store here(opts);
  const sluice::kafka_checkpoint_store there(opts);  // the instance that held the partition before
  std::mt19937_64 rng(43);
  const sluice::checkpoint first = random_checkpoint(rng);
  there.save("t/1", first);
  REQUIRE(here.load("t/1", 7).has_value());
  CHECK(here.load("t/1", 7)->parts == first.parts);
  const std::uint64_t read = here.messages_read();

  const sluice::checkpoint at_revoke = random_checkpoint(rng);
  there.save("t/1", at_revoke);
  const auto got = here.load("t/1", 7);
  REQUIRE(got.has_value());
  CHECK(got->parts == at_revoke.parts);
  CHECK(here.messages_read() == read + 1);  // the new tail only, not the topic again

  // A tombstone (an empty value for the key) removes the checkpoint.
  sluice::kafka_sink tombstones({.brokers = brokers.list(), .topic = opts.topic});
  tombstones.send("g/t/1", "");
  tombstones.flush();
  CHECK(!here.load("t/1", 7).has_value());
}

TEST_CASE("kafka_checkpoint_store: a damaged value, a newer format or one over the size limit is refused, never used") {
  const std::string topic = fresh_topic("ckpt-bad");
  const brokers_for_test brokers(topic);
  const sluice::kafka_checkpoint_options opts{
      .brokers = brokers.list(), .topic = topic, .key_prefix = "g/", .max_bytes = 4096};
  const sluice::kafka_checkpoint_store store(opts);
  std::mt19937_64 rng(47);
  sluice::checkpoint c;
  c.flow = 7;
  c.add("state", "some state");
  const std::string good = sluice::encode_checkpoint(c);
  sluice::kafka_sink raw({.brokers = brokers.list(), .topic = opts.topic});
  const auto stored = [&](const std::string& value) {
    raw.send("g/t/0", value);
    raw.flush();
    return [&] { return store.load("t/0", 7); };
  };

  std::string damaged = good;
  damaged.back() ^= 0x20;
  const std::string where = "topic " + opts.topic + " key g/t/0 (partition 0, offset";
  CHECK_THROWS_WITH_AS(stored(damaged)(), doctest::Contains(where.c_str()), sluice::checkpoint_error);
  CHECK_THROWS_WITH_AS(stored(damaged)(), doctest::Contains("crc mismatch in the body"), sluice::checkpoint_error);
  CHECK_THROWS_WITH_AS(stored(good.substr(0, 30))(), doctest::Contains("torn header"), sluice::checkpoint_error);
  std::string newer = good;  // version 2, its header CRC right: a newer build wrote it
  newer[10] = 2;
  const std::uint32_t crc = sluice::crc32c(newer.data(), 36);
  for (unsigned i = 0; i < 4; ++i) {
    newer[36 + i] = static_cast<char>((crc >> (8U * i)) & 0xFFU);
  }
  CHECK_THROWS_WITH_AS(stored(newer)(), doctest::Contains("format version 2 is newer"), sluice::checkpoint_error);
  // A good checkpoint saved after them is the newest again.
  store.save("t/0", c);
  REQUIRE(store.load("t/0", 7).has_value());
  CHECK(store.load("t/0", 7)->parts == c.parts);

  // Over max_bytes: refused before sending, naming the limit; the last good one stays.
  sluice::checkpoint big = random_checkpoint(rng);
  big.add("more", std::string(5000, 'x'));
  CHECK_THROWS_WITH_AS(store.save("t/0", big), doctest::Contains("more than the checkpoint topic's limit of 4096"),
                       sluice::checkpoint_error);
  CHECK(store.load("t/0", 7)->parts == c.parts);
}
