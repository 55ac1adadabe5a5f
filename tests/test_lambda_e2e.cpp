// End to end, Lambda and Kappa over the event log (issue 4), through the real programs:
// `sales QUERY --lambda` ingesting gen_sales rows from send_lines serves, once its batch layer has
// caught up, exactly batch mode over the file sent, and so do `--log` and `--replay` over the log
// it wrote; before anything seals, the speed layer alone serves every event it accepted; kill -9
// during ingest loses nothing that reached the log, a restart cuts a torn write and counts each
// logged record once; bad rows never reach the log; a Kappa server tails a live log through a
// writer's crash. Also usage errors, and the HTTP answers to bad paths and parameters. The
// servers run on free ports and are asked over HTTP (http_get.hpp).
#include <doctest/doctest.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "e2e_support.hpp"
#include "background.hpp"
#include "http_get.hpp"
#include "sluice/store/detail/log_format.hpp"  // segment and batch header sizes, to forge a torn write

#if !defined(SALES_BIN) || !defined(GEN_SALES_BIN) || !defined(SEND_LINES_BIN) || !defined(SLUICE_LOG_BIN)
#error "SALES_BIN, GEN_SALES_BIN, SEND_LINES_BIN and SLUICE_LOG_BIN must name the binaries (tests/meson.build)"
#endif

