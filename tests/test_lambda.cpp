// Lambda and Kappa over the event log: the merge invariant as a property test (every answer read
// while events stream in and batch runs publish equals the answer over exactly the events
// accepted so far, minus the speed layer's dropped late events the batch view does not cover
// yet), the caught-up answer equals batch mode over the log, restart recovery, and Kappa
// replay equals batch mode. Threads are checked by invariants, never by timing.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "random_sales.hpp"
#include "sales.hpp"
#include "sluice/io/log_source.hpp"
#include "sluice/io/memory_source.hpp"
#include "sluice/io/stream_format.hpp"
#include "sluice/lambda/ingest.hpp"
#include "sluice/lambda/kappa.hpp"
#include "sluice/lambda/lambda_engine.hpp"
#include "sluice/run/batch.hpp"
#include "temp_dir.hpp"

using namespace std::chrono_literals;
using test_data::owned_sale;

namespace {

namespace fs = std::filesystem;

using test_support::temp_dir;

std::string csv_line(const owned_sale& r) {
  return std::to_string(r.ts) + "," + std::to_string(r.order_id) + "," + std::to_string(r.user_id) + "," + r.region +
         "," + r.category + "," + std::to_string(r.product) + "," + std::to_string(r.qty) + "," +
         sales::format_cents(r.price_cents);
}

std::vector<std::string> csv_lines(const std::vector<owned_sale>& rows) {
  std::vector<std::string> lines;
  for (const auto& r : rows) {
    lines.push_back(csv_line(r));
  }
  return lines;
}

/// Small segments (many epochs) and the given fsync policy.
sluice::lambda_options small_segments(std::uint64_t segment_bytes, const char* fsync) {
  sluice::lambda_options opts;
  opts.log.segment_bytes = segment_bytes;
  opts.log.fsync = sluice::fsync_policy::parse(fsync);
  return opts;
}

sales::sale view_of(const owned_sale& r) {
  return sales::sale{sluice::millis{r.ts}, r.order_id, r.user_id, r.region, r.category, r.product, r.qty, r.price_cents};
}

auto payloads() { return sluice::csv_payloads(sales::csv_schema(), sales::csv_header); }

/// A store's rows as text: key[,window start] -> the value's fields. Order-independent equality.
using answer = std::map<std::string, std::string>;

template <class Store>
answer answer_of(const Store& store) {
  answer out;
  for (const auto& row : store.scan()) {
    std::string key;
    if constexpr (requires { row.key.window; }) {
      key = std::string(row.key.key) + "@" + std::to_string(row.key.window.start.count());
    } else {
      key = std::string(row.key);
    }
    std::string value;
    if constexpr (requires { std::get<1>(row.value); }) {
      value = std::to_string(std::get<0>(row.value)) + "," + std::to_string(std::get<1>(row.value));
    } else {
      value = std::to_string(row.value);
    }
    out[key] = value;
  }
  return out;
}

/// Batch mode over `rows`, skipping the indices in `excluded`: the reference answer.
template <class Flow>
answer reference(const Flow& flow, const std::vector<owned_sale>& rows, std::size_t count,
                 const std::set<std::uint64_t>& excluded = {}) {
  std::vector<sales::sale> events;
  for (std::size_t i = 0; i < count; ++i) {
    if (excluded.count(i) == 0) {
      events.push_back(view_of(rows[i]));
    }
  }
  const auto store = sluice::run_batch(sluice::from_range(events), flow, sluice::batch_options{.threads = 1});
  return answer_of(store);
}

/// The speed layer's semantics written out naively for a windowed flow over one input: a
/// record added while the watermark was W reaches its windows that end after W (allowed
/// lateness 0); below the batch horizon every record reaches every window.
struct window_model {
  std::int64_t size_ms;
  std::int64_t slide_ms;
  std::string (*key)(const owned_sale&);

