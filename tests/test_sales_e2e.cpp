// End to end: the sales and gen_sales binaries (and log_report and gen_access_log) as a user runs
// them. Each answer is checked against a reference computed here, independently of sluice, by
// reading the CSV with plain std::getline / split code and integer cents.
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#ifndef SALES_BIN
#error "SALES_BIN must name the sales binary (tests/meson.build passes it)"
#endif
#ifndef GEN_SALES_BIN
#error "GEN_SALES_BIN must name the gen_sales binary (tests/meson.build passes it)"
#endif
#if !defined(LOG_REPORT_BIN) || !defined(GEN_ACCESS_LOG_BIN)
#error "LOG_REPORT_BIN and GEN_ACCESS_LOG_BIN must name the log example's binaries (tests/meson.build passes them)"
#endif

#include "background.hpp"
#include "checkpoint_files.hpp"
#include "dot_check.hpp"
#include "e2e_support.hpp"

namespace {

namespace fs = std::filesystem;

using namespace e2e;

// ---- the sales reference ----------------------------------------------------------------------

struct sale_row {
  std::int64_t ts = 0;
  std::string region;
  std::string category;
  std::int64_t product = 0;
  std::int64_t qty = 0;
  std::int64_t price_cents = 0;
};

/// "123.45" -> 12345, "7" -> 700, "0.5" -> 50 (gen_sales writes exactly two decimals).
std::int64_t parse_cents(const std::string& s) {
  const auto dot = s.find('.');
  const std::int64_t whole = std::stoll(s.substr(0, dot));
  std::int64_t frac = 0;
  if (dot != std::string::npos) {
    std::string f = s.substr(dot + 1);
    if (f.size() > 2) {
      FAIL("more than two decimals: " << s);
    }
    while (f.size() < 2) {
      f += '0';
    }
    frac = std::stoll(f);
  }
  return whole * 100 + (s.starts_with("-") ? -frac : frac);
}

std::vector<sale_row> read_sales(const fs::path& path) {
  std::ifstream in(path);
  std::string line;
  REQUIRE(std::getline(in, line));
  REQUIRE(line == "ts,order_id,user_id,region,category,product_id,qty,price");
  std::vector<sale_row> rows;
  while (std::getline(in, line)) {
    const auto f = split(line);
    if (f.size() != 8) {
      FAIL("not a gen_sales row: " << line);
    }
    rows.push_back({std::stoll(f[0]), f[3], f[4], std::stoll(f[5]), std::stoll(f[6]), parse_cents(f[7])});
  }
  return rows;
}

std::string cents(std::int64_t c) {
  char buf[64];
  const std::int64_t m = c < 0 ? -c : c;
  std::snprintf(buf, sizeof buf, "%s%lld.%02lld", c < 0 ? "-" : "", static_cast<long long>(m / 100),
                static_cast<long long>(m % 100));
  return buf;
}

std::int64_t floor_to(std::int64_t t, std::int64_t size) {
  std::int64_t q = t / size;
  if (t % size != 0 && t < 0) {
    --q;
  }
  return q * size;
}

std::string reference(const std::string& query, const std::vector<sale_row>& rows) {
  std::ostringstream out;
  if (query == "by-category") {
    std::map<std::string, std::pair<std::int64_t, std::int64_t>> acc;
    for (const auto& r : rows) {
      auto& [n, revenue] = acc[r.category];
      ++n;
      revenue += r.qty * r.price_cents;
    }
    out << "category,cnt,revenue\n";
    for (const auto& item : acc) {
      const auto& category = item.first;
      const auto& v = item.second;
      out << category << ',' << v.first << ',' << cents(v.second) << '\n';
    }
  } else if (query == "region-minute") {
    std::map<std::pair<std::string, std::int64_t>, std::pair<std::int64_t, std::int64_t>> acc;
    for (const auto& r : rows) {
      auto& [n, revenue] = acc[{r.region, floor_to(r.ts, 60'000)}];
      ++n;
      revenue += r.qty * r.price_cents;
    }
    out << "region,window_start,cnt,revenue\n";
    for (const auto& item : acc) {
      const auto& k = item.first;
      const auto& v = item.second;
      out << k.first << ',' << k.second << ',' << v.first << ',' << cents(v.second) << '\n';
    }
  } else if (query == "top-products") {
    std::map<std::int64_t, std::int64_t> acc;
    for (const auto& r : rows) {
      acc[r.product] += r.qty * r.price_cents;
    }
    std::vector<std::pair<std::int64_t, std::int64_t>> ranked(acc.begin(), acc.end());
    std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) {
      return a.second != b.second ? a.second > b.second : a.first < b.first;
    });
    ranked.resize(std::min<std::size_t>(ranked.size(), 10));
    out << "product_id,revenue\n";
    for (const auto& item : ranked) {
      const auto& product = item.first;
      const auto& revenue = item.second;
      out << product << ',' << cents(revenue) << '\n';
    }
  } else if (query == "popular") {
    // Every 5-minute window sliding by 1 minute that holds the row: starts in (ts - 5min, ts].
    std::map<std::int64_t, std::map<std::int64_t, std::int64_t>> qty;  // window start -> product -> qty
    for (const auto& r : rows) {
      for (std::int64_t start = floor_to(r.ts, 60'000); start > r.ts - 300'000; start -= 60'000) {
        qty[start][r.product] += r.qty;
      }
    }
    out << "window_start,product_id,qty\n";
    for (const auto& [start, products] : qty) {
      std::vector<std::pair<std::int64_t, std::int64_t>> ranked(products.begin(), products.end());
      std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) {
        return a.second != b.second ? a.second > b.second : a.first < b.first;
      });
      ranked.resize(std::min<std::size_t>(ranked.size(), 10));
      for (const auto& [product, q] : ranked) {
        out << start << ',' << product << ',' << q << '\n';
      }
    }
  } else {
    FAIL("no reference for query " << query);
  }
  return out.str();
}

const std::vector<std::string> queries = {"by-category", "region-minute", "top-products", "popular"};

/// A gen_sales file big enough that --threads 3 really cuts it into 3 chunks (the batch runner
/// gives each thread at least 1 MiB), generated once per process.
const fs::path& sales_60k() {
  static const fs::path path = [] {
    fs::path p = tmp("sales-60k.csv");
    const auto r = run(GEN_SALES_BIN, {"60000", p.string(), "--seed", "2024"});
    REQUIRE(r.status == 0);
    REQUIRE(fs::file_size(p) > (std::uintmax_t{3} << 20U));
    return p;
  }();
  return path;
}

/// The file with malformed lines inserted (a wrong field count near the start, a bad integer in
/// the middle, too many decimals later, an unterminated quote as the very last line) and the
/// 1-based physical line numbers of those lines (the header is line 1).
struct broken_file {
  fs::path path;
  std::vector<std::uint64_t> bad_lines;
};

broken_file make_broken(const std::string& name, bool with_early_error) {
  const auto lines = lines_of(read_file(sales_60k()));
  std::string text;
  std::vector<std::uint64_t> bad;
  std::uint64_t line_no = 0;
  auto put = [&](const std::string& l) {
    text += l;
    text += '\n';
    ++line_no;
  };
  for (std::size_t i = 0; i < lines.size(); ++i) {
    put(lines[i]);
    if (i == 0 && with_early_error) {
      put("1700000000000,1,2,eu-west,books,3,4");  // 7 fields
      bad.push_back(line_no);
    } else if (i == lines.size() / 2) {
      put("1700000030000,100,200,eu-west,books,3,x,1.00");  // qty not an integer
      bad.push_back(line_no);
    } else if (i == lines.size() * 3 / 4) {
      put("1700000045000,101,201,us-east,toys,4,2,12.345");  // price with three decimals
      bad.push_back(line_no);
    }
  }
  put("1700000060000,102,202,\"us-west,garden,5,1,3.00");  // the quote never closes
  bad.push_back(line_no);
  broken_file f{tmp(name), bad};
  write_file(f.path, text);
  return f;
}

}  // namespace