namespace {

using namespace e2e;
namespace fs = std::filesystem;
using std::chrono::steady_clock;

/// `binary args` to its end, with the hang guard (a `--replay` must stop at the log's head).
run_result run_bounded(const std::string& binary, const std::vector<std::string>& args) {
  background program(binary, args);
  return program.wait();
}

// ---- JSON, CSV and the log as the tests read them ------------------------------------------

/// The raw text of the first member named `key` (at any depth) of a JSON object: a number,
/// true, false or null, a "string" with its quotes, or a whole {object} or [array].
std::string json_member(const std::string& json, const std::string& key) {
  const std::string name = "\"" + key + "\":";
  const std::size_t at = json.find(name);
  REQUIRE_MESSAGE(at != std::string::npos, "no member \"" << key << "\" in " << json);
  const std::size_t start = at + name.size();
  int depth = 0;
  bool in_string = false;
  std::size_t i = start;
  for (; i < json.size(); ++i) {
    const char c = json[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
        if (depth == 0) {
          return json.substr(start, i + 1 - start);
        }
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if (c == '}' || c == ']') {
      if (depth == 0) {
        break;
      }
      if (--depth == 0) {
        return json.substr(start, i + 1 - start);
      }
    } else if (c == ',' && depth == 0) {
      break;
    }
  }
  return json.substr(start, i - start);
}

std::uint64_t json_number(const std::string& json, const std::string& key) {
  return std::stoull(json_member(json, key));
}

/// The sum of column `name` over the rows of a CSV answer.
std::uint64_t column_sum(const std::string& csv, const std::string& name) {
  const auto lines = lines_of(csv);
  REQUIRE(!lines.empty());
  const auto header = split(lines[0]);
  const auto column = std::find(header.begin(), header.end(), name) - header.begin();
  REQUIRE_MESSAGE(column < static_cast<std::ptrdiff_t>(header.size()), "no column " << name << " in " << lines[0]);
  std::uint64_t sum = 0;
  for (std::size_t i = 1; i < lines.size(); ++i) {
    sum += std::stoull(split(lines[i]).at(column));
  }
  return sum;
}

/// A ?format=json answer (a row per line, an object per row, no commas inside values) back to
/// CSV: its keys as the header line, then the rows sorted.
std::string json_as_csv(const std::string& json) {
  REQUIRE_MESSAGE((json.starts_with("[") && json.ends_with("]\n")), "not a JSON array:\n" << json);
  std::string header;
  std::string rows;
  for (std::string line : lines_of(json)) {
    if (!line.starts_with("{")) {
      continue;
    }
    line = line.substr(1, line.find_last_of('}') - 1);
    std::string names;
    std::string values;
    for (const auto& member : split(line)) {
      const std::size_t colon = member.find("\":");
      REQUIRE_MESSAGE((member.starts_with("\"") && colon != std::string::npos), "not a JSON member: " << member);
      std::string value = member.substr(colon + 2);
      if (value.starts_with("\"")) {
        value = value.substr(1, value.size() - 2);
      }
      if (!names.empty()) {
        names += ',';
        values += ',';
      }
      names += member.substr(1, colon - 1);
      values += value;
    }
    header = names;
    rows += values + "\n";
  }
  return sorted_rows(header + "\n" + rows);
}

/// `rows` gen_sales rows in the temp directory (`extra`: --seed, --late-fraction, ...).
std::string sales_csv(const std::string& name, std::uint64_t rows, const std::vector<std::string>& extra) {
  std::string path = tmp(name).string();
  std::vector<std::string> args{std::to_string(rows), path};
  args.insert(args.end(), extra.begin(), extra.end());
  const auto r = run(GEN_SALES_BIN, args);
  REQUIRE_MESSAGE(r.status == 0, r.err);
  return path;
}

/// A CSV file of the sales header and `rows`.
std::string csv_with_rows(const std::string& name, const std::vector<std::string>& rows) {
  std::string text = "ts,order_id,user_id,region,category,product_id,qty,price\n";
  for (const auto& r : rows) {
    text += r + "\n";
  }
  std::string path = tmp(name).string();
  write_file(path, text);
  return path;
}

void send_all(const std::string& file, int port, int connections) {
  const auto r = run(SEND_LINES_BIN, {file, "--to", "127.0.0.1:" + std::to_string(port), "--connections",
                                      std::to_string(connections), "--split", "chunks"});
  REQUIRE_MESSAGE(r.status == 0, "send_lines " << file << ": " << r.err);
}

std::string batch_answer(const std::string& query, const std::string& file) {
  const auto r = run(SALES_BIN, {query, "--input", file});
  REQUIRE_MESSAGE(r.status == 0, r.err);
  return sorted_rows(r.out);
}

/// `sales QUERY --log DIR` or `sales QUERY --replay DIR`: an answer over the log alone.
std::string answer_from_log(const std::string& query, const std::string& how, const fs::path& log) {
  const auto r = run_bounded(SALES_BIN, {query, how, log.string()});
  REQUIRE_MESSAGE(r.status == 0, "sales " << query << " " << how << " " << log << ": " << r.err);
  return sorted_rows(r.out);
}

/// How many records the log in `dir` holds, as `sluice-log info` (a reader, no lock) counts them.
std::uint64_t log_records(const fs::path& dir) {
  const auto r = run(SLUICE_LOG_BIN, {"info", dir.string()});
  REQUIRE_MESSAGE(r.status == 0, "sluice-log info " << dir << ": " << r.err);
  static const std::regex total(R"(total: \d+ segments, (\d+) records)");
  std::smatch m;
  REQUIRE_MESSAGE(std::regex_search(r.out, m, total), "no totals line from sluice-log info:\n" << r.out);
  return std::stoull(m[1]);
}

/// The payloads of the log's records in offset order, from `sluice-log dump`.
std::vector<std::string> log_payloads(const fs::path& dir) {
  const auto r = run(SLUICE_LOG_BIN, {"dump", dir.string()});
  REQUIRE_MESSAGE(r.status == 0, "sluice-log dump " << dir << ": " << r.err);
  std::vector<std::string> payloads;
  for (const auto& line : lines_of(r.out)) {
    const auto fields = split(line, '\t');
    if (fields.size() != 3 || std::stoull(fields[0]) != payloads.size()) {  // a FAIL, not 2 checks a record
      FAIL("sluice-log dump: not offset<TAB>time<TAB>payload with offset " << payloads.size() << ": " << line);
    }
    payloads.push_back(fields[2]);
  }
  return payloads;
}

/// The number of records in the last whole batch of the first `valid_bytes` of a (version-2)
/// segment file, by its batch headers.
std::uint64_t last_batch_records(const fs::path& segment, std::uint64_t valid_bytes) {
  namespace d = sluice::detail;
  const std::string bytes = read_file(segment).substr(0, valid_bytes);
  std::uint64_t last = 0;
  for (std::size_t pos = d::segment_header_bytes; pos + d::batch_header_bytes <= bytes.size();) {
    const auto length = d::get_le<std::uint32_t>(bytes.data() + pos);
    if (length == d::seal_length || pos + d::batch_header_bytes + length > bytes.size()) {
      break;
    }
    last = d::get_le<std::uint32_t>(bytes.data() + pos + 4);
    pos += d::batch_header_bytes + length;
  }
  return last;
}

/// The newest segment file of the log in `dir` and the size of its valid prefix, as `sluice-log
/// info` reports them (its row just before the totals line).
struct segment_on_disk {
  fs::path path;
  std::uint64_t valid_bytes = 0;
};
segment_on_disk newest_segment(const fs::path& dir) {
  const auto r = run(SLUICE_LOG_BIN, {"info", dir.string()});
  REQUIRE_MESSAGE(r.status == 0, "sluice-log info " << dir << ": " << r.err);
  const auto lines = lines_of(r.out);
  const auto total = std::find_if(lines.begin(), lines.end(), [](const auto& l) { return l.starts_with("total:"); });
  REQUIRE_MESSAGE((total != lines.end() && total - lines.begin() >= 2), "no segment rows from sluice-log info:\n"
                                                                            << r.out);
  std::istringstream row(*(total - 1));
  std::uint64_t index = 0;
  std::uint64_t base = 0;
  std::uint64_t end = 0;
  std::uint64_t records = 0;
  segment_on_disk newest;
  row >> index >> base >> end >> records >> newest.valid_bytes;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() == ".seg" && std::stoull(entry.path().stem().string()) == base) {
      newest.path = entry.path();
    }
  }
  REQUIRE_MESSAGE(!newest.path.empty(), "no segment file with base offset " << base << " in " << dir);
  return newest;
}

// ---- a sales server ------------------------------------------------------------------------