  [[nodiscard]] std::vector<std::int64_t> starts(std::int64_t t) const {
    std::vector<std::int64_t> out;
    for (std::int64_t s = t - t % slide_ms; s > t - size_ms; s -= slide_ms) {
      out.push_back(s);
    }
    return out;
  }
  /// How many of its windows a record at `t` misses when the watermark is `watermark`.
  [[nodiscard]] std::size_t missed(std::int64_t t, std::int64_t watermark) const {
    const auto all = starts(t);
    return static_cast<std::size_t>(
        std::count_if(all.begin(), all.end(), [&](std::int64_t s) { return s + size_ms <= watermark; }));
  }
  [[nodiscard]] answer expected(const std::vector<owned_sale>& rows, std::size_t count, std::uint64_t horizon,
                                const std::vector<std::int64_t>& watermark_before) const {
    std::map<std::string, std::pair<std::int64_t, std::int64_t>> sums;
    for (std::size_t i = 0; i < count; ++i) {
      for (const std::int64_t s : starts(rows[i].ts)) {
        if (i >= horizon && s + size_ms <= watermark_before[i]) {
          continue;  // the speed layer had fired this window; the batch view does not cover it yet
        }
        auto& [cnt, revenue] = sums[key(rows[i]) + "@" + std::to_string(s)];
        ++cnt;
        revenue += rows[i].qty * rows[i].price_cents;
      }
    }
    answer out;
    for (const auto& [k, v] : sums) {
      out[k] = std::to_string(v.first) + "," + std::to_string(v.second);
    }
    return out;
  }
};

std::vector<sluice::ingest_record> records_of(const std::vector<std::string>& lines, const std::vector<owned_sale>& rows,
                                              std::size_t from, std::size_t to) {
  std::vector<sluice::ingest_record> out;
  for (std::size_t i = from; i < to; ++i) {
    out.push_back(sluice::ingest_record{lines[i], sluice::millis{rows[i].ts}});
  }
  return out;
}

/// Drive one engine: random ingest batches over `inputs` connections, random seals and batch
/// runs from this thread while the batch layer also runs on its own; after every step, the
/// answer read must equal the reference. Returns the late offsets the speed layer reported.
/// How the batch layer builds its next view.
enum class batch_kind {
  recompute,    // from offset 0
  incremental,  // V (+) batch over the new epochs, every one read from the log
  promoting,    // ... and clean epochs published from the speed layer's state
};

template <class Flow>
void check_merge_invariant(const Flow& flow, const window_model* model, std::uint64_t seed, batch_kind kind) {
  const temp_dir dir;
  const auto rows = test_data::random_sales(seed, 1500);
  const std::vector<std::string> lines = csv_lines(rows);
  std::mutex late_mutex;
  std::set<std::uint64_t> late_offsets;
  sluice::lambda_options opts = small_segments(1500 + seed % 3000, "never");  // many epochs
  opts.max_delay = 20s;  // the rows are up to 90 s out of order: some are late for the speed layer
  opts.incremental = kind != batch_kind::recompute;
  opts.promote_clean_epochs = kind == batch_kind::promoting;
  opts.batch_threads = 2;
  std::set<std::uint64_t> partly_late_offsets;
  opts.on_late = [&](const sluice::late_event& e) {
    std::lock_guard lock(late_mutex);
    (e.partly ? partly_late_offsets : late_offsets).insert(e.offset);
  };
  sluice::lambda_engine engine(dir.str(), payloads(), opts, flow);
  engine.start_batch_layer();
  std::mt19937_64 rng(seed);
  const sluice::input_id input = engine.open_input();
  std::size_t accepted = 0;
  std::size_t reads = 0;
  std::vector<std::int64_t> watermark_before(rows.size(), std::numeric_limits<std::int64_t>::min());
  std::int64_t latest = std::numeric_limits<std::int64_t>::min();
  while (accepted < rows.size()) {
    const std::size_t n = std::min(rows.size() - accepted, static_cast<std::size_t>(1 + rng() % 40));
    engine.ingest(input, records_of(lines, rows, accepted, accepted + n));
    // The watermark moves after each ingested batch: the max event time so far minus the delay.
    for (std::size_t i = accepted; i < accepted + n; ++i) {
      watermark_before[i] = latest == std::numeric_limits<std::int64_t>::min() ? latest : latest - 20'000;
    }
    for (std::size_t i = accepted; i < accepted + n; ++i) {
      latest = std::max(latest, rows[i].ts);
    }
    accepted += n;
    switch (rng() % 8) {
      case 0:
        engine.seal();
        break;
      case 1:
        engine.run_batch_layer();
        break;
      default:
        break;
    }
    if (rng() % 3 == 0) {
      const auto snap = engine.snapshot();
      INFO("seed " << seed << ", " << accepted << " accepted, horizon offset " << snap.horizon_offset);
      if (model != nullptr) {
        REQUIRE(answer_of(snap.store) == model->expected(rows, accepted, snap.horizon_offset, watermark_before));
      } else {
        REQUIRE(answer_of(snap.store) == reference(flow, rows, accepted));  // nothing is late without windows
      }
      ++reads;
    }
  }
  CHECK(reads > 10);
  engine.close_input(input);
  engine.stop_batch_layer();
  const auto status = engine.status();
  CHECK(status.ingested == rows.size());
  CHECK(status.late == late_offsets.size());
  // The late output names exactly the records the model calls late or partly late (none
  // without windows).
  std::set<std::uint64_t> modeled_late;
  std::set<std::uint64_t> modeled_partly_late;
  for (std::size_t i = 0; model != nullptr && i < rows.size(); ++i) {
    const std::size_t missed = model->missed(rows[i].ts, watermark_before[i]);
    if (missed == model->starts(rows[i].ts).size()) {
      modeled_late.insert(i);
    } else if (missed > 0) {
      modeled_partly_late.insert(i);
    }
  }
  CHECK(late_offsets == modeled_late);
  CHECK(partly_late_offsets == modeled_partly_late);
  if (model != nullptr) {
    CHECK(late_offsets.size() + partly_late_offsets.size() > 0);  // out of order by more than the max delay
  }

  // Once the batch horizon reaches the head, the answer is batch mode over the whole log.
  engine.seal();
  engine.run_batch_layer();
  const auto caught_up = engine.snapshot();
  CHECK(caught_up.horizon_offset == rows.size());
  CHECK(engine.status().speed_epochs.empty());
  CHECK(engine.status().late_not_covered == 0);
  const answer all = reference(flow, rows, rows.size());
  CHECK(answer_of(caught_up.store) == all);
  if (kind != batch_kind::promoting) {
    CHECK(engine.status().promoted_epochs == 0);
  } else {
    // Every epoch is promoted, those with late and partly late events too: what the speed
    // layer's windows dropped was kept aside for the batch view.
    CHECK(engine.status().promoted_epochs == engine.status().horizon_epoch);
    CHECK((model == nullptr || !late_offsets.empty() || !partly_late_offsets.empty()));
  }
  const auto over_log = sluice::run_batch(sluice::log_source<decltype(payloads())>::whole(dir.str(), payloads()), flow);
  CHECK(answer_of(over_log) == all);
  // Kappa: the stream path replayed over the same log gives the same answer.
  CHECK(answer_of(sluice::replay_to_head(flow, payloads(), dir.str())) == all);
}

auto sliding_revenue() {
  return sluice::flow<sales::sale>() | sluice::event_time(&sales::sale::ts) | sluice::key_by(&sales::sale::category) |
         sluice::window(sluice::sliding(2min, 30s)) | sluice::aggregate(sluice::count{}, sluice::sum(sales::revenue_cents));
}

}  // namespace

