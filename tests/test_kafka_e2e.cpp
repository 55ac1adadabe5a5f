// End to end over Kafka (built only with the meson option `kafka`): kafka_test_cluster hosts
// librdkafka's mock cluster (3 brokers, a topic of 3 partitions) on loopback; send_lines
// --kafka produces a gen_sales file to it in small messages; `sales QUERY --kafka ... --until-end`
// gives batch mode's answer over the same file, a malformed row among them a bad record, not a
// loss. With SLUICE_KAFKA_BROKERS set (a real cluster whose brokers auto-create topics), the
// same runs go there instead of the mock cluster.
#include <doctest/doctest.h>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "background.hpp"
#include "e2e_support.hpp"
#include "http_get.hpp"

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
          " region-minute" + consume + " --group g2 --max-delay 1h --sink-topic " + topic + "-rows >" +
          shell_quote(region_minute) +
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
  // --sink-topic: Kafka acknowledged every row printed.
  const std::size_t rows = lines_of(read_file(region_minute)).size() - 1;
  CHECK(contains(r.err, "; " + std::to_string(rows) + " rows sent to " + topic + "-rows"));
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

namespace {

/// How many times `what` occurs in `text`.
std::size_t occurrences(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) {
    ++n;
  }
  return n;
}

/// The brokers of SLUICE_KAFKA_BROKERS, or of a mock cluster this object runs (with `topics`,
/// each NAME:PARTITIONS).
class kafka_brokers {
 public:
  explicit kafka_brokers(const std::vector<std::string>& topics) {
    if (const char* real = std::getenv("SLUICE_KAFKA_BROKERS"); real != nullptr && *real != '\0') {
      brokers_ = real;
      return;
    }
    std::vector<std::string> args{"--brokers", "3"};
    for (const std::string& topic : topics) {
      args.insert(args.end(), {"--topic", topic});
    }
    cluster_.emplace(KAFKA_TEST_CLUSTER_BIN, args);
    const auto deadline = steady_clock::now() + patience;
    while (cluster_->out().find('\n') == std::string::npos) {
      const bool waiting = !cluster_->exited() && steady_clock::now() < deadline;
      REQUIRE_MESSAGE(waiting, "kafka_test_cluster did not start: " << cluster_->err());
      std::this_thread::sleep_for(poll_pause);
    }
    brokers_ = lines_of(cluster_->out()).front();
  }
  [[nodiscard]] const std::string& list() const { return brokers_; }
  /// Whether this is the mock cluster, whose brokers a test can take down.
  [[nodiscard]] bool mock() const { return cluster_.has_value(); }
  /// Takes broker 1 of the mock cluster down (or back up) and waits until it says so.
  void broker_down(bool down) {
    REQUIRE(cluster_);
    const std::string said = std::string("broker 1 ") + (down ? "down" : "up");
    const std::size_t before = occurrences(cluster_->err(), said);
    cluster_->signal(down ? SIGUSR1 : SIGUSR2);
    const auto deadline = steady_clock::now() + patience;
    while (occurrences(cluster_->err(), said) == before) {
      REQUIRE_MESSAGE(steady_clock::now() < deadline, "kafka_test_cluster did not take " << said);
      std::this_thread::sleep_for(poll_pause);
    }
  }

 private:
  std::optional<background> cluster_;
  std::string brokers_;
};

/// A gen_sales file of `rows` rows, stretched to a row every 10 ms (so that windows fire within
/// it), written whole and as two halves: {whole, first half, second half}.
std::vector<std::string> sales_in_halves(const std::string& name, int rows, int seed) {
  const std::string file = tmp(name + ".csv").string();
  REQUIRE(run(GEN_SALES_BIN, {std::to_string(rows), file, "--seed", std::to_string(seed)}).status == 0);
  const auto lines = lines_of(read_file(file));
  const long long start = std::stoll(lines[1].substr(0, lines[1].find(',')));
  std::vector<std::string> text(3, lines[0] + "\n");
  for (std::size_t i = 1; i < lines.size(); ++i) {
    const std::size_t comma = lines[i].find(',');
    const long long ts = std::stoll(lines[i].substr(0, comma));
    const std::string row = std::to_string(start + (ts - start) * 10) + lines[i].substr(comma) + "\n";
    text[0] += row;
    text[i <= lines.size() / 2 ? 1 : 2] += row;
  }
  std::vector<std::string> files{file, tmp(name + "-first.csv").string(), tmp(name + "-second.csv").string()};
  for (std::size_t i = 0; i < 3; ++i) {
    write_file(files[i], text[i]);
  }
  return files;
}

