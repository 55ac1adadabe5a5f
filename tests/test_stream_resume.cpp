// Checkpoints of stream mode over the replayable sources that are not Kafka (DESIGN §10): a
// tailed file and the event log. A run stopped, or killed at any instant (a copy of its
// checkpoint directory taken mid-run is what a kill would have left), resumes exactly: the
// answer equals batch mode's, and the restart reads only what the checkpoint does not cover.
// A checkpoint that cannot be resumed (the file replaced or cut short while stopped, a log
// shorter than the checkpoint) is refused before anything is restored.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <utility>

#include "checkpoint_files.hpp"
#include "random_sales.hpp"
#include "sales.hpp"
#include "sluice/io/log_follow.hpp"
#include "sluice/io/memory_source.hpp"
#include "sluice/io/reader_source.hpp"
#include "sluice/io/stream_format.hpp"
#include "sluice/run/batch.hpp"
#include "sluice/run/stream.hpp"
#include "sluice/store/event_log.hpp"
#include "sluice/store/result_store.hpp"
#include "temp_dir.hpp"

namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

const std::string flow_name = "by-category";

auto sales_lines() { return sluice::csv_lines(sales::csv_schema(), sales::csv_header); }

test_data::category_ref batch_answer(const std::vector<test_data::owned_sale>& rows) {
  const auto events = test_data::as_events(rows);
  return test_data::to_map(
      sluice::run_batch(sluice::from_range(events), sales::by_category(), sluice::batch_options{.threads = 1}));
}

using partial_type = decltype(sales::by_category().make_partial());

/// Input `input`'s checkpoint in `dir`, if it has one.
std::optional<sluice::stream_checkpoints::saved_input> saved_in(const std::string& dir, const std::string& input) {
  sluice::stream_checkpoints cp(dir, 1s, flow_name);
  return cp.load(input, sluice::flow_fingerprint<partial_type>(flow_name));
}

/// Input `input`'s checkpoint in `dir`: the position it covers and the answer its state holds
/// (restored into a fresh partial and fired whole, as the end of input would).
std::pair<std::int64_t, test_data::category_ref> checkpoint_of(const std::string& dir, const std::string& input) {
  const auto saved = saved_in(dir, input);
  REQUIRE(saved.has_value());
  partial_type partial = sales::by_category().make_partial();
  sluice::byte_reader r(saved->state);
  partial.load(r);
  return {saved->position, test_data::to_map(sluice::result_store(partial.advance(sluice::millis::max())))};
}

struct run_result {
  std::uint64_t events = 0;  // records that entered the flow in this run
  std::uint64_t bytes = 0;   // bytes the source read
  std::uint64_t restored = 0;
  test_data::category_ref fired;  // what the sink got (a closed input fires; a handed-off one does not)
};

/// Runs `source` with checkpoints in `dir` (saved every `every`) until `stop_when(metrics)`.
template <class Source>
run_result run_checkpointed(Source& source, const std::string& dir,
                            const std::function<bool(const sluice::stream_metrics&)>& stop_when,
                            std::chrono::milliseconds every = 2ms) {
  sluice::stream_checkpoints cp(dir, every, flow_name);
  sluice::stream_metrics metrics;
  std::stop_source stop;
  std::jthread watcher([&](const std::stop_token& over) {
    while (!over.stop_requested() && !stop.stop_requested()) {
      if (stop_when(metrics)) {
        stop.request_stop();
      }
      std::this_thread::sleep_for(1ms);
    }
  });
  run_result out;
  sluice::stream_options opts{.threads = 2};
  opts.metrics = &metrics;
  opts.checkpoints = &cp;
  sluice::run_stream(
      source, sales::by_category(), [&](const auto& store) { out.fired = test_data::to_map(store); }, opts,
      stop.get_token());
  watcher.request_stop();
  watcher.join();
  out.events = metrics.events.load();
  out.bytes = metrics.bytes.load();
  out.restored = cp.restored.load();
  return out;
}

/// The data lines of `csv` (after its header) that start before byte `end`.
std::uint64_t lines_before(const std::string& csv, std::int64_t end) {
  const std::string_view covered(csv.data(), static_cast<std::size_t>(end));
  const auto newlines = static_cast<std::uint64_t>(std::count(covered.begin(), covered.end(), '\n'));
  return newlines == 0 ? 0 : newlines - 1;  // the header's
}

