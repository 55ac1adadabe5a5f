// End to end over Kafka (built only with the meson option `kafka`): kafka_test_cluster hosts
// librdkafka's mock cluster (3 brokers, a topic of 3 partitions) on loopback; send_lines
// --kafka produces a gen_sales file to it in small messages; `sales QUERY --kafka ... --until-end`
// gives batch mode's answer over the same file, a malformed row among them a bad record, not a
// loss. With SLUICE_KAFKA_BROKERS set (a real cluster whose brokers auto-create topics), the
// same runs go there instead of the mock cluster.
#include <doctest/doctest.h>

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "e2e_support.hpp"

#if defined(KAFKA_TEST_CLUSTER_BIN)

namespace {

using namespace e2e;

/// Runs the shell snippet `then` with $brokers set: SLUICE_KAFKA_BROKERS if given, else a mock
/// cluster started here (killed when `then` ends) with `topics` (NAME:PARTITIONS ...).
run_result with_kafka(const std::string& topics, const std::string& then) {
  static int calls = 0;
  const std::string out = tmp("kafka-cluster-" + std::to_string(++calls)).string();
  std::string start_cluster = "brokers=\"$SLUICE_KAFKA_BROKERS\"\ncpid=\n"
                              "if [ -z \"$brokers\" ]; then\n  " +
                              shell_quote(KAFKA_TEST_CLUSTER_BIN) + " --brokers 3";
  for (std::size_t at = 0; at < topics.size();) {
    const std::size_t end = std::min(topics.find(' ', at), topics.size());
    start_cluster += " --topic " + shell_quote(topics.substr(at, end - at));
    at = end + 1;
  }
  start_cluster += " >" + shell_quote(out) +
                   " 2>/dev/null & cpid=$!\n"
                   "  for i in $(seq 3000); do [ -s " + shell_quote(out) + " ] && break; sleep 0.01; done\n"
                   "  brokers=$(head -1 " + shell_quote(out) + ")\n"
                   "fi\n";
  const std::string script = start_cluster + "{\n" + then +
                             "\n}; status=$?\n"
                             "[ -n \"$cpid\" ] && kill $cpid && wait $cpid\n"
                             "exit $status\n";
  return run("/bin/sh", {"-c", script});
}

std::string batch_answer(const std::string& query, const std::string& file) {
  const auto r = run(SALES_BIN, {query, "--input", file});
  REQUIRE(r.status == 0);
  return sorted_rows(r.out);
}

}  // namespace

TEST_CASE("sales --kafka: the rows of a 3-partition topic give batch mode's answer; a bad row is a bad record") {
  const std::string file = tmp("kafka-sales.csv").string();
  REQUIRE(run(GEN_SALES_BIN, {"30000", file, "--seed", "17"}).status == 0);
  std::string text = read_file(file);
  const std::string bad_row = "not,a,sales,row\n";
  const std::size_t second_line = text.find('\n') + 1;
  write_file(file + ".bad", text.substr(0, second_line) + bad_row + text.substr(second_line));
  const std::string topic = "sales-" + std::to_string(::getpid());  // fresh on a real cluster too

  const std::string by_category = tmp("kafka-by-category.csv").string();
  const std::string region_minute = tmp("kafka-region-minute.csv").string();
  const std::string sales = shell_quote(SALES_BIN);
  const std::string consume = " --kafka \"$brokers\" --topic " + topic + " --until-end --threads 2";
  const auto r = with_kafka(
      topic + ":3",
      shell_quote(SEND_LINES_BIN) + " " + shell_quote(file + ".bad") + " --kafka \"$brokers\" --topic " + topic +
          " --message-bytes 2000 || exit 1\n"
          // Both at once, each in its own group (a group's first join waits 3 s in the mock cluster).
          + sales + " by-category" + consume + " --group g1 >" + shell_quote(by_category) + " & first=$!\n" + sales +
          " region-minute" + consume + " --group g2 --max-delay 1h >" + shell_quote(region_minute) +
          " || exit 1\nwait $first");
  INFO(r.err);
  REQUIRE(r.status == 0);
  CHECK(contains(r.err, "lines in"));
  if (std::getenv("SLUICE_KAFKA_BROKERS") == nullptr) {
    CHECK(contains(r.err, "(3 partitions)"));  // a real cluster makes the topic with its own default
  }
  // Each query read every row once, the bad one dead-lettered with its partition.
  CHECK(contains(r.err, "by-category: 30000 rows received"));
  CHECK(contains(r.err, "region-minute: 30000 rows received"));
  CHECK(contains(r.err, "1 bad records"));
  CHECK(contains(r.err, "bad record: " + topic + "/"));
  CHECK(sorted_rows(read_file(by_category)) == batch_answer("by-category", file));
  CHECK(sorted_rows(read_file(region_minute)) == batch_answer("region-minute", file));
}