TEST_CASE("gen_sales: the same seed gives the same bytes, another seed other bytes") {
  const auto a = tmp("gen-a.csv");
  const auto b = tmp("gen-b.csv");
  const auto c = tmp("gen-c.csv");
  REQUIRE(run(GEN_SALES_BIN, {"3000", a.string(), "--seed", "7"}).status == 0);
  REQUIRE(run(GEN_SALES_BIN, {"3000", b.string(), "--seed", "7"}).status == 0);
  REQUIRE(run(GEN_SALES_BIN, {"3000", c.string(), "--seed", "8"}).status == 0);
  const std::string ta = read_file(a);
  CHECK(ta == read_file(b));
  CHECK(ta != read_file(c));
  const auto lines = lines_of(ta);
  REQUIRE(lines.size() == 3001);
  CHECK(lines[0] == "ts,order_id,user_id,region,category,product_id,qty,price");
  // The default seed is a seed like any other: also reproducible.
  const auto d1 = run(GEN_SALES_BIN, {"500", "-"});
  const auto d2 = run(GEN_SALES_BIN, {"500", "-"});
  CHECK(d1.status == 0);
  CHECK(d1.out == d2.out);
  CHECK(lines_of(d1.out).size() == 501);
}

TEST_CASE("sales: each query equals the reference, identically on 1, 2 and 3 threads") {
  const auto rows = read_sales(sales_60k());
  REQUIRE(rows.size() == 60000);
  for (const auto& q : queries) {
    const std::string expected = reference(q, rows);
    for (const char* threads : {"1", "2", "3"}) {
      CAPTURE(q);
      CAPTURE(threads);
      const auto r = run(SALES_BIN, {q, "--input", sales_60k().string(), "--threads", threads});
      REQUIRE(r.status == 0);
      CHECK(r.out == expected);
      CHECK(contains(r.err, "60000 rows read, 0 bad records"));
      CHECK(contains(r.err, std::string(", ") + threads + " threads"));  // the chunks really ran in parallel
    }
  }
}