/// Copies the checkpoints of `live` to `killed` once `input`'s covers a record: what a kill at
/// that instant would have left. Returns whether it has.
bool copy_once_covered(const std::string& live, const std::string& killed, const std::string& input) {
  if (test_support::checkpoint_position(live, input).value_or(0) <= 0) {
    return false;
  }
  test_support::copy_checkpoints(live, killed);
  return test_support::checkpoint_position(killed, input).value_or(0) > 0;  // saved again since: covers as much
}

/// A point in a file that a writer passes only once `open` is set.
struct gate {
  std::size_t at;
  const std::atomic<bool>& open;
};

/// Writes `bytes` to `path` in pieces of random sizes (cutting lines anywhere), flushing each,
/// waiting at each of `gates`.
void append_in_pieces(const std::string& path, std::string_view bytes, std::uint64_t seed,
                      std::initializer_list<gate> gates) {
  std::mt19937_64 rng(seed);
  std::ofstream out(path, std::ios::binary | std::ios::app);
  std::size_t written = 0;
  while (written < bytes.size()) {
    for (const gate& g : gates) {
      while (written >= g.at && !g.open.load()) {
        std::this_thread::sleep_for(100us);
      }
    }
    const std::size_t n = std::min<std::size_t>(bytes.size() - written, 1 + rng() % 3000);
    out.write(bytes.data() + written, static_cast<std::streamsize>(n));
    out.flush();
    written += n;
  }
}

}  // namespace

TEST_CASE("tail_source with checkpoints: stopped, or killed at any instant, a restart is exact and rereads nothing covered") {
  const test_support::temp_dir dir;
  const auto rows = test_data::random_sales(21, 6000);
  const std::string csv = test_data::to_csv(rows, true, 21);  // quoted fields and CRLF lines too
  const auto expected = batch_answer(rows);
  const std::string path = dir / "sales.csv";
  const std::string name = path;  // the input's name, which names its checkpoint

  // Run 1 follows the file while it is written in pieces, and is stopped (as on SIGTERM) past
  // half the rows; a copy of its checkpoints once one covers a record (the writer waits for it
  // past a quarter of the file) is what a kill then would have left. The last quarter is
  // written once run 1 is over.
  std::atomic<bool> copied = false;
  std::atomic<bool> stopped = false;
  std::jthread writer(
      [&] { append_in_pieces(path, csv, 1, {{csv.size() / 4, copied}, {csv.size() * 3 / 4, stopped}}); });
  auto tail = sluice::tail_source(sales_lines(), path, sluice::tail_options{.poll = 1ms});
  const run_result first = run_checkpointed(tail, dir / "live", [&](const sluice::stream_metrics& m) {
    if (!copied) {
      copied = copy_once_covered(dir / "live", dir / "killed", name);
    }
    return m.events.load() >= rows.size() / 2;
  });
  stopped = true;
  writer.join();
  REQUIRE(copied);
  CHECK(first.fired.empty());  // stopped, not ended: the state waits in the checkpoint, unfired
  const auto [stopped_at, stopped_answer] = checkpoint_of(dir / "live", name);
  CHECK(lines_before(csv, stopped_at) == first.events);  // the final checkpoint covers every record read
  CHECK(stopped_answer != expected);

  const auto resume = [&](const std::string& from, std::uint64_t seed) {
    const std::int64_t at = checkpoint_of(from, name).first;
    CAPTURE(at);
    auto again = sluice::tail_source(sales_lines(), path, sluice::tail_options{.poll = 1ms});
    const auto size = static_cast<std::uint64_t>(csv.size() - static_cast<std::size_t>(at));
    const run_result r = run_checkpointed(again, from, [&](const sluice::stream_metrics& m) {
      return m.bytes.load() >= size;  // read to the file's end (the hand-off then follows every chunk)
    });
    CHECK(r.restored == 1);
    CHECK(r.bytes == size);  // nothing the checkpoint covers is read again
    CHECK(r.events == rows.size() - lines_before(csv, at));
    const auto [end, whole] = checkpoint_of(from, name);
    CHECK(end == static_cast<std::int64_t>(csv.size()));
    CHECK_MESSAGE(whole == expected, "resumed from byte " << at << " (seed " << seed << ")");
  };
  SUBCASE("from what a kill at a quarter would have left") { resume(dir / "killed", 2); }
  SUBCASE("after the graceful stop") { resume(dir / "live", 3); }
}

