// enrich: the sales rows joined with a product table loaded from a CSV (product_id -> name,
// brand), revenue per brand per hour of event time: the seed's "enrichment" use case, a
// stream-table join (sluice::lookup_join) in batch mode over a file and in stream mode over TCP,
// with the same answer.
//
//   enrich products COUNT FILE [--seed S]
//   enrich --products FILE --input SALES.csv [--threads N]
//   enrich --products FILE --listen HOST:PORT [--connections N] [--max-delay D]
//
// Prints CSV brand,hour_start,orders,revenue (hour_start in ms since the Unix epoch). A sale whose
// product is not in the table counts under the brand "(unknown)" (a left join); a bad row of the
// product file is reported with its line and skipped.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <stop_token>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/core.h>

#include "common/cli.hpp"
#include "common/splitmix64.hpp"
#include "sales.hpp"
#include "sales_rows.hpp"
#include "sluice/io/csv_text.hpp"
#include "sluice/io/file_source.hpp"
#include "sluice/io/signals.hpp"
#include "sluice/io/stream_format.hpp"
#include "sluice/io/table_file.hpp"
#include "sluice/io/tcp_source.hpp"
#include "sluice/run/batch.hpp"
#include "sluice/run/stream.hpp"
#include "sluice/sluice.hpp"