TEST_CASE("sales --explain: each query's stages without reading input; --dot is Graphviz that dot renders") {
  const auto text = run(SALES_BIN, {"region-minute", "--explain"});
  REQUIRE_MESSAGE(text.status == 0, text.err);
  CHECK(text.err == "");
  const auto lines = lines_of(text.out);
  REQUIRE(lines.size() == 5);
  CHECK(lines[0].starts_with("input"));
  CHECK(lines[1].starts_with("1  event_time"));
  CHECK(lines[2].starts_with("2  key_by      region"));
  CHECK(lines[3].starts_with("3  window      tumbling(1min)"));
  CHECK(lines[4].starts_with("4  aggregate   count, sum(revenue)"));
  for (const char* query : {"by-category", "region-minute", "top-products", "popular"}) {
    const auto dot = run(SALES_BIN, {query, "--explain", "--dot"});
    REQUIRE_MESSAGE(dot.status == 0, dot.err);
    CHECK(dot.out.starts_with("digraph \"sales " + std::string(query) + "\" {"));
    dot_check::check_graph(dot.out);
  }
  const auto misuse = run(SALES_BIN, {"popular", "--dot"});
  CHECK(misuse.status == 2);
  CHECK_MESSAGE(contains(misuse.err, "--dot is for --explain"), misuse.err);
}

TEST_CASE("sales: exact headers, revenue with exactly two decimals") {
  const std::map<std::string, std::string> headers = {{"by-category", "category,cnt,revenue"},
                                                      {"region-minute", "region,window_start,cnt,revenue"},
                                                      {"top-products", "product_id,revenue"},
                                                      {"popular", "window_start,product_id,qty"}};
  const std::regex two_decimals(R"(-?[0-9]+\.[0-9]{2})");
  for (const auto& q : queries) {
    CAPTURE(q);
    const auto r = run(SALES_BIN, {q, "--input", sales_60k().string()});
    REQUIRE(r.status == 0);
    const auto lines = lines_of(r.out);
    REQUIRE(lines.size() > 1);
    CHECK(lines[0] == headers.at(q));
    const std::size_t columns = split(headers.at(q)).size();
    for (std::size_t i = 1; i < lines.size(); ++i) {
      const auto f = split(lines[i]);
      REQUIRE(f.size() == columns);
      if (q != "popular") {  // quantities are whole numbers
        CHECK_MESSAGE(std::regex_match(f.back(), two_decimals), lines[i]);
      }
    }
    if (q == "top-products") {
      CHECK(lines.size() == 11);
    }
  }
}