TEST_CASE("tail_source with checkpoints: a rotation mid-run keeps the state; a file replaced or cut while stopped is refused") {
  const test_support::temp_dir dir;
  const auto rows = test_data::random_sales(22, 4000);
  const std::vector<test_data::owned_sale> old_rows(rows.begin(), rows.begin() + 2500);
  const std::vector<test_data::owned_sale> new_rows(rows.begin() + 2500, rows.end());
  std::string old_csv = test_data::to_csv(old_rows);
  old_csv.pop_back();  // the old file's last line is left without its newline: the rotation ends it
  const std::string new_csv = test_data::to_csv(new_rows);
  const auto expected = batch_answer(rows);
  const std::string path = dir / "sales.csv";

  {
    std::ofstream(path, std::ios::binary) << old_csv;
  }
  auto tail = sluice::tail_source(sales_lines(), path, sluice::tail_options{.poll = 1ms});
  bool rotated = false;
  const std::uint64_t total_bytes = old_csv.size() + new_csv.size();
  const run_result r = run_checkpointed(tail, dir / "ckpt", [&](const sluice::stream_metrics& m) {
    if (!rotated && m.bytes.load() == old_csv.size()) {  // the old file is read whole: rotate it away
      fs::rename(path, path + ".1");
      std::ofstream(path, std::ios::binary) << new_csv;
      rotated = true;
    }
    return m.bytes.load() >= total_bytes;
  });
  CHECK(r.events == rows.size());
  const auto [at, answer] = checkpoint_of(dir / "ckpt", path);
  CHECK(at == static_cast<std::int64_t>(new_csv.size()));  // a position in the new file ...
  CHECK(answer == expected);                                // ... with both files' records

  SUBCASE("rotated while stopped: the old file's rest, found by its inode, then the new file") {
    const auto more = test_data::random_sales(25, 300);  // appended after the stop, then rotated away
    const auto newest = test_data::random_sales(26, 300);
    const std::string more_csv = test_data::to_csv(more);
    const std::string more_lines = more_csv.substr(more_csv.find('\n') + 1);
    const std::string newest_csv = test_data::to_csv(newest);
    std::ofstream(path, std::ios::binary | std::ios::app) << more_lines;
    fs::rename(path, path + ".2");
    std::ofstream(path, std::ios::binary) << newest_csv;
    std::vector<test_data::owned_sale> all = rows;
    all.insert(all.end(), more.begin(), more.end());
    all.insert(all.end(), newest.begin(), newest.end());
    auto again = sluice::tail_source(sales_lines(), path, sluice::tail_options{.poll = 1ms});
    const std::uint64_t rest = more_lines.size() + newest_csv.size();
    const run_result r2 = run_checkpointed(again, dir / "ckpt", [&](const auto& m) { return m.bytes.load() >= rest; });
    CHECK(r2.restored == 1);
    CHECK(r2.bytes == rest);
    CHECK(r2.events == more.size() + newest.size());
    const auto [end, answer2] = checkpoint_of(dir / "ckpt", path);
    CHECK(end == static_cast<std::int64_t>(newest_csv.size()));
    CHECK(answer2 == batch_answer(all));
  }
  SUBCASE("replaced while stopped (the old file deleted): refused, the checkpoint kept") {
    const fs::path ckpt_file = fs::path(dir / "ckpt") / (sluice::checkpoint_file_name(path) + ".ckpt");
    REQUIRE(fs::exists(ckpt_file));
    const std::string before = [&] {
      std::ifstream in(ckpt_file, std::ios::binary);
      return std::string(std::istreambuf_iterator<char>(in), {});
    }();
    // Held open while the new file is made, so that the new one cannot get its inode number: a
    // file system may hand a freed one out again, and a file is known by its inode (see the guide).
    const std::ifstream held(path, std::ios::binary);
    fs::remove(path);
    std::ofstream(path, std::ios::binary) << new_csv << new_csv;  // another file, longer than the position
    auto again = sluice::tail_source(sales_lines(), path, sluice::tail_options{.poll = 1ms});
    CHECK_THROWS_WITH_AS(run_checkpointed(again, dir / "ckpt", [](const auto&) { return false; }),
                         doctest::Contains("saved reading another file than the one the input reads now, and that one is gone"),
                         sluice::checkpoint_error);
    std::ifstream in(ckpt_file, std::ios::binary);
    CHECK(std::string(std::istreambuf_iterator<char>(in), {}) == before);
  }
  SUBCASE("cut short while stopped: refused") {
    fs::resize_file(path, new_csv.size() / 2);
    auto again = sluice::tail_source(sales_lines(), path, sluice::tail_options{.poll = 1ms});
    CHECK_THROWS_WITH_AS(run_checkpointed(again, dir / "ckpt", [](const auto&) { return false; }),
                         doctest::Contains("past the input's end"), sluice::checkpoint_error);
  }
  SUBCASE("appended to while stopped: the rest is read, exactly") {
    const auto more = test_data::random_sales(23, 500);
    const std::string more_csv = test_data::to_csv(more);
    std::ofstream(path, std::ios::binary | std::ios::app) << more_csv.substr(more_csv.find('\n') + 1);
    std::vector<test_data::owned_sale> all = rows;
    all.insert(all.end(), more.begin(), more.end());
    auto again = sluice::tail_source(sales_lines(), path, sluice::tail_options{.poll = 1ms});
    const std::uint64_t rest = more_csv.size() - (more_csv.find('\n') + 1);
    const run_result r2 = run_checkpointed(again, dir / "ckpt", [&](const auto& m) { return m.bytes.load() >= rest; });
    CHECK(r2.events == more.size());
    CHECK(checkpoint_of(dir / "ckpt", path).second == batch_answer(all));
  }
}

