// JSON lines: every JSON type into members, escapes, exact fixed-point numbers, every kind of bad
// record with its line, offset and reason, and equivalence with CSV through the batch runner.
#include <doctest/doctest.h>
#include <simdjson.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "random_sales.hpp"
#include "sales.hpp"
#include "sluice/io/file_source.hpp"
#include "sluice/io/jsonl.hpp"
#include "sluice/run/batch.hpp"

namespace {

std::string write_temp(const std::string& name, const std::string& content) {
  const auto path = std::filesystem::temp_directory_path() / ("sluice_test_jsonl_" + name);
  std::ofstream(path, std::ios::binary) << content;
  return path.string();
}

template <class Owned>
struct parse_result {
  std::vector<Owned> values;
  std::vector<sluice::chunk_bad_record> bad;
  sluice::chunk_outcome outcome;
};

/// Parse `text` as one chunk with the format's own parser; `own` copies each record while it is
/// valid (an escaped string's view lives only until the next line is parsed).
template <class Schema, class Own>
auto parse_text(const std::string& text, Schema schema, Own own, std::size_t max_record_bytes = std::size_t{1} << 20U) {
  using owned = decltype(own(std::declval<const typename Schema::record_type&>()));
  sluice::jsonl_format<Schema> fmt(std::move(schema));
  const auto header = fmt.bind_header(text, "test");
  typename sluice::jsonl_format<Schema>::parser parser(fmt);
  parse_result<owned> r;
  const char* base = text.data();
  r.outcome = parser.parse(
      base, base + header.bytes, base + text.size(), base + text.size(), true, max_record_bytes,
      [&](const auto& v) { r.values.push_back(own(v)); },
      [&](sluice::chunk_bad_record bad) {
        r.bad.push_back(std::move(bad));
        return true;
      });
  return r;
}

struct all_types {
  std::int64_t i = 0;
  std::uint32_t u = 0;
  double d = 0;
  bool b = false;
  std::string_view sv;
  std::string s;
  std::optional<std::int64_t> oi;
  std::optional<std::string> os;
  std::int64_t cents = 0;
  sluice::millis ts{};
};

auto all_types_schema() {
  using sluice::column;
  return sluice::schema<all_types>(column("i", &all_types::i), column("u", &all_types::u), column("d", &all_types::d),
                                   column("b", &all_types::b), column("sv", &all_types::sv), column("s", &all_types::s),
                                   column("oi", &all_types::oi), column("os", &all_types::os),
                                   column("cents", &all_types::cents, sluice::fixed_point<2>{}),
                                   column("ts", &all_types::ts));
}

struct owned_all {
  std::int64_t i;
  std::uint32_t u;
  double d;
  bool b;
  std::string sv, s;
  std::optional<std::int64_t> oi;
  std::optional<std::string> os;
  std::int64_t cents;
  std::int64_t ts;
};

const auto own_all = [](const all_types& v) {
  return owned_all{v.i, v.u, v.d, v.b, std::string(v.sv), v.s, v.oi, v.os, v.cents, v.ts.count()};
};

// A two-column schema for the string and number cases.
struct kv {
  std::string_view k;
  std::int64_t n = 0;
};
auto kv_schema() {
  return sluice::schema<kv>(sluice::column("k", &kv::k), sluice::column("n", &kv::n));
}
const auto own_kv = [](const kv& v) { return std::pair<std::string, std::int64_t>(std::string(v.k), v.n); };

struct priced {
  std::int64_t cents = 0;
};
auto priced_schema() {
  return sluice::schema<priced>(sluice::column("p", &priced::cents, sluice::fixed_point<2>{}));
}

std::string invalid(simdjson::error_code err) {
  return std::string("invalid JSON: ") + simdjson::error_message(err);
}

}  // namespace