TEST_CASE("sales top-products: ties go to the smaller product_id") {
  // Product 40 leads with 50.00; eleven products tie at 10.00 (some over several rows), so the
  // cut at 10 keeps the nine smallest of them; 99 (9.99) is out.
  const std::string csv =
      "ts,order_id,user_id,region,category,product_id,qty,price\n"
      "1700000000000,1,1,eu-west,books,44,1,10.00\n"
      "1700000000001,2,1,eu-west,books,7,2,5.00\n"
      "1700000000002,3,1,eu-west,books,40,5,10.00\n"
      "1700000000003,4,1,eu-west,books,60,10,1.00\n"
      "1700000000004,5,1,eu-west,books,12,1,5.00\n"
      "1700000000005,6,1,eu-west,books,31,1,10.00\n"
      "1700000000006,7,1,eu-west,books,3,4,2.50\n"
      "1700000000007,8,1,eu-west,books,99,1,9.99\n"
      "1700000000008,9,1,eu-west,books,25,1,10\n"
      "1700000000009,10,1,eu-west,books,12,1,5.00\n"
      "1700000000010,11,1,eu-west,books,18,1,10.00\n"
      "1700000000011,12,1,eu-west,books,9,1,10.00\n"
      "1700000000012,13,1,eu-west,books,2,1,10.00\n"
      "1700000000013,14,1,eu-west,books,5,1,10.00\n";
  const auto path = tmp("ties.csv");
  write_file(path, csv);
  const std::string expected =
      "product_id,revenue\n40,50.00\n2,10.00\n3,10.00\n5,10.00\n7,10.00\n9,10.00\n12,10.00\n18,10.00\n25,10.00\n"
      "31,10.00\n";
  CHECK(reference("top-products", read_sales(path)) == expected);
  for (const char* threads : {"1", "2"}) {
    const auto r = run(SALES_BIN, {"top-products", "--input", path.string(), "--threads", threads});
    REQUIRE(r.status == 0);
    CHECK(r.out == expected);
  }
}

TEST_CASE("sales: malformed lines are reported and dead-lettered, not fatal, under skip") {
  const broken_file bad = make_broken("broken.csv", true);
  REQUIRE(bad.bad_lines.size() == 4);
  const auto rows = read_sales(sales_60k());  // the good rows are exactly the clean file's
  for (const auto& q : queries) {
    const std::string expected = reference(q, rows);
    for (const char* threads : {"1", "3"}) {
      CAPTURE(q);
      CAPTURE(threads);
      const auto dl = tmp("dead-" + q + "-" + threads + ".jsonl");
      const auto r =
          run(SALES_BIN, {q, "--input", bad.path.string(), "--threads", threads, "--dead-letter", dl.string()});
      CHECK(r.status == 0);
      CHECK(r.out == expected);
      CHECK(contains(r.err, "60000 rows read, 4 bad records"));
      const auto letters = lines_of(read_file(dl));
      REQUIRE(letters.size() == 4);
      for (std::size_t i = 0; i < letters.size(); ++i) {
        CAPTURE(letters[i]);
        CHECK(letters[i].front() == '{');
        CHECK(letters[i].back() == '}');
        CHECK(contains(letters[i], "\"source\":"));
        CHECK(contains(letters[i], "\"line\":" + std::to_string(bad.bad_lines[i]) + ","));
        CHECK(contains(letters[i], "\"offset\":"));
        CHECK(contains(letters[i], "\"reason\":"));
        CHECK(contains(letters[i], "\"record\":"));
      }
      CHECK(contains(letters[0], "fields"));
      CHECK(contains(letters[1], "'qty'"));
      CHECK(contains(letters[2], "'price'"));
      CHECK(contains(letters[3], "unterminated"));
      CHECK(contains(letters[3], R"(\"us-west)"));  // the raw record, JSON-escaped
    }
  }
  // Without --dead-letter the bad records are described on stderr.
  const auto r = run(SALES_BIN, {"by-category", "--input", bad.path.string(), "--threads", "2"});
  CHECK(r.status == 0);
  for (const auto line : bad.bad_lines) {
    CHECK(contains(r.err, bad.path.string() + ":" + std::to_string(line) + ":"));
  }
}

