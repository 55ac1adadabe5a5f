// End to end, hostile input: a nasty but legal sales CSV (CRLF, quoted fields, a category
// holding a comma and quotes, another a line break, UTF-8 names, prices written 7 or 12.5) with
// malformed lines in columns some queries do not read. Every query must read the same rows,
// reject the same lines (by line number, in the dead-letter file), print exactly the answer over
// the valid rows, and print it as CSV that reads back to the same values in sluice's own CSV
// reader and in Python's csv module.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <map>
#include <random>
#include <regex>
#include <string>
#include <utility>
#include <vector>

#include "e2e_support.hpp"
#include "sluice/io/csv.hpp"

#ifndef SALES_BIN
#error "SALES_BIN must name the sales binary (tests/meson.build passes it)"
#endif

namespace {

using namespace e2e;

struct good_row {
  std::int64_t ts = 0;
  std::string region, category;
  std::int64_t product = 0, qty = 0, cents = 0;
};

struct nasty_file {
  std::string text;
  std::vector<good_row> good;
  std::vector<std::uint64_t> bad_lines;  // 1-based physical lines (the header is line 1)
};

std::string quoted(const std::string& s) {
  std::string q = "\"";
  for (const char c : s) {
    q += c;
    if (c == '"') {
      q += '"';
    }
  }
  return q + "\"";
}

/// Rows written the way spreadsheets and scripts do, and one malformed line of each kind after
/// every 40 good rows or so. Each malformed line is one physical line.
nasty_file make_nasty(std::uint64_t seed) {
  const std::vector<std::string> categories = {"toys, games \"kids\"", "books", "caf\xC3\xA9", "garden\ntools",
                                               "\xE6\x97\xA5\xE6\x9C\xAC"};
  const std::vector<std::string> regions = {"eu-west", "us \"east\"", "ap,south", "z\xC3\xBCrich"};
  const std::vector<std::string> broken = {
      "17000x0000000,1,2,eu-west,books,3,1,1.00",                    // ts not a number (by-category does not read ts)
      "1700000000000,1,2,eu-west,books,abc,1,1.00",                  // product_id (only top-products reads it)
      "1700000000000,1,,eu-west,books,3,1,1.00",                     // user_id empty (no query reads it)
      "1700000000000,1.5,2,eu-west,books,3,1,1.00",                  // order_id not an integer
      "1700000000000,1,2,eu-\xFF\xFE,books,3,1,1.00",                // region not UTF-8
      std::string("1700000000000,1,2,eu-west,bo\0ks,3,1,1.00", 41),  // a NUL byte in a text field
      "1700000000000,1,2,eu-west,\xC0\xAF,3,1,1.00",                 // an overlong UTF-8 form
      "1700000000000,1,2,eu-west,books,3,1",                         // 7 fields
      "1700000000000,1,2,eu-west,books,3,x,1.00",                    // qty
      "1700000000000,1,2,eu-west,books,3,1,1.234",                   // price: more decimals than cents
  };
  std::mt19937_64 rng(seed);
  nasty_file f;
  f.text = "ts,order_id,user_id,region,category,product_id,qty,price\r\n";
  std::uint64_t line = 2;
  std::size_t next_broken = 0;
  for (int i = 0; i < 600; ++i) {
    if (i % 40 == 39) {
      f.text += broken[next_broken++ % broken.size()] + "\r\n";
      f.bad_lines.push_back(line++);
      continue;
    }
    good_row r;
    r.ts = 1'700'000'000'000 + static_cast<std::int64_t>(rng() % 600'000);
    r.region = regions[rng() % regions.size()];
    r.category = categories[rng() % categories.size()];
    r.product = 1 + static_cast<std::int64_t>(rng() % 30);
    r.qty = 1 + static_cast<std::int64_t>(rng() % 5);
    const std::int64_t whole = static_cast<std::int64_t>(rng() % 50);
    std::string price;
    switch (rng() % 3) {
      case 0:
        price = std::to_string(whole);  // "7"
        r.cents = whole * 100;
        break;
      case 1: {
        const std::int64_t tenth = static_cast<std::int64_t>(rng() % 10);
        price = std::to_string(whole) + "." + std::to_string(tenth);  // "12.5"
        r.cents = whole * 100 + tenth * 10;
        break;
      }
      default: {
        const std::int64_t hundredths = static_cast<std::int64_t>(rng() % 100);
        price = std::to_string(whole) + (hundredths < 10 ? ".0" : ".") + std::to_string(hundredths);
        r.cents = whole * 100 + hundredths;
      }
    }
    const auto text = [&](const std::string& s) {
      return s.find_first_of(",\"\r\n") != std::string::npos || rng() % 4 == 0 ? quoted(s) : s;
    };
    const auto number = [&](const std::string& s) { return rng() % 10 == 0 ? quoted(s) : s; };
    f.text += number(std::to_string(r.ts)) + "," + number(std::to_string(100 + i)) + "," +
              number(std::to_string(7 * i)) + "," + text(r.region) + "," + text(r.category) + "," +
              number(std::to_string(r.product)) + "," + number(std::to_string(r.qty)) + "," + number(price) + "\r\n";
    line += static_cast<std::uint64_t>(std::count(r.category.begin(), r.category.end(), '\n')) + 1;
    f.good.push_back(std::move(r));
  }
  return f;
}

std::string cents(std::int64_t c) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%lld.%02lld", static_cast<long long>(c / 100), static_cast<long long>(c % 100));
  return buf;
}

using table = std::vector<std::vector<std::string>>;

/// The expected rows of each query over the valid rows, header first, as field values.
table expected(const std::string& query, const std::vector<good_row>& rows) {
  table t;
  if (query == "by-category") {
    std::map<std::string, std::pair<std::int64_t, std::int64_t>> acc;
    for (const auto& r : rows) {
      acc[r.category].first += 1;
      acc[r.category].second += r.qty * r.cents;
    }
    t.push_back({"category", "cnt", "revenue"});
    for (const auto& [k, v] : acc) {
      t.push_back({k, std::to_string(v.first), cents(v.second)});
    }
  } else if (query == "region-minute") {
    std::map<std::pair<std::string, std::int64_t>, std::pair<std::int64_t, std::int64_t>> acc;
    for (const auto& r : rows) {
      auto& v = acc[{r.region, r.ts - r.ts % 60'000}];
      v.first += 1;
      v.second += r.qty * r.cents;
    }
    t.push_back({"region", "window_start", "cnt", "revenue"});
    for (const auto& [k, v] : acc) {
      t.push_back({k.first, std::to_string(k.second), std::to_string(v.first), cents(v.second)});
    }
  } else {
    std::map<std::int64_t, std::int64_t> acc;
    for (const auto& r : rows) {
      acc[r.product] += r.qty * r.cents;
    }
    std::vector<std::pair<std::int64_t, std::int64_t>> ranked(acc.begin(), acc.end());
    std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) {
      return a.second != b.second ? a.second > b.second : a.first < b.first;
    });
    ranked.resize(std::min<std::size_t>(ranked.size(), 10));
    t.push_back({"product_id", "revenue"});
    for (const auto& [product, revenue] : ranked) {
      t.push_back({std::to_string(product), cents(revenue)});
    }
  }
  return t;
}

/// sales's output read back with sluice's CSV tokenizer.
table read_with_sluice(const std::string& csv) {
  sluice::detail::csv_tokenizer tok(',', 16);
  table t;
  const char* p = csv.data();
  const char* const end = p + csv.size();
  while (p < end) {
    const auto r = tok.tokenize(p, end, true, csv.size());
    REQUIRE(r.st == sluice::detail::csv_tokenizer::status::ok);
    std::vector<std::string> row;
    for (std::size_t i = 0; i < r.fields; ++i) {
      row.emplace_back(tok.field(i));
    }
    t.push_back(std::move(row));
    p = r.next;
  }
  return t;
}

/// sales's output read back with Python's csv module: each field comes back hex-encoded.
table read_with_python(const std::filesystem::path& file) {
  const std::string script =
      "import csv, sys\n"
      "with open(sys.argv[1], newline='', encoding='utf-8') as f:\n"
      "    for row in csv.reader(f, strict=True):\n"
      "        print('|'.join(field.encode('utf-8').hex() for field in row))\n";
  const auto r = run("python3", {"-c", script, file.string()});
  REQUIRE_MESSAGE(r.status == 0, r.err);
  table t;
  for (const auto& line : lines_of(r.out)) {
    std::vector<std::string> row;
    for (const auto& hex : split(line, '|')) {
      std::string field;
      for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
        field += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
      }
      row.push_back(field);
    }
    t.push_back(std::move(row));
  }
  return t;
}