TEST_CASE("every JSON type parses into its member") {
  const std::string text =
      R"({"i": -42, "u": 7, "d": 2.5e-3, "b": true, "sv": "hello", "s": "world", "oi": null, "os": "x", "cents": 12.34, "ts": 1700000000000})"
      "\n"
      R"({"ts":5,"cents":-0.05,"os":null,"oi":-9223372036854775808,"s":"","sv":12.50,"b":false,"d":-0.1,"u":4294967295,"i":"17"})"
      "\n"
      R"(  {  "i" : 0 , "u" : 0 , "d" : 1E+2 , "b" : true , "sv" : null , "s" : false , "oi" : 3 , "os" : "" , "cents" : 7 , "ts" : -1 }  )"
      "\n";
  const auto r = parse_text(text, all_types_schema(), own_all);
  REQUIRE(r.bad.empty());
  REQUIRE(r.values.size() == 3);
  CHECK(r.outcome.records == 3);
  CHECK(r.outcome.lines == 3);
  CHECK(r.outcome.next == text.size());

  const auto& a = r.values[0];
  CHECK(a.i == -42);
  CHECK(a.u == 7U);
  CHECK(a.d == 2.5e-3);
  CHECK(a.b);
  CHECK(a.sv == "hello");
  CHECK(a.s == "world");
  CHECK(!a.oi.has_value());  // null is the empty field: nullopt
  CHECK(a.os == std::optional<std::string>("x"));
  CHECK(a.cents == 1234);
  CHECK(a.ts == 1'700'000'000'000);

  const auto& b = r.values[1];  // keys in another order; a number into a string, a string into an int
  CHECK(b.i == 17);
  CHECK(b.u == 4294967295U);
  CHECK(b.d == -0.1);
  CHECK(!b.b);
  CHECK(b.sv == "12.50");  // the number's token as written
  CHECK(b.s.empty());
  CHECK(b.oi == std::numeric_limits<std::int64_t>::min());
  CHECK(!b.os.has_value());
  CHECK(b.cents == -5);
  CHECK(b.ts == 5);

  const auto& c = r.values[2];  // whitespace everywhere
  CHECK(c.d == 100.0);
  CHECK(c.sv.empty());
  CHECK(c.s == "false");
  CHECK(c.oi == 3);
  CHECK(!c.os.has_value());  // "" is the empty field too
  CHECK(c.cents == 700);
  CHECK(c.ts == -1);
}

TEST_CASE("string escapes are unescaped, in place and near the end of the input") {
  const std::string line = R"({"k":"a\"b\nc\u00e9\\d\/e\t\ud83d\ude00","n":1})";
  const std::string expected = "a\"b\nc\xC3\xA9\\d/e\t\xF0\x9F\x98\x80";
  // The first copy is parsed in place (more than SIMDJSON_PADDING bytes follow it), the last one
  // from the padded copy buffer.
  std::string text;
  for (int i = 0; i < 4; ++i) {
    text += line + "\n";
  }
  const auto r = parse_text(text, kv_schema(), own_kv);
  REQUIRE(r.bad.empty());
  REQUIRE(r.values.size() == 4);
  for (const auto& v : r.values) {
    CHECK(v.first == expected);
    CHECK(v.second == 1);
  }

  // An escaped key still names its column; a string without escapes is a view into the input.
  const std::string keyed = R"({"\u006b":"plain","\u006E":2})"
                            "\n";
  kv seen;
  sluice::jsonl_format fmt(kv_schema());
  sluice::jsonl_format<decltype(kv_schema())>::parser parser(fmt);
  const auto out = parser.parse(
      keyed.data(), keyed.data(), keyed.data() + keyed.size(), keyed.data() + keyed.size(), true, 1024,
      [&](const kv& v) { seen = v; }, [](const sluice::chunk_bad_record&) { return true; });
  CHECK(out.records == 1);
  CHECK(seen.k == "plain");
  CHECK(seen.n == 2);
  CHECK(seen.k.data() >= keyed.data());
  CHECK(seen.k.data() < keyed.data() + keyed.size());
}