TEST_CASE("lambda: every answer counts each accepted event exactly once (plain aggregate)") {
  for (std::uint64_t seed = 1; seed <= 4; ++seed) {
    check_merge_invariant(sales::by_category(), nullptr, seed, static_cast<batch_kind>(seed % 3));
  }
}

TEST_CASE("lambda: every answer counts each accepted event exactly once (tumbling windows, late events)") {
  const window_model minutes{60'000, 60'000, [](const owned_sale& r) { return r.region; }};
  for (std::uint64_t seed = 11; seed <= 14; ++seed) {
    check_merge_invariant(sales::region_minute(), &minutes, seed, static_cast<batch_kind>(seed % 3));
  }
}

TEST_CASE("lambda: every answer counts each accepted event exactly once (sliding windows, partly late events)") {
  const window_model sliding{120'000, 30'000, [](const owned_sale& r) { return r.category; }};
  for (std::uint64_t seed = 21; seed <= 24; ++seed) {
    check_merge_invariant(sliding_revenue(), &sliding, seed, static_cast<batch_kind>(seed % 3));
  }
}

TEST_CASE("lambda: readers on other threads see consistent answers while ingest and batch runs go on") {
  const temp_dir dir;
  const auto rows = test_data::random_sales(99, 3000);
  const std::vector<std::string> lines = csv_lines(rows);
  sluice::lambda_options opts = small_segments(4096, "never");
  const auto flow = sales::by_category();  // no windows: nothing is late, so totals are exact
  sluice::lambda_engine engine(dir.str(), payloads(), opts, flow);
  engine.start_batch_layer();
  std::atomic<std::size_t> accepted{0};
  std::atomic<bool> done{false};
  std::atomic<std::size_t> bad_reads{0};
  std::atomic<std::size_t> reads{0};
  auto reader = [&] {
    do {
      const std::size_t before = accepted.load();
      const auto snap = engine.snapshot();
      const std::size_t after = accepted.load();
      std::int64_t total = 0;
      for (const auto& row : snap.store.scan()) {
        total += std::get<0>(row.value);
      }
      // Acceptance is ingest returning: the answer holds at least what was accepted before the
      // read began and nothing beyond what the log holds when it ended (one batch in flight).
      if (total < static_cast<std::int64_t>(before) || total > static_cast<std::int64_t>(after + 64)) {
        ++bad_reads;
      }
      ++reads;
    } while (!done.load());
  };
  std::thread r1(reader);
  std::thread r2(reader);
  const sluice::input_id input = engine.open_input();
  for (std::size_t i = 0; i < rows.size(); i += 50) {
    const std::size_t to = std::min(rows.size(), i + 50);
    engine.ingest(input, records_of(lines, rows, i, to));
    accepted = to;
  }
  engine.close_input(input);
  engine.seal();
  done = true;
  r1.join();
  r2.join();
  engine.stop_batch_layer();
  CHECK(bad_reads.load() == 0);
  CHECK(reads.load() > 0);
  engine.run_batch_layer();
  CHECK(answer_of(engine.snapshot().store) == reference(flow, rows, rows.size()));
}

