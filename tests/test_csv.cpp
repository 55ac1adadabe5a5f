// CSV parsing, schema binding and bad records: unit level through csv_format and its parser,
// file level through csv_file + run_batch. Every test name contains "csv" (-tc="*csv*").
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sluice/io/csv.hpp"
#include "sluice/io/dead_letter_file.hpp"
#include "sluice/io/file_source.hpp"
#include "sluice/run/batch.hpp"
#include "sluice/sluice.hpp"
#include "temp_dir.hpp"

namespace {
/// A user type read through a field_parser specialisation: "#rrggbb".
struct colour {
  std::uint8_t r = 0, g = 0, b = 0;
  bool operator==(const colour&) const = default;
};
}  // namespace

template <>
struct sluice::field_parser<colour> {
  static const char* parse(std::string_view s, colour& out) {
    if (s.size() != 7 || s[0] != '#') {
      return "not a #rrggbb colour";
    }
    std::uint8_t parts[3];
    for (int i = 0; i < 3; ++i) {
      unsigned v = 0;
      for (const char c : s.substr(1 + 2 * static_cast<std::size_t>(i), 2)) {
        const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0) {
          return "not a #rrggbb colour";
        }
        v = v * 16 + static_cast<unsigned>(d);
      }
      parts[i] = static_cast<std::uint8_t>(v);
    }
    out = colour{parts[0], parts[1], parts[2]};
    return nullptr;
  }
};

namespace {

using sluice::column;
namespace fe = sluice::field_error;

// ---------------------------------------------------------------------------------------------
// Helpers

struct bad_seen {
  std::uint64_t line = 0;
  std::uint64_t offset = 0;
  std::string reason;
  std::string text;
  bool operator==(const bad_seen&) const = default;
};

std::ostream& operator<<(std::ostream& os, const bad_seen& b) {
  std::string text = b.text.size() > 80 ? b.text.substr(0, 80) + "..." : b.text;
  return os << "{line " << b.line << ", byte " << b.offset << ", '" << b.reason << "', text '" << text << "' ("
            << b.text.size() << " bytes)}";
}

void check_bad(const std::vector<bad_seen>& got, const std::vector<bad_seen>& want) {
  CHECK(got.size() == want.size());
  for (std::size_t i = 0; i < std::min(got.size(), want.size()); ++i) {
    CAPTURE(i);
    CHECK(got[i] == want[i]);
  }
}

/// The input copied to a heap block of exactly its size: AddressSanitizer flags any read past it.
class exact_buffer {
 public:
  explicit exact_buffer(std::string_view s) : size_(s.size()), data_(new char[std::max<std::size_t>(1, s.size())]) {
    if (!s.empty()) {
      std::memcpy(data_.get(), s.data(), s.size());
    }
  }
  [[nodiscard]] std::string_view view() const { return {data_.get(), size_}; }

 private:
  std::size_t size_;
  std::unique_ptr<char[]> data_;
};

template <class T>
struct parsed {
  std::vector<T> good;
  std::vector<bad_seen> bad;
  sluice::chunk_outcome outcome;
};

/// Bind the header and parse all of `input` as one chunk; `own` copies a record out of the parser.
template <class Schema, class Own>
auto parse_csv(std::string_view input, const Schema& schema, Own own, sluice::csv_options csv = {},
               std::size_t max_record_bytes = std::size_t{1} << 20U) {
  using owned_t = decltype(own(std::declval<const typename Schema::record_type&>()));
  parsed<owned_t> out;
  const exact_buffer buf(input);
  const std::string_view text = buf.view();
  sluice::csv_format<Schema> fmt(schema, csv);
  const auto header = fmt.bind_header(text, "mem.csv");
  const std::uint64_t first_line = 1 + header.lines;
  typename sluice::csv_format<Schema>::parser parser(fmt);
  const char* origin = text.data();
  const char* end = origin + text.size();
  out.outcome = parser.parse(
      origin, origin + header.bytes, end, end, true, max_record_bytes,
      [&](const typename Schema::record_type& v) { out.good.push_back(own(v)); },
      [&](sluice::chunk_bad_record b) {
        out.bad.push_back(
            {first_line + b.local_line, b.offset, b.reason, std::string(text.substr(b.offset, b.length))});
        return true;
      });
  CHECK(out.outcome.records == out.good.size());
  CHECK(out.outcome.bad == out.bad.size());
  CHECK(out.outcome.next == text.size());
  return out;
}

/// Builds CSV text and, alongside, the bad records a correct parser must report.
struct csv_builder {
  std::string text;
  std::uint64_t line = 1;  // line of the next record
  std::uint64_t written = 0;
  std::uint64_t good = 0;
  std::vector<bad_seen> bad;

  static std::uint64_t newlines(std::string_view s) {
    return static_cast<std::uint64_t>(std::count(s.begin(), s.end(), '\n'));
  }
  csv_builder& raw(std::string_view s) {  // header, blank lines
    text += s;
    line += newlines(s);
    return *this;
  }
  csv_builder& ok(std::string_view rec) {
    raw(rec);
    ++written;
    ++good;
    return *this;
  }
  // A bad record; quote errors must be one physical line (the parser resumes at the next one).
  csv_builder& no(std::string_view rec, std::string reason, std::size_t clip = std::string::npos) {
    bad.push_back({line, text.size(), std::move(reason), std::string(rec.substr(0, clip))});
    raw(rec);
    ++written;
    return *this;
  }
};

std::string field_reason(std::string_view name, int column, const char* err, std::string_view text) {
  return "field '" + std::string(name) + "' (column " + std::to_string(column) + "): " + err + ": '" +
         std::string(text) + "'";
}

/// The common record: an id, a name, and a price read exactly as cents.
struct item {
  std::int64_t id = 0;
  std::string_view name;
  std::int64_t price = 0;
};
struct item_row {
  std::int64_t id = 0;
  std::string name;
  std::int64_t price = 0;
  bool operator==(const item_row&) const = default;
};
item_row own_item(const item& i) {
  return {i.id, std::string(i.name), i.price};
}
auto item_schema() {
  return sluice::schema<item>(column("id", &item::id), column("name", &item::name),
                              column("price", &item::price, sluice::fixed_point<2>{}));
}
const char* const item_header = "id,name,price\n";

/// One value of type T read from a CSV cell (the second of two columns): the value, or the reason.
template <class T>
struct cell {
  std::optional<T> value;
  std::string reason;
};
template <class T, class... Parser>
cell<T> parse_cell(std::string_view text, Parser... parser) {
  struct holder {
    std::int64_t k = 0;
    T v{};
  };
  const auto schema = sluice::schema<holder>(column("k", &holder::k), column("v", &holder::v, parser...));
  const auto r = parse_csv("k,v\n1," + std::string(text) + "\n", schema, [](const holder& h) { return h.v; });
  cell<T> out;
  if (!r.good.empty()) {
    out.value = r.good.front();
  }
  if (!r.bad.empty()) {
    out.reason = r.bad.front().reason;
  }
  CHECK(r.good.size() + r.bad.size() == 1);
  return out;
}

struct temp_file {
  std::string path;
  temp_file(const std::string& name, std::string_view content)
      : path((test_support::process_dir().path / ("sluice_test_csv_" + name)).string()) {
    std::ofstream(path, std::ios::binary).write(content.data(), static_cast<std::streamsize>(content.size()));
  }
  temp_file(const temp_file&) = delete;
  temp_file& operator=(const temp_file&) = delete;
  ~temp_file() { std::filesystem::remove(path); }
};

using by_name = std::map<std::string, std::pair<std::int64_t, std::int64_t>>;  // name -> (count, cents)

auto items_by_name() {
  return sluice::flow<item>() | sluice::key_by(&item::name) |
         sluice::aggregate(sluice::count{}, sluice::sum(&item::price));
}

struct file_run {
  by_name result;
  std::vector<bad_seen> bad;
  sluice::batch_stats stats;
};

file_run run_items(const std::string& path, sluice::input_options in = {}, sluice::batch_options opts = {.threads = 1},
                   sluice::csv_options csv = {}) {
  file_run out;
  in.dead_letters = [&out](const sluice::bad_record& r) {
    out.bad.push_back({r.line, r.offset, std::string(r.reason), std::string(r.text)});
  };
  auto store = sluice::run_batch(sluice::csv_file(path, item_schema(), in, csv), items_by_name(), opts, &out.stats);
  for (const auto& row : store.scan()) {
    out.result[row.key] = {std::get<0>(row.value), std::get<1>(row.value)};
  }
  CHECK(out.stats.bad_records == out.bad.size());
  return out;
}

std::string cents_text(std::int64_t cents) {
  const std::uint64_t m = cents < 0 ? 0 - static_cast<std::uint64_t>(cents) : static_cast<std::uint64_t>(cents);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%s%llu.%02llu", cents < 0 ? "-" : "", static_cast<unsigned long long>(m / 100),
                static_cast<unsigned long long>(m % 100));
  return buf;
}

std::string csv_quote(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    out += c;
    if (c == '"') {
      out += '"';
    }
  }
  return out + "\"";
}

