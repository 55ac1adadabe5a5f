// End to end, the enrich example (a stream-table join against a product CSV, then revenue per
// brand per hour): batch mode equals a reference computed here from the two files, stream mode
// over TCP equals batch mode, and a bad product row is reported with its line and skipped.
#include <doctest/doctest.h>

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "e2e_support.hpp"

#if !defined(ENRICH_BIN) || !defined(GEN_SALES_BIN) || !defined(SEND_LINES_BIN)
#error "ENRICH_BIN, GEN_SALES_BIN and SEND_LINES_BIN must name the binaries (tests/meson.build passes them)"
#endif

namespace {

using namespace e2e;

std::int64_t cents_of(const std::string& decimal) {  // "12.34" -> 1234
  const auto dot = decimal.find('.');
  if (dot == std::string::npos) {  // not one assertion per row: 10^5 of them under the sanitizers
    FAIL("not a decimal: " << decimal);
  }
  return std::stoll(decimal.substr(0, dot)) * 100 + std::stoll(decimal.substr(dot + 1));
}

std::string cents_text(std::int64_t cents) {
  const std::string frac = std::to_string(cents % 100);
  return std::to_string(cents / 100) + "." + (frac.size() == 1 ? "0" : "") + frac;
}

/// Per (brand, hour): orders and revenue, from the sales and product files directly.
std::string reference(const std::string& sales_csv, const std::string& products_csv) {
  std::map<std::string, std::string> brand_of;
  const auto products = lines_of(products_csv);
  for (std::size_t i = 1; i < products.size(); ++i) {
    const auto f = split(products[i]);
    if (f.size() != 3) {  // not one assertion per line: 10^5 of them under the sanitizers
      FAIL("expected 3 fields: " << products[i]);
    }
    brand_of[f[0]] = f[2];
  }
  std::map<std::pair<std::string, std::int64_t>, std::pair<std::int64_t, std::int64_t>> rows;
  const auto sales = lines_of(sales_csv);  // ts,order_id,user_id,region,category,product_id,qty,price
  for (std::size_t i = 1; i < sales.size(); ++i) {
    const auto f = split(sales[i]);
    if (f.size() != 8) {  // not one assertion per line: 10^5 of them under the sanitizers
      FAIL("expected 8 fields: " << sales[i]);
    }
    const auto it = brand_of.find(f[5]);
    const std::string brand = it == brand_of.end() ? "(unknown)" : it->second;
    const std::int64_t ts = std::stoll(f[0]);
    auto& [orders, revenue] = rows[{brand, ts - ts % 3'600'000}];
    ++orders;
    revenue += std::stoll(f[6]) * cents_of(f[7]);
  }
  std::string out = "brand,hour_start,orders,revenue\n";
  for (const auto& [key, value] : rows) {
    out += key.first + "," + std::to_string(key.second) + "," + std::to_string(value.first) + "," +
           cents_text(value.second) + "\n";
  }
  return out;
}

struct files {
  std::string sales;
  std::string products;
};

const files& inputs() {
  static const files f = [] {
    files out{tmp("enrich-sales.csv").string(), tmp("enrich-products.csv").string()};
    REQUIRE(run(GEN_SALES_BIN, {"40000", out.sales, "--seed", "21"}).status == 0);
    REQUIRE(run(ENRICH_BIN, {"products", "100000", out.products}).status == 0);
    return out;
  }();
  return f;
}

}  // namespace

TEST_CASE("enrich: batch mode equals a join and group-by computed from the two files") {
  const auto& f = inputs();
  const std::string expected = reference(read_file(f.sales), read_file(f.products));
  REQUIRE(contains(expected, "(unknown),"));  // the left join really has misses
  for (const std::string threads : {"1", "2"}) {
    const auto r = run(ENRICH_BIN, {"--products", f.products, "--input", f.sales, "--threads", threads});
    REQUIRE(r.status == 0);
    CHECK(sorted_rows(r.out) == expected);
    CHECK(contains(r.err, "95000 products, 0 bad rows"));
  }
}

TEST_CASE("enrich --listen: over 2 connections, the answer of batch mode") {
  const auto& f = inputs();
  const std::string expected = sorted_rows(run(ENRICH_BIN, {"--products", f.products, "--input", f.sales}).out);
  for (const std::string split : {"chunks", "interleaved"}) {
    CAPTURE(split);
    const auto r = with_server(ENRICH_BIN, {"--products", f.products, "--connections", "2"},
                               send_lines_to_port(SEND_LINES_BIN, f.sales, 2, split));
    CHECK(r.status == 0);
    CHECK(sorted_rows(r.out) == expected);
    CHECK(contains(r.err, "40000 sales over 2 connections, 0 bad records, 0 late"));
  }
}

TEST_CASE("enrich: a bad product row is reported with its line and skipped; the rest of the table joins") {
  const auto& f = inputs();
  const std::string products = tmp("enrich-bad-products.csv").string();
  std::string text = read_file(f.products);
  text.insert(text.find('\n', text.find('\n') + 1) + 1, "seven,item 7,Broken\n");  // becomes line 3
  write_file(products, text);
  const auto r = run(ENRICH_BIN, {"--products", products, "--input", f.sales});
  REQUIRE(r.status == 0);
  CHECK(contains(r.err, "enrich-bad-products.csv:3"));
  CHECK(contains(r.err, "95000 products, 1 bad rows"));
  CHECK(sorted_rows(r.out) == reference(read_file(f.sales), read_file(f.products)));
}