std::vector<std::string> lambda_args(const std::string& query, const fs::path& log,
                                     const std::vector<std::string>& extra = {}) {
  std::vector<std::string> a{query,      "--lambda",    "--log",   log.string(),
                             "--listen", "127.0.0.1:0", "--serve", "127.0.0.1:0"};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

/// `sales` serving HTTP on a free port (--lambda, or --replay with --serve 127.0.0.1:0), ready
/// once it has said where it serves and, with --listen, where it takes rows.
class sales_server {
 public:
  explicit sales_server(const std::vector<std::string>& args) : program_(SALES_BIN, args) {
    const bool ingests = std::find(args.begin(), args.end(), "--listen") != args.end();
    const auto deadline = steady_clock::now() + patience;
    while (true) {
      const std::string err = program_.err();
      http_port_ = port_after(err, "serving on http://");
      ingest_port_ = ingests ? port_after(err, "listening on ") : 0;
      if (http_port_ != 0 && (!ingests || ingest_port_ != 0)) {
        return;
      }
      if (program_.exited() || steady_clock::now() > deadline) {
        FAIL("sales did not start serving; its stderr:\n" << program_.err());
      }
      std::this_thread::sleep_for(poll_pause);
    }
  }

  [[nodiscard]] int ingest_port() const { return ingest_port_; }
  [[nodiscard]] std::string err() const { return program_.err(); }
  [[nodiscard]] http_reply get(const std::string& path) const { return http_get(http_port_, path); }

  [[nodiscard]] std::string ok(const std::string& path) const {
    const auto r = get(path);
    REQUIRE_MESSAGE(r.status == 200, "GET " << path << ": " << r.status << " " << r.body);
    return r.body;
  }
  [[nodiscard]] std::string status() const { return ok("/status"); }

  /// Polls /status until `done` holds and returns that status; fails after `patience`.
  std::string wait_for(const std::function<bool(const std::string&)>& done, const std::string& what) {
    const auto deadline = steady_clock::now() + patience;
    while (true) {
      std::string s = status();
      if (done(s)) {
        return s;
      }
      if (steady_clock::now() > deadline) {
        FAIL("waited " << patience.count() << " s for " << what << "; /status says " << s);
      }
      std::this_thread::sleep_for(poll_pause);
    }
  }

  run_result stop(int sig = SIGTERM) {
    program_.signal(sig);
    return program_.wait();
  }

 private:
  background program_;
  int http_port_ = 0;
  int ingest_port_ = 0;
};

std::function<bool(const std::string&)> ingested(std::uint64_t n) {
  return [n](const std::string& s) { return json_number(s, "ingested") == n; };
}

}  // namespace

TEST_CASE("lambda e2e: once caught up, every query serves batch mode over the file sent; --log and --replay agree") {
  for (const std::string query : {"region-minute", "by-category", "top-products", "popular"}) {
    CAPTURE(query);
    // popular puts each row in 5 windows: fewer rows keep the sanitizer runs short.
    const std::uint64_t rows = query == "popular" ? 30000 : 100000;
    const std::string file = sales_csv("lambda-late-" + std::to_string(rows) + ".csv", rows,
                                       {"--seed", "7", "--late-fraction", "0.02", "--max-lateness", "120000"});
    const fs::path log = tmp("log-caught-up-" + query);
    const fs::path late = tmp("late-caught-up-" + query + ".csv");
    sales_server server(lambda_args(
        query, log,
        {"--segment-bytes", "500000", "--segment-age", "300ms", "--max-delay", "1s", "--late-output", late.string()}));
    send_all(file, server.ingest_port(), 3);
    const std::string status = server.wait_for(
        [&](const std::string& s) {
          return json_number(s, "ingested") == rows && json_member(s, "caught_up") == "true";
        },
        "every row ingested and the batch view caught up");
    const std::string expected = batch_answer(query, file);
    CHECK(sorted_rows(server.ok("/" + query)) == expected);
    CHECK(json_as_csv(server.ok("/" + query + "?format=json")) == expected);
    if (query == "popular" || query == "region-minute") {  // one window's rows
      const auto expected_lines = lines_of(expected);
      const std::string column = query == "popular" ? expected_lines[1].substr(0, expected_lines[1].find(','))
                                                    : split(expected_lines[1])[1];
      std::string one_window = expected_lines[0] + "\n";
      for (std::size_t i = 1; i < expected_lines.size(); ++i) {
        const auto fields = split(expected_lines[i]);
        if (fields[query == "popular" ? 0 : 1] == column) {
          one_window += expected_lines[i] + "\n";
        }
      }
      CHECK(sorted_rows(server.ok("/" + query + "?window_start=" + column)) == one_window);
    }

    CHECK(json_number(status, "log_head") == rows);
    CHECK(json_number(json_member(status, "batch_horizon"), "offset") == rows);
    CHECK(json_number(status, "sealed_epochs") == json_number(json_member(status, "batch_horizon"), "epoch"));
    CHECK(json_number(status, "sealed_epochs") > 1);  // 500 kB segments: the batch layer ran over several
    CHECK(json_member(status, "speed_epochs") == "[]");
    CHECK(json_number(status, "late_not_covered") == 0);
    CHECK(json_number(status, "dead_lettered") == 0);
    CHECK(json_member(status, "batch_error") == "null");
    // Sliding windows (popular): most late rows miss only some of their windows, and go to the
    // late output as partly late.
    const std::uint64_t late_events = json_number(status, "late") + json_number(status, "partly_late");
    if (query == "region-minute" || query == "popular") {
      CHECK(late_events > 0);  // 2% of the rows up to 2 minutes late: the speed layer dropped some
    } else {
      CHECK(late_events == 0);  // no windows, nothing to be late for
    }

    const auto stopped = server.stop();
    CHECK(stopped.status == 0);
    CHECK(lines_of(read_file(late)).size() == late_events);  // the late output is complete once stopped
    CHECK(log_records(log) == rows);
    CHECK(answer_from_log(query, "--log", log) == expected);
    CHECK(answer_from_log(query, "--replay", log) == expected);  // Kappa
  }
}