TEST_CASE("keys match exactly: prefixes, long names, names that need escaping, any order") {
  struct wide {
    std::int64_t n = 0, nn = 0, long_name = 0, quoted = 0, fifteen = 0, huge = 0;
  };
  const std::string huge(70, 'h');  // longer than simdjson's padding: compared off the fast path
  using sluice::column;
  const auto schema = sluice::schema<wide>(
      column("n", &wide::n), column("nn", &wide::nn), column("a_very_long_column_name", &wide::long_name),
      column("say \"hi\"", &wide::quoted), column("exactly15bytes_", &wide::fifteen), column(huge, &wide::huge));
  const std::string h = "\"" + huge + "\"";
  const std::string text =
      R"({"n":1,"nn":2,"a_very_long_column_name":3,"say \"hi\"":4,"exactly15bytes_":5,)" + h + ":6}\n" +
      R"({"nn":20,"n":10,"exactly15bytes_":50,"say \u0022hi\u0022":40,)" + h + R"(:60,"a_very_long_column_name":30})" +
      "\n" + R"({"nnn":0,"n ":0,"N":0,"a_very_long_column_nam":0,"a_very_long_column_namex":0,"exactly15bytes":0,)" +
      "\"" + huge.substr(1) + "\":0,\"" + huge + "h\":0," +
      R"("n":100,"nn":200,"a_very_long_column_name":300,"say \"hi\"":400,"exactly15bytes_":500,)" + h + ":600}\n" +
      R"({"n":1,"nn":2,"a_very_long_column_name":3,"say \"hi\"":4,"exactly15bytes__":5,)" + h + ":6}\n" +
      R"({"n":1,"nn":2,"a_very_long_column_name":3,"say \"hi\"":4,"exactly15bytes_":5})" + "\n";
  const auto r = parse_text(text, schema, [](const wide& w) {
    return std::vector<std::int64_t>{w.n, w.nn, w.long_name, w.quoted, w.fifteen, w.huge};
  });
  REQUIRE(r.values.size() == 3);
  CHECK(r.values[0] == std::vector<std::int64_t>{1, 2, 3, 4, 5, 6});
  CHECK(r.values[1] == std::vector<std::int64_t>{10, 20, 30, 40, 50, 60});
  CHECK(r.values[2] == std::vector<std::int64_t>{100, 200, 300, 400, 500, 600});
  REQUIRE(r.bad.size() == 2);
  CHECK(r.bad[0].reason == "missing field 'exactly15bytes_'");
  CHECK(r.bad[0].local_line == 3);
  CHECK(r.bad[1].reason == "missing field '" + huge + "'");
  CHECK(r.bad[1].local_line == 4);
}

TEST_CASE("JSON numbers reach fixed_point as written: exact, never through a double") {
  const std::string text =
      "{\"p\": 12.34}\n{\"p\": 0.1}\n{\"p\": -0.05}\n{\"p\": 7}\n{\"p\": 92233720368547758.07}\n"
      "{\"p\": 0.29}\n{\"p\": 1.005}\n{\"p\": 1e2}\n{\"p\": \"3.10\"}\n";
  const auto r = parse_text(text, priced_schema(), [](const priced& p) { return p.cents; });
  CHECK(r.values == std::vector<std::int64_t>{1234, 10, -5, 700, std::numeric_limits<std::int64_t>::max(), 29, 310});
  REQUIRE(r.bad.size() == 2);
  CHECK(r.bad[0].reason == "field 'p': more decimal places than the column's scale: '1.005'");
  CHECK(r.bad[0].local_line == 6);
  CHECK(r.bad[1].reason == "field 'p': not a decimal number: '1e2'");
  CHECK(r.bad[1].local_line == 7);
}

