// End to end, the nexmark program: for each query, batch mode over gen_nexmark's JSON lines file,
// batch mode over the in-process generator with the same settings, and stream
// mode over 3 TCP connections (the file's lines interleaved, so out of order within the max
// delay) print the same rows; a malformed line is a bad record, not a crash; --output none
// counts the rows without writing them.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "e2e_support.hpp"

// Built without NEXMARK_BIN (the sanitizer builds do not build the nexmark program), this file is empty.
#if defined(NEXMARK_BIN)
#if !defined(GEN_NEXMARK_BIN) || !defined(SEND_LINES_BIN)
#error "GEN_NEXMARK_BIN and SEND_LINES_BIN must name the binaries (tests/meson.build passes them)"
#endif

namespace {

using namespace e2e;

constexpr const char* events = "15000";
constexpr const char* rate = "500";  // 30 s of event time: several windows of every query
constexpr const char* disorder = "1s";

const std::string& events_file() {
  static const std::string path = [] {
    const std::string p = tmp("nexmark-events.jsonl").string();
    REQUIRE(run(GEN_NEXMARK_BIN, {events, p, "--seed", "5", "--rate", rate, "--out-of-order", disorder}).status == 0);
    return p;
  }();
  return path;
}

}  // namespace

TEST_CASE("nexmark: every query gives the same rows from the file, the generator and TCP") {
  const std::string side = tmp("nexmark-side.csv").string();  // q13's table: key,value, no header
  std::string table;
  for (int key = 0; key < 10'000; key += 3) {
    table += std::to_string(key) + ",value " + std::to_string(key % 97) + "\n";
  }
  write_file(side, table);
  for (const std::string query : {"q0", "q1", "q2", "q3", "q4", "q5", "q6", "q7", "q8", "q9", "q10", "q11", "q13",
                                  "q14", "q15", "q16", "q17", "q18", "q19", "q20", "q21", "q22"}) {
    CAPTURE(query);
    const auto batch = run(NEXMARK_BIN, {query, "--input", events_file(), "--threads", "2", "--side-input", side});
    REQUIRE(batch.status == 0);
    const std::string expected = sorted_rows(batch.out);
    CHECK(lines_of(expected).size() > 1);
    CHECK(contains(batch.err, "15000 events"));

    // The generator feeds the same batch runner as the file, on one thread.
    const auto generated = run(NEXMARK_BIN, {query, "--generate", events, "--seed", "5", "--rate", rate,
                                             "--out-of-order", disorder, "--threads", "1", "--side-input", side});
    CHECK(generated.status == 0);
    CHECK(sorted_rows(generated.out) == expected);

    const auto stream = with_server(NEXMARK_BIN, {query, "--connections", "3", "--max-delay", "2s", "--side-input", side},
                                    send_lines_to_port(SEND_LINES_BIN, events_file(), 3, "interleaved") +
                                        " --no-header");
    CHECK(stream.status == 0);
    CHECK(sorted_rows(stream.out) == expected);
    CHECK(contains(stream.err, ": 15000 events, "));
    CHECK(contains(stream.err, " over 3 connections, 0 bad records, 0 late"));
  }
}

TEST_CASE("nexmark q12 (windows of the wall clock): the bid counts add up to the bids, from the file and TCP") {
  const auto bids = run(NEXMARK_BIN, {"q0", "--input", events_file(), "--output", "none"});
  REQUIRE(bids.status == 0);
  const auto total_of = [](const std::string& csv) {
    long long total = 0;
    for (const std::string& line : lines_of(csv)) {
      if (line.rfind("bidder,", 0) != 0) {
        total += std::stoll(line.substr(line.find(',') + 1));  // bid_count
      }
    }
    return std::to_string(total);
  };
  const auto batch = run(NEXMARK_BIN, {"q12", "--input", events_file()});
  REQUIRE(batch.status == 0);
  CHECK(contains(bids.err, ", " + total_of(batch.out) + " rows"));
  const auto stream = with_server(NEXMARK_BIN, {"q12", "--connections", "3", "--max-delay", "60s"},
                                  send_lines_to_port(SEND_LINES_BIN, events_file(), 3, "interleaved") + " --no-header");
  REQUIRE(stream.status == 0);
  CHECK(contains(bids.err, ", " + total_of(stream.out) + " rows"));
  CHECK(contains(stream.err, " 0 late"));
}

TEST_CASE("nexmark q13 without --side-input is a usage error, not a crash") {
  const auto r = run(NEXMARK_BIN, {"q13", "--input", events_file()});
  CHECK(r.status != 0);
  CHECK(contains(r.err, "--side-input"));
}

TEST_CASE("nexmark: a malformed line is a bad record with its line number; --output none counts rows") {
  const std::string good = read_file(events_file());
  const std::string path = tmp("nexmark-bad.jsonl").string();
  const auto first_nl = good.find('\n');
  write_file(path, good.substr(0, first_nl + 1) + "{\"event_type\":2,\"bid\":{\"auction\":\"x\"}}\n" +
                       good.substr(first_nl + 1));
  const auto r = run(NEXMARK_BIN, {"q0", "--input", path});
  CHECK(r.status == 0);
  CHECK(contains(r.err, "1 bad records"));
  CHECK(contains(r.err, "nexmark-bad.jsonl:2: "));
  const auto counted = run(NEXMARK_BIN, {"q0", "--input", events_file(), "--output", "none"});
  CHECK(counted.status == 0);
  CHECK(counted.out.empty());
  const auto printed = run(NEXMARK_BIN, {"q0", "--input", events_file()});
  CHECK(contains(counted.err, std::to_string(lines_of(printed.out).size() - 1) + " rows"));
}

#endif  // NEXMARK_BIN