TEST_CASE("lambda e2e: before any epoch seals, the speed layer alone serves every event it accepted") {
  constexpr std::uint64_t rows = 30000;
  const std::string file =
      sales_csv("lambda-open.csv", rows, {"--seed", "9", "--late-fraction", "0.02", "--max-lateness", "120000"});
  auto check_nothing_sealed = [&](const std::string& status) {
    CAPTURE(status);
    CHECK(json_member(status, "caught_up") == "false");
    CHECK(json_number(status, "sealed_epochs") == 0);
    CHECK(json_member(status, "batch_horizon") == R"({"epoch":0,"offset":0})");
    CHECK(json_member(status, "speed_epochs") == "[0]");
    CHECK(json_number(status, "log_head") == rows);
  };
  const std::vector<std::string> never_seal = {"--segment-bytes", "1000000000", "--max-delay", "1s"};

  // by-category has no windows, so nothing is late: the speed layer's answer is batch mode's.
  {
    sales_server server(lambda_args("by-category", tmp("log-open-by-category"), never_seal));
    send_all(file, server.ingest_port(), 2);
    const std::string status = server.wait_for(ingested(rows), "every row ingested");
    check_nothing_sealed(status);
    CHECK(json_number(status, "late") == 0);
    CHECK(sorted_rows(server.ok("/by-category")) == batch_answer("by-category", file));
    CHECK(server.stop().status == 0);
  }

  // region-minute: the speed layer drops events later than --max-delay allows for their window
  // and counts them as not covered (yet) by the batch view; every other event is in the answer.
  const fs::path log = tmp("log-open-region-minute");
  const fs::path late = tmp("late-open.csv");
  std::vector<std::string> args = lambda_args("region-minute", log, never_seal);
  args.insert(args.end(), {"--late-output", late.string()});
  {
    sales_server server(args);
    send_all(file, server.ingest_port(), 2);
    const std::string status = server.wait_for(ingested(rows), "every row ingested");
    check_nothing_sealed(status);
    // Sliding windows (popular): most late rows miss only some of their windows, and go to the
    // late output as partly late.
    const std::uint64_t late_events = json_number(status, "late") + json_number(status, "partly_late");
    CHECK(late_events > 0);
    CHECK(json_number(status, "late_not_covered") == late_events);
    CHECK(column_sum(server.ok("/region-minute"), "cnt") + late_events == rows);
    CHECK(server.stop().status == 0);
    CHECK(lines_of(read_file(late)).size() == late_events);
  }
  // A restart seals the log's last segment and rebuilds the batch view over all of it before it
  // serves: the events the speed layer dropped count again, and the answer is batch mode's.
  {
    sales_server server(args);
    const std::string status = server.status();
    CHECK(json_member(status, "caught_up") == "true");
    CHECK(json_number(status, "log_head") == rows);
    CHECK(json_number(status, "ingested") == 0);
    CHECK(json_number(status, "late_not_covered") == 0);
    CHECK(sorted_rows(server.ok("/region-minute")) == batch_answer("region-minute", file));
    CHECK(server.stop().status == 0);
  }
}

TEST_CASE("lambda e2e: kill -9 during ingest loses no record the log holds, and a restart counts each once") {
  // Each life of the server gets its own slice of one generated file (distinct order ids) over
  // one connection, at a bounded rate so that it is killed mid-send; what it logged must be a
  // prefix of its slice. The last kill is followed by a torn write, made by hand.
  constexpr std::size_t lives = 3;
  constexpr std::size_t slice_rows = 100000;
  const std::uint64_t kill_after[lives] = {1, 5000, 20000};  // records ingested in that life
  const auto all_rows = lines_of(read_file(sales_csv("lambda-crash.csv", lives * slice_rows, {"--seed", "13"})));
  std::vector<std::vector<std::string>> slices;
  std::vector<std::string> slice_files;
  for (std::size_t life = 0; life < lives; ++life) {
    const auto first = all_rows.begin() + 1 + static_cast<std::ptrdiff_t>(life * slice_rows);
    slices.emplace_back(first, first + slice_rows);
    slice_files.push_back(csv_with_rows("lambda-crash-" + std::to_string(life) + ".csv", slices.back()));
  }

  const fs::path log = tmp("log-crash");
  const auto args = lambda_args("by-category", log, {"--fsync", "always"});
  std::uint64_t logged = 0;           // records in the log before this life
  std::vector<std::uint64_t> kept;    // records each life left in the log
  std::uint64_t torn_file_bytes = 0;  // the newest segment's size after the torn write
  for (std::size_t life = 0; life <= lives; ++life) {
    CAPTURE(life);
    sales_server server(args);
    // It rebuilt from the log before serving: the first answer counts every logged record once.
    const std::string first = server.status();
    const std::string recovery = json_member(first, "recovery");
    MESSAGE("life " << life << ": started on a log of " << logged << " records; recovery: " << recovery);
    CHECK(json_number(first, "log_head") == logged);
    CHECK(json_member(first, "caught_up") == "true");
    CHECK(column_sum(server.ok("/by-category"), "cnt") == logged);
    CHECK(contains(server.err(), "holds " + std::to_string(logged) + " records"));
    if (recovery != "null") {  // it cut a torn tail: the records before it stay
      CHECK(json_number(recovery, "first_lost_offset") == logged);
    }
    if (life == lives) {  // after the torn write below
      REQUIRE(recovery != "null");
      const std::uint64_t cut = json_number(recovery, "cut_bytes");
      CHECK(cut > 0);
      CHECK(json_number(recovery, "kept_bytes") + cut == torn_file_bytes);
      CHECK_MESSAGE(contains(server.err(), "sales: log recovered: cut " + std::to_string(cut) + " bytes"),
                    server.err());
      CHECK(server.stop().status == 0);
      break;
    }

    background sender(SEND_LINES_BIN, {slice_files[life], "--to", "127.0.0.1:" + std::to_string(server.ingest_port()),
                                       "--rate", "20000"});
    const std::string before = server.wait_for(
        [&](const std::string& s) { return json_number(s, "ingested") >= kill_after[life]; }, "some rows ingested");
    const std::uint64_t acknowledged = json_number(before, "ingested");
    REQUIRE_MESSAGE(acknowledged < slice_rows, "the whole slice went in before the kill: no crash mid-ingest");
    server.stop(SIGKILL);
    sender.wait();  // it fails (connection reset): expected
    std::uint64_t now_logged = log_records(log);
    CHECK(now_logged >= logged + acknowledged);  // fsync always: what /status counted reached the log
    if (life + 1 == lives) {
      // And a crash in the middle of a write: the newest segment's last batch cut short (the
      // records of one write, never acknowledged). The next writer must cut the torn bytes off,
      // keep every record before them, and say so.
      const segment_on_disk newest = newest_segment(log);
      torn_file_bytes = newest.valid_bytes - 10;
      now_logged -= last_batch_records(newest.path, newest.valid_bytes);
      fs::resize_file(newest.path, torn_file_bytes);
      CHECK(log_records(log) == now_logged);
    }
    CHECK(column_sum(answer_from_log("by-category", "--log", log), "cnt") == now_logged);  // another reader agrees
    kept.push_back(now_logged - logged);
    logged = now_logged;
  }

  // The log holds, life after life, a prefix of the slice that life was sent: in order, nothing
  // torn, nothing twice.
  const auto payloads = log_payloads(log);
  REQUIRE(payloads.size() == logged);
  std::size_t at = 0;
  for (std::size_t life = 0; life < lives; ++life) {
    for (std::size_t i = 0; i < kept[life]; ++i, ++at) {
      if (payloads[at] != slices[life][i]) {
        FAIL("log offset " << at << " holds '" << payloads[at] << "', not row " << i << " of life " << life
                           << "'s slice: '" << slices[life][i] << "'");
      }
    }
  }
  CHECK(run(SLUICE_LOG_BIN, {"verify", log.string()}).status == 0);
  CHECK(answer_from_log("by-category", "--log", log) ==
        batch_answer("by-category", csv_with_rows("lambda-crash-logged.csv", payloads)));
}