// A minimal JSON reader for one dead-letter line: a flat object of strings and unsigned integers.
std::optional<std::map<std::string, std::string>> parse_json_line(std::string_view s) {
  std::size_t i = 0;
  auto string_at = [&](std::string& out) {
    if (i >= s.size() || s[i] != '"') {
      return false;
    }
    for (++i; i < s.size(); ++i) {
      const auto c = static_cast<unsigned char>(s[i]);
      if (c == '"') {
        ++i;
        return true;
      }
      if (c < 0x20) {
        return false;  // raw control characters are not allowed in JSON strings
      }
      if (c != '\\') {
        out += s[i];
        continue;
      }
      if (++i >= s.size()) {
        return false;
      }
      switch (s[i]) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case '/':
          out += '/';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'u': {
          if (i + 4 >= s.size()) {
            return false;
          }
          const unsigned long v = std::stoul(std::string(s.substr(i + 1, 4)), nullptr, 16);
          if (v >= 0x80) {
            return false;  // the writer only escapes control characters
          }
          out += static_cast<char>(v);
          i += 4;
          break;
        }
        default:
          return false;
      }
    }
    return false;
  };
  std::map<std::string, std::string> obj;
  if (s.empty() || s[i++] != '{') {
    return std::nullopt;
  }
  while (true) {
    std::string key;
    std::string value;
    if (!string_at(key) || i >= s.size() || s[i++] != ':') {
      return std::nullopt;
    }
    if (i < s.size() && s[i] == '"') {
      if (!string_at(value)) {
        return std::nullopt;
      }
    } else {
      while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
        value += s[i++];
      }
      if (value.empty()) {
        return std::nullopt;
      }
    }
    obj[key] = value;
    if (i >= s.size()) {
      return std::nullopt;
    }
    if (s[i] == '}') {
      return ++i == s.size() ? std::optional(obj) : std::nullopt;
    }
    if (s[i++] != ',') {
      return std::nullopt;
    }
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Header binding

TEST_CASE("csv: header binds columns by name in any order; extra columns are ignored") {
  const std::string text = "price,extra,name,id\n12.50,zzz,bob,7\n-0.05,,\"al, ice\",8\n1,2,3\n";
  const auto r = parse_csv(text, item_schema(), own_item);
  CHECK(r.good == std::vector<item_row>{{7, "bob", 1250}, {8, "al, ice", -5}});
  // The record's field count is the header's, not the schema's.
  check_bad(r.bad, {{4, text.find("1,2,3"), "expected 4 fields, found 3", "1,2,3\n"}});
  CHECK(r.outcome.lines == 3);

  // Quoted header names (with escapes and delimiters) bind too; the first duplicate wins.
  const auto q = parse_csv("\"name\",\"i\"\"d\",id,\"price\",id\nx,9,1,2.5,3\n", item_schema(), own_item);
  CHECK(q.good == std::vector<item_row>{{1, "x", 250}});
  CHECK(q.bad.empty());
}

TEST_CASE("csv: a missing column or unreadable header is a bad_input_error naming it") {
  sluice::csv_format fmt(item_schema(), {});
  CHECK_THROWS_WITH_AS(fmt.bind_header("id,nmae,price\n1,a,2\n", "in.csv"),
                       "in.csv:1: header has no column 'name' (header: id,nmae,price)", sluice::bad_input_error);
  CHECK_THROWS_WITH_AS(fmt.bind_header("ID,name,price\n", "in.csv"),
                       "in.csv:1: header has no column 'id' (header: ID,name,price)", sluice::bad_input_error);
  CHECK_THROWS_WITH_AS(fmt.bind_header("", "in.csv"), "in.csv: empty input, expected a header row",
                       sluice::bad_input_error);
  CHECK_THROWS_WITH_AS(fmt.bind_header("\xEF\xBB\xBF", "in.csv"), "in.csv: empty input, expected a header row",
                       sluice::bad_input_error);
  CHECK_THROWS_WITH_AS(fmt.bind_header("id,\"name,price\n1,2,3\n", "in.csv"), "in.csv:1: cannot read the header row",
                       sluice::bad_input_error);

  // Through a file: the message names the file; nothing runs.
  const temp_file f("missing_col.csv", "id,name\n1,a\n");
  CHECK_THROWS_WITH_AS((void)run_items(f.path), (f.path + ":1: header has no column 'price' (header: id,name)").c_str(),
                       sluice::bad_input_error);
}

TEST_CASE("csv: a UTF-8 byte-order mark is skipped, and counted in byte offsets") {
  const std::string text = "\xEF\xBB\xBFid,name,price\n1,a,1\nx,b,2\n";
  const auto r = parse_csv(text, item_schema(), own_item);
  CHECK(r.good == std::vector<item_row>{{1, "a", 100}});
  check_bad(r.bad, {{3, text.find("x,b"), field_reason("id", 1, fe::not_integer, "x"), "x,b,2\n"}});

  const auto nh = parse_csv(
      "\xEF\xBB\xBF"
      "5,e,0.5\n",
      item_schema(), own_item, {.header = false});
  CHECK(nh.good == std::vector<item_row>{{5, "e", 50}});
  CHECK(nh.bad.empty());
}

TEST_CASE("csv: without a header, columns bind by position and line 1 is the first record") {
  const std::string text = "x,a,1\n1,a,1.5\n2,b,2\n3,c\n";
  const auto r = parse_csv(text, item_schema(), own_item, {.header = false});
  CHECK(r.good == std::vector<item_row>{{1, "a", 150}, {2, "b", 200}});
  check_bad(r.bad, {{1, 0, field_reason("id", 1, fe::not_integer, "x"), "x,a,1\n"},
                    {4, text.find("3,c"), "expected 3 fields, found 2", "3,c\n"}});
  // A header-looking first line is just a bad record.
  const auto h = parse_csv("id,name,price\n4,d,4\n", item_schema(), own_item, {.header = false});
  CHECK(h.good == std::vector<item_row>{{4, "d", 400}});
  check_bad(h.bad, {{1, 0, field_reason("id", 1, fe::not_integer, "id"), "id,name,price\n"}});
}

TEST_CASE("csv: a custom delimiter (';' and tab); commas are then plain data") {
  const std::string text = "id;name;price\n1;a,b;1.5\n2;\"x;y\";2\n3;c;1,5\n";
  const auto s = parse_csv(text, item_schema(), own_item, {.delimiter = ';'});
  CHECK(s.good == std::vector<item_row>{{1, "a,b", 150}, {2, "x;y", 200}});
  check_bad(s.bad, {{4, text.find("3;c"), field_reason("price", 3, fe::not_decimal, "1,5"), "3;c;1,5\n"}});

  const auto t = parse_csv("name\tprice\tid\nc d\t0.01\t3\n", item_schema(), own_item, {.delimiter = '\t'});
  CHECK(t.good == std::vector<item_row>{{3, "c d", 1}});
  CHECK(t.bad.empty());
}

// ---------------------------------------------------------------------------------------------
// Record structure

TEST_CASE("csv: quoted fields, \"\" escapes, embedded delimiters and newlines") {
  csv_builder b;
  b.raw(item_header)
      .ok("1,\"plain\",1\n")
      .ok("2,\"\",2\n")
      .ok("3,\"say \"\"hi\"\"\",3\n")
      .ok("4,\"a,b\nc\",4\n")
      .ok("5,\"\"\"\",5\n")
      .ok("6,ab\"c,6\n")  // a quote inside an unquoted field is data
      .ok("\"7\",\"\"\"x\"\"\n\"\"y\"\"\",\"7\"\n")
      .no("oops\n", "expected 3 fields, found 1");
  const auto r = parse_csv(b.text, item_schema(), own_item);
  CHECK(r.good == std::vector<item_row>{{1, "plain", 100},
                                        {2, "", 200},
                                        {3, "say \"hi\"", 300},
                                        {4, "a,b\nc", 400},
                                        {5, "\"", 500},
                                        {6, "ab\"c", 600},
                                        {7, "\"x\"\n\"y\"", 700}});
  check_bad(r.bad, b.bad);
  CHECK(r.bad.at(0).line == 11);  // embedded newlines count as lines
  CHECK(r.outcome.lines == 10);
}