TEST_CASE("tail_source with checkpoints: a rotation is checkpointed at once, in the new file, with the old file's records") {
  const test_support::temp_dir dir;
  const auto rows = test_data::random_sales(28, 2000);
  const std::string old_csv = test_data::to_csv(rows);
  const std::string path = dir / "sales.csv";
  {
    std::ofstream(path, std::ios::binary) << old_csv;
  }
  // No periodic checkpoint (every hour): one that appears while the run goes on is the rotation's.
  auto tail = sluice::tail_source(sales_lines(), path, sluice::tail_options{.poll = 1ms});
  bool rotated = false;
  std::optional<std::int64_t> at_rotation;
  test_data::category_ref held_at_rotation;
  run_checkpointed(
      tail, dir / "ckpt",
      [&](const sluice::stream_metrics& m) {
        if (!rotated && m.bytes.load() == old_csv.size()) {
          fs::rename(path, path + ".1");
          std::ofstream(path, std::ios::binary) << test_data::to_csv(test_data::random_sales(29, 100));
          rotated = true;
        }
        if (!rotated || m.events.load() < rows.size() + 100) {
          return false;
        }
        // The new file's records went through, so the worker is past the rotation; the stop's
        // checkpoint is not taken yet.
        at_rotation = test_support::checkpoint_position(dir / "ckpt", path);
        if (at_rotation) {
          held_at_rotation = checkpoint_of(dir / "ckpt", path).second;
        }
        return true;
      },
      std::chrono::hours(1));
  CHECK(at_rotation == 0);                        // position 0 of the new file ...
  CHECK(held_at_rotation == batch_answer(rows));  // ... with every record of the old one
}