TEST_CASE("lambda e2e: SIGTERM and SIGINT exit 0, the summary counts what the log holds; one writer a log") {
  const fs::path log = tmp("log-sigterm");
  struct life {
    std::uint64_t rows;
    int connections;
    int signal;
  };
  std::uint64_t head = 0;
  for (const life l : {life{5000, 2, SIGTERM}, life{3000, 1, SIGINT}}) {  // the second appends to the same log
    CAPTURE(l.signal);
    sales_server server(lambda_args("by-category", log));
    send_all(sales_csv("lambda-term-" + std::to_string(head) + ".csv", l.rows, {"--seed", std::to_string(head)}),
             server.ingest_port(), l.connections);
    server.wait_for(ingested(l.rows), "every row ingested");
    head += l.rows;
    // One writer a log: a second one is refused while the first runs.
    const auto second_writer = run_bounded(SALES_BIN, lambda_args("region-minute", log));
    CHECK(second_writer.status == 1);
    CHECK_MESSAGE(contains(second_writer.err, "is locked by another writer"), second_writer.err);

    const auto r = server.stop(l.signal);
    CHECK(r.status == 0);
    CHECK_MESSAGE(contains(r.err, "sales: by-category: " + std::to_string(l.rows) +
                                      " rows ingested, 0 bad records, 0 late for the speed layer, log head " +
                                      std::to_string(head)),
                  r.err);
    CHECK(log_records(log) == head);
  }
  const auto verified = run(SLUICE_LOG_BIN, {"verify", log.string()});
  CHECK(verified.status == 0);
  CHECK_MESSAGE(contains(verified.out, "ok: " + std::to_string(head) + " records"), verified.out);
}

TEST_CASE("lambda e2e: bad rows are dead-lettered at the edge and never reach the log") {
  auto rows = lines_of(read_file(sales_csv("lambda-bad.csv", 5000, {"--seed", "5"})));
  rows.erase(rows.begin());
  rows.insert(rows.begin() + 100, "garbage");
  rows.insert(rows.begin() + 2000, "1700000001000,1,2,eu-west,books,7,2,not-a-price");
  rows.insert(rows.begin() + 4000, "1700000001000,1,2,eu-west");
  const std::string file = csv_with_rows("lambda-bad-rows.csv", rows);
  const fs::path log = tmp("log-bad");
  const fs::path dead = tmp("dead-letters.jsonl");
  sales_server server(lambda_args("by-category", log, {"--dead-letter", dead.string()}));
  send_all(file, server.ingest_port(), 2);
  const std::string status = server.wait_for(ingested(5000), "the 5000 good rows ingested");
  CHECK(json_number(status, "dead_lettered") == 3);
  CHECK(json_number(status, "log_head") == 5000);
  const std::string expected = batch_answer("by-category", file);  // batch mode skips the same 3
  CHECK(sorted_rows(server.ok("/by-category")) == expected);
  CHECK(server.stop().status == 0);
  CHECK(lines_of(read_file(dead)).size() == 3);
  CHECK(log_records(log) == 5000);
  CHECK(answer_from_log("by-category", "--log", log) == expected);
}