TEST_CASE("csv: several escaped fields in one record all stay valid (the scratch buffer never moves)") {
  struct six {
    std::string_view a, b, c, d, e, f;
  };
  const auto schema = sluice::schema<six>(column("a", &six::a), column("b", &six::b), column("c", &six::c),
                                          column("d", &six::d), column("e", &six::e), column("f", &six::f));
  auto own = [](const six& s) {
    return std::vector<std::string>{std::string(s.a), std::string(s.b), std::string(s.c),
                                    std::string(s.d), std::string(s.e), std::string(s.f)};
  };
  std::string text = "a,b,c,d,e,f\n";
  std::vector<std::vector<std::string>> want;
  // Growing records: each escaped field is bigger than all before it, so a buffer that grew per
  // field (or per record) would move under the views taken earlier in the same record.
  for (const std::size_t scale : {1U, 7U, 64U, 700U, 5000U}) {
    std::vector<std::string> values;
    std::string line;
    for (std::size_t i = 0; i < 6; ++i) {
      std::string v(scale * (i + 1), static_cast<char>('a' + i));
      v.insert(v.size() / 2, "\"q\"");
      if (i % 2 == 1) {
        v += "\n,\"";
      }
      values.push_back(v);
      if (i > 0) {
        line += ',';
      }
      line += csv_quote(v);
    }
    text += line + "\n";
    want.push_back(values);
  }
  // And a small record after the big ones, with a plain view next to escaped ones.
  text += "\"x\"\"\",plain,\"\"\"\",\"\",\"a\"\"b\"\"c\",z\n";
  want.push_back({"x\"", "plain", "\"", "", "a\"b\"c", "z"});
  const auto r = parse_csv(text, schema, own);
  CHECK(r.bad.empty());
  REQUIRE(r.good.size() == want.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    CAPTURE(i);
    CHECK(r.good[i] == want[i]);
  }
  // The same under a small max record size: the scratch is then sized by the limit.
  const auto small =
      parse_csv("a,b,c,d,e,f\n\"1\"\"\",\"2\"\"\",\"3\"\"\",\"4\"\"\",\"5\"\"\",\"6\"\"\"\n", schema, own, {}, 64);
  CHECK(small.bad.empty());
  CHECK(small.good == std::vector<std::vector<std::string>>{{"1\"", "2\"", "3\"", "4\"", "5\"", "6\""}});
}

TEST_CASE("csv: CRLF line endings, also after a quoted field and in the header") {
  csv_builder b;
  b.raw("id,name,price\r\n")
      .ok("1,a,1.5\r\n")
      .ok("2,\"b\",2\r\n")
      .ok("3,\"c\"\"\",3\r\n")
      .ok("4,d\re,4\r\n")  // a CR inside a field is data
      .ok("5,\"multi\r\nline\",5\r\n")
      .ok("6,f,\"6\"\r\n")
      .raw("\r\n")
      .no("x,y\r\n", "expected 3 fields, found 2")
      .no("8,\"g\"\r,8\r\n", "unexpected character after a closing quote")
      .ok("9,h,9");
  const auto r = parse_csv(b.text, item_schema(), own_item);
  CHECK(r.good == std::vector<item_row>{{1, "a", 150},
                                        {2, "b", 200},
                                        {3, "c\"", 300},
                                        {4, "d\re", 400},
                                        {5, "multi\r\nline", 500},
                                        {6, "f", 600},
                                        {9, "h", 900}});
  check_bad(r.bad, b.bad);
}

TEST_CASE("csv: the last line may lack its newline") {
  const auto r = parse_csv("id,name,price\n1,a,1\n2,b,2", item_schema(), own_item);
  CHECK(r.good == std::vector<item_row>{{1, "a", 100}, {2, "b", 200}});
  CHECK(r.outcome.lines == 1);
  const auto q = parse_csv("id,name,price\n1,a,\"1\"", item_schema(), own_item);
  CHECK(q.good == std::vector<item_row>{{1, "a", 100}});
  const auto crlf = parse_csv("id,name,price\r\n1,a,1\r\n2,b,2\r", item_schema(), own_item);
  CHECK(crlf.good == std::vector<item_row>{{1, "a", 100}, {2, "b", 200}});
  const auto empty_last = parse_csv("id,name,price\n1,,", item_schema(), own_item);
  check_bad(empty_last.bad, {{2, 14, field_reason("price", 3, fe::empty, ""), "1,,"}});
  const auto header_only = parse_csv("id,name,price", item_schema(), own_item);
  CHECK(header_only.good.empty());
  CHECK(header_only.bad.empty());
  CHECK(header_only.outcome.lines == 0);
}

TEST_CASE("csv: blank lines are skipped but counted for line numbers") {
  const std::string text = "id,name,price\n\n1,a,1\n\n\r\n2,b,2\n\nbad\n\n";
  const auto r = parse_csv(text, item_schema(), own_item);
  CHECK(r.good == std::vector<item_row>{{1, "a", 100}, {2, "b", 200}});
  check_bad(r.bad, {{8, text.find("bad"), "expected 3 fields, found 1", "bad\n"}});
  CHECK(r.outcome.lines == 8);

  // With one column, a quoted empty field is a record, not a blank line.
  struct one {
    std::optional<std::int64_t> v;
  };
  const auto schema = sluice::schema<one>(column("v", &one::v));
  const auto o = parse_csv("v\n1\n\"\"\n\n2\n", schema, [](const one& x) { return x.v; });
  CHECK(o.good == std::vector<std::optional<std::int64_t>>{1, std::nullopt, 2});
  CHECK(o.outcome.lines == 4);
}

// ---------------------------------------------------------------------------------------------
// Field types

TEST_CASE("csv: empty fields: empty string_view, empty int is bad, empty optional is nullopt") {
  struct rec {
    std::int64_t id = 0;
    std::string_view name;
    std::optional<std::int64_t> qty;
    std::optional<std::string> note;
  };
  struct row {
    std::int64_t id;
    std::string name;
    std::optional<std::int64_t> qty;
    std::optional<std::string> note;
    bool operator==(const row&) const = default;
  };
  const auto schema = sluice::schema<rec>(column("id", &rec::id), column("name", &rec::name), column("qty", &rec::qty),
                                          column("note", &rec::note));
  csv_builder b;
  b.raw("id,name,qty,note\n")
      .ok("1,,,\n")
      .ok("2,b,5,n\n")
      .no(",c,1,\n", field_reason("id", 1, fe::empty, ""))
      .ok("3,\"\",\"\",\"\"\n")
      .no("4,d,x,\n", field_reason("qty", 3, fe::not_integer, "x"))
      .ok("5,e,-7,\"\"\"\"\n");
  const auto r = parse_csv(b.text, schema, [](const rec& x) { return row{x.id, std::string(x.name), x.qty, x.note}; });
  CHECK(r.good == std::vector<row>{{1, "", std::nullopt, std::nullopt},
                                   {2, "b", 5, "n"},
                                   {3, "", std::nullopt, std::nullopt},
                                   {5, "e", -7, "\""}});
  check_bad(r.bad, b.bad);
}

TEST_CASE("csv: integers: limits, overflow, sign, garbage") {
  using i64 = std::int64_t;
  constexpr auto max64 = std::numeric_limits<i64>::max();
  constexpr auto min64 = std::numeric_limits<i64>::min();
  const std::vector<std::pair<const char*, i64>> good = {{"0", 0},
                                                         {"42", 42},
                                                         {"+42", 42},
                                                         {"-42", -42},
                                                         {"-0", 0},
                                                         {"007", 7},
                                                         {"9223372036854775807", max64},
                                                         {"-9223372036854775808", min64},
                                                         {"+9223372036854775807", max64}};
  for (const auto& item : good) {
    const auto& text = item.first;
    const auto& want = item.second;
    CAPTURE(text);
    const auto c = parse_cell<i64>(text);
    CHECK(c.reason == "");
    CHECK(c.value == want);
  }
  const std::vector<std::pair<const char*, const char*>> bad = {{"9223372036854775808", fe::out_of_range},
                                                                {"-9223372036854775809", fe::out_of_range},
                                                                {"99999999999999999999", fe::out_of_range},
                                                                {"-99999999999999999999", fe::out_of_range},
                                                                {"12a", fe::not_integer},
                                                                {"a12", fe::not_integer},
                                                                {" 12", fe::not_integer},
                                                                {"12 ", fe::not_integer},
                                                                {"1.0", fe::not_integer},
                                                                {"0x10", fe::not_integer},
                                                                {"1e3", fe::not_integer},
                                                                {"+", fe::not_integer},
                                                                {"-", fe::not_integer},
                                                                {"--1", fe::not_integer},
                                                                {"+-1", fe::not_integer},
                                                                {"1-", fe::not_integer},
                                                                {"", fe::empty}};
  for (const auto& item : bad) {
    const auto& text = item.first;
    const auto& err = item.second;
    CAPTURE(text);
    const auto c = parse_cell<i64>(text);
    CHECK_FALSE(c.value.has_value());
    CHECK(c.reason == field_reason("v", 2, err, text));
  }
  // Narrower types check their own range.
  CHECK(parse_cell<std::int32_t>("2147483647").value == 2147483647);
  CHECK(parse_cell<std::int32_t>("-2147483648").value == std::numeric_limits<std::int32_t>::min());
  CHECK(parse_cell<std::int32_t>("2147483648").reason == field_reason("v", 2, fe::out_of_range, "2147483648"));
  CHECK(parse_cell<std::int32_t>("-2147483649").reason == field_reason("v", 2, fe::out_of_range, "-2147483649"));
  CHECK(parse_cell<std::uint8_t>("255").value == 255);
  CHECK(parse_cell<std::uint8_t>("256").reason == field_reason("v", 2, fe::out_of_range, "256"));
  CHECK(parse_cell<std::uint8_t>("-1").reason == field_reason("v", 2, fe::out_of_range, "-1"));
  CHECK(parse_cell<std::uint64_t>("18446744073709551615").value == std::numeric_limits<std::uint64_t>::max());
  CHECK(parse_cell<std::uint64_t>("18446744073709551616").reason ==
        field_reason("v", 2, fe::out_of_range, "18446744073709551616"));
  CHECK(parse_cell<sluice::millis>("1700000000123").value == sluice::millis{1700000000123});
  CHECK(parse_cell<sluice::millis>("soon").reason == field_reason("v", 2, fe::not_integer, "soon"));
}

