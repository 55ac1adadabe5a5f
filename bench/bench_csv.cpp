// CSV parsing throughput (bytes/s) on generated sales rows: the tokenizer and schema binding
// alone, and with the by-category flow behind them, on one thread.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <string>

#include "sales.hpp"
#include "sluice/io/csv.hpp"

namespace {

std::string make_csv(std::size_t rows) {
  std::mt19937_64 rng(11);
  std::string s = "ts,order_id,user_id,region,category,product_id,qty,price\n";
  std::int64_t t = 1'700'000'000'000;
  for (std::size_t i = 0; i < rows; ++i) {
    t += static_cast<std::int64_t>(rng() % 3);
    s += std::to_string(t) + "," + std::to_string(100'000'000 + i) + "," + std::to_string(rng() % 1'000'000) +
         ",eu-west-" + std::to_string(rng() % 20) + ",category-" + std::to_string(rng() % 50) + "," +
         std::to_string(rng() % 100'000) + "," + std::to_string(1 + rng() % 5) + "," +
         sales::format_cents(static_cast<std::int64_t>(50 + rng() % 50'000)) + "\n";
  }
  return s;
}

template <class OnRecord>
void parse_all(benchmark::State& state, OnRecord&& on_record) {
  const std::string csv = make_csv(200'000);
  auto format = sluice::csv_format(sales::csv_schema(), sluice::csv_options{});
  const auto header = format.bind_header(csv, "bench");
  for (auto _ : state) {
    typename decltype(format)::parser p(format);
    const char* b = csv.data();
    auto out = p.parse(b, b + header.bytes, b + csv.size(), b + csv.size(), true, std::size_t{1} << 20U, on_record,
                       [](const sluice::chunk_bad_record&) { return true; });
    benchmark::DoNotOptimize(out);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * (csv.size() - header.bytes)));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * 200'000));
}

void csv_parse_sales(benchmark::State& state) {
  std::int64_t sink = 0;
  parse_all(state, [&](const sales::sale& s) { sink += s.qty; });
  benchmark::DoNotOptimize(sink);
}
BENCHMARK(csv_parse_sales);

void csv_parse_by_category(benchmark::State& state) {
  const auto flow = sales::by_category();
  auto partial = flow.make_partial();
  auto chain = flow.bind(partial);
  parse_all(state, [&](const sales::sale& s) { chain(sluice::millis{0}, s); });
  benchmark::DoNotOptimize(partial);
}
BENCHMARK(csv_parse_by_category);

}  // namespace

BENCHMARK_MAIN();