TEST_CASE("sales --bad-records fail: exits non-zero naming file:line of the first bad record") {
  const broken_file early = make_broken("broken-early.csv", true);
  const broken_file late = make_broken("broken-late.csv", false);  // first bad record in the 2nd chunk
  REQUIRE(late.bad_lines.size() == 3);
  for (const broken_file* f : {&early, &late}) {
    for (const char* threads : {"1", "3"}) {
      CAPTURE(f->path.string());
      CAPTURE(threads);
      const auto r =
          run(SALES_BIN, {"by-category", "--input", f->path.string(), "--threads", threads, "--bad-records", "fail"});
      CHECK(r.status != 0);
      CHECK(r.out.empty());
      CHECK(contains(r.err, f->path.string() + ":" + std::to_string(f->bad_lines.front()) + ":"));
      // Only the first one: the later bad lines are not mentioned.
      CHECK(!contains(r.err, f->path.string() + ":" + std::to_string(f->bad_lines.back()) + ":"));
    }
  }
}

TEST_CASE("sales: --help, usage errors") {
  const auto help = run(SALES_BIN, {"--help"});
  CHECK(help.status == 0);
  CHECK(contains(help.out, "usage: sales"));
  CHECK(contains(help.out, "top-products"));

  const auto unknown = run(SALES_BIN, {"by-colour", "--input", sales_60k().string()});
  CHECK(unknown.status == 2);
  CHECK(contains(unknown.err, "unknown query"));
  CHECK(unknown.out.empty());

  CHECK(run(SALES_BIN, {"by-category"}).status == 2);  // no --input
  CHECK(run(SALES_BIN, {"by-category", "--input", sales_60k().string(), "--threads", "0"}).status == 2);
  CHECK(run(SALES_BIN, {"by-category", "--input", sales_60k().string(), "--bad-records", "maybe"}).status == 2);

  const auto missing = run(SALES_BIN, {"by-category", "--input", tmp("no-such-file.csv").string()});
  CHECK(missing.status != 0);
  CHECK(contains(missing.err, "no-such-file.csv"));
}

// ---- log_report -------------------------------------------------------------------------------

namespace {

/// One CSV record with quoted fields ("" inside quotes is a quote); no embedded newlines here.
std::vector<std::string> split_quoted(const std::string& line) {
  std::vector<std::string> out(1);
  bool quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        out.back() += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        out.back() += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      out.emplace_back();
    } else {
      out.back() += c;
    }
  }
  return out;
}

struct host_ref {
  std::int64_t requests = 0;
  std::int64_t errors = 0;
  std::vector<std::int64_t> latencies;
  std::set<std::string> paths;
};

/// The report's sections: "# title" -> the CSV lines under it (header first).
std::map<std::string, std::vector<std::string>> sections(const std::string& report) {
  std::map<std::string, std::vector<std::string>> out;
  std::string current;
  for (const auto& line : lines_of(report)) {
    if (line.starts_with("# ")) {
      current = line.substr(2);
      out[current];
    } else if (!line.empty()) {
      REQUIRE(!current.empty());
      out[current].push_back(line);
    }
  }
  return out;
}

}  // namespace