TEST_CASE("lambda e2e: usage errors exit 2, say what is wrong and create no log") {
  const std::string dir = tmp("log-never-created").string();
  const std::string file = tmp("no-such-input.csv").string();
  const std::string lambda_needs = "--lambda takes --log DIR, --listen HOST:PORT and --serve HOST:PORT";
  struct bad_call {
    std::vector<std::string> args;
    std::string says;
  };
  const std::vector<bad_call> calls = {
      {{"by-category", "--lambda"}, lambda_needs},
      {{"by-category", "--lambda", "--log", dir, "--listen", "127.0.0.1:0"}, lambda_needs},
      {{"by-category", "--lambda", "--log", dir, "--serve", "127.0.0.1:0"}, lambda_needs},
      {{"by-category", "--lambda", "--listen", "127.0.0.1:0", "--serve", "127.0.0.1:0"}, lambda_needs},
      {lambda_args("by-category", dir, {"--fsync", "sometimes"}),
       "--fsync: fsync policy is always, never or interval:MS, not 'sometimes'"},
      {lambda_args("by-category", dir, {"--segment-bytes", "0"}), "--segment-bytes must be at least 1"},
      {{"by-category", "--input", file, "--serve", "127.0.0.1:0"},
       "--serve is for stream mode (--listen, --kafka), --lambda and --replay"},
      {{"by-category", "--log", dir, "--serve", "127.0.0.1:0"},
       "--serve is for stream mode (--listen, --kafka), --lambda and --replay"},
      {{"by-category", "--replay", dir, "--input", file}, "--replay DIR reads the log in DIR"},
      {{"region-minute", "--replay", dir, "--from-time", "yesterday"}, "--from-time takes milliseconds"},
  };
  for (const auto& call : calls) {
    std::string shown;
    for (const auto& a : call.args) {
      shown += " " + a;
    }
    CAPTURE(shown);
    const auto r = run(SALES_BIN, call.args);
    CHECK(r.status == 2);
    CHECK_MESSAGE(contains(r.err, call.says), r.err);
  }
  CHECK_FALSE(fs::exists(dir));
}

TEST_CASE("kappa e2e: --replay and --log of an empty directory answer with the header only; of a missing one fail") {
  const fs::path empty = tmp("log-empty");
  fs::create_directories(empty);
  for (const std::string how : {"--replay", "--log"}) {
    CAPTURE(how);
    const auto r = run_bounded(SALES_BIN, {"by-category", how, empty.string()});
    CHECK(r.status == 0);
    CHECK(r.out == "category,cnt,revenue\n");  // an empty log: zero records, not an error

    const fs::path missing = tmp("log-missing");
    const auto m = run_bounded(SALES_BIN, {"by-category", how, missing.string()});
    CHECK(m.status == 1);
    CHECK_MESSAGE(contains(m.err, "no such directory"), m.err);
    CHECK_FALSE(fs::exists(missing));  // a reader creates nothing
  }
  CHECK(fs::is_empty(empty));
}

namespace {
/// GET /flow: the query's flow as DOT; ?format=svg rendered where Graphviz is installed, else
/// 404 saying what is missing.
void check_flow_page(const sales_server& server) {
  const auto dot = server.get("/flow");
  CHECK(dot.status == 200);
  CHECK(contains(dot.headers, "text/vnd.graphviz"));
  CHECK(dot.body.starts_with("digraph \"sales region-minute\" {"));
  CHECK_MESSAGE(contains(dot.body, "tumbling(1min)"), dot.body);
  const auto svg = server.get("/flow?format=svg");
  if (on_path("dot")) {
    CHECK(svg.status == 200);
    CHECK(contains(svg.headers, "image/svg+xml"));
    CHECK(contains(svg.body, "<svg"));
  } else {
    CHECK(svg.status == 404);
    CHECK_MESSAGE(contains(svg.body, "apt-get install graphviz"), svg.body);
  }
  const auto text = server.get("/flow?format=text");
  CHECK(text.status == 200);
  CHECK(text.body.starts_with("input"));
  CHECK(server.get("/flow?format=png").status == 400);
  CHECK(server.get("/flow?limit=1").status == 400);
}
}  // namespace

/// GET /metrics from `server`, checked strictly by check_prometheus.py (prometheus_client's parser
/// plus TYPE, _total and cumulative-bucket checks) under Debian's python3, where
/// python3-prometheus-client installs; its samples, one `name{labels} value` a line.
std::string scrape_metrics(const sales_server& server, const std::string& name) {
  const auto reply = server.get("/metrics");
  REQUIRE_MESSAGE(reply.status == 200, reply.body);
  CHECK_MESSAGE(e2e::detail::has_header(reply.headers, "Content-Type", "text/plain; version=0.0.4; charset=utf-8"),
                reply.headers);
  const fs::path page = tmp("metrics-" + name + ".txt");
  write_file(page, reply.body);
  const auto checked = run("/usr/bin/python3", {CHECK_PROMETHEUS, page.string()});
  REQUIRE_MESSAGE(checked.status == 0, checked.err << "\n" << reply.body);
  return checked.out;
}

/// The value of the sample line `sample` (name and labels as check_prometheus.py prints them).
std::string metric(const std::string& samples, const std::string& sample) {
  for (const auto& line : lines_of(samples)) {
    if (line.starts_with(sample + " ")) {
      return line.substr(sample.size() + 1);
    }
  }
  FAIL("no sample " << sample << " in:\n" << samples);
  return {};
}