TEST_CASE("csv: fixed_point<2> decimals are exact scaled integers") {
  using i64 = std::int64_t;
  const std::vector<std::pair<const char*, i64>> good = {{"12", 1200},
                                                         {"12.3", 1230},
                                                         {"12.34", 1234},
                                                         {"-0.05", -5},
                                                         {".5", 50},
                                                         {"5.", 500},
                                                         {"+1.5", 150},
                                                         {"-.5", -50},
                                                         {"0", 0},
                                                         {"-0", 0},
                                                         {"0.00", 0},
                                                         {"007.10", 710},
                                                         {"92233720368547758.07", std::numeric_limits<i64>::max()},
                                                         {"-92233720368547758.07", -std::numeric_limits<i64>::max()}};
  for (const auto& item : good) {
    const auto& text = item.first;
    const auto& want = item.second;
    CAPTURE(text);
    const auto c = parse_cell<i64>(text, sluice::fixed_point<2>{});
    CHECK(c.reason == "");
    CHECK(c.value == want);
  }
  const std::vector<std::pair<const char*, const char*>> bad = {{"1.234", fe::too_many_decimals},
                                                                {"0.001", fe::too_many_decimals},
                                                                {"1e3", fe::not_decimal},
                                                                {"--1", fe::not_decimal},
                                                                {"+-1", fe::not_decimal},
                                                                {".", fe::not_decimal},
                                                                {"-", fe::not_decimal},
                                                                {"-.", fe::not_decimal},
                                                                {"1.2.", fe::not_decimal},
                                                                {"1.x", fe::not_decimal},
                                                                {" 1", fe::not_decimal},
                                                                {"1 ", fe::not_decimal},
                                                                {"abc", fe::not_decimal},
                                                                {"", fe::empty},
                                                                {"92233720368547758.08", fe::out_of_range},
                                                                {"100000000000000000", fe::out_of_range},
                                                                {"-100000000000000000", fe::out_of_range}};
  for (const auto& item : bad) {
    const auto& text = item.first;
    const auto& err = item.second;
    CAPTURE(text);
    const auto c = parse_cell<i64>(text, sluice::fixed_point<2>{});
    CHECK_FALSE(c.value.has_value());
    CHECK(c.reason == field_reason("v", 2, err, text));
  }
  // Other scales and a narrower member.
  CHECK(parse_cell<i64>("5", sluice::fixed_point<0>{}).value == 5);
  CHECK(parse_cell<i64>("5.", sluice::fixed_point<0>{}).value == 5);
  CHECK(parse_cell<i64>("5.5", sluice::fixed_point<0>{}).reason == field_reason("v", 2, fe::too_many_decimals, "5.5"));
  CHECK(parse_cell<std::int32_t>("2147483.647", sluice::fixed_point<3>{}).value == 2147483647);
  CHECK(parse_cell<std::int32_t>("-2147483.647", sluice::fixed_point<3>{}).value == -2147483647);
  CHECK(parse_cell<std::int32_t>("2147483.648", sluice::fixed_point<3>{}).reason ==
        field_reason("v", 2, fe::out_of_range, "2147483.648"));
}

TEST_CASE("csv: doubles") {
  const std::vector<std::pair<const char*, double>> good = {
      {"1.5", 1.5}, {"-2.25", -2.25}, {"+3.5", 3.5}, {"1e3", 1000.0}, {"1E-2", 0.01}, {"0", 0.0}, {"7", 7.0}};
  for (const auto& item : good) {
    const auto& text = item.first;
    const auto& want = item.second;
    CAPTURE(text);
    const auto c = parse_cell<double>(text);
    CHECK(c.reason == "");
    CHECK(c.value == want);
  }
  const std::vector<std::pair<const char*, const char*>> bad = {
      {"", fe::empty},         {"abc", fe::not_number},    {"1.5x", fe::not_number}, {" 1", fe::not_number},
      {"1 ", fe::not_number},  {"+", fe::not_number},      {"++1", fe::not_number},  {"+-1", fe::not_number},
      {"--1", fe::not_number}, {"1e999", fe::out_of_range}};
  for (const auto& item : bad) {
    const auto& text = item.first;
    const auto& err = item.second;
    CAPTURE(text);
    const auto c = parse_cell<double>(text);
    CHECK_FALSE(c.value.has_value());
    CHECK(c.reason == field_reason("v", 2, err, text));
  }
  CHECK(parse_cell<float>("0.25").value == 0.25F);
  CHECK(parse_cell<float>("1e39").reason == field_reason("v", 2, fe::out_of_range, "1e39"));
}

TEST_CASE("csv: bools") {
  for (const char* t : {"true", "True", "TRUE", "1"}) {
    CAPTURE(t);
    CHECK(parse_cell<bool>(t).value == true);
  }
  for (const char* t : {"false", "False", "FALSE", "0"}) {
    CAPTURE(t);
    CHECK(parse_cell<bool>(t).value == false);
  }
  for (const char* t : {"yes", "tRUE", "2", "t", " true"}) {
    CAPTURE(t);
    CHECK(parse_cell<bool>(t).reason == field_reason("v", 2, fe::not_boolean, t));
  }
  CHECK(parse_cell<bool>("").reason == field_reason("v", 2, fe::empty, ""));
  CHECK(parse_cell<std::optional<bool>>("").value == std::optional<std::optional<bool>>(std::optional<bool>{}));
}

TEST_CASE("csv: std::string members own their text, escaped or not") {
  struct rec {
    std::int64_t id = 0;
    std::string text;
  };
  const auto schema = sluice::schema<rec>(column("id", &rec::id), column("text", &rec::text));
  // The records themselves outlive the input buffer (freed when parse_csv returns): under ASan a
  // view would be a use-after-free here.
  const auto r = parse_csv("id,text\n1,plain\n2,\"with \"\"quotes\"\"\nand a newline\"\n3,\n", schema,
                           [](const rec& x) { return x; });
  REQUIRE(r.good.size() == 3);
  CHECK(r.good[0].text == "plain");
  CHECK(r.good[1].text == "with \"quotes\"\nand a newline");
  CHECK(r.good[2].text == "");
}

TEST_CASE("csv: user-defined field_parser specialisation and parser objects (customisation points)") {
  struct percent {
    const char* parse(std::string_view s, std::int64_t& out) const {
      if (s.empty() || s.back() != '%') {
        return "not a percentage";
      }
      return sluice::field_parser<std::int64_t>::parse(s.substr(0, s.size() - 1), out);
    }
  };
  struct paint {
    std::string_view name;
    colour c;
    std::optional<colour> edge;
    std::int64_t pct = 0;
  };
  struct paint_row {
    std::string name;
    colour c;
    std::optional<colour> edge;
    std::int64_t pct;
    bool operator==(const paint_row&) const = default;
  };
  const auto schema = sluice::schema<paint>(column("name", &paint::name), column("c", &paint::c),
                                            column("edge", &paint::edge), column("pct", &paint::pct, percent{}));
  csv_builder b;
  b.raw("name,c,edge,pct\n")
      .ok("sky,#87ceeb,,50%\n")
      .ok("sea,#006994,#ffffff,100%\n")
      .no("bad,#12345,,1%\n", field_reason("c", 2, "not a #rrggbb colour", "#12345"))
      .no("worse,#000000,#00000g,5%\n", field_reason("edge", 3, "not a #rrggbb colour", "#00000g"))
      .no("worst,#000000,,5\n", field_reason("pct", 4, "not a percentage", "5"))
      .no("nan,#000000,,x%\n", field_reason("pct", 4, fe::not_integer, "x%"));
  const auto r = parse_csv(b.text, schema, [](const paint& p) {
    return paint_row{std::string(p.name), p.c, p.edge, p.pct};
  });
  CHECK(r.good == std::vector<paint_row>{{"sky", {0x87, 0xce, 0xeb}, std::nullopt, 50},
                                         {"sea", {0x00, 0x69, 0x94}, colour{0xff, 0xff, 0xff}, 100}});
  check_bad(r.bad, b.bad);
}

// ---------------------------------------------------------------------------------------------
// Bad records

TEST_CASE("csv: every bad-record kind: exact reason, line, offset and text; parsing resumes after each") {
  const std::string long_text(80, 'z');
  csv_builder b;
  b.raw(item_header)
      .ok("1,a,1\n")
      .no("2,b\n", "expected 3 fields, found 2")
      .no("3,c,1,9\n", "expected 3 fields, found 4")
      .no("4,\"d\nd\",1,\n", "expected 3 fields, found 4")  // spans two lines; the trailing ',' adds a field
      .ok("5,\"e\"\"q\",1\n")
      .no("x6,f,1\n", field_reason("id", 1, fe::not_integer, "x6"))
      .no("7,g,1.234\n", field_reason("price", 3, fe::too_many_decimals, "1.234"))
      .no("8," + long_text + ",x\n", field_reason("price", 3, fe::not_decimal, "x"))
      .no("9," + long_text + "," + long_text + "\n",
          "field 'price' (column 3): not a decimal number: '" + long_text.substr(0, 64) + "...'")
      .no("10,\"h\"x,1\n", "unexpected character after a closing quote")
      .ok("11,\"multi\nline\",1\n")
      .no("12,\"i\" ,1\n", "unexpected character after a closing quote")
      .raw("\n")
      .ok("13,j,1\n")
      .no("14,\"never closed,1\n", "unterminated quoted field")
      .ok("15,k,1\n")
      .ok("16,l,1\r\n")
      .no("17,m,1,\n", "expected 3 fields, found 4");
  const auto r = parse_csv(b.text, item_schema(), own_item);
  check_bad(r.bad, b.bad);
  CHECK(r.good ==
        std::vector<item_row>{
            {1, "a", 100}, {5, "e\"q", 100}, {11, "multi\nline", 100}, {13, "j", 100}, {15, "k", 100}, {16, "l", 100}});
  CHECK(r.good.size() + r.bad.size() == b.written);
  CHECK(r.outcome.lines == b.line - 2);
}