namespace {

using namespace std::chrono_literals;

constexpr const char* usage =
    "usage: enrich products COUNT FILE [--seed S]\n"
    "       enrich --products FILE --input SALES.csv [--threads N]\n"
    "       enrich --products FILE --listen HOST:PORT [--connections N] [--max-delay D]\n"
    "  Revenue per brand per hour: gen_sales rows joined with a product table\n"
    "  (CSV product_id,name,brand). Prints CSV brand,hour_start,orders,revenue; sales of a\n"
    "  product missing from the table count under the brand (unknown).\n"
    "  products      write a product table for ids 1..COUNT (every 20th id left out) to FILE\n"
    "  --input FILE  batch mode over a sales CSV (--threads N, default every core)\n"
    "  --listen H:P  stream mode: accept TCP connections sending sales CSV lines (no header);\n"
    "                port 0 picks a free port, printed on stderr; --connections N: stop after N\n"
    "  --max-delay D how far out of order rows may arrive (default 1s)\n";

constexpr std::string_view unknown_brand = "(unknown)";

struct product_line {  // as parsed: strings borrow the file
  std::int64_t id = 0;
  std::string_view name;
  std::string_view brand;
};
struct product {
  std::string name;
  std::string brand;
};
using catalogue = sluice::lookup_table<std::int64_t, product>;

auto product_schema() {
  return sluice::schema<product_line>(sluice::column("product_id", &product_line::id),
                                      sluice::column("name", &product_line::name),
                                      sluice::column("brand", &product_line::brand));
}

/// A sale with its brand: the brand is a view into the table, alive while the event is pushed
/// (the aggregate copies a key when it first sees it).
struct branded_sale {
  sluice::millis ts;
  std::string_view brand;
  std::int64_t revenue_cents = 0;
};

auto brand_hour_flow(const catalogue& products) {
  return sluice::flow<sales::sale>() |
         sluice::lookup_join(products, &sales::sale::product_id,
                             [](const sales::sale& s, const product* p) {
                               return branded_sale{s.ts, p != nullptr ? std::string_view(p->brand) : unknown_brand,
                                                   sales::revenue_cents(s)};
                             }) |
         sluice::event_time(&branded_sale::ts) | sluice::key_by(&branded_sale::brand) |
         sluice::window(sluice::tumbling(1h)) |
         sluice::aggregate(sluice::count{}, sluice::sum(&branded_sale::revenue_cents));
}

void print_rows(const auto& store) {
  std::string out;
  for (const auto& row : store.scan()) {
    const auto& [orders, revenue] = row.value;
    sluice::append_csv_field(out, row.key.key);
    fmt::format_to(std::back_inserter(out), ",{},{},{}\n", row.key.window.start.count(), orders,
                   sales::format_cents(revenue));
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fflush(stdout);  // stream mode: an hour is visible as soon as it closes
}

/// ids 1..COUNT but every 20th; names and 25 brands derived from the id, so any COUNT agrees
/// with any other on the ids they share.
int write_products(const cli::args& args, const std::vector<std::string>& positional, std::uint64_t seed) {
  auto out = args.rows_and_file(positional);
  static constexpr std::string_view brands[] = {"Acme", "Globex", "Initech", "Umbrella", "Hooli"};
  static constexpr std::string_view lines[] = {"Basic", "Plus", "Pro", "Max", "Home"};
  std::string buf = "product_id,name,brand\n";
  for (std::uint64_t id = 1; id <= out.rows; ++id) {
    if (id % 20 == 0) {
      continue;
    }
    cli::splitmix64 rng{seed ^ (id * 0x9e3779b97f4a7c15ULL)};
    const std::uint64_t b = rng.below(std::size(brands) * std::size(lines));
    fmt::format_to(std::back_inserter(buf), "{},item {},{} {}\n", id, id, brands[b % std::size(brands)],
                   lines[b / std::size(brands)]);
    out.write_if_full(buf);
  }
  return out.finish(buf, "enrich");
}

struct options : cli::mode_flags {
  std::string products;
};

catalogue::map_type load_products(const std::string& path) {
  sluice::input_options input;
  std::uint64_t bad = 0;
  input.dead_letters = [&bad](const sluice::bad_record& r) {
    ++bad;
    std::fprintf(stderr, "enrich: skipped %s\n", sluice::describe(r).c_str());
  };
  auto rows = sluice::read_table<std::int64_t, product>(
      sluice::csv_file(path, product_schema(), input), [](const product_line& p) {
        return std::pair{p.id, product{std::string(p.name), std::string(p.brand)}};
      });
  std::fprintf(stderr, "enrich: %zu products, %llu bad rows\n", rows.size(), static_cast<unsigned long long>(bad));
  return rows;
}

int batch_mode(const options& o, const catalogue& products) {
  sluice::batch_stats stats;
  const auto store = sluice::run_batch(sluice::csv_file(o.input, sales::csv_schema()), brand_hour_flow(products),
                                       sluice::batch_options{.threads = o.threads}, &stats);
  std::fputs("brand,hour_start,orders,revenue\n", stdout);
  print_rows(store);
  std::fprintf(stderr, "enrich: %llu sales, %llu bad records, %.3f s\n", static_cast<unsigned long long>(stats.records),
               static_cast<unsigned long long>(stats.bad_records), stats.seconds);
  return 0;
}

int stream_mode(const options& o, const catalogue& products, std::stop_token stop) {
  sluice::tcp_source source(sluice::csv_lines(sales::csv_schema(), sales::csv_header),
                            sluice::tcp_options{.listen = o.listen, .stop_after = o.connections});
  std::fprintf(stderr, "enrich: listening on %s\n", source.local_endpoint().c_str());
  std::fflush(stderr);
  sluice::stream_options opts;
  opts.threads = o.threads != 0 ? o.threads : 1;
  opts.max_delay = o.max_delay;
  opts.expected_inputs = o.connections;
  std::fputs("brand,hour_start,orders,revenue\n", stdout);
  const auto stats = sluice::run_stream(
      source, brand_hour_flow(products), [](const auto& rows) { print_rows(rows); }, opts, stop);
  std::fprintf(stderr, "enrich: %llu sales over %llu connections, %llu bad records, %llu late, %.3f s\n",
               static_cast<unsigned long long>(stats.events), static_cast<unsigned long long>(stats.inputs),
               static_cast<unsigned long long>(stats.bad_records), static_cast<unsigned long long>(stats.late_events),
               stats.seconds);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  cli::args args("enrich", usage, argc, argv);
  options o;
  std::vector<std::string> positional;
  while (args.next()) {
    if (o.take(args)) {
      continue;
    }
    if (args.current() == "--products") {
      o.products = args.value();
    } else {
      args.take_positional(positional, 3);
    }
  }
  try {
    if (!positional.empty() && positional.front() == "products") {
      positional.erase(positional.begin());
      return write_products(args, positional, o.seed);
    }
    if (!positional.empty() || o.products.empty() || !o.one_mode()) {
      args.fail("give products COUNT FILE, or --products FILE with --input FILE or --listen HOST:PORT");
    }
    const catalogue products(load_products(o.products));
    if (!o.input.empty()) {
      return batch_mode(o, products);
    }
    std::stop_source stop;
    const sluice::stop_on_signals signals(stop);  // Ctrl-C: drain, fire what is due, print the summary
    return stream_mode(o, products, stop.get_token());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "enrich: %s\n", e.what());
    return 1;
  }
}