TEST_CASE("lambda e2e: GET /metrics is valid Prometheus text whose counts match what was sent") {
  const std::uint64_t rows = 5000;
  const std::string file = sales_csv("lambda-metrics.csv", rows, {"--seed", "11"});
  sales_server server(
      lambda_args("by-category", tmp("log-metrics"), {"--segment-bytes", "50000", "--segment-age", "300ms"}));
  send_all(file, server.ingest_port(), 2);
  server.wait_for(
      [&](const std::string& s) { return json_number(s, "ingested") == rows && json_member(s, "caught_up") == "true"; },
      "every row ingested and the batch view caught up");
  const std::string samples = scrape_metrics(server, "lambda");
  const std::string q = R"({query="by-category"})";
  CHECK(metric(samples, "sluice_ingested_total" + q) == std::to_string(rows));
  CHECK(metric(samples, "sluice_log_head_offset" + q) == std::to_string(rows));
  CHECK(metric(samples, "sluice_batch_horizon_offset" + q) == std::to_string(rows));
  CHECK(metric(samples, "sluice_batch_horizon_lag_records" + q) == "0");
  CHECK(metric(samples, "sluice_bad_records_total" + q) == "0");
  CHECK(std::stoull(metric(samples, "sluice_log_bytes" + q)) > fs::file_size(file) / 2);  // the rows, framed
  // The histogram counts every batch run (at least one: the batch view covers the log).
  const std::string runs = metric(samples, "sluice_batch_runs_total" + q);
  CHECK(std::stoull(runs) >= 1);
  CHECK(metric(samples, R"(sluice_batch_run_seconds_count{query="by-category"})") == runs);
  CHECK(metric(samples, R"(sluice_batch_run_seconds_bucket{le="+Inf",query="by-category"})") == runs);
  CHECK(server.stop().status == 0);
}

TEST_CASE("stream e2e: sales --listen --serve serves /metrics and /status while the stream runs") {
  const std::uint64_t rows = 3000;
  const std::string file = sales_csv("stream-metrics.csv", rows, {"--seed", "12"});
  sales_server server({"by-category", "--listen", "127.0.0.1:0", "--serve", "127.0.0.1:0", "--threads", "2"});
  send_all(file, server.ingest_port(), 1);
  server.wait_for([&](const std::string& s) { return json_number(s, "events") == rows; }, "every row counted");
  const std::string samples = scrape_metrics(server, "stream");
  const std::string q = R"({query="by-category"})";
  CHECK(metric(samples, "sluice_events_total" + q) == std::to_string(rows));
  // Every byte of the file but its header line, which send_lines does not send as data.
  const std::string body = read_file(file);
  CHECK(metric(samples, "sluice_received_bytes_total" + q) == std::to_string(body.size() - body.find('\n') - 1));
  CHECK(metric(samples, "sluice_inputs_opened_total" + q) == "1");
  CHECK(metric(samples, "sluice_bad_records_total" + q) == "0");
  CHECK(metric(samples, "sluice_late_events_total" + q) == "0");
  CHECK(server.stop().status == 0);
}

TEST_CASE("lambda e2e: HTTP: unknown paths are 404 naming the known ones, bad parameters 400, /status is JSON") {
  const fs::path log = tmp("log-http");
  sales_server server(lambda_args("region-minute", log));
  send_all(sales_csv("lambda-http.csv", 2000, {"--seed", "3"}), server.ingest_port(), 1);
  const std::string status = server.wait_for(ingested(2000), "2000 rows ingested");

  const auto missing = server.get("/nope");
  CHECK(missing.status == 404);
  CHECK_MESSAGE((contains(missing.body, "/region-minute") && contains(missing.body, "/status")), missing.body);
  const auto xml = server.get("/region-minute?format=xml");
  CHECK(xml.status == 400);
  CHECK_MESSAGE(contains(xml.body, "'xml'"), xml.body);
  const auto unknown = server.get("/region-minute?limit=3");
  CHECK(unknown.status == 400);
  CHECK_MESSAGE(contains(unknown.body, "unknown parameter 'limit'"), unknown.body);

  const auto csv = server.get("/region-minute?format=csv");
  CHECK(csv.status == 200);
  CHECK(contains(csv.headers, "text/csv"));
  CHECK(csv.body.starts_with("region,window_start,cnt,revenue\n"));
  const auto json = server.get("/region-minute?format=json");
  CHECK(json.status == 200);
  CHECK(contains(json.headers, "application/json"));
  CHECK(json_as_csv(json.body) == sorted_rows(csv.body));

  const auto st = server.get("/status");
  CHECK(st.status == 200);
  CHECK(contains(st.headers, "application/json"));
  CHECK(st.body.starts_with("{"));
  CHECK(st.body.ends_with("}\n"));
  CHECK(contains(status, "\"log_head\":"));
  CHECK(json_member(status, "mode") == "\"lambda\"");
  CHECK(json_member(status, "query") == "\"region-minute\"");
  check_flow_page(server);
  CHECK(server.stop().status == 0);

  // A Kappa server answers the same way.
  sales_server kappa({"region-minute", "--replay", log.string(), "--serve", "127.0.0.1:0"});
  const auto kappa_missing = kappa.get("/nope");
  CHECK(kappa_missing.status == 404);
  CHECK_MESSAGE((contains(kappa_missing.body, "/region-minute") && contains(kappa_missing.body, "/status")),
                kappa_missing.body);
  CHECK(json_member(kappa.status(), "mode") == "\"kappa\"");
  check_flow_page(kappa);
  CHECK(kappa.stop().status == 0);
}