/// One `sales QUERY --kafka ... --serve 127.0.0.1:0` instance of a group, ready once serving.
class group_instance {
 public:
  group_instance(const std::string& query, const std::vector<std::string>& args) : program_(SALES_BIN, with(query, args)) {
    const auto deadline = steady_clock::now() + patience;
    while ((port_ = port_after(program_.err(), "serving on http://")) == 0) {
      const bool waiting = !program_.exited() && steady_clock::now() < deadline;
      REQUIRE_MESSAGE(waiting, "sales did not start serving: " << program_.err());
      std::this_thread::sleep_for(poll_pause);
    }
  }
  [[nodiscard]] http_reply get(const std::string& path) const { return http_get(port_, path); }
  [[nodiscard]] std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  void kill9() { program_.signal(SIGKILL); program_.wait(); }
  run_result stop() {
    program_.signal(SIGTERM);
    return program_.wait();
  }

 private:
  static std::vector<std::string> with(const std::string& query, std::vector<std::string> args) {
    args.insert(args.begin(), query);
    args.insert(args.end(), {"--serve", "127.0.0.1:0"});
    return args;
  }
  background program_;
  int port_ = 0;
};

/// Polls GET /QUERY on `instance` until it answers 200 with `expected` (sorted); fails after
/// `patience` with the last answer. While partitions move it answers 503.
void wait_for_answer(const group_instance& instance, const std::string& query, const std::string& expected,
                     const std::string& when) {
  const auto deadline = steady_clock::now() + patience;
  http_reply last;
  while (steady_clock::now() < deadline) {
    last = instance.get("/" + query);
    if (last.status == 200 && sorted_rows(last.body) == expected) {
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  FAIL("GET /" << query << " on " << instance.address() << " " << when << ": never batch mode's answer; last: "
                << last.status << "\n" << last.body);
}

/// The rows an instance's summary line says it received ("QUERY: N rows received ...").
long long rows_received(const std::string& err, const std::string& query) {
  const std::size_t at = err.find(query + ": ");
  REQUIRE_MESSAGE(at != std::string::npos, err);
  return std::stoll(err.substr(at + query.size() + 2));
}

}  // namespace

TEST_CASE("three sales --kafka instances in one group: GET /QUERY on any is batch mode's answer, before and after "
          "one is killed with kill -9 mid-stream, when it comes back, and after a restart of all three") {
  const std::string query = "region-minute";
  // gen_sales writes a row a millisecond: stretched 10x, windows fire before the kill (and must
  // survive it in the checkpoints as fired rows, not state). The first half is in the topic
  // before the kill; the second comes after it.
  const auto files = sales_in_halves("group-sales", 40000, 29);
  const std::string& file = files[0];
  const std::string& first_file = files[1];
  const std::string& second_file = files[2];
  const std::string topic = "group-" + std::to_string(::getpid());
  const kafka_brokers brokers({topic + ":6"});
  if (!brokers.mock()) {
    // It needs a topic of 6 partitions (a real cluster makes one with its own default) and a
    // 3 s session timeout (below a real broker's group.min.session.timeout.ms).
    MESSAGE("SLUICE_KAFKA_BROKERS is set: this test runs against the mock cluster only");
    return;
  }
  auto send = [&](const std::string& f) {
    const auto r = run(SEND_LINES_BIN, {f, "--kafka", brokers.list(), "--topic", topic, "--message-bytes", "600"});
    REQUIRE_MESSAGE(r.status == 0, r.err);
  };
  send(first_file);

  const std::string dir = tmp("group-checkpoints").string();
  const std::vector<std::string> args{"--kafka", brokers.list(), "--topic", topic, "--group", topic,
                                      "--threads", "1", "--max-delay", "5s", "--checkpoint-dir", dir,
                                      "--checkpoint-every", "50ms", "--session-timeout", "3s",
                                      "--members-topic", topic + "-members"};
  std::vector<std::unique_ptr<group_instance>> instances;
  for (int i = 0; i < 3; ++i) {
    instances.push_back(std::make_unique<group_instance>(query, args));
  }
  // Every instance answers for all six partitions, whoever holds them.
  const std::string half = sorted_rows(run(SALES_BIN, {query, "--input", first_file}).out);
  for (const auto& instance : instances) {
    wait_for_answer(*instance, query, half, "after the first half");
  }
  // Every partition is held, read to its end: no lag, in /group and in GET /metrics (valid
  // Prometheus text, with each held partition's lag and checkpoint age).
  const http_reply group = instances[0]->get("/group");
  REQUIRE(group.status == 200);
  INFO(group.body);
  for (int p = 0; p < 6; ++p) {
    CHECK(contains(group.body, "\"input\":\"" + topic + "/" + std::to_string(p) + "\""));
  }
  CHECK(occurrences(group.body, "\"lag\":0,") == 6);
  std::size_t lags = 0;
  for (const auto& instance : instances) {
    const http_reply metrics = instance->get("/metrics");
    REQUIRE(metrics.status == 200);
    const std::string page = tmp("group-metrics.txt").string();
    write_file(page, metrics.body);
    const auto samples = run("/usr/bin/python3", {CHECK_PROMETHEUS, page});
    REQUIRE_MESSAGE(samples.status == 0, samples.err << "\n" << metrics.body);
    for (const auto& line : lines_of(samples.out)) {
      if (line.starts_with("sluice_kafka_partition_lag_messages{")) {
        CHECK(line.ends_with(" 0"));
        ++lags;
      }
    }
    CHECK(contains(samples.out, "sluice_checkpoint_age_seconds{"));
  }
  CHECK(lags == 6);  // each partition held by exactly one instance

  // kill -9 one instance, then the rest of the rows: its partitions move to the other two with
  // their checkpoints, and the answer is batch mode's over the whole file again.
  instances[2]->kill9();
  send(second_file);
  const std::string whole = sorted_rows(run(SALES_BIN, {query, "--input", file}).out);
  wait_for_answer(*instances[0], query, whole, "after the kill");
  wait_for_answer(*instances[1], query, whole, "after the kill");

  // It comes back (a new process): the group moves partitions to it again, from their
  // checkpoints, and it answers for the whole group too.
  instances[2] = std::make_unique<group_instance>(query, args);
  wait_for_answer(*instances[2], query, whole, "after coming back");
  const auto deadline = steady_clock::now() + patience;
  while (!contains(instances[0]->get("/group").body, "\"owner\":\"" + instances[2]->address() + "\"")) {
    REQUIRE_MESSAGE(steady_clock::now() < deadline, "no partition moved back to " << instances[2]->address());
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  wait_for_answer(*instances[0], query, whole, "after partitions moved back");

  // Stopped (SIGTERM: a final checkpoint each), the three read fewer rows than the file holds:
  // the dead one's partitions resumed from their checkpoints, not from offset 0.
  long long read = 0;
  for (auto& instance : instances) {
    const run_result r = instance->stop();
    INFO(r.err);
    CHECK(r.status == 0);
    read += rows_received(r.err, query);
  }
  CHECK(read < 40000);
  // Started again, all three resume from the checkpoints: the whole answer, and nothing reread.
  for (auto& instance : instances) {
    instance = std::make_unique<group_instance>(query, args);
  }
  for (const auto& instance : instances) {
    wait_for_answer(*instance, query, whole, "after a restart of all three");
  }
  for (auto& instance : instances) {
    const run_result r = instance->stop();
    INFO(r.err);
    CHECK(r.status == 0);
    CHECK(rows_received(r.err, query) == 0);
  }
}

TEST_CASE("sales --kafka --checkpoint-topic: killed with kill -9 mid-stream, an instance elsewhere resumes from the "
          "topic's checkpoints, exactly") {
  const std::string query = "by-category";
  const auto files = sales_in_halves("topic-ckpt-sales", 20000, 43);
  const std::string topic = "topic-ckpt-" + std::to_string(::getpid());
  const std::string checkpoints = topic + "-checkpoints";
  // On a real cluster the checkpoint topic is created by sales (the admin API); the mock
  // cluster does not answer CreateTopics, so it is made with the cluster.
  const kafka_brokers brokers({topic + ":3", checkpoints + ":1"});
  auto send = [&](const std::string& f) {
    const auto r = run(SEND_LINES_BIN, {f, "--kafka", brokers.list(), "--topic", topic, "--message-bytes", "600"});
    REQUIRE_MESSAGE(r.status == 0, r.err);
  };
  send(files[1]);
  // No --checkpoint-dir anywhere: the checkpoints are in the topic only. The successor joins the
  // same group (the checkpoints' keys name it), so it is given the partitions once the killed
  // instance's session has timed out (3 s on the mock cluster; 6 s, a real broker's minimum).
  const std::vector<std::string> args{"--kafka", brokers.list(), "--topic", topic, "--group", topic,
                                      "--threads", "2", "--checkpoint-topic", checkpoints,
                                      "--checkpoint-every", "20ms", "--session-timeout", brokers.mock() ? "3s" : "6s"};
  std::vector<std::string> victim_args = args;
  victim_args.insert(victim_args.end(), {"--members-topic", topic + "-members"});
  group_instance victim(query, victim_args);
  // Killed once each of the three partitions has a checkpoint past offset 0 in the topic (a
  // partition's offset in GET /group is its latest checkpoint's, published once Kafka has it).
  const auto deadline = steady_clock::now() + patience;
  while (true) {
    const std::string body = victim.get("/group").body;
    std::size_t saved = 0;
    for (std::size_t at = body.find("\"offset\":"); at != std::string::npos; at = body.find("\"offset\":", at + 1)) {
      saved += std::stoll(body.substr(at + 9)) > 0 ? 1 : 0;
    }
    if (saved == 3) {
      break;
    }
    REQUIRE_MESSAGE(steady_clock::now() < deadline, "no checkpoint of every partition: " << body);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  victim.kill9();
  send(files[2]);

  // The successor runs in an empty directory of its own: what it restores can only come from Kafka.
  const std::string elsewhere = tmp("topic-ckpt-elsewhere").string();
  std::filesystem::remove_all(elsewhere);
  std::filesystem::create_directories(elsewhere);
  std::string command = "cd " + shell_quote(elsewhere) + " && exec " + shell_quote(SALES_BIN) + " " + query;
  for (const std::string& a : args) {
    command += " " + shell_quote(a);
  }
  const run_result r = run("/bin/sh", {"-c", command + " --until-end"});
  INFO(r.err);
  REQUIRE(r.status == 0);
  CHECK(sorted_rows(r.out) == sorted_rows(run(SALES_BIN, {query, "--input", files[0]}).out));
  CHECK(contains(r.err, "sales: checkpoints in topic " + checkpoints));
  CHECK(contains(r.err, "; 3 partitions restored from checkpoints"));
  CHECK(rows_received(r.err, query) < 20000);  // what the checkpoints covered was not read again
  CHECK(std::filesystem::is_empty(elsewhere));
}

TEST_CASE("a broker taken down and brought back up mid-stream: sales --kafka loses nothing") {
  const std::string query = "region-minute";
  const auto files = sales_in_halves("broker-sales", 20000, 37);
  const std::string topic = "broker-" + std::to_string(::getpid());
  kafka_brokers brokers({topic + ":6"});
  if (!brokers.mock()) {
    MESSAGE("SLUICE_KAFKA_BROKERS is set: a real cluster's brokers are not this test's to take down");
    return;
  }
  const std::vector<std::string> send{"--kafka", brokers.list(), "--topic", topic, "--message-bytes", "600"};
  std::vector<std::string> first_send{files[1]};
  first_send.insert(first_send.end(), send.begin(), send.end());
  REQUIRE(run(SEND_LINES_BIN, first_send).status == 0);
  group_instance instance(query, {"--kafka", brokers.list(), "--topic", topic, "--group", topic, "--threads", "1",
                                  "--max-delay", "5s", "--checkpoint-every", "50ms", "--members-topic",
                                  topic + "-members"});
  wait_for_answer(instance, query, sorted_rows(run(SALES_BIN, {query, "--input", files[1]}).out),
                  "after the first half");

  // Broker 1 leads some partitions: while it is down, their rows wait in the producer and the
  // consumer cannot fetch them; the other brokers' partitions go on.
  brokers.broker_down(true);
  std::vector<std::string> second_send{files[2]};
  second_send.insert(second_send.end(), send.begin(), send.end());
  background sender(SEND_LINES_BIN, second_send);
  std::this_thread::sleep_for(std::chrono::seconds(1));  // fault injection: how long it stays down
  brokers.broker_down(false);
  const run_result sent = sender.wait();
  REQUIRE_MESSAGE(sent.status == 0, sent.err);
  wait_for_answer(instance, query, sorted_rows(run(SALES_BIN, {query, "--input", files[0]}).out),
                  "after broker 1 came back");
}

TEST_CASE("sales --kafka without --topic or --group is a usage error; --topic alone too; two checkpoint homes too") {
  CHECK(run(SALES_BIN, {"by-category", "--kafka", "127.0.0.1:1", "--group", "g"}).status != 0);
  CHECK(run(SALES_BIN, {"by-category", "--kafka", "127.0.0.1:1", "--topic", "t"}).status != 0);
  const auto r = run(SALES_BIN, {"by-category", "--input", "x.csv", "--topic", "t"});
  CHECK(r.status != 0);
  CHECK(contains(r.err, "--topic, --group, --until-end, --checkpoint-dir, --checkpoint-topic and --sink-topic are for --kafka"));
  const auto both = run(SALES_BIN, {"by-category", "--kafka", "127.0.0.1:1", "--topic", "t", "--group", "g",
                                     "--checkpoint-dir", "d", "--checkpoint-topic", "c"});
  CHECK(both.status != 0);
  CHECK(contains(both.err, "give --checkpoint-dir DIR or --checkpoint-topic T, not both"));
}

#endif  // KAFKA_TEST_CLUSTER_BIN
