// End to end, stream mode: `sales QUERY --listen` receiving a gen_sales file over TCP from
// send_lines gives the batch answer over the same file (the promise of DESIGN §3), whatever
// the number of connections and however the rows are spread over them; late rows go to the
// late output and are counted; SIGTERM stops it gracefully with nothing received lost.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "e2e_support.hpp"

#if !defined(SALES_BIN) || !defined(GEN_SALES_BIN) || !defined(SEND_LINES_BIN)
#error "SALES_BIN, GEN_SALES_BIN and SEND_LINES_BIN must name the binaries (tests/meson.build passes them)"
#endif

namespace {

using namespace e2e;

run_result with_stream_server(const std::vector<std::string>& sales_args, const std::string& then) {
  return with_server(SALES_BIN, sales_args, then);
}

std::string send(const std::string& file, int connections, const std::string& split) {
  return send_lines_to_port(SEND_LINES_BIN, file, connections, split);
}

const std::string& sales_file() {
  static const std::string path = [] {
    const std::string p = tmp("stream-sales.csv").string();
    REQUIRE(run(GEN_SALES_BIN, {"40000", p, "--seed", "11"}).status == 0);
    return p;
  }();
  return path;
}

std::string batch_answer(const std::string& query, const std::string& file) {
  const auto r = run(SALES_BIN, {query, "--input", file});
  REQUIRE(r.status == 0);
  return sorted_rows(r.out);
}

}  // namespace

TEST_CASE("sales --listen: every query over 1..4 connections, interleaved or in chunks, equals batch mode") {
  const std::string& file = sales_file();
  for (const std::string q : {"by-category", "region-minute", "top-products", "popular"}) {
    const std::string expected = batch_answer(q, file);
    for (const auto& run_case : std::vector<std::pair<int, std::string>>{
             {1, "interleaved"}, {3, "chunks"}, {4, "interleaved"}, {2, "chunks"}}) {
      const int connections = run_case.first;  // not structured bindings: clang 14 cannot capture them
      const std::string& split = run_case.second;
      if (q == "popular" && connections < 3) {
        continue;  // 5 windows an event: the slowest query; more than one connection, both splits
      }
      CAPTURE(q);
      CAPTURE(connections);
      CAPTURE(split);
      const auto r = with_stream_server({q, "--connections", std::to_string(connections), "--max-delay", "1s",
                                         "--threads", connections % 2 == 0 ? "2" : "1"},
                                        send(file, connections, split));
      CHECK(r.status == 0);
      CHECK(sorted_rows(r.out) == expected);
      CHECK(contains(r.err, "40000 rows received over " + std::to_string(connections) + " connections"));
      CHECK(contains(r.err, "0 bad records, 0 late"));
    }
  }
}

TEST_CASE("sales --listen: rows later than --max-delay go to --late-output, counted; the rest equals batch") {
  const std::string file = tmp("stream-late.csv").string();
  REQUIRE(run(GEN_SALES_BIN, {"30000", file, "--seed", "5", "--late-fraction", "0.02", "--max-lateness", "180000"})
              .status == 0);
  const std::string late = tmp("late.csv").string();
  const auto r = with_stream_server(
      {"region-minute", "--connections", "2", "--max-delay", "500ms", "--late-output", late}, send(file, 2, "chunks"));
  REQUIRE(r.status == 0);
  const auto late_rows = lines_of(read_file(late));
  CHECK(late_rows.size() > 100);  // 2% of 30000 rows are up to 3 minutes late: most miss their window
  CHECK(contains(r.err, std::to_string(late_rows.size()) + " late"));

  // The batch answer over the late rows alone, plus the stream answer, is the batch answer over all.
  const std::string late_file = tmp("late-with-header.csv").string();
  write_file(late_file, lines_of(read_file(file)).front() + "\n" + read_file(late));
  std::map<std::string, std::int64_t> counts;  // region,window_start -> cnt
  auto add = [&](const std::string& csv, std::int64_t sign) {
    const auto lines = lines_of(csv);
    for (std::size_t i = 1; i < lines.size(); ++i) {
      const auto f = split(lines[i]);
      counts[f[0] + "," + f[1]] += sign * std::stoll(f[2]);
    }
  };
  add(r.out, 1);
  add(run(SALES_BIN, {"region-minute", "--input", late_file}).out, 1);
  add(run(SALES_BIN, {"region-minute", "--input", file}).out, -1);
  for (const auto& entry : counts) {
    CAPTURE(entry.first);
    CHECK(entry.second == 0);
  }
}

TEST_CASE("sales --listen: SIGTERM stops gracefully: exit 0 and every received row is in the answer") {
  const std::string& file = sales_file();
  // No --connections: the server runs until the signal. Wait until it has taken all rows in (its
  // live counters say so), then signal it.
  const auto r = with_stream_server({"by-category", "--stats-every", "20ms"},
                                    send(file, 2, "interleaved") +
                                        "\nfor i in $(seq 1500); do grep -q 'events=40000 ' \"$err\" && break; "
                                        "sleep 0.02; done\nkill -TERM $pid");
  CHECK(r.status == 0);
  CHECK(sorted_rows(r.out) == batch_answer("by-category", file));
}

TEST_CASE("sales --listen: usage errors") {
  CHECK(run(SALES_BIN, {"by-category"}).status == 2);  // neither --input nor --listen
  CHECK(run(SALES_BIN, {"by-category", "--input", "x.csv", "--listen", "127.0.0.1:0"}).status == 2);
  CHECK(run(SALES_BIN, {"by-category", "--listen", "127.0.0.1:0", "--max-delay", "5 parsecs"}).status == 2);
  const auto bad = run(SALES_BIN, {"by-category", "--listen", "127.0.0.1:99999"});
  CHECK(bad.status != 0);
  CHECK(contains(bad.err, "bad port"));
}