TEST_CASE("lambda: threads ingesting at once: each record logged and counted once, in its input's order, and no segment seals before its records reach the speed layer") {
  // Four ingest threads (one input each) under each fsync policy, with segments small enough to
  // seal every few batches, while the batch layer runs on its own and the test runs it too. A
  // segment sealed before one of its batches reached the speed layer would let a batch run
  // retire that epoch first: the late batch would then land in a speed epoch below the horizon.
  for (const char* fsync : {"always", "interval:1", "never"}) {
    INFO("fsync " << fsync);
    const temp_dir dir;
    // A seal of a synced log costs three fsyncs: fewer rows there.
    const auto rows = test_data::random_sales(31, std::string_view(fsync) == "never" ? 12000 : 3000);
    const std::vector<std::string> lines = csv_lines(rows);
    const auto flow = sales::by_category();  // no windows: nothing is late, so totals are exact
    sluice::lambda_engine engine(dir.str(), payloads(), small_segments(2048, fsync), flow);
    engine.start_batch_layer();
    constexpr std::size_t threads = 4;
    std::atomic<std::size_t> done{0};
    std::atomic<std::size_t> bad_epochs{0};
    std::thread checker([&] {
      while (done.load() < threads) {
        engine.run_batch_layer();
        const auto status = engine.status();
        for (const std::uint64_t e : status.speed_epochs) {
          bad_epochs += e < status.horizon_epoch ? 1 : 0;
        }
      }
    });
    std::vector<std::thread> ingesters;
    for (std::size_t t = 0; t < threads; ++t) {
      ingesters.emplace_back([&, t] {
        const sluice::input_id input = engine.open_input();
        for (std::size_t i = t * rows.size() / threads; i < (t + 1) * rows.size() / threads; i += 7) {
          engine.ingest(input, records_of(lines, rows, i, std::min((t + 1) * rows.size() / threads, i + 7)));
        }
        engine.close_input(input);
        ++done;
      });
    }
    for (auto& t : ingesters) {
      t.join();
    }
    checker.join();
    engine.stop_batch_layer();
    CHECK(bad_epochs.load() == 0);
    CHECK(engine.status().ingested == rows.size());
    CHECK(engine.status().sealed_epochs > 10);
    engine.seal();
    engine.run_batch_layer();
    CHECK(engine.status().speed_epochs.empty());
    CHECK(answer_of(engine.snapshot().store) == reference(flow, rows, rows.size()));

    // The log holds each record once, each input's records in the order it sent them.
    std::map<std::string, std::size_t> index;
    for (std::size_t i = 0; i < lines.size(); ++i) {
      index[lines[i]] = i;
    }
    std::vector<std::size_t> last(threads, 0);
    std::vector<bool> seen(rows.size(), false);
    std::size_t out_of_order = 0;
    std::size_t doubled = 0;
    const auto segments = sluice::list_segments(dir.str());
    sluice::read_log(segments, 0, segments.back().end_offset, [&](const sluice::log_record& r) {
      const std::size_t i = index.at(std::string(r.payload));
      const std::size_t t = i * threads / rows.size();
      out_of_order += i < last[t] ? 1 : 0;
      doubled += seen[i] ? 1 : 0;
      last[t] = i;
      seen[i] = true;
    });
    CHECK(out_of_order == 0);
    CHECK(doubled == 0);
    CHECK(std::count(seen.begin(), seen.end(), true) == static_cast<std::ptrdiff_t>(rows.size()));
  }
}