TEST_CASE("csv: max_record_bytes counts the whole record with its line ending, quoted or not") {
  // Header "id,price,name" so that the quoted name can end the record.
  const std::string head = "id,price,name\n";
  const std::size_t max = 16;
  const std::string too_long = "record exceeds the max record size (16 bytes)";
  csv_builder b;
  b.raw(head)
      .ok("1,1,abcdefghij\n")                       // 15 bytes
      .ok("2,1,abcdefghijk\n")                      // 16 bytes: exactly the limit
      .no("3,1,abcdefghijkl\n", too_long)           // 17
      .ok("4,1,\"abcdefghi\"\n")                    // 16, quoted
      .no("5,1,\"abcdefghij\"\n", too_long)         // 17, quoted: the newline is past the limit
      .ok("6,1,abcdefghij\r\n")                     // 16 with CRLF
      .no("7,1,abcdefghijk\r\n", too_long)          // 17 with CRLF
      .ok("8,1,\"abcdefgh\"\r\n")                   // 16, quoted, CRLF
      .no("9,1,\"abcdefghi\"\r\n", too_long)        // 17, quoted, CRLF
      .no("0,1,\"abcdefghij\"\"x\"\n", too_long)    // a "" escape straddling the limit
      .no("1,1,\"abcdefghijklmnopq\"\n", too_long)  // the closing quote itself is past the limit
      .ok("2,1,\"ab\"\"cd\"\"e\"\n")                // 16 bytes with escapes
      .ok("3,1,z");                                 // the last record, no newline
  const auto r = parse_csv(b.text, item_schema(), own_item, {}, max);
  check_bad(r.bad, b.bad);
  CHECK(r.good == std::vector<item_row>{{1, "abcdefghij", 100},
                                        {2, "abcdefghijk", 100},
                                        {4, "abcdefghi", 100},
                                        {6, "abcdefghij", 100},
                                        {8, "abcdefgh", 100},
                                        {2, "ab\"cd\"e", 100},
                                        {3, "z", 100}});
  CHECK(r.good.size() + r.bad.size() == b.written);
}

TEST_CASE("csv: bad records through a file: dead letters clip the text at the max record size") {
  csv_builder b;
  b.raw(item_header)
      .ok("1,a,1\n")
      .no("2,b\n", "expected 3 fields, found 2")
      .no("3," + std::string(40, 'c') + ",1\n", "record exceeds the max record size (32 bytes)", 32)
      .ok("4,\"d\n\",2\n")
      .no("5,\"e\"x,1\n", "unexpected character after a closing quote")
      .no("6,f,1.001\n", field_reason("price", 3, fe::too_many_decimals, "1.001"))
      .ok("7,a,3\n")
      .no("8,\"open,1\n", "unterminated quoted field")
      .ok("9,g,4");
  const temp_file f("kinds.csv", b.text);
  sluice::input_options in;
  in.max_record_bytes = 32;
  const auto r = run_items(f.path, in);
  check_bad(r.bad, b.bad);
  CHECK(r.result == by_name{{"a", {2, 400}}, {"d\n", {1, 200}}, {"g", {1, 400}}});
  CHECK(r.stats.records == b.good);
  CHECK(r.stats.records + r.stats.bad_records == b.written);
  CHECK(r.stats.lines == b.line - 2);  // header excluded; the last line has no newline
}

TEST_CASE("csv: policy fail throws 'file:line: byte N: reason' for the first bad record of each kind") {
  struct kase {
    std::string bad_line;
    std::string reason;
  };
  const std::vector<kase> kases = {
      {"2,b\n", "expected 3 fields, found 2"},
      {"2,b,1x\n", field_reason("price", 3, fe::not_decimal, "1x")},
      {"2,\"b\"c,1\n", "unexpected character after a closing quote"},
      {"2,b," + std::string(100, '9') + "\n", "record exceeds the max record size (64 bytes)"},
      {"2,\"b,1\n", "unterminated quoted field"},
  };
  for (const auto& k : kases) {
    CAPTURE(k.reason);
    const std::string prefix = "id,name,price\n1,\"a\na\",1\n\n";  // the bad record is on line 5
    const temp_file f("fail.csv", prefix + k.bad_line + "3,c,1\n4,d\n");
    sluice::input_options in;
    in.on_bad_record = sluice::bad_record_policy::fail;
    in.max_record_bytes = 64;
    CHECK_THROWS_WITH_AS((void)run_items(f.path, in),
                         (f.path + ":5: byte " + std::to_string(prefix.size()) + ": " + k.reason).c_str(),
                         sluice::bad_input_error);
  }
}

TEST_CASE("csv: 20k lines that each open a quote finish quickly with every record accounted for") {
  // Each line's quote is closed by the next line's, followed by a letter; the last never closes.
  std::string text = item_header;
  const std::size_t n = 20000;
  for (std::size_t i = 0; i < n; ++i) {
    text += std::to_string(i) + ",\"abc,1\n";
  }
  const temp_file f("quotes.csv", text);
  for (const unsigned threads : {1U, 2U}) {
    CAPTURE(threads);
    const auto r = run_items(f.path, {}, {.threads = threads, .min_chunk_units = 1});
    CHECK(r.stats.records == 0);
    REQUIRE(r.bad.size() == n);
    CHECK(r.stats.lines == n);
    CHECK(r.bad.front() == bad_seen{2, 14, "unexpected character after a closing quote", "0,\"abc,1\n"});
    CHECK(r.bad.back().line == n + 1);
    CHECK(r.bad.back().reason == "unterminated quoted field");
    CHECK(std::count_if(r.bad.begin(), r.bad.end(), [](const bad_seen& b) {
            return b.reason == "unexpected character after a closing quote";
          }) == static_cast<std::ptrdiff_t>(n - 1));
  }

  // One quote that never closes, then 20k clean lines: one bad record, nothing good lost.
  std::string clean = item_header;
  clean += "0,\"never,1\n";
  for (std::size_t i = 0; i < n; ++i) {
    clean += std::to_string(i) + ",x,1\n";
  }
  // And 20k lines whose first quote pairs with the next line's into a "" escape.
  for (std::size_t i = 0; i < n; ++i) {
    clean += std::to_string(i) + ",\"\"y,1\n";
  }
  const temp_file g("never.csv", clean);
  const auto r = run_items(g.path, {}, {.threads = 2, .min_chunk_units = 1});
  const auto count = static_cast<std::int64_t>(n);
  CHECK(r.result == by_name{{"x", {count, count * 100}}});
  REQUIRE(r.bad.size() == n + 1);
  CHECK(r.bad.front() == bad_seen{2, 14, "unterminated quoted field", "0,\"never,1\n"});
  CHECK(r.bad.back().reason == "unexpected character after a closing quote");
  CHECK(r.stats.records + r.stats.bad_records == 2 * n + 1);
}

TEST_CASE("csv: a line over 1 MiB with the default limit is one bad record, not a crash") {
  const std::size_t big = (std::size_t{1} << 20U) + 12345;
  std::string text = item_header;
  text += "1,a,1\n";
  const std::size_t off1 = text.size();
  text += "2," + std::string(big, 'b') + ",1\n";
  text += "3,a,2\n";
  const std::size_t off2 = text.size();
  text += "4,\"" + std::string(big, 'q') + "\",1\n";  // quoted, and closed, past the limit
  text += "5,a,3\n";
  const temp_file f("big_line.csv", text);
  for (const unsigned threads : {1U, 2U}) {
    const auto r = run_items(f.path, {}, {.threads = threads, .min_chunk_units = 1});
    const std::string reason = "record exceeds the max record size (1048576 bytes)";
    REQUIRE(r.bad.size() == 2);
    CHECK(r.bad[0].line == 3);
    CHECK(r.bad[0].offset == off1);
    CHECK(r.bad[0].reason == reason);
    CHECK(r.bad[0].text.size() == std::size_t{1} << 20U);
    CHECK(r.bad[0].text == text.substr(off1, std::size_t{1} << 20U));
    CHECK(r.bad[1].line == 5);
    CHECK(r.bad[1].offset == off2);
    CHECK(r.bad[1].reason == reason);
    CHECK(r.result == by_name{{"a", {3, 600}}});
    CHECK(r.stats.lines == 5);
  }
}

