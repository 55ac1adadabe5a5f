// Batch runner properties on random inputs: the answer equals a naive reference computed here,
// whatever the thread count and wherever chunk boundaries fall.
#include <doctest/doctest.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <vector>

#include "random_sales.hpp"
#include "sales.hpp"
#include "sluice/io/file_source.hpp"
#include "sluice/io/lines_file.hpp"
#include "sluice/io/memory_source.hpp"
#include "sluice/run/batch.hpp"
#include "temp_dir.hpp"

namespace {

using test_data::category_ref;
using test_data::owned_sale;
using test_data::random_sales;
using test_data::to_csv;
using test_data::to_map;

std::string write_temp(const std::string& name, const std::string& content) {
  const auto path = test_support::process_dir().path / ("sluice_test_" + name);
  std::ofstream(path, std::ios::binary) << content;
  return path.string();
}

category_ref reference_by_category(const std::vector<owned_sale>& rows) {
  category_ref ref;
  for (const auto& r : rows) {
    auto& [cnt, revenue] = ref[r.category];
    ++cnt;
    revenue += r.qty * r.price_cents;
  }
  return ref;
}

}  // namespace

TEST_CASE("by-category over a CSV file equals the naive reference for every thread count") {
  for (std::uint64_t seed = 1; seed <= 4; ++seed) {
    const auto rows = random_sales(seed, 3000 + seed * 517);
    const auto path = write_temp("bycat_" + std::to_string(seed) + ".csv", to_csv(rows, seed % 2 == 0, seed));
    const auto expected = reference_by_category(rows);
    for (unsigned threads : {1U, 2U, 3U, 7U}) {
      CAPTURE(seed);
      CAPTURE(threads);
      sluice::batch_stats stats;
      auto store = sluice::run_batch(sluice::csv_file(path, sales::csv_schema()), sales::by_category(),
                                     sluice::batch_options{.threads = threads, .min_chunk_units = 1}, &stats);
      CHECK(stats.records == rows.size());
      CHECK(stats.bad_records == 0);
      CHECK(stats.chunks == threads);
      CHECK(to_map(store) == expected);
    }
    std::filesystem::remove(path);
  }
}