TEST_CASE("log_report: sections and numbers agree with a reference read from the CSV") {
  const auto log = tmp("access.csv");
  REQUIRE(run(GEN_ACCESS_LOG_BIN, {"30000", log.string(), "--seed", "5"}).status == 0);
  const auto again = tmp("access-again.csv");
  REQUIRE(run(GEN_ACCESS_LOG_BIN, {"30000", again.string(), "--seed", "5"}).status == 0);
  CHECK(read_file(log) == read_file(again));

  // The reference.
  std::map<std::string, host_ref> hosts;
  std::map<std::string, std::pair<std::int64_t, std::int64_t>> windows;  // "2024-03-01T00:05:00Z" -> (n, bytes)
  std::map<std::string, std::pair<std::int64_t, std::int64_t>> paths;    // path -> (bytes, n)
  std::int64_t rows = 0;
  bool saw_escaped_quote_with_comma = false;
  {
    std::ifstream in(log);
    std::string line;
    REQUIRE(std::getline(in, line));
    REQUIRE(line == "ts,host,method,path,status,bytes,latency_ms,user_agent");
    while (std::getline(in, line)) {
      const auto f = split_quoted(line);
      if (f.size() != 8 || f[0].size() != 24) {
        FAIL("not a gen_access_log row: " << line);
      }
      ++rows;
      const std::int64_t status = std::stoll(f[4]);
      const std::int64_t bytes = std::stoll(f[5]);
      auto& h = hosts[f[1]];
      ++h.requests;
      h.errors += status >= 500 ? 1 : 0;
      h.latencies.push_back(std::stoll(f[6]));
      h.paths.insert(f[3]);
      // ts is YYYY-MM-DDTHH:MM:SS.fffZ: the 5-minute window is the minute rounded down to 5.
      const int minute = std::stoi(f[0].substr(14, 2));
      std::string window =
          f[0].substr(0, 14) + (minute / 5 * 5 < 10 ? "0" : "") + std::to_string(minute / 5 * 5) + ":00Z";
      auto& w = windows[window];
      ++w.first;
      w.second += bytes;
      auto& p = paths[f[3]];
      p.first += bytes;
      ++p.second;
      saw_escaped_quote_with_comma = saw_escaped_quote_with_comma || (contains(f[7], "\"") && contains(f[7], ","));
    }
  }
  REQUIRE(rows == 30000);
  CHECK(saw_escaped_quote_with_comma);

  const auto r = run(LOG_REPORT_BIN, {"--input", log.string(), "--threads", "2"});
  REQUIRE(r.status == 0);
  CHECK(contains(r.err, "30000 rows read, 0 bad records"));
  const auto s = sections(r.out);
  REQUIRE(s.count("per host") == 1);
  REQUIRE(s.count("per 5-minute window") == 1);
  REQUIRE(s.count("top 5 paths by bytes") == 1);

  // Per host: counts exact, sketches within their error bounds.
  const auto& per_host = s.at("per host");
  REQUIRE(per_host.size() == hosts.size() + 1);
  CHECK(per_host[0] == "host,requests,errors,error_rate,p50_latency_ms,p99_latency_ms,distinct_paths");
  auto it = hosts.begin();
  for (std::size_t i = 1; i < per_host.size(); ++i, ++it) {
    CAPTURE(per_host[i]);
    const auto f = split(per_host[i]);
    REQUIRE(f.size() == 7);
    auto& ref = it->second;
    CHECK(f[0] == it->first);
    CHECK(std::stoll(f[1]) == ref.requests);
    CHECK(std::stoll(f[2]) == ref.errors);
    CHECK(std::stod(f[3]) == doctest::Approx(static_cast<double>(ref.errors) / ref.requests).epsilon(0.01));
    std::sort(ref.latencies.begin(), ref.latencies.end());
    for (const auto& item : {std::pair{0.5, 4}, std::pair{0.99, 5}}) {
      const auto& q = item.first;
      const auto& column = item.second;
      const auto rank = static_cast<std::size_t>(q * static_cast<double>(ref.latencies.size() - 1));
      const double exact = static_cast<double>(ref.latencies[rank]);
      CHECK(std::abs(std::stod(f[static_cast<std::size_t>(column)]) - exact) <= 0.011 * exact + 0.05);
    }
    const double distinct = static_cast<double>(ref.paths.size());
    CHECK(std::abs(std::stod(f[6]) - distinct) <= 0.06 * distinct);
  }
  // web-03 is the flaky host in the generator.
  CHECK(hosts.at("web-03").errors > 5 * hosts.at("web-01").errors);

  // Per window: exact, in time order.
  std::vector<std::string> expected_windows = {"window_start,requests,bytes"};
  for (const auto& item : windows) {
    const auto& start = item.first;
    const auto& v = item.second;
    expected_windows.push_back(start + "," + std::to_string(v.first) + "," + std::to_string(v.second));
  }
  CHECK(s.at("per 5-minute window") == expected_windows);

  // Top 5 paths by bytes: exact, ties to the smaller path.
  std::vector<std::pair<std::string, std::pair<std::int64_t, std::int64_t>>> ranked(paths.begin(), paths.end());
  std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) {
    return a.second.first != b.second.first ? a.second.first > b.second.first : a.first < b.first;
  });
  std::vector<std::string> expected_top = {"path,bytes,requests"};
  for (std::size_t i = 0; i < 5 && i < ranked.size(); ++i) {
    expected_top.push_back(ranked[i].first + "," + std::to_string(ranked[i].second.first) + "," +
                           std::to_string(ranked[i].second.second));
  }
  CHECK(s.at("top 5 paths by bytes") == expected_top);

  // Any thread count, the same report.
  for (const char* threads : {"1", "3"}) {
    const auto again_r = run(LOG_REPORT_BIN, {"--input", log.string(), "--threads", threads});
    CHECK(again_r.status == 0);
    CHECK(again_r.out == r.out);
  }
}