TEST_CASE("lambda: a restart rebuilds the view from the log; nothing that reached the log is lost or doubled") {
  const temp_dir dir;
  const auto rows = test_data::random_sales(7, 800);
  const std::vector<std::string> lines = csv_lines(rows);
  const auto flow = sales::region_minute();
  sluice::lambda_options opts = small_segments(2048, "always");  // 500 rows: more segments than a rebuild run takes
  {
    sluice::lambda_engine engine(dir.str(), payloads(), opts, flow);
    const sluice::input_id input = engine.open_input();
    for (std::size_t i = 0; i < 500; i += 5) {
      engine.ingest(input, records_of(lines, rows, i, i + 5));  // the last segment stays unsealed
    }
  }
  {
    sluice::lambda_engine engine(dir.str(), payloads(), opts, flow);
    CHECK(engine.status().sealed_epochs > 8);
    CHECK(engine.status().batch_runs >= 2);        // rebuilt 8 segments a run...
    CHECK(engine.status().horizon_offset == 500);  // ... all of them before it takes input or answers
    CHECK(answer_of(engine.snapshot().store) == reference(flow, rows, 500));
    const sluice::input_id input = engine.open_input();
    engine.ingest(input, records_of(lines, rows, 500, rows.size()));
    CHECK(answer_of(engine.snapshot().store).size() > 0);
  }
  // A torn tail (a crash mid-write) is cut on open and reported; every whole record counts.
  std::string last;
  for (const auto& e : fs::directory_iterator(dir.path)) {
    if (e.path().extension() == ".seg" && e.path().string() > last) {
      last = e.path().string();
    }
  }
  REQUIRE(!last.empty());
  {
    std::ofstream torn(last, std::ios::app | std::ios::binary);
    torn << std::string("\x30\x00\x00\x00\x11\x22", 6);  // the start of a record header
  }
  sluice::lambda_engine engine(dir.str(), payloads(), opts, flow);
  REQUIRE(engine.status().recovery.has_value());
  CHECK(engine.status().recovery->cut_bytes == 6);
  CHECK(answer_of(engine.snapshot().store) == reference(flow, rows, rows.size()));
}

