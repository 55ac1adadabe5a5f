// gen_sales: writes deterministic synthetic sales events as CSV, for demos, tests and benchmarks.
//
//   gen_sales ROWS FILE [--seed S] [--late-fraction F] [--max-lateness MS]
//
// Header: ts,order_id,user_id,region,category,product_id,qty,price. The rows are
// sales::row_generator's (sales/sales_rows.hpp): about one event per ms, up to 200 ms out of
// order, a fraction F of them up to MS further in the past (late data for stream mode), and a
// skewed product distribution so that top-products has a clear head.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "common/cli.hpp"
#include "sales/sales_rows.hpp"

namespace {

constexpr const char* usage =
    "usage: gen_sales ROWS FILE [--seed S] [--late-fraction F] [--max-lateness MS]\n"
    "  Writes ROWS synthetic sales rows (CSV with header) to FILE ('-' for stdout).\n"
    "  --seed S            random seed (default 42); the same seed gives the same file\n"
    "  --late-fraction F   fraction of rows whose time is pushed into the past (default 0)\n"
    "  --max-lateness MS   how far back a late row may be, in ms (default 60000)\n";

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> positional;
  std::uint64_t seed = 42;
  double late_fraction = 0;
  std::int64_t max_lateness = 60'000;
  cli::args args("gen_sales", usage, argc, argv);
  while (args.next()) {
    const std::string_view a = args.current();
    if (a == "--seed") {
      seed = args.whole_number(args.value(), "--seed");
    } else if (a == "--max-lateness") {
      max_lateness = static_cast<std::int64_t>(args.whole_number(args.value(), "--max-lateness"));
    } else if (a == "--late-fraction") {
      const std::string v = args.value();
      char* end = nullptr;
      late_fraction = std::strtod(v.c_str(), &end);
      if (v.empty() || *end != '\0' || !(late_fraction >= 0 && late_fraction <= 1)) {
        args.fail("--late-fraction must be a number from 0 to 1, not '" + v + "'");
      }
    } else {
      args.take_positional(positional, 2);
    }
  }
  const auto target = args.rows_and_file(positional);
  const std::uint64_t rows = target.rows;

  sales::row_generator generate(sales::row_options{seed, late_fraction, max_lateness});
  std::string buf;
  buf.reserve(1U << 20U);
  buf += sales::csv_header;
  buf += '\n';
  for (std::uint64_t row = 0; row < rows; ++row) {
    generate.append(buf);
    buf += '\n';
    target.write_if_full(buf);
  }
  return target.finish(buf, "gen_sales");
}