TEST_CASE("sales --kafka --checkpoint-dir: killed with kill -9 mid-stream, a restart resumes from the checkpoints, exactly") {
  const std::string file = tmp("kafka-ckpt-sales.csv").string();
  REQUIRE(run(GEN_SALES_BIN, {"30000", file, "--seed", "23"}).status == 0);
  const std::string topic = "ckpt-" + std::to_string(::getpid());
  const std::string dir = tmp("kafka-ckpt-dir").string();
  const std::string out = tmp("kafka-ckpt-by-category.csv").string();
  const std::string sales = shell_quote(SALES_BIN);
  const std::string consume = " --kafka \"$brokers\" --topic " + topic + " --threads 2 --checkpoint-dir " +
                              shell_quote(dir) + " --checkpoint-every 20ms";
  // The killed run's group still holds its partitions until its session times out (45 s), as a
  // real dead member's would: the restart joins another group, so that it is given them now.
  const auto r = with_kafka(
      topic + ":3",
      "rm -rf " + shell_quote(dir) + "\n" + shell_quote(SEND_LINES_BIN) + " " + shell_quote(file) +
          " --kafka \"$brokers\" --topic " + topic + " --message-bytes 600 || exit 1\n" + sales + " by-category" +
          consume + " --group killed >/dev/null 2>&1 & victim=$!\n"
          "for i in $(seq 3000); do ls " + shell_quote(dir) + "/*.ckpt >/dev/null 2>&1 && break; sleep 0.01; done\n"
          "kill -9 $victim; wait $victim\n" +
          sales + " by-category" + consume + " --group restarted --until-end >" + shell_quote(out) + " || exit 1");
  INFO(r.err);
  REQUIRE(r.status == 0);
  CHECK(sorted_rows(read_file(out)) == batch_answer("by-category", file));
  // The restart took partitions from checkpoints and did not read their rows again.
  CHECK(contains(r.err, "partitions restored from checkpoints"));
  CHECK(!contains(r.err, " 0 partitions restored"));
  const std::size_t at = r.err.find("by-category: ");
  REQUIRE(at != std::string::npos);
  const long long rows_read = std::stoll(r.err.substr(at + 13));
  CHECK(rows_read < 30000);
}

TEST_CASE("sales --kafka without --topic or --group is a usage error; --topic alone too") {
  CHECK(run(SALES_BIN, {"by-category", "--kafka", "127.0.0.1:1", "--group", "g"}).status != 0);
  CHECK(run(SALES_BIN, {"by-category", "--kafka", "127.0.0.1:1", "--topic", "t"}).status != 0);
  const auto r = run(SALES_BIN, {"by-category", "--input", "x.csv", "--topic", "t"});
  CHECK(r.status != 0);
  CHECK(contains(r.err, "--topic, --group, --until-end and --checkpoint-dir are for --kafka"));
}

#endif  // KAFKA_TEST_CLUSTER_BIN
