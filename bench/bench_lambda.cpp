// Lambda mode's costs on 1M generated sales rows (sales::row_generator, as gen_sales writes them):
//
//   recompute  run_batch over the event log (log_source) against the same rows as a CSV file
//              (csv_file): the cost of the log's framing and per-record decode; and the Kappa
//              replay (replay_to_head: the stream path over the log). Time per 1M events.
//   ingest     lambda_engine::ingest in batches of 1000: append + commit (fsync per policy) +
//              speed layer, no batch layer running.
//   snapshot   lambda_engine::snapshot(): V_E by pointer + the speed epochs, by the size of each side.
//
// Rates are per wall-clock second (UseRealTime): batch runs use several threads and an fsync
// waits for the disk. Logs and files live under the system temp directory and are removed.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <string>

#include "lambda_fixtures.hpp"
#include "sales.hpp"
#include "sluice/io/file_source.hpp"
#include "sluice/io/log_source.hpp"
#include "sluice/lambda/kappa.hpp"
#include "sluice/lambda/lambda_engine.hpp"
#include "sluice/run/batch.hpp"

namespace {

constexpr std::size_t million = 1'000'000;
constexpr std::size_t speed_rows = 100'000;  // the snapshot benchmarks' speed layer, after the 1M
constexpr std::size_t ingest_batch = 1000;

const bench::sales_rows& rows() {
  static const bench::sales_rows r(million + speed_rows);
  return r;
}

/// The first 1M rows as a sales CSV file and as an event log (fsync never, 64 MiB segments,
/// committed every 1000 records, the last segment left active), written once.
struct million_rows_on_disk {
  bench::scratch_dir dir{"lambda_fixture"};
  std::string csv = dir.path("sales.csv");
  std::string log = dir.path("log");
  std::uint64_t csv_row_bytes = 0;  // without the header: what both sources parse
  std::uint64_t log_bytes = 0;

  million_rows_on_disk() {
    const std::string text = rows().csv(0, million);
    csv_row_bytes = text.size() - text.find('\n') - 1;
    std::FILE* f = std::fopen(csv.c_str(), "wb");
    if (f == nullptr || std::fwrite(text.data(), 1, text.size(), f) != text.size() || std::fclose(f) != 0) {
      throw std::runtime_error("cannot write " + csv);
    }
    sluice::log_options opts;
    opts.fsync = sluice::fsync_policy::parse("never");
    {
      sluice::event_log writer(log, opts);
      for (std::size_t i = 0; i < million; ++i) {
        writer.append(rows().event_time(i), rows().payload(i));
        if (i % ingest_batch == ingest_batch - 1) {
          writer.commit();
          writer.seal_if_due();
        }
      }
    }
    for (const auto& s : sluice::list_segments(log)) {
      log_bytes += s.bytes;
    }
  }
};

const million_rows_on_disk& on_disk() {
  static const million_rows_on_disk files;
  return files;
}

/// Sets the rates per 1M events (and per CSV byte, so log and CSV compare on the same bytes).
void per_million(benchmark::State& state) {
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * million));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * on_disk().csv_row_bytes));
}

// ---- recompute: batch over the log vs the CSV file ------------------------------------------

// Args: threads, min_chunk_units. run_batch's default min_chunk_units (1 Mi) counts records for
// a log source and bytes for a file: with it, 1M records make one chunk whatever the threads.
// The runs below give both sources 64 Ki so that 2 threads really cut the input in two; one run
// keeps the default to show it.
sluice::batch_options threads_arg(const benchmark::State& state) {
  return sluice::batch_options{.threads = static_cast<unsigned>(state.range(0)),
                               .min_chunk_units = static_cast<std::size_t>(state.range(1))};
}

template <class Flow, class Schema>
void recompute_log(benchmark::State& state, const Flow& flow, const Schema& schema) {
  const std::string& log = on_disk().log;  // written before the timing starts
  const auto payloads = sluice::csv_payloads(schema, sales::csv_header);
  sluice::batch_stats stats;
  std::size_t keys = 0;
  for (auto _ : state) {
    const auto source = sluice::log_source<decltype(payloads)>::whole(log, payloads);
    const auto store = sluice::run_batch(source, flow, threads_arg(state), &stats);
    keys = store.size();
  }
  per_million(state);
  state.counters["chunks"] = static_cast<double>(stats.chunks);
  state.counters["keys"] = static_cast<double>(keys);
  state.counters["log_MB"] = static_cast<double>(on_disk().log_bytes) / 1e6;
}

template <class Flow, class Schema>
void recompute_csv(benchmark::State& state, const Flow& flow, const Schema& schema) {
  const std::string& csv = on_disk().csv;
  sluice::batch_stats stats;
  std::size_t keys = 0;
  for (auto _ : state) {
    const auto store = sluice::run_batch(sluice::csv_file(csv, schema), flow, threads_arg(state), &stats);
    keys = store.size();
  }
  per_million(state);
  state.counters["chunks"] = static_cast<double>(stats.chunks);
  state.counters["keys"] = static_cast<double>(keys);
}

// The Kappa alternative: replay the log through the stream path on the calling thread.
template <class Flow, class Schema>
void replay_log(benchmark::State& state, const Flow& flow, const Schema& schema) {
  const std::string& log = on_disk().log;
  const auto payloads = sluice::csv_payloads(schema, sales::csv_header);
  std::size_t keys = 0;
  for (auto _ : state) {
    keys = sluice::replay_to_head(flow, payloads, log).size();
  }
  per_million(state);
  state.counters["keys"] = static_cast<double>(keys);
}