TEST_CASE("windowed results are identical on 1 and many threads, and match the reference") {
  const auto rows = random_sales(99, 5000);
  const auto path = write_temp("window.csv", to_csv(rows, true, 99));
  std::map<std::pair<std::string, std::int64_t>, std::pair<std::int64_t, std::int64_t>> expected;
  for (const auto& r : rows) {
    auto& [cnt, revenue] = expected[{r.region, r.ts - r.ts % 60'000}];
    ++cnt;
    revenue += r.qty * r.price_cents;
  }
  for (unsigned threads : {1U, 2U, 5U}) {
    auto store = sluice::run_batch(sluice::csv_file(path, sales::csv_schema()), sales::region_minute(),
                                   sluice::batch_options{.threads = threads, .min_chunk_units = 1});
    std::map<std::pair<std::string, std::int64_t>, std::pair<std::int64_t, std::int64_t>> got;
    for (const auto& row : store.scan()) {
      CHECK(row.key.window.end.count() - row.key.window.start.count() == 60'000);
      got[{row.key.key, row.key.window.start.count()}] = {std::get<0>(row.value), std::get<1>(row.value)};
    }
    CHECK(got == expected);
  }
  std::filesystem::remove(path);
}

TEST_CASE("a quoted newline across a chunk boundary is re-parsed, not split") {
  // Every record carries a quoted field with embedded newlines, so most guessed boundaries
  // (the first line start after an even split) fall inside a record.
  std::string csv = "id,note,amount\n";
  std::int64_t expected_sum = 0;
  for (int i = 0; i < 400; ++i) {
    csv += std::to_string(i) + ",\"line one\nline two\nline \"\"three\"\"\"," + std::to_string(i * 3) + "\n";
    expected_sum += i * 3;
  }
  struct note_row {
    std::int64_t id = 0;
    std::string_view note;
    std::int64_t amount = 0;
  };
  const auto schema =
      sluice::schema<note_row>(sluice::column("id", &note_row::id), sluice::column("note", &note_row::note),
                               sluice::column("amount", &note_row::amount));
  const auto path = write_temp("quoted_newlines.csv", csv);
  const auto total = sluice::flow<note_row>() |
                     sluice::filter([](const note_row& r) { return r.note == "line one\nline two\nline \"three\""; }) |
                     sluice::aggregate(sluice::count{}, sluice::sum(&note_row::amount));
  for (unsigned threads : {1U, 2U, 3U, 4U, 9U}) {
    CAPTURE(threads);
    sluice::batch_stats stats;
    auto store = sluice::run_batch(sluice::csv_file(path, schema), total,
                                   sluice::batch_options{.threads = threads, .min_chunk_units = 1}, &stats);
    const auto answer = store.get(sluice::unit_key{});
    REQUIRE(answer.has_value());
    CHECK(std::get<0>(*answer) == 400);
    CHECK(std::get<1>(*answer) == expected_sum);
    CHECK(stats.bad_records == 0);
    CHECK(stats.lines == 400 * 3);
    if (threads > 1) {
      CHECK(stats.reparsed_chunks > 0);  // the guesses really were wrong, and were caught
    }
  }
  std::filesystem::remove(path);
}

TEST_CASE("dead letters arrive in input order with absolute line numbers on any thread count") {
  const auto rows = random_sales(5, 4000);
  std::string csv = to_csv(rows, false, 5);
  // Corrupt every 97th data line (line numbers are 1-based; line 1 is the header).
  std::vector<std::uint64_t> corrupted_lines;
  std::string out;
  std::uint64_t line = 0;
  std::size_t start = 0;
  while (start < csv.size()) {
    const std::size_t nl = csv.find('\n', start);
    std::string text = csv.substr(start, nl - start + 1);
    ++line;
    if (line > 1 && line % 97 == 0) {
      text = "garbage," + text;
      corrupted_lines.push_back(line);
    }
    out += text;
    start = nl + 1;
  }
  const auto path = write_temp("dead_letters.csv", out);
  for (unsigned threads : {1U, 2U, 4U}) {
    std::vector<std::uint64_t> seen_lines;
    sluice::input_options in;
    in.dead_letters = [&](const sluice::bad_record& r) {
      seen_lines.push_back(r.line);
      CHECK(r.reason == "expected 8 fields, found 9");
      CHECK(r.text.substr(0, 8) == "garbage,");
    };
    sluice::batch_stats stats;
    auto store = sluice::run_batch(
        sluice::csv_file(path, sales::csv_schema(), in), sales::by_category(),
        sluice::batch_options{.threads = threads, .min_chunk_units = 1, .max_buffered_bad = 3}, &stats);
    CHECK(seen_lines == corrupted_lines);
    CHECK(stats.bad_records == corrupted_lines.size());
    CHECK(stats.records + stats.bad_records == rows.size());
  }
  std::filesystem::remove(path);
}

TEST_CASE("policy fail stops with the first bad record's position, whichever thread finds it first") {
  const auto rows = random_sales(8, 3000);
  std::string csv = to_csv(rows, false, 8);
  // Break a line near the end and one in the middle: the middle one must be reported.
  const std::size_t mid = csv.find('\n', csv.size() / 2) + 1;
  csv.insert(mid, "1,2,3\n");
  const std::size_t late = csv.find('\n', csv.size() * 9 / 10) + 1;
  csv.insert(late, "x,y\n");
  const std::uint64_t mid_line =
      1 + static_cast<std::uint64_t>(std::count(csv.begin(), csv.begin() + static_cast<std::ptrdiff_t>(mid), '\n'));
  const auto path = write_temp("fail.csv", csv);
  sluice::input_options in;
  in.on_bad_record = sluice::bad_record_policy::fail;
  for (unsigned threads : {1U, 2U, 4U}) {
    try {
      (void)sluice::run_batch(sluice::csv_file(path, sales::csv_schema(), in), sales::by_category(),
                              sluice::batch_options{.threads = threads, .min_chunk_units = 1});
      FAIL("expected bad_input_error");
    } catch (const sluice::bad_input_error& e) {
      CHECK(std::string(e.what()) ==
            path + ":" + std::to_string(mid_line) + ": byte " + std::to_string(mid) + ": expected 8 fields, found 3");
    }
  }
  std::filesystem::remove(path);
}

TEST_CASE("an in-memory range gives the same answer on every thread count") {
  const auto rows = random_sales(3, 20000);
  const std::vector<sales::sale> events = test_data::as_events(rows);
  const auto expected = reference_by_category(rows);
  for (unsigned threads : {1U, 2U, 6U}) {
    auto store = sluice::run_batch(sluice::from_range(events), sales::by_category(),
                                   sluice::batch_options{.threads = threads, .min_chunk_units = 1});
    CHECK(to_map(store) == expected);
  }
}

TEST_CASE("fan_out runs several flows in one pass with the same answers as separate runs") {
  const auto rows = random_sales(21, 6000);
  const auto path = write_temp("fan_out.csv", to_csv(rows, true, 21));
  const auto options = sluice::batch_options{.threads = 3, .min_chunk_units = 1};
  const auto source = sluice::csv_file(path, sales::csv_schema());
  sluice::batch_stats stats;
  const auto [by_category, by_minute, by_product] = sluice::run_batch(
      source, sluice::fan_out(sales::by_category(), sales::region_minute(), sales::product_revenue()), options, &stats);
  CHECK(stats.records == rows.size());
  CHECK(to_map(by_category) == reference_by_category(rows));
  const auto minute_alone = sluice::run_batch(source, sales::region_minute(), options);
  REQUIRE(by_minute.size() == minute_alone.size());
  for (const auto& row : minute_alone.scan()) {
    CHECK(by_minute.get(sluice::windowed_key<std::string_view>{row.key.key, row.key.window}) == row.value);
  }
  const auto products_alone = sluice::run_batch(source, sales::product_revenue(), options);  // rows refer into it
  const auto top_alone = products_alone.top_k(10, [](std::int64_t r) { return r; });
  const auto top_fanned = by_product.top_k(10, [](std::int64_t r) { return r; });
  REQUIRE(top_alone.size() == top_fanned.size());
  for (std::size_t i = 0; i < top_alone.size(); ++i) {
    CHECK(top_alone[i].key == top_fanned[i].key);
    CHECK(top_alone[i].value == top_fanned[i].value);
  }
  std::filesystem::remove(path);
}

#include "sluice/io/sinks.hpp"

namespace {
std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
}  // namespace

TEST_CASE("csv and json-lines sinks write every row of a store in key order, flattening keys and windows") {
  struct row {
    sluice::millis ts;
    std::string_view name;
    std::int64_t amount = 0;
  };
  const std::vector<row> rows = {
      {sluice::millis{61'000}, "b,\"x\"", 5}, {sluice::millis{1'000}, "a", 2}, {sluice::millis{2'000}, "a", 3}};
  using namespace std::chrono_literals;
  const auto windowed = sluice::flow<row>() | sluice::event_time(&row::ts) | sluice::key_by(&row::name) |
                        sluice::window(sluice::tumbling(1min)) |
                        sluice::aggregate(sluice::count{}, sluice::max(&row::amount));
  const auto store = sluice::run_batch(sluice::from_range(rows), windowed);
  const auto dir = test_support::process_dir().path;
  {
    sluice::csv_sink csv((dir / "sluice_sink.csv").string(), {"name", "start", "end", "n", "max"});
    sluice::emit(store, csv);
    csv.close();
    sluice::jsonl_sink json((dir / "sluice_sink.jsonl").string(), {"name", "start", "end", "n", "max"});
    sluice::emit(store, json);
    json.close();
  }
  CHECK(read_all((dir / "sluice_sink.csv").string()) ==
        "name,start,end,n,max\na,0,60000,2,3\n\"b,\"\"x\"\"\",60000,120000,1,5\n");
  CHECK(read_all((dir / "sluice_sink.jsonl").string()) ==
        "{\"name\":\"a\",\"start\":0,\"end\":60000,\"n\":2,\"max\":3}\n"
        "{\"name\":\"b,\\\"x\\\"\",\"start\":60000,\"end\":120000,\"n\":1,\"max\":5}\n");
  std::vector<std::string> seen;
  sluice::emit(store, [&](const auto& key, const auto& value) {
    seen.push_back(key.key + "@" + std::to_string(key.window.start.count()) + "=" + std::to_string(std::get<0>(value)));
  });
  CHECK(seen == std::vector<std::string>{"a@0=2", "b,\"x\"@60000=1"});
}

// ---- lines_file, from_index, collect, all_max ---------------------------------------------------

namespace {
struct kv {
  std::int64_t key = 0;
  std::int64_t value = 0;
  friend bool operator==(const kv&, const kv&) = default;
  friend auto operator<=>(const kv&, const kv&) = default;
};
/// "key=value": anything else is a bad line.
/// "key=value", whole integers and nothing else (a '\r' left on the line is a bad record, so the
/// CRLF lines below check that lines_file strips it).
const char* parse_kv(std::string_view line, kv& out) {
  const auto eq = line.find('=');
  if (eq == std::string_view::npos) {
    return "no '='";
  }
  auto whole = [](std::string_view text, std::int64_t& v) {
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    return ec == std::errc{} && end == text.data() + text.size();
  };
  if (!whole(line.substr(0, eq), out.key) || !whole(line.substr(eq + 1), out.value)) {
    return "not a number";
  }
  return nullptr;
}
}  // namespace

TEST_CASE("lines_file: every good line once on any thread count; bad and over-long lines with their line numbers") {
  std::mt19937_64 rng(11);
  std::string text = "\xEF\xBB\xBF";  // a byte-order mark, skipped
  std::vector<kv> want;
  std::vector<std::uint64_t> bad_lines;
  for (std::uint64_t line = 1; line <= 3000; ++line) {
    const auto pick = rng() % 20;
    if (pick == 0) {
      text += "garbage\n";
      bad_lines.push_back(line);
    } else if (pick == 1) {
      text += std::string(300, '7') + "=1\n";  // past the 256-byte limit below
      bad_lines.push_back(line);
    } else if (pick == 2) {
      text += "\r\n";  // blank: skipped
    } else {
      const kv v{static_cast<std::int64_t>(rng() % 100), static_cast<std::int64_t>(line)};
      text += std::to_string(v.key) + "=" + std::to_string(v.value) + (pick == 3 ? "\r\n" : "\n");
      want.push_back(v);
    }
  }
  text += "5=9";  // a last line without its newline counts
  want.push_back(kv{5, 9});
  std::sort(want.begin(), want.end());
  const std::string path = write_temp("lines_file.txt", text);
  for (const unsigned threads : {1U, 3U}) {
    CAPTURE(threads);
    std::vector<std::uint64_t> seen_bad;
    sluice::input_options opts;
    opts.max_record_bytes = 256;
    opts.dead_letters = [&](const sluice::bad_record& r) { seen_bad.push_back(r.line); };
    sluice::batch_stats stats;
    auto rows = sluice::run_batch(sluice::lines_file<kv>(path, parse_kv, opts), sluice::flow<kv>() | sluice::collect(),
                                  sluice::batch_options{.threads = threads, .min_chunk_units = 1}, &stats);
    std::sort(rows.begin(), rows.end());
    CHECK(rows == want);
    CHECK(stats.bad_records == bad_lines.size());
    CHECK(seen_bad == bad_lines);
  }
}

TEST_CASE("from_index and collect: fn(0..n-1) once each; one thread keeps input order") {
  auto square = [](std::uint64_t i) { return static_cast<std::int64_t>(i * i); };
  const auto evens =
      sluice::flow<std::int64_t>() | sluice::filter([](std::int64_t x) { return x % 2 == 0; }) | sluice::collect();
  std::vector<std::int64_t> want;
  for (std::uint64_t i = 0; i < 10'000; i += 2) {
    want.push_back(square(i));
  }
  CHECK(sluice::run_batch(sluice::from_index(10'000, square), evens, sluice::batch_options{.threads = 1}) == want);
  auto parallel = sluice::run_batch(sluice::from_index(10'000, square), evens,
                                    sluice::batch_options{.threads = 4, .min_chunk_units = 1});
  std::sort(parallel.begin(), parallel.end());
  CHECK(parallel == want);
}

TEST_CASE("all_max keeps every input at the maximum, merged in any order") {
  const auto m = sluice::all_max([](const kv& x) { return x.value; }).bind<kv>();
  using monoid = std::remove_const_t<decltype(m)>;
  std::mt19937_64 rng(5);
  for (int round = 0; round < 50; ++round) {
    std::vector<kv> xs;
    for (int i = 0; i < 40; ++i) {
      xs.push_back(kv{i, static_cast<std::int64_t>(rng() % 6)});
    }
    const std::int64_t top =
        std::max_element(xs.begin(), xs.end(), [](const kv& a, const kv& b) { return a.value < b.value; })->value;
    std::vector<kv> want;
    std::copy_if(xs.begin(), xs.end(), std::back_inserter(want), [&](const kv& x) { return x.value == top; });
    // Split at a random point, fold each half, merge either way round.
    const std::size_t cut = rng() % xs.size();
    typename monoid::state a = m.identity(), b = m.identity();
    for (std::size_t i = 0; i < xs.size(); ++i) {
      m.add(i < cut ? a : b, xs[i]);
    }
    typename monoid::state ab = a, ba = b;
    m.merge(ab, b);
    m.merge(ba, a);
    for (auto* s : {&ab, &ba}) {
      auto got = m.result(*s);
      std::sort(got.begin(), got.end());
      CHECK(got == want);
    }
  }
}