TEST_CASE("follow_log with checkpoints: stopped, or killed at any instant, a restart is exact; a bounded replay fires") {
  const test_support::temp_dir dir;
  const auto rows = test_data::random_sales(24, 5000);
  const auto expected = batch_answer(rows);
  const std::string csv = test_data::to_csv(rows);
  std::vector<std::string> payloads;  // CSV lines without their newline, as ingest keeps them
  for (std::size_t at = csv.find('\n') + 1; at < csv.size();) {
    const std::size_t nl = csv.find('\n', at);
    payloads.push_back(csv.substr(at, nl - at));
    at = nl + 1;
  }
  const std::string log_dir = dir / "log";
  const auto write_log = [&](std::size_t from, std::size_t to) {
    sluice::event_log log(log_dir, sluice::log_options{.segment_bytes = 64 << 10});
    for (std::size_t i = from; i < to; ++i) {
      log.append(sluice::millis{rows[i].ts}, payloads[i]);
      if (i % 97 == 0) {
        log.commit();
        log.seal_if_due();
      }
    }
    log.commit();
  };
  write_log(0, rows.size() / 2);  // the rest is appended while run 1 follows the log

  // Run 1 is stopped past 7/8 of the rows; a copy of its checkpoints once one covers a record
  // (the second half is appended only then) is what a kill then would have left.
  const std::string name = "log " + log_dir;
  auto source = sluice::follow_log(sales_lines(), log_dir, {.poll = 1ms, .chunk_bytes = 4096});
  bool copied = false;
  const run_result first = run_checkpointed(source, dir / "live", [&](const sluice::stream_metrics& m) {
    if (!copied && copy_once_covered(dir / "live", dir / "killed", name)) {
      copied = true;
      write_log(rows.size() / 2, rows.size());
    }
    return m.events.load() >= rows.size() * 7 / 8;
  });
  REQUIRE(copied);
  CHECK(first.fired.empty());
  CHECK(checkpoint_of(dir / "live", name).first == static_cast<std::int64_t>(first.events));

  const auto resume = [&](const std::string& from) {
    const std::int64_t at = checkpoint_of(from, name).first;
    CAPTURE(at);
    auto again = sluice::follow_log(sales_lines(), log_dir, {.poll = 1ms, .stop_at_head = true, .chunk_bytes = 4096});
    const run_result r = run_checkpointed(again, from, [](const auto&) { return false; });  // ends at the head
    CHECK(r.restored == 1);
    CHECK(r.events == rows.size() - static_cast<std::size_t>(at));  // only what the checkpoint does not cover
    CHECK(r.fired == expected);  // a bounded replay closes its input: everything fires
    CHECK(again.position() == rows.size());
  };
  SUBCASE("from what a kill at a quarter would have left") { resume(dir / "killed"); }
  SUBCASE("after the graceful stop") { resume(dir / "live"); }
  SUBCASE("a checkpoint past the log's head is refused") {
    fs::remove_all(log_dir);
    write_log(0, 10);
    auto again = sluice::follow_log(sales_lines(), log_dir, {.poll = 1ms});
    CHECK_THROWS_WITH_AS(run_checkpointed(again, dir / "live", [](const auto&) { return false; }),
                         doctest::Contains("past the input's end (10)"), sluice::checkpoint_error);
  }
}

namespace {

/// One positioned input ("p0"): pushes `rows` a record a chunk, each with the record count after
/// it as its position, hands the input off, then reads back at once what its checkpoint covers.
template <class Format>
struct handing_off_source {
  Format lines;
  std::vector<std::string> rows;
  sluice::stream_checkpoints* checkpoints;
  std::int64_t covered_after_hand_off = -2;

  [[nodiscard]] const Format& format() const { return lines; }
  [[nodiscard]] static constexpr bool needs_final_newline() { return true; }
  void run(sluice::byte_feed& feed, const std::stop_token& /*stop*/) {
    const auto input = feed.open_input("p0");
    for (std::size_t i = 0; i < rows.size(); ++i) {
      feed.push_at(input, rows[i] + "\n", {.next = static_cast<std::int64_t>(i + 1)});
    }
    feed.hand_off_input(input);
    const auto saved = checkpoints->load("p0", sluice::flow_fingerprint<partial_type>(flow_name));
    covered_after_hand_off = saved ? saved->position : -1;
  }
};

}  // namespace

TEST_CASE("hand_off_input returns once the input's last checkpoint is saved: the next owner restores everything") {
  const test_support::temp_dir dir;
  const auto rows = test_data::random_sales(27, 3000);
  const std::string csv = test_data::to_csv(rows);
  std::vector<std::string> lines;
  for (std::size_t at = csv.find('\n') + 1; at < csv.size();) {
    const std::size_t nl = csv.find('\n', at);
    lines.push_back(csv.substr(at, nl - at));
    at = nl + 1;
  }
  // No periodic checkpoint: the hand-off's is the only one, and it is there when the call returns.
  sluice::stream_checkpoints cp(dir / "ckpt", std::chrono::hours(1), flow_name);
  handing_off_source<decltype(sales_lines())> source{sales_lines(), lines, &cp};
  sluice::stream_options opts{.threads = 2, .queue_chunks = 64};
  opts.checkpoints = &cp;
  test_data::category_ref fired;
  sluice::run_stream(source, sales::by_category(), [&](const auto& store) { fired = test_data::to_map(store); }, opts);
  CHECK(source.covered_after_hand_off == static_cast<std::int64_t>(lines.size()));
  CHECK(fired.empty());  // handed off: its state left with the checkpoint, unfired
  CHECK(checkpoint_of(dir / "ckpt", "p0").second == batch_answer(rows));
}