TEST_CASE("log_report: bad records, --help, usage errors") {
  const auto log = tmp("access-bad.csv");
  REQUIRE(run(GEN_ACCESS_LOG_BIN, {"200", log.string()}).status == 0);
  std::string text = read_file(log);
  text += "2024-02-30T00:00:00.000Z,web-01,GET,/,200,10,1,\"x\"\n";  // no such date: line 202
  write_file(log, text);

  const auto skip = run(LOG_REPORT_BIN, {"--input", log.string()});
  CHECK(skip.status == 0);
  CHECK(contains(skip.err, "200 rows read, 1 bad records"));
  CHECK(contains(skip.err, log.string() + ":202:"));
  CHECK(contains(skip.out, "# per host"));

  const auto fail = run(LOG_REPORT_BIN, {"--input", log.string(), "--bad-records", "fail"});
  CHECK(fail.status != 0);
  CHECK(contains(fail.err, log.string() + ":202:"));

  const auto help = run(LOG_REPORT_BIN, {"--help"});
  CHECK(help.status == 0);
  CHECK(contains(help.out, "usage: log_report"));
  CHECK(run(LOG_REPORT_BIN, {}).status == 2);
  CHECK(run(LOG_REPORT_BIN, {"--input", log.string(), "--frobnicate"}).status == 2);
}

namespace {

/// The byte offset the checkpoint in `dir` of the followed file `path` covers (-1: none yet).
std::int64_t covered_bytes(const fs::path& dir, const fs::path& path) {
  return test_support::checkpoint_position(dir, path.string()).value_or(-1);
}

std::uint64_t rows_read(const std::string& err) {
  const std::size_t at = err.find(" rows read");
  REQUIRE(at != std::string::npos);
  return std::stoull(err.substr(err.rfind(' ', at - 1) + 1));
}

}  // namespace