TEST_CASE("lambda: --retain stops serving windows that ended before watermark - retain and drops them from the batch view; the rest stay exact") {
  const temp_dir dir;
  const auto rows = test_data::random_sales(21, 3000);
  const std::vector<std::string> lines = csv_lines(rows);
  const auto flow = sales::region_minute();
  sluice::lambda_options opts = small_segments(16384, "never");
  opts.retain = 2min;
  sluice::lambda_engine engine(dir.str(), payloads(), opts, flow);
  const sluice::input_id input = engine.open_input();  // left open: the watermark is the latest event time
  for (std::size_t i = 0; i < rows.size(); i += 100) {
    engine.ingest(input, records_of(lines, rows, i, std::min(rows.size(), i + 100)));
    if (i == 1500) {
      engine.seal();
      engine.run_batch_layer();  // half of it published, the rest in the speed layer
    }
  }
  // Before the batch layer covers everything, the speed layer (which drops late rows) fills in:
  // no window that ended at or before the horizon is served.
  const auto first = engine.status();
  REQUIRE(first.watermark != sluice::millis::min().count());
  CHECK(first.retention_horizon == first.watermark - 120'000);
  CHECK(first.speed_entries > 0);  // half of the rows are in the speed layer
  CHECK(first.speed_table_bytes >= first.speed_entries);
  const auto window_end = [](const std::string& key) { return std::stoll(key.substr(key.find('@') + 1)) + 60'000; };
  for (const auto& [key, value] : answer_of(engine.snapshot().store)) {
    CHECK(window_end(key) > first.retention_horizon);
  }
  // Once it does, the windows kept are exactly batch mode's.
  engine.seal();
  engine.run_batch_layer();
  const auto status = engine.status();
  answer all = reference(flow, rows, rows.size());
  answer expected;
  for (const auto& [key, value] : all) {
    if (window_end(key) > status.retention_horizon) {
      expected[key] = value;
    }
  }
  CHECK(expected.size() < all.size());  // something was dropped
  CHECK(answer_of(engine.snapshot().store) == expected);
  const std::size_t kept = expected.size();
  CHECK(engine.status().batch_entries == kept);  // and gone from the batch view once it publishes
  CHECK(engine.status().batch_table_bytes >= kept);
  CHECK(engine.status().speed_entries == 0);  // every epoch covered: the speed layer holds nothing
}

TEST_CASE("kappa: a replay serves once it reaches the head, keeps tailing, and a new replay swaps in when caught up") {
  const temp_dir dir;
  const auto rows = test_data::random_sales(5, 1200);
  const std::vector<std::string> lines = csv_lines(rows);
  const auto flow = sales::by_category();
  sluice::lambda_options opts = small_segments(4096, "never");
  sluice::lambda_engine writer(dir.str(), payloads(), opts, flow);
  const sluice::input_id input = writer.open_input();
  writer.ingest(input, records_of(lines, rows, 0, 600));

  sluice::kappa_view view(flow, payloads(), dir.str(), sluice::kappa_options{.poll_every = 1ms});
  CHECK_FALSE(view.snapshot().has_value());  // nothing caught up yet
  view.replay();
  auto wait_for = [&](auto done) {
    const auto deadline = std::chrono::steady_clock::now() + 60s;  // a hang guard, not a timing assertion
    while (!done()) {
      REQUIRE(std::chrono::steady_clock::now() < deadline);
      std::this_thread::yield();
    }
  };
  wait_for([&] { return view.status().serving_generation == 1 && view.status().serving_position >= 600; });
  CHECK(answer_of(*view.snapshot()) == reference(flow, rows, 600));

  // It keeps tailing: new records reach the serving store.
  writer.ingest(input, records_of(lines, rows, 600, 900));
  wait_for([&] { return view.status().serving_position >= 900; });
  CHECK(answer_of(*view.snapshot()) == reference(flow, rows, 900));

  // A second replay (a new version of the flow, say) from offset 300: generation 1 serves until it caught up.
  view.replay(300);
  writer.ingest(input, records_of(lines, rows, 900, rows.size()));
  wait_for([&] { return view.status().serving_generation == 2 && view.status().serving_position >= rows.size(); });
  std::set<std::uint64_t> first_300;
  for (std::uint64_t i = 0; i < 300; ++i) {
    first_300.insert(i);
  }
  CHECK(answer_of(*view.snapshot()) == reference(flow, rows, rows.size(), first_300));
}

TEST_CASE("lambda: a log that goes quiet seals its active segment by age (1 minute by default) and catches up") {
  const temp_dir dir;
  const auto rows = test_data::random_sales(7, 200);
  const std::vector<std::string> lines = csv_lines(rows);
  sluice::lambda_options opts;  // the defaults: no segment size is reached by 200 rows
  CHECK(opts.log.segment_age == std::chrono::minutes(1));
  sluice::lambda_engine engine(dir.str(), payloads(), opts, sales::by_category());  // a temporary flow: copied
  const auto start = std::chrono::steady_clock::now();
  engine.ingest(engine.open_input(), records_of(lines, rows, 0, rows.size()));
  engine.tick(start + 30s);  // not yet a minute since the first append
  engine.run_batch_layer();
  CHECK(engine.status().horizon_offset == 0);
  engine.tick(start + 61s);  // no more input, but the segment is a minute old: sealed
  engine.run_batch_layer();
  CHECK(engine.status().horizon_offset == rows.size());
  CHECK(engine.status().speed_epochs.empty());
  CHECK(answer_of(engine.snapshot().store) == reference(sales::by_category(), rows, rows.size()));
}

namespace {

struct region_total {
  std::string region;
  std::int64_t ts = 0;
  std::int64_t total = 0;
  auto operator<=>(const region_total&) const = default;
};
struct owned_qty {
  sluice::millis ts;
  std::string region;
  std::int64_t qty = 0;
};

// A process function: per region, a row each time its running quantity passes a multiple of 100.
auto region_milestones() {
  return sluice::flow<sales::sale>() |
         sluice::map([](const sales::sale& s) { return owned_qty{s.ts, std::string(s.region), s.qty}; }) |
         sluice::event_time(&owned_qty::ts) | sluice::key_by(&owned_qty::region) |
         sluice::process<region_total, std::int64_t>([](auto& ctx, const owned_qty& q) {
           auto& total = ctx.state();
           if ((total + q.qty) / 100 > total / 100) {
             ctx.emit(region_total{ctx.key(), q.ts.count(), total + q.qty});
           }
           total += q.qty;
         });
}

// A chained aggregate: orders per category per minute, then the busiest category's count per minute.
auto busiest_category_per_minute() {
  return sluice::flow<sales::sale>() | sluice::event_time(&sales::sale::ts) | sluice::key_by(&sales::sale::category) |
         sluice::window(sluice::tumbling(1min)) | sluice::aggregate(sluice::count{}) |
         sluice::window(sluice::tumbling(1min)) |
         sluice::aggregate(sluice::max([](const auto& row) { return row.value; }), sluice::count{});
}

template <class Store>
std::map<std::int64_t, std::pair<std::int64_t, std::int64_t>> per_minute(const Store& store) {
  std::map<std::int64_t, std::pair<std::int64_t, std::int64_t>> out;
  for (const auto& row : store.scan()) {
    out[row.key.window.start.count()] = {*std::get<0>(row.value), std::get<1>(row.value)};
  }
  return out;
}

}  // namespace

TEST_CASE("kappa: a replay runs process functions and chained aggregates too, and equals batch mode over the log") {
  const temp_dir dir;
  const auto rows = test_data::random_sales(8, 3000);
  const std::vector<std::string> lines = csv_lines(rows);
  {
    sluice::lambda_engine writer(dir.str(), payloads(), small_segments(8192, "never"), sales::by_category());
    writer.ingest(writer.open_input(), records_of(lines, rows, 0, rows.size()));
    writer.seal();
  }
  const auto log = sluice::log_source<decltype(payloads())>::whole(dir.str(), payloads());

  auto batch_rows = sluice::run_batch(log, region_milestones());
  auto replayed_rows = sluice::replay_to_head(region_milestones(), payloads(), dir.str());
  REQUIRE(batch_rows.size() > 20);
  std::sort(batch_rows.begin(), batch_rows.end());
  std::sort(replayed_rows.begin(), replayed_rows.end());
  CHECK(replayed_rows == batch_rows);

  const auto batch_minutes = per_minute(sluice::run_batch(log, busiest_category_per_minute()));
  REQUIRE(batch_minutes.size() > 5);
  CHECK(per_minute(sluice::replay_to_head(busiest_category_per_minute(), payloads(), dir.str())) == batch_minutes);

  // A live view of the process function: once caught up it serves the rows emitted so far, which
  // are batch mode's up to the watermark.
  const auto flow = region_milestones();
  sluice::kappa_view view(flow, payloads(), dir.str(), sluice::kappa_options{.poll_every = 1ms});
  view.replay();
  const auto deadline = std::chrono::steady_clock::now() + 60s;  // a hang guard, not a timing assertion
  while (view.status().serving_position < rows.size()) {
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    std::this_thread::yield();
  }
  auto served = *view.snapshot();
  std::sort(served.begin(), served.end());
  CHECK(!served.empty());
  CHECK(std::includes(batch_rows.begin(), batch_rows.end(), served.begin(), served.end()));
}

namespace {

/// A byte source over fixed texts, one input each, pushed in pieces of `piece` bytes (records
/// cut anywhere), as a socket delivers them.
struct pieces_source {
  sluice::csv_lines<decltype(sales::csv_schema())> lines{sales::csv_schema(), sales::csv_header};
  std::vector<std::string> texts;
  std::size_t piece = 1;
  [[nodiscard]] const auto& format() const { return lines; }
  [[nodiscard]] static bool needs_final_newline() { return true; }
  void run(sluice::byte_feed& feed, std::stop_token /*stop*/) {
    for (std::size_t i = 0; i < texts.size(); ++i) {
      const auto input = feed.open_input("text " + std::to_string(i));
      for (std::size_t at = 0; at < texts[i].size();) {
        feed.push(input, texts[i].substr(at, piece));
        at += piece;
        piece = piece % 211 + 1;
      }
      feed.close_input(input);
    }
  }
};

}  // namespace

TEST_CASE("run_ingest: the speed layer's answer (values parsed at the edge, or decoded) equals batch mode") {
  auto rows = test_data::random_sales(31, 4000);
  std::vector<std::string> lines;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    if (i % 7 == 3) {
      rows[i].category = "say \"" + rows[i].category + "\"";  // quoted, with "" escapes: decoded again
    }
    std::string line = csv_line(rows[i]);
    if (i % 7 == 3) {
      const std::string escaped = "\"say \"\"" + rows[i].category.substr(5, rows[i].category.size() - 6) + "\"\"\"";
      line.replace(line.find(rows[i].category), rows[i].category.size(), escaped);
    }
    lines.push_back(line);
  }
  pieces_source source;
  std::vector<std::string> bad;
  source.lines = sluice::csv_lines(sales::csv_schema(), sales::csv_header,
                                   sluice::input_options{.dead_letters = [&bad](const sluice::bad_record& b) {
                                     bad.push_back(std::string(b.reason) + ": " + std::string(b.text));
                                   }});
  source.texts.resize(3);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    source.texts[i % 3] += lines[i] + "\n";
  }
  const temp_dir dir;
  sluice::lambda_options opts = small_segments(std::uint64_t{1} << 30, "never");  // one epoch: no batch run
  opts.max_delay = std::chrono::hours(24);  // nothing late: the speed layer holds every row
  const auto flow = sales::by_category();
  sluice::lambda_engine engine(dir.str(), payloads(), opts, flow);
  sluice::run_ingest(source, engine, [](const sales::sale& s) { return s.ts; }, {}, 4, 2);
  const auto snap = engine.snapshot();
  CHECK(snap.horizon_offset == 0);  // the answer is the speed layer's alone
  CHECK(bad.empty());
  for (std::size_t i = 0; i < std::min<std::size_t>(bad.size(), 3); ++i) {
    MESSAGE(bad[i]);
  }
  CHECK(engine.status().bad_records == 0);
  CHECK(engine.status().ingested == rows.size());
  CHECK(answer_of(snap.store) == reference(flow, rows, rows.size()));
}