TEST_CASE("csv: inputs that end exactly at a page boundary are never read past their end") {
  // The file is mapped: a read past its last byte on a page boundary faults.
  const std::vector<std::pair<std::string, std::string>> endings = {
      {"9,z,9", ""},
      {"9,z,\"9\"", ""},
      {"9,\"z", "unterminated quoted field"},
      {"9,\"z\"\"", "unterminated quoted field"},
      {"9,z,9\r", ""},
      {"9,z,", field_reason("price", 3, fe::empty, "")},
      {"9,z,9\n", ""},
  };
  for (const auto& item : endings) {
    const auto& ending = item.first;
    const auto& reason = item.second;
    CAPTURE(ending);
    std::string text = item_header;
    while (text.size() + 10 + ending.size() < 4096) {
      text += "1,a,1\n";
    }
    text += std::string(4096 - text.size() - ending.size() - 5, 'a').insert(0, "1,") + ",1\n";
    text += ending;
    REQUIRE(text.size() == 4096);
    const temp_file f("page.csv", text);
    const auto r = run_items(f.path);
    if (reason.empty()) {
      CHECK(r.bad.empty());
      CHECK(r.result.count("z") == 1);
    } else {
      REQUIRE(r.bad.size() == 1);
      CHECK(r.bad[0].reason == reason);
      CHECK(r.bad[0].offset == 4096 - ending.size());
    }
  }
}

TEST_CASE("csv: dead-letter file lines are JSON with the record text escaped exactly") {
  csv_builder b;
  b.raw(item_header)
      .ok("1,a,1\n")
      .no("2,\"he said \"\"hi\"\"\n\tand \x01\x1f left \\ \xC3\xA9\",1,extra\n", "expected 3 fields, found 4")
      .no("3,\"q\"\"\"x,1\r\n", "unexpected character after a closing quote")
      .no("\x7f,b,1\n", field_reason("id", 1, fe::not_integer, "\\x7f"));  // reasons show such bytes as \xNN
  const temp_file f("dead_letter_in.csv", b.text);
  const temp_file dl("dead_letter_out.jsonl", "");
  std::vector<bad_seen> seen;
  {
    sluice::dead_letter_file out(dl.path);
    sluice::input_options in;
    in.dead_letters = [&](const sluice::bad_record& r) {
      seen.push_back({r.line, r.offset, std::string(r.reason), std::string(r.text)});
      out.write(r);
    };
    (void)sluice::run_batch(sluice::csv_file(f.path, item_schema(), in), items_by_name());
    CHECK(out.written() == 3);
    out.close();
  }
  check_bad(seen, b.bad);
  std::ifstream is(dl.path, std::ios::binary);
  const std::string content((std::istreambuf_iterator<char>(is)), std::istreambuf_iterator<char>());
  std::vector<std::string> lines;
  for (std::size_t start = 0; start < content.size();) {
    const std::size_t nl = content.find('\n', start);
    REQUIRE(nl != std::string::npos);  // every line ends with a newline
    lines.push_back(content.substr(start, nl - start));
    start = nl + 1;
  }
  REQUIRE(lines.size() == b.bad.size());
  for (std::size_t i = 0; i < lines.size(); ++i) {
    CAPTURE(lines[i]);
    const auto obj = parse_json_line(lines[i]);
    REQUIRE(obj.has_value());
    CHECK(obj->size() == 5);
    CHECK(obj->at("source") == f.path);
    CHECK(obj->at("line") == std::to_string(b.bad[i].line));
    CHECK(obj->at("offset") == std::to_string(b.bad[i].offset));
    CHECK(obj->at("reason") == b.bad[i].reason);
    CHECK(obj->at("record") == b.bad[i].text);
  }
  CHECK(lines[0].find(R"("record":"2,\"he said \"\"hi\"\"\n\tand \u0001\u001f left \\ )") != std::string::npos);
}

TEST_CASE("csv: mixed good and bad rows give identical dead letters and results on 1, 2, 3 and 5 threads") {
  std::mt19937_64 rng(20240607);
  const std::size_t max = 120;
  const std::vector<std::string> names = {"north", "south", "multi \"line\"\nname", "a,b", "", "east\r\nwest"};
  csv_builder b;
  by_name expected;
  b.raw(item_header);
  for (std::size_t i = 0; i < 3000; ++i) {
    const std::string id = std::to_string(i);
    const std::string eol = rng() % 3 == 0 ? "\r\n" : "\n";
    const std::string& name = names[rng() % names.size()];
    const std::int64_t cents = static_cast<std::int64_t>(rng() % 100000) - 20000;
    switch (rng() % 16) {
      case 0:
        b.no(id + "," + csv_quote(name) + eol, "expected 3 fields, found 2");
        break;
      case 1:
        b.no("x" + id + ",n,1" + eol, field_reason("id", 1, fe::not_integer, "x" + id));
        break;
      case 2:
        b.no(id + "," + csv_quote(name) + ",1.005" + eol, field_reason("price", 3, fe::too_many_decimals, "1.005"));
        break;
      case 3:
        b.no(id + ",\"n\"x,1" + eol, "unexpected character after a closing quote");
        break;
      case 4:
        b.no(id + "," + std::string(max + rng() % 50, 'L') + ",1" + eol,
             "record exceeds the max record size (120 bytes)", max);
        break;
      case 5:
        b.raw(eol);
        break;
      default: {
        std::string field = name;
        if (field.find_first_of(",\"\r\n") != std::string::npos || rng() % 4 == 0) {
          field = csv_quote(field);
        }
        b.ok(id + "," + field + "," + cents_text(cents) + eol);
        auto& [cnt, sum] = expected[name];
        ++cnt;
        sum += cents;
      }
    }
  }
  b.no("9999,\"never closed,1\n", "unterminated quoted field");
  b.ok("10000,tail,1");
  expected["tail"] = {1, 100};
  const temp_file f("mixed.csv", b.text);
  REQUIRE(b.bad.size() > 400);

  sluice::input_options in;
  in.max_record_bytes = max;
  for (const unsigned threads : {1U, 2U, 3U, 5U}) {
    for (const std::size_t buffered : {std::size_t{4096}, std::size_t{2}}) {
      CAPTURE(threads);
      CAPTURE(buffered);
      const auto r = run_items(f.path, in, {.threads = threads, .min_chunk_units = 1, .max_buffered_bad = buffered});
      CHECK(r.stats.chunks == threads);
      check_bad(r.bad, b.bad);
      CHECK(r.result == expected);
      CHECK(r.stats.records == b.good);
      CHECK(r.stats.records + r.stats.bad_records == b.written);
      CHECK(r.stats.lines == b.line - 2);
    }
  }
}

TEST_CASE("csv: random valid CSV round-trips exactly, and the size limit holds on both tokenizer paths") {
  // Records of every length around the 16-byte blocks of the vectorised path, with and without
  // quotes, written by a reference writer: what is read back must be what was written.
  struct three {
    std::string_view a, b, c;
  };
  const auto schema = sluice::schema<three>(column("a", &three::a), column("b", &three::b), column("c", &three::c));
  auto own = [](const three& t) {
    return std::vector<std::string>{std::string(t.a), std::string(t.b), std::string(t.c)};
  };
  std::mt19937_64 rng(77);
  const std::vector<std::string> alphabet = {"a", "b", "c", "x",  "y",  "z",  "0",  "1",
                                              "2", "3", " ", ",", "\"", "\r", "\n", "\t", "\xC3\xA9"};  // é: one character
  auto random_field = [&](bool newlines) {
    std::string f;
    const std::size_t len = rng() % 4 == 0 ? rng() % 40 : rng() % 8;
    while (f.size() < len) {
      const std::string& c = alphabet[rng() % alphabet.size()];
      if (rng() % 3 != 0 && (c == "," || c == "\"" || c == "\r" || c == "\n")) {
        continue;  // keep most fields plain
      }
      if (newlines || (c != "\n" && c != "\r")) {
        f += c;
      }
    }
    return f;
  };
  auto write_field = [&](const std::string& f) {
    return f.find_first_of(",\"\r\n") != std::string::npos || rng() % 8 == 0 ? csv_quote(f) : f;
  };
  for (const bool limited : {false, true}) {
    for (int round = 0; round < 20; ++round) {
      CAPTURE(limited);
      CAPTURE(round);
      const std::size_t max = limited ? 20 + rng() % 30 : std::size_t{1} << 20U;
      csv_builder b;
      b.raw(rng() % 2 == 0 ? "a,b,c\n" : "a,b,c\r\n");
      std::vector<std::vector<std::string>> want;
      for (int i = 0; i < 200; ++i) {
        std::vector<std::string> row = {random_field(!limited), random_field(!limited), random_field(!limited)};
        std::string rec = write_field(row[0]) + "," + write_field(row[1]) + "," + write_field(row[2]);
        const bool last = i == 199 && rng() % 2 == 0;
        rec += last ? "" : rng() % 2 == 0 ? "\r\n" : "\n";
        if (rec.size() > max) {
          b.no(rec, "record exceeds the max record size (" + std::to_string(max) + " bytes)");
        } else {
          b.ok(rec);
          want.push_back(row);
        }
      }
      const auto r = parse_csv(b.text, schema, own, {}, max);
      check_bad(r.bad, b.bad);
      REQUIRE(r.good.size() == want.size());
      for (std::size_t i = 0; i < want.size(); ++i) {
        CAPTURE(i);
        CHECK(r.good[i] == want[i]);
      }
      CHECK(r.outcome.lines == b.line - 2);
    }
  }
}