TEST_CASE("kappa e2e: --replay --serve serves the answer at the log's head, then tails the live log through a crash") {
  std::vector<std::string> files;
  std::vector<std::string> rows_so_far;
  for (int i = 0; i < 3; ++i) {
    files.push_back(sales_csv("kappa-tail-" + std::to_string(i) + ".csv", 20000, {"--seed", std::to_string(31 + i)}));
  }
  // The batch answer over the rows of the first `n` files.
  auto expected_after = [&](std::size_t n) {
    rows_so_far.clear();
    for (std::size_t i = 0; i < n; ++i) {
      const auto lines = lines_of(read_file(files[i]));
      rows_so_far.insert(rows_so_far.end(), lines.begin() + 1, lines.end());
    }
    return batch_answer("by-category", csv_with_rows("kappa-tail-sent.csv", rows_so_far));
  };
  auto at_position = [](std::uint64_t n) {
    return [n](const std::string& s) {
      return json_number(s, "serving_generation") >= 1 && json_number(s, "serving_position") == n;
    };
  };

  const fs::path log = tmp("log-kappa-tail");
  // Small segments: the tailing reader has to cross from one segment to the next.
  const auto lambda_opts = lambda_args("by-category", log, {"--segment-bytes", "300000"});
  auto lambda = std::make_unique<sales_server>(lambda_opts);
  send_all(files[0], lambda->ingest_port(), 1);
  lambda->wait_for(ingested(20000), "the first file ingested");

  sales_server kappa({"by-category", "--replay", log.string(), "--serve", "127.0.0.1:0"});
  const std::string caught_up = kappa.wait_for(at_position(20000), "the replay to reach the log's head");
  CHECK(sorted_rows(kappa.ok("/by-category")) == expected_after(1));
  {  // nothing is logged meanwhile: /metrics says what /status said
    const std::string samples = scrape_metrics(kappa, "kappa");
    CHECK(metric(samples, R"(sluice_kappa_serving_offset{query="by-category"})") == "20000");
    CHECK(metric(samples, R"(sluice_events_total{query="by-category"})") ==
          std::to_string(json_number(caught_up, "events")));
  }

  send_all(files[1], lambda->ingest_port(), 2);
  lambda->wait_for(ingested(40000), "the second file ingested");
  kappa.wait_for(at_position(40000), "the tail to follow the log to its new head");
  CHECK(sorted_rows(kappa.ok("/by-category")) == expected_after(2));
  CHECK(sorted_rows(lambda->ok("/by-category")) == expected_after(2));

  // The writer dies leaving a torn write (the start of a batch) at the end of the newest
  // segment. The tail must not deliver it; the restarted writer cuts it off and seals that
  // segment, and the tail follows into the next one.
  lambda->stop(SIGKILL);
  const std::string first_segment = read_file(log / "00000000000000000000.seg");
  const std::string torn =
      first_segment.substr(sluice::detail::segment_header_bytes, sluice::detail::batch_header_bytes + 10);
  {
    std::ofstream newest(newest_segment(log).path, std::ios::binary | std::ios::app);
    newest << torn;
    REQUIRE(newest.good());
  }
  lambda = std::make_unique<sales_server>(lambda_opts);
  const std::string recovered = lambda->status();
  REQUIRE(json_member(recovered, "recovery") != "null");
  CHECK(json_number(json_member(recovered, "recovery"), "cut_bytes") == torn.size());
  CHECK(json_number(recovered, "log_head") == 40000);
  send_all(files[2], lambda->ingest_port(), 1);
  lambda->wait_for(ingested(20000), "the third file ingested");
  const std::string tailed = kappa.wait_for(at_position(60000), "the tail to follow the restarted writer");
  CHECK(json_number(tailed, "events") == 60000);
  CHECK(json_number(tailed, "dead_lettered") == 0);
  const std::string expected = expected_after(3);
  CHECK(sorted_rows(kappa.ok("/by-category")) == expected);
  CHECK(sorted_rows(lambda->ok("/by-category")) == expected);

  const auto k = kappa.stop();
  CHECK(k.status == 0);
  CHECK_MESSAGE(contains(k.err, "replayed and tailed 60000 records"), k.err);
  CHECK(lambda->stop().status == 0);
}

TEST_CASE("kappa e2e: the log is the master dataset: any query replays it, --from-time from a given event time") {
  // Written by a by-category server, read by region-minute and top-products: the log keeps whole rows.
  const std::string file =
      sales_csv("kappa-from.csv", 20000, {"--seed", "41", "--late-fraction", "0.05", "--max-lateness", "30000"});
  const fs::path log = tmp("log-kappa-from");
  {
    sales_server server(lambda_args("by-category", log, {"--segment-bytes", "200000"}));
    send_all(file, server.ingest_port(), 1);
    server.wait_for(ingested(20000), "every row ingested");
    CHECK(server.stop().status == 0);
  }
  for (const std::string query : {"region-minute", "top-products"}) {
    CAPTURE(query);
    CHECK(answer_from_log(query, "--log", log) == batch_answer(query, file));
    CHECK(answer_from_log(query, "--replay", log) == batch_answer(query, file));
  }

  // --from-time T starts at the first record, in log order, whose event time is at least T; the
  // records after it count whatever their time.
  const auto payloads = log_payloads(log);
  REQUIRE(payloads.size() == 20000);
  const std::string t = split(payloads[12000])[0];
  std::size_t from = 0;
  while (std::stoll(split(payloads[from])[0]) < std::stoll(t)) {
    ++from;
  }
  const std::vector<std::string> rest(payloads.begin() + static_cast<std::ptrdiff_t>(from), payloads.end());
  const auto r = run_bounded(SALES_BIN, {"region-minute", "--replay", log.string(), "--from-time", t});
  REQUIRE_MESSAGE(r.status == 0, r.err);
  CHECK(sorted_rows(r.out) == batch_answer("region-minute", csv_with_rows("kappa-from-rest.csv", rest)));
  CHECK_MESSAGE(
      contains(r.err, "replayed " + std::to_string(rest.size()) + " records from offset " + std::to_string(from)),
      r.err);
}
