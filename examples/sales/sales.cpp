// sales: the batch-mode demo. Runs one of three queries over a sales CSV on every core and
// prints the answer as CSV on stdout; counts and timing go to stderr.
//
//   sales by-category|region-minute|top-products --input FILE [--threads N]
//         [--bad-records skip|fail] [--dead-letter FILE]
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

#include <fmt/core.h>

#include "../common/cli.hpp"
#include "sales.hpp"
#include "sluice/io/dead_letter_file.hpp"
#include "sluice/io/file_source.hpp"
#include "sluice/io/jsonl.hpp"
#include "sluice/run/batch.hpp"

namespace {

constexpr const char* usage =
    "usage: sales QUERY --input FILE [--format csv|jsonl] [--threads N] [--bad-records skip|fail]\n"
    "             [--dead-letter FILE]\n"
    "QUERY:\n"
    "  by-category     per category: rows and revenue        -> category,cnt,revenue\n"
    "  region-minute   per region and 1-minute window         -> region,window_start,cnt,revenue\n"
    "  top-products    the 10 products with the most revenue  -> product_id,revenue\n"
    "Options:\n"
    "  --input FILE          sales CSV (header ts,order_id,user_id,region,category,product_id,qty,price)\n"
    "  --format FORMAT       csv (default) or jsonl: one JSON object per line with the same field names\n"
    "  --threads N           worker threads (default: all cores)\n"
    "  --bad-records POLICY  skip (default: count, dead-letter, go on) or fail (stop at the first)\n"
    "  --dead-letter FILE    write bad records there as JSON lines (line, offset, reason, record)\n";

struct options {
  std::string query;
  std::string input;
  std::string format = "csv";
  unsigned threads = 0;
  sluice::bad_record_policy policy = sluice::bad_record_policy::skip;
  std::string dead_letter;
};

options parse_args(int argc, char** argv) {
  options o;
  cli::args args("sales", usage, argc, argv);
  while (args.next()) {
    const std::string_view a = args.current();
    if (a == "--input") {
      o.input = args.value();
    } else if (a == "--format") {
      o.format = args.value();
      if (o.format != "csv" && o.format != "jsonl") {
        args.fail("--format is csv or jsonl, not '" + o.format + "'");
      }
    } else if (a == "--threads") {
      o.threads = args.threads();
    } else if (a == "--bad-records") {
      o.policy = args.policy();
    } else if (a == "--dead-letter") {
      o.dead_letter = args.value();
    } else if (args.is_option() || !o.query.empty()) {
      args.unexpected();
    } else {
      o.query = a;
    }
  }
  if (o.query.empty()) {
    args.fail("no QUERY given");
  }
  if (o.query != "by-category" && o.query != "region-minute" && o.query != "top-products") {
    args.fail("unknown query '" + o.query + "'");
  }
  if (o.input.empty()) {
    args.fail("--input FILE is required");
  }
  return o;
}

template <class Schema, class Flow, class Print>
sluice::batch_stats run(const options& o, const sluice::input_options& input, const Schema& schema, const Flow& flow,
                        Print&& print) {
  sluice::batch_stats stats;
  auto run_over = [&](const auto& source) {
    print(sluice::run_batch(source, flow, sluice::batch_options{.threads = o.threads}, &stats));
  };
  if (o.format == "jsonl") {
    run_over(sluice::jsonl_file(o.input, schema, input));
  } else {
    run_over(sluice::csv_file(o.input, schema, input));
  }
  return stats;
}

}  // namespace

int main(int argc, char** argv) {
  const options o = parse_args(argc, argv);
  sluice::input_options input;
  input.on_bad_record = o.policy;
  std::unique_ptr<sluice::dead_letter_file> dead_letters;
  std::uint64_t bad_seen = 0;
  if (!o.dead_letter.empty()) {
    dead_letters = std::make_unique<sluice::dead_letter_file>(o.dead_letter);
  }
  input.dead_letters = [&](const sluice::bad_record& r) {
    ++bad_seen;
    if (dead_letters) {
      dead_letters->write(r);
    } else if (bad_seen <= 10) {
      std::fprintf(stderr, "sales: bad record: %s\n", sluice::describe(r).c_str());
    }
  };

  try {
    sluice::batch_stats stats;
    std::string out;
    if (o.query == "by-category") {
      stats = run(o, input, sales::by_category_schema(), sales::by_category(), [&](const auto& store) {
        out = "category,cnt,revenue\n";
        for (const auto& row : store.scan()) {
          const auto& [cnt, revenue] = row.value;
          fmt::format_to(std::back_inserter(out), "{},{},{}\n", row.key, cnt, sales::format_cents(revenue));
        }
      });
    } else if (o.query == "region-minute") {
      stats = run(o, input, sales::region_minute_schema(), sales::region_minute(), [&](const auto& store) {
        out = "region,window_start,cnt,revenue\n";
        for (const auto& row : store.scan()) {
          const auto& [cnt, revenue] = row.value;
          fmt::format_to(std::back_inserter(out), "{},{},{},{}\n", row.key.key, row.key.window.start.count(), cnt,
                         sales::format_cents(revenue));
        }
      });
    } else {
      stats = run(o, input, sales::top_products_schema(), sales::product_revenue(), [&](const auto& store) {
        out = "product_id,revenue\n";
        for (const auto& row : store.top_k(10, [](std::int64_t revenue) { return revenue; })) {
          fmt::format_to(std::back_inserter(out), "{},{}\n", row.key, sales::format_cents(row.value));
        }
      });
    }
    std::fwrite(out.data(), 1, out.size(), stdout);
    if (dead_letters) {
      dead_letters->close();
    }
    std::fprintf(stderr, "sales: %s: %llu rows read, %llu bad records, %.3f s, %zu threads\n", o.query.c_str(),
                 static_cast<unsigned long long>(stats.records), static_cast<unsigned long long>(stats.bad_records),
                 stats.seconds, stats.chunks);
    if (bad_seen > 10 && !dead_letters) {
      std::fprintf(stderr, "sales: (%llu more bad records; use --dead-letter FILE to keep them all)\n",
                   static_cast<unsigned long long>(bad_seen - 10));
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sales: %s\n", e.what());
    return 1;
  }
  return 0;
}