TEST_CASE("every kind of bad record, with its line, offset and reason, on 1 and 3 threads") {
  struct line_case {
    std::string text;    // without its line ending
    std::string reason;  // empty: a good record, or blank
  };
  const std::vector<line_case> lines = {
      {R"({"k":"a","n":1})", ""},
      {"", ""},
      {R"({"k":"b"})", "missing field 'n'"},
      {R"({"n":1})", "missing field 'k'"},
      {R"({"k":"c","n":1)", invalid(simdjson::INCOMPLETE_ARRAY_OR_OBJECT)},
      {R"({"k":"d","n":[1,2]})", "field 'n': expected a scalar"},
      {R"({"k":{"x":1},"n":1})", "field 'k': expected a scalar"},
      {R"({"k":"e","n":1}{"k":"f","n":2})", invalid(simdjson::TRAILING_CONTENT)},
      {R"({"k":"e","n":1}})", invalid(simdjson::TRAILING_CONTENT)},
      {R"([1,2])", "expected a JSON object"},
      {R"("just a string")", "expected a JSON object"},
      {R"({"k":"g","n":tru})", invalid(simdjson::T_ATOM_ERROR)},
      {R"({"k":"g","n":nul})", invalid(simdjson::N_ATOM_ERROR)},
      {R"({"k":"h","n":01})", invalid(simdjson::NUMBER_ERROR)},
      {R"({"k":"h","n":-})", invalid(simdjson::NUMBER_ERROR)},
      {R"({"k":"i","n":"x"})", "field 'n': not an integer: 'x'"},
      {R"({"k":"i","n":1.5})", "field 'n': not an integer: '1.5'"},
      {R"({"k":"i","n":null})", "field 'n': empty field: ''"},
      {R"({"k":"j\q","n":1})", invalid(simdjson::STRING_ERROR)},
      {"{\"k\":\"" + std::string(200, 'z') + "\",\"n\":1}", "record exceeds the max record size (128 bytes)"},
      {R"({"k":"l","n":1,})", invalid(simdjson::TAPE_ERROR)},
      {R"({"k" "l","n":1})", invalid(simdjson::TAPE_ERROR)},
      {"{\"k\":\"\xff\",\"n\":1}", invalid(simdjson::UTF8_ERROR)},
      {"{\"k\":\"tab\there\",\"n\":1}", invalid(simdjson::UNESCAPED_CHARS)},
      {"{\"k\":\"m\",\"n\":2}\r", ""},  // CRLF
      {" \t ", ""},                     // blank
      {R"({"k":"n","n":3, "extra": {"deep": [1, {"x": null}]}, "more": "x"})", ""},
      {R"({"k":"o","n":5,"k":"p"})", ""},  // a repeated key: the last one wins
  };
  std::string content = "\xEF\xBB\xBF";  // a byte-order mark: offsets count it
  struct expected_bad {
    std::uint64_t line, offset;
    std::string reason, text;
  };
  std::vector<expected_bad> expected;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (!lines[i].reason.empty()) {
      // A dead letter carries at most max_record_bytes (128) of the record.
      expected.push_back({i + 1, content.size(), lines[i].reason, (lines[i].text + "\n").substr(0, 128)});
    }
    content += lines[i].text + "\n";
  }
  const std::uint64_t first_tail_line = lines.size() + 1;
  const std::size_t tail_offset = content.size();
  content += R"({"k":"q","n":6)";  // the last line: no newline, and unterminated
  expected.push_back(
      {first_tail_line, tail_offset, invalid(simdjson::INCOMPLETE_ARRAY_OR_OBJECT), R"({"k":"q","n":6)"});

  const auto path = write_temp("bad_kinds.jsonl", content);
  const auto total = sluice::flow<kv>() | sluice::key_by(&kv::k) | sluice::aggregate(sluice::sum(&kv::n));
  for (unsigned threads : {1U, 3U}) {
    CAPTURE(threads);
    std::vector<expected_bad> seen;
    sluice::input_options in;
    in.max_record_bytes = 128;
    in.dead_letters = [&](const sluice::bad_record& r) {
      seen.push_back({r.line, r.offset, std::string(r.reason), std::string(r.text)});
    };
    sluice::batch_stats stats;
    auto store = sluice::run_batch(sluice::jsonl_file(path, kv_schema(), in), total,
                                   sluice::batch_options{.threads = threads, .min_chunk_units = 1}, &stats);
    REQUIRE(seen.size() == expected.size());
    for (std::size_t i = 0; i < expected.size(); ++i) {
      CAPTURE(i);
      CHECK(seen[i].line == expected[i].line);
      CHECK(seen[i].offset == expected[i].offset);
      CHECK(seen[i].reason == expected[i].reason);
      CHECK(seen[i].text == expected[i].text);
    }
    CHECK(stats.bad_records == expected.size());
    CHECK(stats.records == 4);
    CHECK(stats.lines == lines.size());
    CHECK(stats.chunks == threads);
    std::map<std::string, std::int64_t> got;
    for (const auto& row : store.scan()) {
      got[std::string(row.key)] = row.value;
    }
    CHECK(got == std::map<std::string, std::int64_t>{{"a", 1}, {"m", 2}, {"n", 3}, {"p", 5}});
  }

  // Under policy fail, the first bad record stops the run with its position.
  sluice::input_options fail;
  fail.on_bad_record = sluice::bad_record_policy::fail;
  for (unsigned threads : {1U, 3U}) {
    try {
      (void)sluice::run_batch(sluice::jsonl_file(path, kv_schema(), fail), total,
                              sluice::batch_options{.threads = threads, .min_chunk_units = 1});
      FAIL("expected bad_input_error");
    } catch (const sluice::bad_input_error& e) {
      CHECK(std::string(e.what()) == path + ":3: byte " + std::to_string(expected[0].offset) + ": missing field 'n'");
    }
  }
  std::filesystem::remove(path);
}