TEST_CASE("csv: a file over the 8 MiB parse window keeps line numbers and records across window edges") {
  csv_builder b;
  b.raw(item_header);
  const std::string filler(990, 'f');
  std::int64_t id = 0;
  std::int64_t good_cents = 0;
  auto good_line = [&] {
    b.ok(std::to_string(++id) + "," + filler + ",1\n");
    good_cents += 100;
  };
  const std::size_t window = std::size_t{8} << 20U;
  while (b.text.size() < window - 700) {
    good_line();
    if (id % 1000 == 0) {
      b.no("x,y\n", "expected 3 fields, found 2");
    }
  }
  // A multi-line quoted record straddling the window's edge, then bad records just past it.
  b.ok("1,\"" + std::string(400, 'q') + "\n" + std::string(400, 'q') + "\",1\n");
  REQUIRE(b.text.size() > window);
  b.no("2,\"q\"x,1\n", "unexpected character after a closing quote");
  b.no("3,q,1.001\n", field_reason("price", 3, fe::too_many_decimals, "1.001"));
  while (b.text.size() < window + (std::size_t{1} << 20U)) {
    good_line();
    if (id % 1000 == 0) {
      b.no("x,y\n", "expected 3 fields, found 2");
    }
  }
  const temp_file f("window.csv", b.text);
  const auto r = run_items(f.path);
  check_bad(r.bad, b.bad);
  CHECK(r.result ==
        by_name{{filler, {id, good_cents}}, {std::string(400, 'q') + "\n" + std::string(400, 'q'), {1, 100}}});
  CHECK(r.stats.lines == b.line - 2);
  CHECK(r.stats.records + r.stats.bad_records == b.written);
}

#include <random>

#include "sluice/io/iso8601.hpp"

TEST_CASE("iso8601: format and parse round-trip over four centuries, and bad times are rejected") {
  std::mt19937_64 rng(1234);
  for (int i = 0; i < 20000; ++i) {
    // 1900 .. 2300, either sign of the epoch
    const auto ms = static_cast<std::int64_t>(rng() % 12'600'000'000'000ULL) - 2'208'988'800'000LL;
    const sluice::millis t{ms};
    sluice::millis back{};
    CAPTURE(ms);
    REQUIRE(sluice::iso8601_utc::parse(sluice::format_iso8601(t, true), back) == nullptr);
    CHECK(back == t);
  }
  sluice::millis t{};
  CHECK(sluice::iso8601_utc::parse("1970-01-01T00:00:00Z", t) == nullptr);
  CHECK(t.count() == 0);
  CHECK(sluice::iso8601_utc::parse("2024-02-29 23:59:59.5Z", t) == nullptr);
  CHECK(sluice::format_iso8601(t, true) == "2024-02-29T23:59:59.500Z");
  CHECK(sluice::format_iso8601(sluice::millis{-1}) == "1969-12-31T23:59:59Z");
  CHECK(sluice::iso8601_utc::parse("2023-02-29T00:00:00Z", t) != nullptr);  // not a leap year
  CHECK(sluice::iso8601_utc::parse("2024-03-01T24:00:00Z", t) != nullptr);
  CHECK(sluice::iso8601_utc::parse("2024-03-01T00:00:00", t) != nullptr);  // no zone
  CHECK(sluice::iso8601_utc::parse("2024-03-01T00:00:00.1234Z", t) != nullptr);
  CHECK(sluice::iso8601_utc::parse("", t) != nullptr);
}

// ---------------------------------------------------------------------------------------------
// A row's validity belongs to the schema: projections, optional columns, UTF-8 text.

#include "sluice/io/csv_text.hpp"
#include "sluice/io/json_text.hpp"
#include "sluice/io/utf8.hpp"

namespace {

/// Reference UTF-8 check, written from RFC 3629's table of well-formed byte sequences.
bool reference_valid_text(std::string_view s) {
  std::size_t i = 0;
  const auto in = [&](std::size_t k, unsigned lo, unsigned hi) {
    return k < s.size() && static_cast<unsigned char>(s[k]) >= lo && static_cast<unsigned char>(s[k]) <= hi;
  };
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == 0) {
      return false;
    }
    if (c < 0x80) {
      i += 1;
    } else if (c >= 0xC2 && c <= 0xDF && in(i + 1, 0x80, 0xBF)) {
      i += 2;
    } else if (c == 0xE0 && in(i + 1, 0xA0, 0xBF) && in(i + 2, 0x80, 0xBF)) {
      i += 3;
    } else if (((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) && in(i + 1, 0x80, 0xBF) && in(i + 2, 0x80, 0xBF)) {
      i += 3;
    } else if (c == 0xED && in(i + 1, 0x80, 0x9F) && in(i + 2, 0x80, 0xBF)) {
      i += 3;
    } else if (c == 0xF0 && in(i + 1, 0x90, 0xBF) && in(i + 2, 0x80, 0xBF) && in(i + 3, 0x80, 0xBF)) {
      i += 4;
    } else if (c >= 0xF1 && c <= 0xF3 && in(i + 1, 0x80, 0xBF) && in(i + 2, 0x80, 0xBF) && in(i + 3, 0x80, 0xBF)) {
      i += 4;
    } else if (c == 0xF4 && in(i + 1, 0x80, 0x8F) && in(i + 2, 0x80, 0xBF) && in(i + 3, 0x80, 0xBF)) {
      i += 4;
    } else {
      return false;
    }
  }
  return true;
}

/// Random bytes biased towards what breaks UTF-8 checks: ASCII, NUL, lead and continuation bytes.
std::string random_bytes(std::mt19937_64& rng, std::size_t max_len) {
  static const unsigned char interesting[] = {'a', 'z', '0', ',', 0x00, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF,
                                              0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xED, 0xEF, 0xF0, 0xF4, 0xF5, 0xFF};
  std::string s;
  const std::size_t len = rng() % (max_len + 1);
  for (std::size_t i = 0; i < len; ++i) {
    s += rng() % 3 == 0 ? static_cast<char>(rng() % 256) : static_cast<char>(interesting[rng() % sizeof interesting]);
  }
  return s;
}

}  // namespace

TEST_CASE("utf8: text_error agrees with RFC 3629 on random bytes, with and without reading past the field") {
  std::mt19937_64 rng(3629);
  for (int i = 0; i < 40000; ++i) {
    const std::string s = random_bytes(rng, 20);
    CAPTURE(s);
    const bool want = reference_valid_text(s);
    CHECK((sluice::detail::text_error(s) == nullptr) == want);
    // The same bytes inside a larger exact buffer, readable past the field: the one-word check.
    const exact_buffer buf(s + "\xFF\xFF\x00\x00\xC3\xA9\x80\x80" + random_bytes(rng, 8));
    const std::string_view field = buf.view().substr(0, s.size());
    const char* const end = buf.view().data() + buf.view().size();
    CHECK((sluice::detail::text_error(field, end) == nullptr) == want);
    CHECK(sluice::detail::ascii_without_nul(field, end) == sluice::detail::ascii_without_nul(s));
  }
  CHECK(std::string(sluice::detail::text_error(std::string_view("ab\0c", 4))) == "contains a NUL byte");
  CHECK(std::string(sluice::detail::text_error("caf\xC3")) == "not valid UTF-8");
  CHECK(sluice::detail::text_error("caf\xC3\xA9 \xF0\x9F\x98\x80") == nullptr);
}

TEST_CASE("field checks: an unconverted integer column accepts and rejects exactly what parsing would") {
  std::mt19937_64 rng(18);
  const std::string alphabet = "0123456789+- x.";
  for (int i = 0; i < 40000; ++i) {
    std::string s;
    const std::size_t len = rng() % 22;
    for (std::size_t k = 0; k < len; ++k) {
      s += rng() % 5 == 0 ? alphabet[rng() % alphabet.size()] : static_cast<char>('0' + rng() % 10);
    }
    CAPTURE(s);
    std::int64_t v = 0;
    const char* parsed = sluice::detail::parse_integer(s, v);
    const exact_buffer buf(s + "99999999");
    const char* const end = buf.view().data() + buf.view().size();
    const std::string_view field = buf.view().substr(0, s.size());
    const auto same = [&](const char* got) {
      return (got == nullptr && parsed == nullptr) || (got != nullptr && parsed != nullptr && std::string(got) == parsed);
    };
    CHECK(same(sluice::detail::check_integer<std::int64_t>(s, nullptr)));
    CHECK(same(sluice::detail::check_integer<std::int64_t>(field, end)));
  }
}

namespace {
struct order {
  sluice::millis ts;
  std::int64_t id = 0;
  std::string_view name;
  std::int64_t cents = 0;
  std::string note;
  bool operator==(const order&) const = default;
};
auto order_schema() {
  return sluice::schema<order>(column("ts", &order::ts), column("id", &order::id), column("name", &order::name),
                               column("price", &order::cents, sluice::fixed_point<2>{}), column("note", &order::note));
}
struct owned_order {
  std::int64_t ts = 0, id = 0, cents = 0;
  std::string name, note;
  bool operator==(const owned_order&) const = default;
};
owned_order own_order(const order& o) {
  return {o.ts.count(), o.id, o.cents, std::string(o.name), o.note};
}
}  // namespace