TEST_CASE("log_report --follow with checkpoints: after kill -9 and after a stop, each restart goes on exactly") {
  const auto full = tmp("follow-full.csv");
  REQUIRE(run(GEN_ACCESS_LOG_BIN, {"30000", full.string(), "--seed", "9"}).status == 0);
  std::map<std::string, std::string> batch_rows;  // window_start -> the whole row
  auto report = sections(run(LOG_REPORT_BIN, {"--input", full.string()}).out);
  const auto& windows = report["per 5-minute window"];
  REQUIRE(windows.size() > 1);
  REQUIRE(windows.front() == "window_start,requests,bytes");
  for (auto row = windows.begin() + 1; row != windows.end(); ++row) {
    batch_rows[row->substr(0, row->find(','))] = *row;
  }
  const std::string text = read_file(full);
  const std::size_t third = text.find('\n', text.size() / 3) + 1;
  const std::size_t two_thirds = text.find('\n', text.size() * 2 / 3) + 1;
  const std::string sentinel = "2024-03-03T00:00:00.000Z,web-01,GET,/,200,1,1,\"x\"\n";  // a day on: every window closes
  const auto live = tmp("follow-live.csv");
  const auto ckpt = tmp("follow-ckpt");
  const auto append = [&](std::string_view bytes) {
    std::ofstream out(live, std::ios::binary | std::ios::app);
    out << bytes;
    REQUIRE(out.good());
  };
  const auto lines_in = [&](std::size_t from, std::size_t to) {
    const std::string all = read_file(live);
    return static_cast<std::uint64_t>(std::count(all.begin() + static_cast<std::ptrdiff_t>(from),
                                                 all.begin() + static_cast<std::ptrdiff_t>(to), '\n'));
  };
  const std::vector<std::string> args{"--follow",           live.string(), "--checkpoint-dir", ckpt.string(),
                                      "--checkpoint-every", "10ms",        "--threads",        "2"};
  std::vector<std::string> printed;

  // 1: reads the first third, and is killed (-9) once a checkpoint covers part of the second.
  append(std::string_view(text).substr(0, third));
  {
    background first(LOG_REPORT_BIN, args);
    append(std::string_view(text).substr(third, two_thirds - third));
    first.wait_until([&] { return covered_bytes(ckpt, live) > static_cast<std::int64_t>(third); }, "checkpoint");
    first.signal(SIGKILL);
    const run_result r = first.wait();
    CHECK(r.status == -1);
    printed.push_back(r.out);
  }
  const std::int64_t killed_at = covered_bytes(ckpt, live);
  CAPTURE(killed_at);

  // 2: goes on from the killed run's last checkpoint, reads to the end of the second third, is stopped.
  {
    background second(LOG_REPORT_BIN, args);
    second.wait_until([&] { return covered_bytes(ckpt, live) == static_cast<std::int64_t>(two_thirds); }, "checkpoint");
    second.signal(SIGTERM);
    const run_result r = second.wait();
    CHECK(r.status == 0);
    CHECK(rows_read(r.err) == lines_in(static_cast<std::size_t>(killed_at), two_thirds));  // nothing covered twice
    CHECK(contains(r.err, "1 restored from a checkpoint"));
    printed.push_back(r.out);
  }

  // 3: the rest, and a request a day later that closes every window of the day.
  append(std::string_view(text).substr(two_thirds));
  append(sentinel);
  {
    background third_run(LOG_REPORT_BIN, args);
    const std::string last_window = batch_rows.rbegin()->second;
    third_run.wait_until([&] { return contains(third_run.out(), last_window); }, "last window " + last_window);
    third_run.signal(SIGTERM);
    const run_result r = third_run.wait();
    CHECK(r.status == 0);
    CHECK(rows_read(r.err) == lines_in(two_thirds, text.size() + sentinel.size()));
    printed.push_back(r.out);
  }

  // Every window printed, by any run, holds batch mode's numbers; each of batch mode's windows is printed.
  std::set<std::string> seen;
  for (const auto& out : printed) {
    for (const auto& row : lines_of(out)) {
      if (row == "window_start,requests,bytes") {
        continue;
      }
      const std::string start = row.substr(0, row.find(','));
      CHECK_MESSAGE(batch_rows.contains(start), row);
      CHECK(batch_rows[start] == row);
      seen.insert(start);
    }
  }
  CHECK(seen.size() == batch_rows.size());
}