std::vector<std::uint64_t> dead_letter_lines(const std::string& jsonl) {
  std::vector<std::uint64_t> lines;
  const std::regex line_field("\"line\":([0-9]+),");
  for (const auto& l : lines_of(jsonl)) {
    std::smatch m;
    REQUIRE(std::regex_search(l, m, line_field));
    lines.push_back(std::stoull(m[1].str()));
  }
  return lines;
}

}  // namespace

TEST_CASE(
    "sales over a hostile CSV: every query reads the same rows, rejects the same lines, and writes CSV that reads "
    "back") {
  const nasty_file f = make_nasty(11);
  const auto input = tmp("nasty.csv");
  write_file(input, f.text);
  const std::string counts =
      std::to_string(f.good.size()) + " rows read, " + std::to_string(f.bad_lines.size()) + " bad records";
  for (const std::string query : {"by-category", "region-minute", "top-products"}) {
    CAPTURE(query);
    const auto dead = tmp("nasty-dead-" + query + ".jsonl");
    const auto r = run(SALES_BIN, {query, "--input", input.string(), "--dead-letter", dead.string()});
    REQUIRE_MESSAGE(r.status == 0, r.err);
    CHECK_MESSAGE(contains(r.err, counts), r.err);
    CHECK(dead_letter_lines(read_file(dead)) == f.bad_lines);
    const table want = expected(query, f.good);
    CHECK(read_with_sluice(r.out) == want);
    const auto out_file = tmp("nasty-out-" + query + ".csv");
    write_file(out_file, r.out);
    CHECK(read_with_python(out_file) == want);
  }
}

TEST_CASE("sales: a header without a schema column is an error naming it, whatever the query reads") {
  const auto input = tmp("no-user.csv");
  write_file(input, "ts,order_id,region,category,product_id,qty,price\n1700000000000,1,eu,books,3,1,1.00\n");
  for (const std::string query : {"by-category", "region-minute", "top-products"}) {
    CAPTURE(query);
    const auto r = run(SALES_BIN, {query, "--input", input.string()});
    CHECK(r.status != 0);
    CHECK_MESSAGE(contains(r.err, "header has no column 'user_id'"), r.err);
  }
}
