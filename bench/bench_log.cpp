// Event log cost: the append rate per fsync policy (100-byte payloads: 102 bytes a record on
// disk, in batches of up to 1 MiB under a 20-byte header), read_log throughput over a 1M-record
// log, and CRC-32C itself. Rates are per wall-clock second (UseRealTime): an fdatasync waits for
// the disk, not the CPU. Logs live under the system temp directory and are removed after each run.
#include <benchmark/benchmark.h>

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <random>
#include <string>
#include <system_error>
#include <vector>

#include "sluice/core/crc32c.hpp"
#include "sluice/store/event_log.hpp"

namespace {

/// A log directory for one benchmark, removed with its segments afterwards.
struct bench_dir {
  std::string path;
  explicit bench_dir(const std::string& name)
      : path((std::filesystem::temp_directory_path() / ("sluice_bench_log_" + name + "_" + std::to_string(::getpid())))
                 .string()) {
    remove();
  }
  bench_dir(const bench_dir&) = delete;
  bench_dir& operator=(const bench_dir&) = delete;
  ~bench_dir() { remove(); }
  void remove() const {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
};

std::string random_payload(std::mt19937& rng, std::size_t n) {
  std::string s(n, '\0');
  for (auto& c : s) {
    c = static_cast<char>('!' + rng() % 90);
  }
  return s;
}

constexpr std::size_t payload_bytes = 100;

/// Appends 100-byte records, committing (and sealing when due) every `commit_every` records.
void append(benchmark::State& state, const char* policy, std::int64_t commit_every) {
  const bench_dir dir(std::string("append_") + std::to_string(commit_every));
  std::mt19937 rng(1);
  const std::string payload = random_payload(rng, payload_bytes);
  sluice::log_options opts;
  opts.fsync = sluice::fsync_policy::parse(policy);
  {
    sluice::event_log log(dir.path, opts);
    std::int64_t n = 0;
    for (auto _ : state) {
      log.append(sluice::millis{n}, payload);
      if (++n % commit_every == 0) {
        log.commit();
        log.seal_if_due();
      }
    }
    log.commit();
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(payload_bytes));
}
BENCHMARK_CAPTURE(append, always_commit_each, "always", 1)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK_CAPTURE(append, always_group_commit_1000, "always", 1000)->UseRealTime();
BENCHMARK_CAPTURE(append, interval_100ms_commit_1000, "interval:100", 1000)->UseRealTime();
BENCHMARK_CAPTURE(append, never_commit_1000, "never", 1000)->UseRealTime();

constexpr std::uint64_t log_records = 1'000'000;

/// A 1M-record log of 100-byte payloads (two 64 MiB segments), written once for the read benchmarks.
const bench_dir& million_record_log() {
  static const bench_dir dir("read");
  static const bool written = [] {
    std::mt19937 rng(2);
    const std::string payload = random_payload(rng, payload_bytes);
    sluice::log_options opts;
    opts.fsync = sluice::fsync_policy::parse("never");
    sluice::event_log log(dir.path, opts);
    for (std::uint64_t i = 0; i < log_records; ++i) {
      log.append(sluice::millis{static_cast<std::int64_t>(i)}, payload);
      if (i % 1000 == 999) {
        log.commit();
        log.seal_if_due();
      }
    }
    return true;
  }();
  (void)written;
  return dir;
}

void read_log_range(benchmark::State& state, std::uint64_t from, std::uint64_t to) {
  const auto segments = sluice::list_segments(million_record_log().path);
  std::uint64_t visited = 0;
  for (auto _ : state) {
    std::uint64_t bytes = 0;
    visited = sluice::read_log(segments, from, to, [&](const sluice::log_record& r) { bytes += r.payload.size(); });
    benchmark::DoNotOptimize(bytes);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(visited));
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(visited * payload_bytes));
  state.counters["segments"] = static_cast<double>(segments.size());
}
BENCHMARK_CAPTURE(read_log_range, all_1m, 0, log_records)->Unit(benchmark::kMillisecond)->UseRealTime();
// 1000 records halfway into the first segment: the cost of hopping batch headers to `from`.
BENCHMARK_CAPTURE(read_log_range, mid_segment_1000, 500'000, 501'000)->Unit(benchmark::kMillisecond)->UseRealTime();

void crc32c_1mib(benchmark::State& state, bool software) {
  std::mt19937 rng(3);
  const std::string buf = random_payload(rng, std::size_t{1} << 20U);
  for (auto _ : state) {
    benchmark::DoNotOptimize(software ? sluice::detail::crc32c_software(buf.data(), buf.size())
                                      : sluice::crc32c(buf.data(), buf.size()));
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(buf.size()));
}
BENCHMARK_CAPTURE(crc32c_1mib, dispatch, false);
BENCHMARK_CAPTURE(crc32c_1mib, software_slicing_by_8, true);

}  // namespace

BENCHMARK_MAIN();