TEST_CASE("no byte past the end of the input is read, whatever the last line looks like") {
  // simdjson reads SIMDJSON_PADDING bytes past what it parses; a memory-mapped file guarantees
  // nothing past its end. Put the input right before an unreadable page: parsing the last
  // lines in place would fault, the padded copy must not.
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  void* mem = ::mmap(nullptr, 3 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  REQUIRE(mem != MAP_FAILED);
  char* const pages = static_cast<char*>(mem);
  REQUIRE(::mprotect(pages + 2 * page, page, PROT_NONE) == 0);
  const std::vector<std::string> last_lines = {
      R"({"k":"x","n":2})",
      std::string(R"({"k":"x","n":2})") + "\n",
      std::string(R"({"k":"x","n":2})") + "\r\n",
      R"({"n":2,"k":"\u0078"})",
      R"({"k":"x","n":2,"e":[1,{"a":"\n"}]})",
      R"({"k":"x","n":2}   )",
      R"({"k":"x","n":2)",
      R"({"k":"x","n":2}})",
      R"({"k":"x","n":tru})",
      R"({"k":"x","n":2e)",
      "{\"k\":\"x\",\"n\":2,\"s\":\"unclosed",
      "   ",
  };
  for (const auto& last : last_lines) {
    CAPTURE(last);
    std::string text;
    for (int i = 0; i < 6; ++i) {
      text += R"({"k":"x","n":1})"
              "\n";
    }
    text += last;
    char* const begin = pages + 2 * page - text.size();
    std::copy(text.begin(), text.end(), begin);
    sluice::jsonl_format fmt(kv_schema());
    decltype(fmt)::parser parser(fmt);
    std::int64_t sum = 0;
    std::uint64_t bad = 0;
    const auto out = parser.parse(
        begin, begin, begin + text.size(), begin + text.size(), true, std::size_t{1} << 20U,
        [&](const kv& v) {
          CHECK(v.k == "x");
          sum += v.n;
        },
        [&](const sluice::chunk_bad_record&) {
          ++bad;
          return true;
        });
    CHECK(out.next == text.size());
    CHECK(out.records + bad == (last == "   " ? 6U : 7U));
    CHECK(sum == 6 + (out.records == 7 ? 2 : 0));
  }
  ::munmap(mem, 3 * page);
}

TEST_CASE("an empty file, and one with only a byte-order mark and blank lines, have no records") {
  for (const std::string& content :
       {std::string(), std::string("\xEF\xBB\xBF"), std::string("\xEF\xBB\xBF\n\r\n  \n")}) {
    const auto path = write_temp("empty.jsonl", content);
    sluice::batch_stats stats;
    auto store = sluice::run_batch(sluice::jsonl_file(path, kv_schema()),
                                   sluice::flow<kv>() | sluice::aggregate(sluice::count{}),
                                   sluice::batch_options{.threads = 1, .min_chunk_units = 1}, &stats);
    CHECK(stats.records == 0);
    CHECK(stats.bad_records == 0);
    CHECK(stats.lines == static_cast<std::uint64_t>(std::count(content.begin(), content.end(), '\n')));
    std::filesystem::remove(path);
  }
}

namespace {

using test_data::category_ref;
using test_data::owned_sale;
using test_data::random_sales;
using test_data::to_csv;
using test_data::to_map;

/// The same rows as JSON lines, written the many ways JSON allows: keys in any order, extra keys,
/// escaped strings, spaces, CRLF, blank lines.
std::string to_jsonl(const std::vector<owned_sale>& rows, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s;
  for (const auto& r : rows) {
    std::string category = "\"" + r.category + "\"";
    if (rng() % 5 == 0) {
      category = "\"\\u0063" + r.category.substr(1) + "\"";  // "\u0063" is 'c'
    }
    std::vector<std::string> fields = {
        "\"ts\":" + std::to_string(r.ts),
        "\"order_id\":" + std::to_string(r.order_id),
        "\"user_id\":" + std::to_string(r.user_id),
        "\"region\":\"" + r.region + "\"",
        "\"category\":" + category,
        "\"product_id\":" + std::to_string(r.product),
        "\"qty\":" + std::to_string(r.qty),
        "\"price\":" + sales::format_cents(r.price_cents),
    };
    if (rng() % 4 == 0) {
      fields.push_back(R"("note":{"gift":true,"tags":["a","b"]})");
    }
    if (rng() % 6 == 0) {
      std::shuffle(fields.begin(), fields.end(), rng);
    }
    const char* sep = rng() % 3 == 0 ? ", " : ",";
    s += "{";
    for (std::size_t i = 0; i < fields.size(); ++i) {
      s += (i == 0 ? "" : sep) + fields[i];
    }
    s += "}";
    s += rng() % 7 == 0 ? "\r\n" : "\n";
    if (rng() % 50 == 0) {
      s += "\n";
    }
  }
  return s;
}

}  // namespace

TEST_CASE("the same sales as CSV and as JSON lines give the same by-category result on 1 and 3 threads") {
  for (std::uint64_t seed = 1; seed <= 3; ++seed) {
    CAPTURE(seed);
    const auto rows = random_sales(seed, 4000 + seed * 731);
    const auto csv_path = write_temp("eq_" + std::to_string(seed) + ".csv", to_csv(rows));
    const auto jsonl_path = write_temp("eq_" + std::to_string(seed) + ".jsonl", to_jsonl(rows, seed));
    category_ref expected;
    for (const auto& r : rows) {
      auto& [cnt, revenue] = expected[r.category];
      ++cnt;
      revenue += r.qty * r.price_cents;
    }
    for (unsigned threads : {1U, 3U}) {
      CAPTURE(threads);
      const sluice::batch_options opts{.threads = threads, .min_chunk_units = 1};
      sluice::batch_stats csv_stats;
      sluice::batch_stats json_stats;
      auto from_csv =
          sluice::run_batch(sluice::csv_file(csv_path, sales::csv_schema()), sales::by_category(), opts, &csv_stats);
      auto from_json = sluice::run_batch(sluice::jsonl_file(jsonl_path, sales::csv_schema()), sales::by_category(),
                                         opts, &json_stats);
      CHECK(json_stats.records == rows.size());
      CHECK(json_stats.bad_records == 0);
      CHECK(json_stats.chunks == threads);
      CHECK(json_stats.reparsed_chunks == 0);  // a JSON line never holds a newline
      CHECK(csv_stats.records == rows.size());
      CHECK(to_map(from_json) == to_map(from_csv));
      CHECK(to_map(from_json) == expected);
    }
    std::filesystem::remove(csv_path);
    std::filesystem::remove(jsonl_path);
  }
}

TEST_CASE("JSON lines: validity is the schema's (projection still checks), optional keys, no NUL in text") {
  const std::string text =
      "{\"k\":\"a\",\"n\":1}\n"
      "{\"k\":\"b\",\"n\":\"x\"}\n"       // n is not an integer: bad even when only k is converted
      "{\"k\":\"c\\u0000d\",\"n\":3}\n"  // an escaped NUL is still a NUL in a text field
      "{\"k\":\"e\"}\n";                 // n missing: bad, unless n is optional
  const auto projected = parse_text(text, kv_schema().project(&kv::k), own_kv);
  CHECK(projected.values == std::vector<std::pair<std::string, std::int64_t>>{{"a", 0}});
  REQUIRE(projected.bad.size() == 3);
  CHECK(projected.bad[0].reason == "field 'n': not an integer: 'x'");
  CHECK(projected.bad[1].reason == "field 'k': contains a NUL byte: 'c\\x00d'");
  CHECK(projected.bad[2].reason == "missing field 'n'");
  const auto optional = parse_text(
      text, sluice::schema<kv>(sluice::column("k", &kv::k), sluice::column("n", &kv::n).optional()), own_kv);
  CHECK(optional.values == std::vector<std::pair<std::string, std::int64_t>>{{"a", 1}, {"e", 0}});
  CHECK(optional.bad.size() == 2);
}

TEST_CASE("JSON lines: a malformed line near the end stays bad whatever longer line came before it (fuzz_jsonl)") {
  // The last lines are parsed from a copy; the copy once kept the previous line's bytes past the
  // current one, and `{"k":"a","n":}` followed by that line's stale '}' parsed as an object.
  const std::string bad = R"({"k":"a","n":2,"x":,"y":3})";
  for (const char stale : {'}', ']', ',', '0'}) {
    CAPTURE(stale);
    std::string longer = R"({"k":"bb","n":1,"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxx"})";
    longer[bad.size()] = stale;  // inside the "pad" string: what the copy holds right after the bad line
    const auto r = parse_text(longer + "\n" + bad + "\n", kv_schema(), own_kv);
    CHECK(r.values == std::vector<std::pair<std::string, std::int64_t>>{{"bb", 1}});
    REQUIRE(r.bad.size() == 1);
    CHECK(r.bad[0].local_line == 1);
  }
}