#define SLUICE_RECOMPUTE(source, query)                                                 \
  BENCHMARK_CAPTURE(recompute_##source, query, sales::query(), sales::query##_schema()) \
      ->Name("recompute/" #source "/" #query)                                           \
      ->ArgNames({"threads", "min_chunk"})                                              \
      ->Args({1, 1 << 16})                                                              \
      ->Args({2, 1 << 16})                                                              \
      ->UseRealTime()                                                                   \
      ->Unit(benchmark::kMillisecond)
SLUICE_RECOMPUTE(log, by_category)->Args({2, static_cast<std::int64_t>(sluice::batch_options{}.min_chunk_units)});
SLUICE_RECOMPUTE(csv, by_category);
SLUICE_RECOMPUTE(log, region_minute);
SLUICE_RECOMPUTE(csv, region_minute);
#undef SLUICE_RECOMPUTE
BENCHMARK_CAPTURE(replay_log, by_category, sales::by_category(), sales::by_category_schema())
    ->Name("replay_to_head/by_category")
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(replay_log, region_minute, sales::region_minute(), sales::region_minute_schema())
    ->Name("replay_to_head/region_minute")
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// ---- ingest: append + commit + speed layer -----------------------------------------------

sluice::lambda_options engine_options(const char* fsync) {
  sluice::lambda_options opts;
  opts.log.fsync = sluice::fsync_policy::parse(fsync);
  opts.max_delay = std::chrono::milliseconds(200);  // the rows' own disorder: nothing is late
  return opts;
}

template <class Flow, class Schema>
void ingest(benchmark::State& state, const char* fsync, const Flow& flow, const Schema& schema) {
  // Rows to cycle through, moved later in event time on every round (outside the timing).
  static bench::sales_rows cycle(million);
  const bench::scratch_dir dir("lambda_ingest");
  std::uint64_t bytes = 0;
  {
    sluice::lambda_engine engine(dir.path("log"), sluice::csv_payloads(schema, sales::csv_header),
                                 engine_options(fsync), flow);
    const auto input = engine.open_input();
    std::size_t at = 0;
    for (auto _ : state) {
      if (at + ingest_batch > cycle.size()) {
        state.PauseTiming();
        cycle.shift(cycle.span_ms());
        at = 0;
        state.ResumeTiming();
      }
      engine.ingest(input, cycle.batch(at, ingest_batch));
      bytes += cycle.bytes(at, ingest_batch);
      at += ingest_batch;
    }
    const auto status = engine.status();
    state.counters["late"] = static_cast<double>(status.late);
    state.counters["segments"] = static_cast<double>(status.sealed_epochs + 1);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * ingest_batch));
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
}
#define SLUICE_INGEST(query, fsync)                                                \
  BENCHMARK_CAPTURE(ingest, query, fsync, sales::query(), sales::query##_schema()) \
      ->Name("ingest/" #query "/fsync:" fsync)                                     \
      ->UseRealTime()
SLUICE_INGEST(by_category, "never");
SLUICE_INGEST(by_category, "interval:100");
SLUICE_INGEST(by_category, "always");
SLUICE_INGEST(region_minute, "never");
SLUICE_INGEST(region_minute, "interval:100");
#undef SLUICE_INGEST

// ---- snapshot: V_E (+) speed -------------------------------------------------------------

// Args: rows in the batch view (0 or the 1M of the log: the engine builds V over a copy of it
// when it opens), rows in the speed layer after them (0 or 100k, ingested, not sealed).
template <class Flow, class Schema>
void snapshot(benchmark::State& state, const Flow& flow, const Schema& schema) {
  const bench::scratch_dir dir("lambda_snapshot");
  const auto in_batch = static_cast<std::size_t>(state.range(0));
  const auto in_speed = static_cast<std::size_t>(state.range(1));
  if (in_batch == million) {
    std::filesystem::copy(on_disk().log, dir.path("log"), std::filesystem::copy_options::recursive);
  }
  sluice::lambda_engine engine(dir.path("log"), sluice::csv_payloads(schema, sales::csv_header),
                               engine_options("never"), flow);
  const auto input = engine.open_input();
  for (std::size_t at = million; at < million + in_speed; at += ingest_batch) {
    engine.ingest(input, rows().batch(at, ingest_batch));
  }
  for (auto _ : state) {
    auto snap = engine.snapshot();  // holds V by pointer, copies the speed epochs
    benchmark::DoNotOptimize(snap);
  }
  state.counters["keys"] = static_cast<double>(engine.snapshot().store.size());
  state.counters["speed_epochs"] = static_cast<double>(engine.status().speed_epochs.size());
}
#define SLUICE_SNAPSHOT(flow, schema)                               \
  BENCHMARK_CAPTURE(snapshot, flow, sales::flow(), sales::schema()) \
      ->ArgNames({"batch_rows", "speed_rows"})                      \
      ->Args({0, 0})                                                \
      ->Args({0, speed_rows})                                       \
      ->Args({million, 0})                                          \
      ->Args({million, speed_rows})                                 \
      ->Unit(benchmark::kMicrosecond)
SLUICE_SNAPSHOT(by_category, by_category_schema);
SLUICE_SNAPSHOT(region_minute, region_minute_schema);
SLUICE_SNAPSHOT(product_revenue, top_products_schema);
#undef SLUICE_SNAPSHOT

}  // namespace

BENCHMARK_MAIN();