TEST_CASE("projection: every projection reads the same rows and rejects the same records as the full schema") {
  // Random records where any column may be malformed; each subset of the columns as the
  // projection. Good records, bad records (line, offset, reason) and the converted members must
  // be those of the full schema; the members outside the projection stay at their defaults.
  std::mt19937_64 rng(2024);
  const std::vector<std::vector<std::string>> bad_values = {
      {"17x", "", "1.5", "-"},                        // ts
      {"abc", "", "12345678901234567890", "+"},       // id
      {"\xFF", std::string("a\0b", 3), "\xC0\xAF"},   // name
      {"1.234", "x", "", "."},                        // price
      {"\xED\xA0\x80", std::string("\0", 1)},         // note
  };
  for (int round = 0; round < 30; ++round) {
    std::string text = "ts,id,name,price,note\n";
    for (int i = 0; i < 300; ++i) {
      std::vector<std::string> f = {std::to_string(1'700'000'000'000 + static_cast<std::int64_t>(rng() % 100000)),
                                    std::to_string(static_cast<std::int64_t>(rng() % 2'000'000) - 1'000'000),
                                    std::string("n\xC3\xA9") + std::to_string(rng() % 50),
                                    std::to_string(rng() % 100) + "." + std::to_string(rng() % 10),
                                    rng() % 2 == 0 ? "" : "a note, quoted"};
      if (rng() % 4 == 0) {
        const std::size_t col = rng() % f.size();
        f[col] = bad_values[col][rng() % bad_values[col].size()];
      }
      for (std::size_t c = 0; c < f.size(); ++c) {
        text += c == 0 ? "" : ",";
        text += rng() % 5 == 0 || f[c].find(',') != std::string::npos ? csv_quote(f[c]) : f[c];
      }
      text += rng() % 2 == 0 ? "\n" : "\r\n";
    }
    const auto full = parse_csv(text, order_schema(), own_order);
    CHECK(!full.bad.empty());
    const auto check = [&](const auto& projected_schema, auto keep) {
      const auto p = parse_csv(text, projected_schema, own_order);
      check_bad(p.bad, full.bad);
      REQUIRE(p.good.size() == full.good.size());
      for (std::size_t i = 0; i < p.good.size(); ++i) {
        CHECK(p.good[i] == keep(full.good[i]));
      }
    };
    const auto s = order_schema();
    check(s.project(&order::id), [](owned_order o) { return owned_order{0, o.id, 0, "", ""}; });
    check(s.project(&order::name, &order::cents), [](owned_order o) { return owned_order{0, 0, o.cents, o.name, ""}; });
    check(s.project(&order::ts, &order::note), [](owned_order o) { return owned_order{o.ts, 0, 0, "", o.note}; });
    check(s.project(&order::ts, &order::id, &order::name, &order::cents, &order::note), [](owned_order o) { return o; });
  }
  CHECK_THROWS_AS((void)order_schema().project(&order::id, &order::id), std::invalid_argument);
}

TEST_CASE("schema: a header without a column is an error naming it, unless the column is declared optional") {
  const std::string text = "ts,id,name,price\n1,2,x,3.00\n";
  try {
    (void)parse_csv(text, order_schema().project(&order::id), own_order);
    FAIL("a missing column must be an error");
  } catch (const sluice::bad_input_error& e) {
    CHECK(std::string(e.what()) == "mem.csv:1: header has no column 'note' (header: ts,id,name,price)");
  }
  const auto with_optional = sluice::schema<order>(column("ts", &order::ts), column("id", &order::id),
                                                   column("note", &order::note).optional(),
                                                   column("price", &order::cents, sluice::fixed_point<2>{}));
  const auto r = parse_csv(text, with_optional, own_order);
  REQUIRE(r.good.size() == 1);
  CHECK(r.good[0] == owned_order{1, 2, 300, "", ""});
  // When the file has the optional column, its values are checked like any other.
  const auto bad = parse_csv("ts,id,note,price\n1,2,\xFF,3.00\n", with_optional, own_order);
  REQUIRE(bad.bad.size() == 1);
  CHECK(bad.bad[0].reason == "field 'note' (column 3): not valid UTF-8: '\\xff'");
}

TEST_CASE("text fields: invalid UTF-8 and NUL are bad records with their position; raw_bytes takes any bytes") {
  struct blob {
    std::string_view k;
    std::string_view v;
  };
  using namespace std::string_literals;
  const std::string text = "k,v\nok,caf\xC3\xA9\nbad,\xE2\x82\nnul,a\0b\n\"q\"\"\",\"\xF8\"\n"s;
  const auto strict = parse_csv(text, sluice::schema<blob>(column("k", &blob::k), column("v", &blob::v)),
                                [](const blob& b) { return std::string(b.v); });
  CHECK(strict.good == std::vector<std::string>{"caf\xC3\xA9"});
  check_bad(strict.bad, {{3, 13, "field 'v' (column 2): not valid UTF-8: '\\xe2\\x82'", "bad,\xE2\x82\n"},
                         {4, 20, "field 'v' (column 2): contains a NUL byte: 'a\\x00b'", std::string("nul,a\0b\n", 8)},
                         {5, 28, "field 'v' (column 2): not valid UTF-8: '\\xf8'", "\"q\"\"\",\"\xF8\"\n"}});
  const auto raw = parse_csv(text, sluice::schema<blob>(column("k", &blob::k), column("v", &blob::v, sluice::raw_bytes{})),
                             [](const blob& b) { return std::string(b.v); });
  CHECK(raw.bad.empty());
  CHECK(raw.good == std::vector<std::string>{"caf\xC3\xA9", "\xE2\x82", std::string("a\0b", 3), "\xF8"});
}

TEST_CASE("csv output: append_csv_field reads back as the same value through sluice's tokenizer") {
  std::mt19937_64 rng(4180);
  for (int i = 0; i < 20000; ++i) {
    std::vector<std::string> fields(1 + rng() % 4);
    std::string line;
    for (auto& f : fields) {
      const std::size_t len = rng() % 12;
      for (std::size_t k = 0; k < len; ++k) {
        f += ",\"\r\n ab;"[rng() % 8];
      }
      sluice::append_csv_field(line += (&f == fields.data() ? "" : ","), f);
    }
    line += "\r\n";
    CAPTURE(line);
    sluice::detail::csv_tokenizer tok(',', 8);
    const auto r = tok.tokenize(line.data(), line.data() + line.size(), true, line.size());
    REQUIRE(r.st == sluice::detail::csv_tokenizer::status::ok);
    CHECK(r.next == line.data() + line.size());
    REQUIRE(r.fields == fields.size());
    for (std::size_t k = 0; k < fields.size(); ++k) {
      CHECK(tok.field(k) == fields[k]);
    }
  }
}

TEST_CASE("json output: strings are always valid UTF-8 JSON, valid text is kept, invalid bytes become U+FFFD") {
  std::mt19937_64 rng(8259);
  for (int i = 0; i < 50000; ++i) {
    const std::string s = random_bytes(rng, 16);
    std::string out;
    sluice::detail::append_json_string(out, s);
    CAPTURE(s);
    CHECK(sluice::detail::text_error(out) == nullptr);  // no NUL, no invalid byte
    CHECK(std::none_of(out.begin(), out.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20; }));
    const auto decoded = parse_json_line("{\"k\":" + out + "}");
    REQUIRE(decoded.has_value());
    if (reference_valid_text(s)) {
      CHECK(decoded->at("k") == s);
    }
  }
  std::string out;
  sluice::detail::append_json_string(out, "a\xFF\"\\\n\xC3\xA9");
  CHECK(out == "\"a\xEF\xBF\xBD\\\"\\\\\\n\xC3\xA9\"");
}

TEST_CASE("csv output: leading_csv_fields takes a row's first n fields, quoted delimiters and quotes inside them") {
  CHECK(sluice::leading_csv_fields("eu,1700000000000,3,12.50", 1) == "eu");
  CHECK(sluice::leading_csv_fields("eu,1700000000000,3,12.50", 2) == "eu,1700000000000");
  CHECK(sluice::leading_csv_fields("eu,1700000000000", 2) == "eu,1700000000000");  // all of it
  CHECK(sluice::leading_csv_fields("eu", 3) == "eu");
  CHECK(sluice::leading_csv_fields(R"("toys, games ""kids""",7,1.00)", 1) == R"("toys, games ""kids""")");
  CHECK(sluice::leading_csv_fields(R"("a,b",",",c)", 2) == R"("a,b",",")");
  CHECK(sluice::leading_csv_fields("", 1).empty());
  // Whatever append_csv_field writes, the first field read back is the field written.
  for (const std::string f : {"plain", "with,comma", "with \"quote\"", ",", "\"", ""}) {
    std::string row;
    sluice::append_csv_field(row, f);
    const std::size_t first = row.size();
    row += ",rest,of,row";
    CHECK(sluice::leading_csv_fields(row, 1) == row.substr(0, first));
  }
}
