// The event log: CRC-32C, the writer (offsets, sealing, fsync policy, limits), the readers
// (read_log, list_segments, first_offset_at_or_after, log_tail) and crash recovery. Each crash
// test damages real segment files the way a crash or a bad disk would (a cut at every length,
// a flipped bit at every position, a deleted file) and checks what opening or reading says.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "sluice/core/crc32c.hpp"
#include "sluice/store/event_log.hpp"
#include "temp_dir.hpp"

using namespace std::chrono_literals;
using sluice::millis;

namespace {

/// A log directory's name (the log creates it) and its segment files' paths.
struct temp_dir : test_support::temp_dir {
  temp_dir() : test_support::temp_dir(false) {}
  [[nodiscard]] std::string segment(std::uint64_t base) const { return sluice::detail::segment_path(str(), base); }
};

/// What a reader saw of one record (the views copied out).
struct seen {
  std::uint64_t offset = 0;
  std::int64_t time = 0;
  std::string payload;
  bool operator==(const seen&) const = default;
};

std::vector<seen> read_range(const std::vector<sluice::log_segment>& segments, std::uint64_t from, std::uint64_t to) {
  std::vector<seen> out;
  const std::uint64_t n = sluice::read_log(segments, from, to, [&](const sluice::log_record& r) {
    out.push_back({r.offset, r.event_time.count(), std::string(r.payload)});
  });
  CHECK(n == out.size());
  return out;
}

/// The records [from, to) of `all` (indexed by offset), as a reader should see them.
std::vector<seen> slice(const std::vector<seen>& all, std::uint64_t from, std::uint64_t to) {
  std::vector<seen> out;
  for (std::uint64_t o = from; o < std::min<std::uint64_t>(to, all.size()); ++o) {
    out.push_back(all[o]);
  }
  return out;
}

/// Names the first record where `got` and `want` part, instead of printing both vectors.
void check_same(const std::vector<seen>& got, const std::vector<seen>& want) {
  CHECK(got.size() == want.size());
  for (std::size_t i = 0; i < std::min(got.size(), want.size()); ++i) {
    if (!(got[i] == want[i])) {
      FAIL_CHECK("record " << i << " differs: got offset " << got[i].offset << " time " << got[i].time << " ("
                           << got[i].payload.size() << " bytes), want offset " << want[i].offset << " time "
                           << want[i].time << " (" << want[i].payload.size() << " bytes)");
      return;
    }
  }
}

std::string random_payload(std::mt19937& rng, std::size_t max) {
  const int kind = std::uniform_int_distribution<int>(0, 19)(rng);  // 1 in 20 empty, 1 in 20 the max
  std::size_t n = std::uniform_int_distribution<std::size_t>(0, std::min<std::size_t>(max, 300))(rng);
  if (kind < 2) {
    n = kind == 0 ? 0 : max;
  }
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; i += 4) {  // four random bytes a draw (NUL and \n included)
    const std::uint32_t word = rng();
    std::memcpy(s.data() + i, &word, std::min<std::size_t>(4, n - i));
  }
  return s;
}

sluice::log_options quick(std::uint64_t segment_bytes = std::uint64_t{64} << 20U) {
  sluice::log_options o;
  o.segment_bytes = segment_bytes;
  o.fsync = sluice::fsync_policy::parse("never");  // the tests simulate crashes by editing files
  return o;
}

/// Appends records "record <offset>" with event time 10 * offset, committing (which ends a
/// batch) after the offsets in `commit_after` and sealing after those in `seal_after`; returns
/// what a reader should see.
std::vector<seen> write_records(const std::string& dir, std::uint64_t count,
                                const std::vector<std::uint64_t>& seal_after = {},
                                const std::vector<std::uint64_t>& commit_after = {}) {
  sluice::event_log log(dir, quick());
  std::vector<seen> all;
  for (std::uint64_t o = 0; o < count; ++o) {
    all.push_back({o, static_cast<std::int64_t>(o) * 10, "record " + std::to_string(o)});
    REQUIRE(log.append(millis{all.back().time}, all.back().payload) == o);
    if (std::find(commit_after.begin(), commit_after.end(), o) != commit_after.end()) {
      log.commit();
    }
    if (std::find(seal_after.begin(), seal_after.end(), o) != seal_after.end()) {
      log.seal();
    }
  }
  log.commit();
  return all;
}

std::uint64_t file_size(const std::string& path) {
  return std::filesystem::file_size(path);
}

void cut_file(const std::string& path, std::uint64_t size) {
  std::filesystem::resize_file(path, size);
}

void flip_bit(const std::string& path, std::uint64_t pos, unsigned bit) {
  const int fd = ::open(path.c_str(), O_RDWR);
  REQUIRE(fd >= 0);
  unsigned char b = 0;
  REQUIRE(::pread(fd, &b, 1, static_cast<off_t>(pos)) == 1);
  b = static_cast<unsigned char>(b ^ (1U << bit));
  REQUIRE(::pwrite(fd, &b, 1, static_cast<off_t>(pos)) == 1);
  ::close(fd);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
  REQUIRE(out.good());
}

void append_bytes(const std::string& path, const std::string& bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND);
  REQUIRE(fd >= 0);
  REQUIRE(::write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()));
  ::close(fd);
}

/// The message of the log_error `f` throws ("" if it throws none).
template <class F>
std::string log_error_of(F&& f) {
  try {
    f();
  } catch (const sluice::log_error& e) {
    return e.what();
  }
  return "";
}

constexpr std::uint64_t header_bytes = sluice::detail::segment_header_bytes;
constexpr std::uint64_t batch_header = sluice::detail::batch_header_bytes;
constexpr std::uint64_t seal_marker_bytes = sluice::detail::batch_header_bytes;
constexpr std::uint64_t v1_record_overhead = sluice::detail::record_header_bytes;

/// A batch of a version-2 segment file: where it starts, its bytes (header included), its records.
struct batch_span {
  std::uint64_t pos = 0;
  std::uint64_t bytes = 0;
  std::uint32_t count = 0;
};

/// The batches of a version-2 segment file, by their headers, up to a seal marker or a torn end.
std::vector<batch_span> batches_of(const std::string& path) {
  const std::string bytes = read_file(path);
  std::vector<batch_span> out;
  for (std::uint64_t pos = header_bytes; pos + batch_header <= bytes.size();) {
    const auto length = sluice::detail::get_le<std::uint32_t>(bytes.data() + pos);
    if (length == sluice::detail::seal_length || pos + batch_header + length > bytes.size()) {
      break;
    }
    out.push_back({pos, batch_header + length, sluice::detail::get_le<std::uint32_t>(bytes.data() + pos + 4)});
    pos += batch_header + length;
  }
  return out;
}

/// Writes a version-1 segment (a log written before record batches): `records`, which start at
/// offset `base`, then a seal marker if `seal`.
void write_v1_segment(const std::string& path, std::uint64_t base, const std::vector<seen>& records, bool seal) {
  std::string bytes = sluice::detail::encode_segment_header(base, std::uint32_t{1} << 20U, 1);
  for (const seen& r : records) {
    sluice::detail::encode_v1_entry(bytes, static_cast<std::uint32_t>(r.payload.size()),
                                    static_cast<std::uint64_t>(r.time), r.payload);
  }
  if (seal) {
    bytes += sluice::detail::encode_seal_marker(1, base + records.size());
  }
  write_file(path, bytes);
}

/// A version-1 log in `dir`: records "record <offset>" (time 10 * offset), sealed after the
/// offsets in `seal_after`; the last segment unsealed. Returns what a reader should see.
std::vector<seen> write_v1_log(const temp_dir& dir, std::uint64_t count, const std::vector<std::uint64_t>& seal_after) {
  std::filesystem::create_directories(dir.path);
  std::vector<seen> all;
  std::vector<seen> segment;
  std::uint64_t base = 0;
  for (std::uint64_t o = 0; o < count; ++o) {
    all.push_back({o, static_cast<std::int64_t>(o) * 10, "record " + std::to_string(o)});
    segment.push_back(all.back());
    if (std::find(seal_after.begin(), seal_after.end(), o) != seal_after.end()) {
      write_v1_segment(dir.segment(base), base, segment, true);
      base = o + 1;
      segment.clear();
    }
  }
  write_v1_segment(dir.segment(base), base, segment, false);
  return all;
}

}  // namespace

// ---- crc32c ----

TEST_CASE("crc32c: the published check values (RFC 3720, the '123456789' check)") {
  const std::string zeros(32, '\0');
  const std::string ones(32, '\xFF');
  std::string up(32, '\0');
  std::string down(32, '\0');
  for (int i = 0; i < 32; ++i) {
    up[static_cast<std::size_t>(i)] = static_cast<char>(i);
    down[static_cast<std::size_t>(i)] = static_cast<char>(31 - i);
  }
  const std::string fox = "The quick brown fox jumps over the lazy dog";
  for (const bool software : {false, true}) {
    CAPTURE(software);
    const auto crc = [software](const std::string& s) {
      return software ? sluice::detail::crc32c_software(s.data(), s.size()) : sluice::crc32c(s.data(), s.size());
    };
    CHECK(crc("123456789") == 0xE3069283U);
    CHECK(crc("") == 0U);
    CHECK(crc(zeros) == 0x8A9136AAU);
    CHECK(crc(ones) == 0x62A8AB43U);
    CHECK(crc(up) == 0x46DD794EU);
    CHECK(crc(down) == 0x113FDB5CU);
    CHECK(crc(fox) == 0x22620404U);
  }
}

TEST_CASE("crc32c: the CRC of a buffer chained over any split equals the CRC of the whole") {
  std::mt19937 rng(11);
  std::string buf(1000, '\0');
  for (auto& c : buf) {
    c = static_cast<char>(rng());
  }
  const std::uint32_t whole = sluice::crc32c(buf.data(), buf.size());
  CHECK(whole == sluice::detail::crc32c_software(buf.data(), buf.size()));
  for (std::size_t split = 0; split <= buf.size(); ++split) {
    CAPTURE(split);
    CHECK(sluice::crc32c(buf.data() + split, buf.size() - split, sluice::crc32c(buf.data(), split)) == whole);
    CHECK(sluice::detail::crc32c_software(buf.data() + split, buf.size() - split,
                                          sluice::detail::crc32c_software(buf.data(), split)) == whole);
  }
}

TEST_CASE("crc32c: the SSE4.2 path equals the table path at every length 0..300 and alignment 0..15") {
#ifdef SLUICE_CRC32C_HARDWARE
  if (!sluice::detail::crc32c_hardware_available()) {
    MESSAGE("this CPU has no SSE4.2: only the table path runs here");
    return;
  }
  std::mt19937 rng(5);
  std::vector<unsigned char> buf(300 + 16);
  for (std::size_t align = 0; align < 16; ++align) {
    for (std::size_t n = 0; n <= 300; ++n) {
      for (auto& c : buf) {
        c = static_cast<unsigned char>(rng());
      }
      const std::uint32_t seed = rng() % 2 == 0 ? 0 : static_cast<std::uint32_t>(rng());
      const unsigned char* p = buf.data() + align;
      if (sluice::detail::crc32c_hardware(p, n, seed) != sluice::detail::crc32c_software(p, n, seed)) {
        FAIL_CHECK("hardware and software CRCs differ at length " << n << ", alignment " << align);
        return;
      }
    }
  }
#else
  MESSAGE("not x86-64 with GCC or Clang: only the table path is built");
#endif
}

// ---- fsync_policy ----

TEST_CASE("fsync_policy: parse takes always, never and interval:MS, and to_string round-trips") {
  using kind = sluice::fsync_policy::kind;
  CHECK(sluice::fsync_policy::parse("always").what == kind::always);
  CHECK(sluice::fsync_policy::parse("never").what == kind::never);
  const auto p = sluice::fsync_policy::parse("interval:250");
  CHECK(p.what == kind::interval);
  CHECK(p.every == 250ms);
  CHECK(sluice::fsync_policy{}.to_string() == "interval:100");
  for (const char* text : {"always", "never", "interval:1", "interval:250", "interval:86400000"}) {
    CAPTURE(text);
    CHECK(sluice::fsync_policy::parse(sluice::fsync_policy::parse(text).to_string()).to_string() == text);
  }
  for (const char* bad : {"", "Always", "sometimes", "interval", "interval:", "interval:0", "interval:-5",
                          "interval:+5", "interval: 5", "interval:5ms", "interval:99999999999999999999999"}) {
    CAPTURE(bad);
    CHECK_THROWS_WITH_AS(sluice::fsync_policy::parse(bad),
                         ("fsync policy is always, never or interval:MS, not '" + std::string(bad) + "'").c_str(),
                         std::invalid_argument);
  }
}

// ---- the writer ----

TEST_CASE("event_log: random records round-trip across many segments and a reopen; any range reads its slice") {
  temp_dir dir;
  std::mt19937 rng(2024);
  sluice::log_options opts = quick(4096);
  opts.max_record_bytes = 3000;
  std::vector<seen> all;
  const auto add = [&](sluice::event_log& log, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      const auto t = static_cast<std::int64_t>(rng() % 1'000'000) - 500'000;
      all.push_back({all.size(), t, random_payload(rng, opts.max_record_bytes)});
      REQUIRE(log.append(millis{t}, all.back().payload) == all.back().offset);
      if (rng() % 8 == 0) {
        log.commit();
        log.seal_if_due();
      }
    }
    log.commit();
  };
  {
    sluice::event_log log(dir.str(), opts);
    CHECK_FALSE(log.recovery());
    CHECK(log.head() == 0);
    add(log, 2000);
    CHECK(log.head() == 2000);
    const auto segments = log.segments();
    REQUIRE(segments.size() > 10);
    CHECK(log.sealed_count() == segments.size() - 1);
    CHECK(log.active_segment() == segments.size() - 1);
    for (std::size_t i = 0; i < segments.size(); ++i) {
      CAPTURE(i);
      CHECK(segments[i].index == i);
      CHECK(segments[i].sealed == (i + 1 < segments.size()));
      CHECK(segments[i].base_offset == (i == 0 ? 0 : segments[i - 1].end_offset));
      CHECK(segments[i].bytes == file_size(segments[i].path));
      CHECK(segments[i].path == dir.segment(segments[i].base_offset));
    }
    CHECK(segments.back().end_offset == 2000);
    check_same(read_range(segments, 0, UINT64_MAX), all);
    const auto listed = sluice::list_segments(dir.str());
    REQUIRE(listed.size() == segments.size());
    for (std::size_t i = 0; i < listed.size(); ++i) {
      CHECK(listed[i].end_offset == segments[i].end_offset);
    }
  }
  {
    sluice::event_log log(dir.str(), opts);
    CHECK_FALSE(log.recovery());
    CHECK(log.head() == 2000);
    add(log, 500);
  }
  const auto segments = sluice::list_segments(dir.str());
  check_same(read_range(segments, 0, UINT64_MAX), all);
  for (int i = 0; i < 300; ++i) {
    std::uint64_t a = rng() % 2600;
    std::uint64_t b = rng() % 2600;
    if (a > b) {
      std::swap(a, b);
    }
    CAPTURE(a);
    CAPTURE(b);
    check_same(read_range(segments, a, b), slice(all, a, b));
  }

  std::vector<std::uint64_t> visited;
  const auto n = sluice::read_log(segments, 10, 2000, [&](const sluice::log_record& r) {
    visited.push_back(r.offset);
    return r.offset < 15;
  });
  CHECK(n == 6);
  CHECK(visited == std::vector<std::uint64_t>{10, 11, 12, 13, 14, 15});
}

TEST_CASE("event_log: seal_if_due seals by size and by age (an injected clock), never an empty segment") {
  temp_dir dir;
  const std::string payload(98, 'x');  // a 100-byte record: a length byte, a time-delta byte
  SUBCASE("by size: once the active segment reaches segment_bytes, buffered records included") {
    sluice::log_options by_size_only = quick(header_bytes + batch_header + 300);
    by_size_only.segment_age = 0ms;  // never by age (the default is a minute)
    sluice::event_log log(dir.str(), by_size_only);
    const auto far = std::chrono::steady_clock::now() + 24h;
    log.append(millis{1}, payload);
    log.append(millis{2}, payload);
    CHECK_FALSE(log.seal_if_due(far));
    log.append(millis{3}, payload);
    CHECK(log.seal_if_due(far));
    CHECK(log.sealed_count() == 1);
    CHECK(log.active_segment() == 1);
    CHECK(log.head() == 3);
    const auto segments = log.segments();
    REQUIRE(segments.size() == 2);
    CHECK(segments[0].sealed);
    CHECK(segments[0].end_offset == 3);
    CHECK(segments[0].bytes == header_bytes + batch_header + 300 + seal_marker_bytes);  // one batch
    CHECK_FALSE(segments[1].sealed);
    CHECK(segments[1].base_offset == 3);
    CHECK(segments[1].end_offset == 3);
    CHECK(segments[1].bytes == header_bytes);
    CHECK_FALSE(log.seal_if_due(far));  // empty
    log.seal();                         // empty: a no-op
    CHECK(log.sealed_count() == 1);
    CHECK(log.segments().size() == 2);
  }
  SUBCASE("by age: counted from this process's first append to the active segment") {
    sluice::log_options opts = quick();
    opts.segment_age = 1min;
    {
      sluice::event_log log(dir.str(), opts);
      CHECK_FALSE(log.seal_if_due(std::chrono::steady_clock::now() + 24h));  // empty
      const auto before = std::chrono::steady_clock::now();
      log.append(millis{1}, payload);
      CHECK_FALSE(log.seal_if_due(before + 59s));
      CHECK(log.seal_if_due(std::chrono::steady_clock::now() + 60s));
      CHECK(log.sealed_count() == 1);
      const auto again = std::chrono::steady_clock::now();
      log.append(millis{2}, payload);
      CHECK_FALSE(log.seal_if_due(again + 59s));  // the clock restarted with the new segment
      log.append(millis{3}, payload);
    }
    sluice::event_log log(dir.str(), opts);
    CHECK(log.head() == 3);
    CHECK_FALSE(log.seal_if_due(std::chrono::steady_clock::now() + 24h));  // nothing appended by this process yet
    const auto before = std::chrono::steady_clock::now();
    log.append(millis{4}, payload);
    CHECK_FALSE(log.seal_if_due(before + 59s));
    CHECK(log.seal_if_due(std::chrono::steady_clock::now() + 61s));
    CHECK(log.segments()[1].end_offset == 4);
  }
}

TEST_CASE("event_log: sync_before_seal syncs once the records written (not those buffered) make a seal due") {
  temp_dir dir;
  const std::string payload(98, 'x');  // a 100-byte record
  const auto far = std::chrono::steady_clock::now() + 24h;
  SUBCASE("by size, and only what is new") {
    sluice::log_options opts = quick(header_bytes + batch_header + 300);
    opts.segment_age = 0ms;
    opts.fsync = sluice::fsync_policy::parse("interval:3600000");  // no interval sync in the test
    {
      sluice::event_log log(dir.str(), opts);
      log.append(millis{1}, payload);
      log.append(millis{2}, payload);
      log.commit();
      CHECK_FALSE(log.sync_before_seal(far));  // 200 bytes written: not due
      log.append(millis{3}, payload);
      CHECK(log.seal_due(far));
      CHECK_FALSE(log.sync_before_seal(far));  // due only with the buffered record, which no reader sees yet
      log.commit();
      CHECK(log.sync_before_seal(far));
      CHECK_FALSE(log.sync_before_seal(far));  // nothing written since: nothing to sync
      CHECK(log.seal_if_due(far));
      CHECK_FALSE(log.sync_before_seal(far));  // the new segment is empty
      log.append(millis{4}, payload);
    }
    auto segments = sluice::list_segments(dir.str());
    REQUIRE(segments.size() == 2);
    CHECK(segments[0].sealed);
    CHECK(read_range(segments, 0, UINT64_MAX).size() == 4);
  }
  SUBCASE("by age, counted from the first record written to the segment") {
    sluice::log_options opts = quick();
    opts.segment_age = 1min;
    opts.fsync = sluice::fsync_policy::parse("interval:3600000");
    sluice::event_log log(dir.str(), opts);
    CHECK_FALSE(log.sync_before_seal(far));  // empty
    const auto before = std::chrono::steady_clock::now();
    log.append(millis{1}, payload);
    log.commit();
    CHECK_FALSE(log.sync_before_seal(before + 59s));
    CHECK(log.sync_before_seal(std::chrono::steady_clock::now() + 61s));
  }
  SUBCASE("never under the policy never, due or not") {
    sluice::log_options opts = quick(header_bytes + batch_header + 100);
    sluice::event_log log(dir.str(), opts);
    log.append(millis{1}, payload);
    log.commit();
    CHECK(log.seal_due(far));
    CHECK_FALSE(log.sync_before_seal(far));
  }
}

TEST_CASE("event_log: a record over max_record_bytes is a length_error and changes nothing") {
  temp_dir dir;
  sluice::log_options opts = quick();
  opts.max_record_bytes = 100;
  sluice::event_log log(dir.str(), opts);
  CHECK(log.append(millis{1}, std::string(100, 'a')) == 0);
  CHECK_THROWS_AS(log.append(millis{2}, std::string(101, 'b')), std::length_error);
  CHECK(log.head() == 1);
  log.commit();
  CHECK(file_size(dir.segment(0)) == header_bytes + batch_header + 2 + 100);
  CHECK(log.append(millis{3}, "c") == 1);
  log.commit();
  check_same(read_range(log.segments(), 0, 10), {{0, 1, std::string(100, 'a')}, {1, 3, "c"}});
  sluice::log_options too_large;
  too_large.max_record_bytes = sluice::detail::max_record_limit + 1;  // a batch of one would not fit 32 bits
  CHECK_THROWS_AS(sluice::event_log(temp_dir().str(), too_large), std::invalid_argument);
  too_large.max_record_bytes = sluice::detail::max_record_limit;
  CHECK_NOTHROW(sluice::event_log(temp_dir().str(), too_large));
}

TEST_CASE("event_log: records appended, committed and not yet committed: what readers see and when") {
  temp_dir dir;
  sluice::event_log log(dir.str(), quick());
  for (int i = 0; i < 5; ++i) {
    log.append(millis{i}, "committed");
  }
  log.commit();
  for (int i = 0; i < 3; ++i) {
    log.append(millis{i}, "buffered");
  }
  CHECK(log.head() == 8);
  CHECK(log.segments().back().end_offset == 5);
  CHECK(sluice::list_segments(dir.str()).back().end_offset == 5);
  log.commit();
  CHECK(log.segments().back().end_offset == 8);
  const auto listed = sluice::list_segments(dir.str());
  REQUIRE(listed.size() == 1);
  CHECK_FALSE(listed[0].sealed);
  CHECK(listed[0].end_offset == 8);
  CHECK(read_range(listed, 0, 100).size() == 8);
}

TEST_CASE("list_segments: an unsealed tail being written is read up to its last whole record, untouched") {
  temp_dir dir;
  const auto all = write_records(dir.str(), 6, {2});
  const std::string active = dir.segment(3);
  const std::uint64_t whole = file_size(active);
  std::string partial;
  sluice::detail::open_batch open;
  sluice::detail::encode_record(partial, open, sluice::detail::max_batch_bytes(1U << 20U), 70, std::string(40, 'p'));
  append_bytes(active, partial.substr(0, 30));  // a writer mid-write
  const auto listed = sluice::list_segments(dir.str());
  REQUIRE(listed.size() == 2);
  CHECK(listed[0].sealed);
  CHECK_FALSE(listed[1].sealed);
  CHECK(listed[1].end_offset == 6);
  CHECK(listed[1].bytes == whole);
  CHECK(file_size(active) == whole + 30);  // nothing truncated
  check_same(read_range(listed, 0, UINT64_MAX), all);
}

// ---- crash recovery ----

/// Cuts a copy of `proto` at every length from `start` (a batch's, or a version-1 record's,
/// first byte) to the end of its segment `last`, and checks that opening the log cuts that
/// batch whole and reports it, and that the log goes on from `first_lost`.
void check_torn_tail_cut(const temp_dir& proto, std::uint64_t last, std::uint64_t start, std::uint64_t first_lost,
                         const std::string& reason, const std::vector<seen>& all) {
  const std::uint64_t full = file_size(proto.segment(last));
  for (std::uint64_t cut = start; cut < full; ++cut) {
    CAPTURE(cut);
    temp_dir dir;
    std::filesystem::copy(proto.path, dir.path);
    cut_file(dir.segment(last), cut);
    {
      sluice::event_log log(dir.str(), quick());
      if (cut == start) {
        CHECK_FALSE(log.recovery());  // a clean end between batches
      } else {
        REQUIRE(log.recovery());
        const auto& r = *log.recovery();
        CHECK(r.segment == dir.segment(last));
        CHECK(r.kept_bytes == start);
        CHECK(r.cut_bytes == cut - start);
        CHECK(r.first_lost_offset == first_lost);
        CHECK(r.reason.find(reason) == 0);
        CHECK(file_size(dir.segment(last)) >= start);  // cut (a version-1 segment is then sealed)
      }
      CHECK(log.head() == first_lost);
      CHECK(log.append(millis{99}, "after the crash") == first_lost);
    }
    auto want = slice(all, 0, first_lost);
    want.push_back({first_lost, 99, "after the crash"});
    check_same(read_range(sluice::list_segments(dir.str()), 0, UINT64_MAX), want);
  }
}

TEST_CASE("event_log: a torn last batch, cut at every length, is cut off whole on open and the log goes on") {
  SUBCASE("version 2: records 0-1 sealed, then batches [2] and [3, 4]; the last one torn") {
    temp_dir proto;
    const auto all = write_records(proto.str(), 5, {1}, {2});
    const auto batches = batches_of(proto.segment(2));
    REQUIRE(batches.size() == 2);
    CHECK(batches[1].count == 2);
    check_torn_tail_cut(proto, 2, batches[1].pos, 3, "torn batch", all);
  }
  SUBCASE("version 1: records 0-1 sealed, then 2-4 a record at a time; record 4 torn") {
    temp_dir proto;
    const auto all = write_v1_log(proto, 5, {1});
    const std::uint64_t start = file_size(proto.segment(2)) - v1_record_overhead - all[4].payload.size();
    check_torn_tail_cut(proto, 2, start, 4, "torn record", all);
  }
}

/// Flips bits 0, 7 and one more of every byte from `start` (the last batch's, or version-1
/// record's, first byte) to the end of a copy of `proto`'s segment 0, and checks that opening the
/// log cuts that batch whole at `first_lost`; check_reason(byte in the batch, bit, reason).
template <class CheckReason>
void check_flipped_tail_cut(const temp_dir& proto, std::uint64_t start, std::uint64_t first_lost,
                            CheckReason&& check_reason) {
  const std::uint64_t full = file_size(proto.segment(0));
  for (std::uint64_t pos = start; pos < full; ++pos) {
    for (const unsigned bit : {0U, 7U, static_cast<unsigned>(pos % 8)}) {
      CAPTURE(pos - start);
      CAPTURE(bit);
      temp_dir dir;
      std::filesystem::copy(proto.path, dir.path);
      flip_bit(dir.segment(0), pos, bit);
      sluice::event_log log(dir.str(), quick());
      REQUIRE(log.recovery());
      const auto& r = *log.recovery();
      CHECK(r.kept_bytes == start);
      CHECK(r.cut_bytes == full - start);
      CHECK(r.first_lost_offset == first_lost);
      CHECK(log.head() == first_lost);
      check_reason(pos - start, bit, r.reason);
    }
  }
}

TEST_CASE("event_log: a flipped bit anywhere in the last batch cuts the batch off on open") {
  temp_dir proto;
  write_records(proto.str(), 4, {}, {0});  // batches [0] and [1, 2, 3]
  const auto batches = batches_of(proto.segment(0));
  REQUIRE(batches.size() == 2);
  REQUIRE(batches[1].pos + batches[1].bytes == file_size(proto.segment(0)));
  check_flipped_tail_cut(proto, batches[1].pos, 1, [](std::uint64_t in_batch, unsigned bit, const std::string& reason) {
    if (in_batch == 3 && bit == 7) {  // the length's top bit: far beyond the largest batch
      CHECK(reason.find("batch length 2147483") == 0);
    } else if (in_batch >= 4 && in_batch < 8) {  // the count: the records do not add up to it
      CHECK(reason.find("record") != std::string::npos);
    } else if (in_batch >= 8) {  // crc, first time or records
      CHECK(reason == "crc mismatch");
    }
  });
}

TEST_CASE("event_log: a flipped bit anywhere in the last record of a version-1 segment cuts it off on open") {
  temp_dir proto;
  const auto all = write_v1_log(proto, 3, {});
  const std::uint64_t start = file_size(proto.segment(0)) - v1_record_overhead - all[2].payload.size();
  const bool even = all[2].payload.size() % 2 == 0;
  check_flipped_tail_cut(proto, start, 2, [&](std::uint64_t in_record, unsigned bit, const std::string& reason) {
    if (in_record == 3 && bit == 7) {  // the length's top bit: far beyond the max
      CHECK(reason == "length 2147483656 exceeds max record size 1048576");
    } else if (in_record == 0 && bit == 0 && even) {  // one byte longer
      CHECK(reason == "torn record (24 of 25 bytes)");
    } else if (in_record >= 4) {  // crc, time or payload
      CHECK(reason == "crc mismatch");
    }
  });
}

TEST_CASE("event_log: a torn segment header (a crash while creating a segment) is written again on open") {
  temp_dir proto;
  const auto all = write_records(proto.str(), 2, {1});  // segment 2 is created, empty
  for (std::uint64_t cut = 0; cut < header_bytes; ++cut) {
    CAPTURE(cut);
    temp_dir dir;
    std::filesystem::copy(proto.path, dir.path);
    cut_file(dir.segment(2), cut);
    {
      sluice::event_log log(dir.str(), quick());
      REQUIRE(log.recovery());
      CHECK(log.recovery()->reason.find("torn segment header") == 0);
      CHECK(log.recovery()->kept_bytes == 0);
      CHECK(log.recovery()->cut_bytes == cut);
      CHECK(log.recovery()->first_lost_offset == 2);
      CHECK(log.head() == 2);
      CHECK(log.append(millis{5}, "next") == 2);
    }
    auto want = all;
    want.push_back({2, 5, "next"});
    check_same(read_range(sluice::list_segments(dir.str()), 0, UINT64_MAX), want);
  }
}

TEST_CASE("event_log: a seal cut short before the next segment was created is finished on open") {
  temp_dir dir;
  write_records(dir.str(), 3, {2});
  std::filesystem::remove(dir.segment(3));  // the crash came between the seal marker and the new file
  sluice::event_log log(dir.str(), quick());
  CHECK_FALSE(log.recovery());
  CHECK(log.head() == 3);
  CHECK(log.sealed_count() == 1);
  CHECK(std::filesystem::exists(dir.segment(3)));
  CHECK(log.append(millis{1}, "x") == 3);
}

TEST_CASE("event_log: reopened with a larger max_record_bytes, larger records go to a segment that allows them") {
  temp_dir dir;
  sluice::log_options small = quick();
  small.max_record_bytes = 100;
  sluice::log_options large = quick();
  large.max_record_bytes = 1000;
  { sluice::event_log log(dir.str(), small); }
  {
    sluice::event_log log(dir.str(), large);  // empty active segment: its header is rewritten
    CHECK(log.sealed_count() == 0);
    log.append(millis{1}, std::string(500, 'a'));
  }
  { sluice::event_log log(dir.str(), small); }  // a smaller max keeps the header's larger one
  {
    sluice::event_log log(dir.str(), large);
    CHECK(log.sealed_count() == 0);
    log.append(millis{2}, std::string(1000, 'b'));
  }
  {
    sluice::log_options larger = quick();
    larger.max_record_bytes = 5000;
    sluice::event_log log(dir.str(), larger);  // the active segment holds records: sealed first
    CHECK(log.sealed_count() == 1);
    log.append(millis{3}, std::string(5000, 'c'));
  }
  const auto got = read_range(sluice::list_segments(dir.str()), 0, UINT64_MAX);
  REQUIRE(got.size() == 3);
  CHECK(got[2].payload.size() == 5000);
}

TEST_CASE("read_log: damage in a sealed segment is a log_error naming the file, byte and offset") {
  temp_dir dir;
  const auto all = write_records(dir.str(), 15, {12}, {4, 9});  // segment 0: batches [0-4], [5-9], [10-12]
  const std::string sealed_path = dir.segment(0);
  const auto batches = batches_of(sealed_path);
  REQUIRE(batches.size() == 3);
  const std::uint64_t batch5 = batches[1].pos;
  const std::uint64_t batch10 = batches[2].pos;

  SUBCASE("a flipped payload bit") {
    flip_bit(sealed_path, batch5 + batch_header + 4, 3);
    { sluice::event_log log(dir.str(), quick()); }  // sealed segments are not scanned on open
    const auto segments = sluice::list_segments(dir.str());
    const std::string message = log_error_of([&] { read_range(segments, 0, UINT64_MAX); });
    CHECK(message == "log " + sealed_path + ": byte " + std::to_string(batch5) + " (offset 5): crc mismatch");
    CHECK(log_error_of([&] { read_range(segments, 9, UINT64_MAX); }) == message);  // its batch is checked whole
    check_same(read_range(segments, 10, UINT64_MAX), slice(all, 10, 15));          // hopping over it checks no CRC
    check_same(read_range(segments, 0, 5), slice(all, 0, 5));
  }
  SUBCASE("cut inside a batch") {
    cut_file(sealed_path, batch10 + 20);
    const std::string message = log_error_of([&] { read_range(sluice::list_segments(dir.str()), 0, UINT64_MAX); });
    CHECK(message.find("log " + sealed_path + ": byte " + std::to_string(batch10) + " (offset 10): torn batch") == 0);
  }
  SUBCASE("cut between batches, before its end offset") {
    cut_file(sealed_path, batch10);
    const std::string message = log_error_of([&] { read_range(sluice::list_segments(dir.str()), 0, UINT64_MAX); });
    CHECK(message == "log " + sealed_path + ": byte " + std::to_string(batch10) +
                         " (offset 10): the records end at offset 10, before the segment's end offset 13");
  }
  SUBCASE("a bad segment header") {
    flip_bit(sealed_path, 17, 0);
    CHECK(log_error_of([&] { sluice::list_segments(dir.str()); }) ==
          "log " + sealed_path + ": byte 0 (offset 0): segment header crc mismatch");
  }
}

TEST_CASE("event_log: a missing segment, in the middle or the first, is a log_error on open and in list_segments") {
  temp_dir dir;
  write_records(dir.str(), 12, {2, 5, 8});  // segments 0, 3, 6, 9
  SUBCASE("middle") {
    std::filesystem::remove(dir.segment(3));
    const std::string want = "log " + dir.str() + ": missing segment: offsets [3, 6) (" + dir.segment(0) +
                             " ends at offset 3, the next segment is " + dir.segment(6) + ")";
    CHECK(log_error_of([&] { sluice::event_log log(dir.str(), quick()); }) == want);
    CHECK(log_error_of([&] { sluice::list_segments(dir.str()); }) == want);
  }
  SUBCASE("first") {
    std::filesystem::remove(dir.segment(0));
    const std::string want =
        "log " + dir.str() + ": missing segment: offsets [0, 3) (the first segment is " + dir.segment(3) + ")";
    CHECK(log_error_of([&] { sluice::event_log log(dir.str(), quick()); }) == want);
    CHECK(log_error_of([&] { sluice::list_segments(dir.str()); }) == want);
    CHECK(log_error_of([&] {
            sluice::log_tail tail(dir.str());
            tail.poll([](const sluice::log_record&) {});
          }) == want);
  }
}

TEST_CASE("event_log: a second writer on the same directory is refused until the first closes") {
  temp_dir dir;
  {
    sluice::event_log first(dir.str(), quick());
    CHECK(log_error_of([&] { sluice::event_log second(dir.str(), quick()); }) ==
          "log " + dir.str() + " is locked by another writer");
  }
  sluice::event_log again(dir.str(), quick());
  CHECK(again.head() == 0);
}

TEST_CASE("event_log: random damage to segment files is a log_error or a cut, never a crash or a huge allocation") {
  temp_dir proto;
  write_records(proto.str(), 40, {9, 19, 29});
  std::mt19937 rng(77);
  for (int round = 0; round < 60; ++round) {
    CAPTURE(round);
    temp_dir dir;
    std::filesystem::copy(proto.path, dir.path);
    for (int hits = 0; hits < 1 + round % 5; ++hits) {
      const std::uint64_t seg = (rng() % 4) * 10;
      flip_bit(dir.segment(seg), rng() % file_size(dir.segment(seg)), rng() % 8);
    }
    try {
      const auto segments = sluice::list_segments(dir.str());
      read_range(segments, rng() % 40, 40);
    } catch (const sluice::log_error&) {
    }
    try {
      sluice::event_log log(dir.str(), quick());
      log.append(millis{1}, "still writable");
    } catch (const sluice::log_error&) {
    }
  }
}

// ---- readers ----

TEST_CASE("first_offset_at_or_after: the first record at or after a time, or the end offset") {
  temp_dir dir;
  {
    sluice::event_log log(dir.str(), quick());
    for (const std::int64_t t : {10, 20, 20, 30, 5, 40}) {
      log.append(millis{t}, "");
      log.seal();  // one record a segment
    }
  }
  const auto segments = sluice::list_segments(dir.str());
  const auto first = [&](std::int64_t t) { return sluice::first_offset_at_or_after(segments, millis{t}); };
  CHECK(first(-100) == 0);
  CHECK(first(10) == 0);
  CHECK(first(11) == 1);
  CHECK(first(20) == 1);
  CHECK(first(21) == 3);
  CHECK(first(31) == 5);
  CHECK(first(41) == 6);
  CHECK(sluice::first_offset_at_or_after({}, millis{0}) == 0);
}

namespace {

std::string tail_payload(std::uint64_t offset) {
  return "event " + std::to_string(offset) + std::string(offset % 97, static_cast<char>('a' + offset % 26));
}

/// Polls `tail` until it has delivered records up to `end`, checking each is the one expected;
/// gives up after a minute (a lost record then fails the position check instead of hanging).
void follow(sluice::log_tail& tail, std::uint64_t end) {
  const auto give_up = std::chrono::steady_clock::now() + 60s;
  std::uint64_t next = tail.position();
  std::string wrong;
  while (tail.position() < end && std::chrono::steady_clock::now() < give_up) {
    const std::size_t max = 1 + next % 300;
    const std::size_t n = tail.poll(
        [&](const sluice::log_record& r) {
          if (wrong.empty() && (r.offset != next || r.payload != tail_payload(r.offset) ||
                                r.event_time != millis{static_cast<std::int64_t>(r.offset)})) {
            wrong = "record " + std::to_string(r.offset) + " (expected " + std::to_string(next) + ") is not as written";
          }
          ++next;
        },
        max);
    CHECK(n <= max);
    if (n == 0) {
      std::this_thread::yield();
    }
  }
  CHECK(wrong == "");
  CHECK(tail.position() == end);
}

}  // namespace

TEST_CASE("log_tail: follows a writer in another thread across seals, from offset 0 and from offset N") {
  temp_dir dir;
  constexpr std::uint64_t total = 3000;
  sluice::log_tail from_start(dir.str());
  sluice::log_tail from_middle(dir.str(), 1234);
  CHECK(from_start.poll([](const sluice::log_record&) {}) == 0);  // no directory yet
  std::atomic<std::uint64_t> sealed{0};
  std::thread writer([&] {
    std::mt19937 rng(3);
    sluice::event_log log(dir.str(), quick(2000));
    for (std::uint64_t o = 0; o < total; ++o) {
      log.append(millis{static_cast<std::int64_t>(o)}, tail_payload(o));
      if (rng() % 20 == 0) {
        log.commit();
        log.seal_if_due();
        sealed.store(log.sealed_count());
      }
    }
    log.commit();
  });
  follow(from_start, total);
  follow(from_middle, total);
  writer.join();
  CHECK(sealed.load() > 20);
  CHECK(from_start.poll([](const sluice::log_record&) {}) == 0);
}

TEST_CASE("log_tail: a record whose callback throws is delivered again; a bool callback stops early") {
  temp_dir dir;
  write_records(dir.str(), 6, {2});
  sluice::log_tail tail(dir.str());
  bool thrown = false;
  std::vector<std::uint64_t> got;
  CHECK_THROWS_AS(tail.poll([&](const sluice::log_record& r) {
    if (r.offset == 4 && !thrown) {
      thrown = true;
      throw std::runtime_error("downstream failed");
    }
    got.push_back(r.offset);
  }),
                  std::runtime_error);
  CHECK(tail.position() == 4);
  CHECK(tail.poll([&](const sluice::log_record& r) {
    got.push_back(r.offset);
    return r.offset < 4;
  }) == 1);
  CHECK(tail.poll([&](const sluice::log_record& r) { got.push_back(r.offset); }) == 1);
  CHECK(got == std::vector<std::uint64_t>{0, 1, 2, 3, 4, 5});
}

TEST_CASE("log_tail: caught up with a log whose newest segment is empty, it waits there, then follows") {
  temp_dir dir;
  sluice::event_log log(dir.str(), quick());
  log.append(millis{1}, "a");
  log.seal();  // segment 1 is the newest, and empty
  sluice::log_tail tail(dir.str());
  std::vector<std::uint64_t> got;
  const auto collect = [&](const sluice::log_record& r) { got.push_back(r.offset); };
  CHECK(tail.poll(collect) == 1);
  CHECK(tail.poll(collect) == 0);  // at the head: returns (an empty segment is not followed by itself)
  CHECK(tail.position() == 1);
  log.append(millis{2}, "b");
  log.commit();
  CHECK(tail.poll(collect) == 1);
  CHECK(got == std::vector<std::uint64_t>{0, 1});

  // A seal marker in an empty segment (never written by a writer) is corruption, not a way round.
  log.seal();
  append_bytes(dir.segment(2), sluice::detail::encode_seal_marker(sluice::detail::segment_version, 2));
  CHECK(tail.poll(collect) == 0);
  CHECK(tail.poll(collect) == 0);
  CHECK(tail.position() == 2);
}

TEST_CASE("log_tail: corruption at the end of the newest segment waits; followed by a segment it is a log_error") {
  temp_dir dir;
  sluice::event_log log(dir.str(), quick());
  for (std::uint64_t o = 0; o < 5; ++o) {
    log.append(millis{0}, "payload " + std::to_string(o));
    log.commit();  // a batch each
  }
  const std::uint64_t record3 = batches_of(dir.segment(0)).at(3).pos;
  flip_bit(dir.segment(0), record3 + batch_header, 1);
  sluice::log_tail tail(dir.str());
  std::uint64_t delivered = 0;
  const auto count = [&](const sluice::log_record&) { ++delivered; };
  CHECK(tail.poll(count) == 3);
  CHECK(tail.poll(count) == 0);  // it may be a write in progress
  CHECK(tail.position() == 3);
  log.seal();
  CHECK(log_error_of([&] { tail.poll(count); }) ==
        "log " + dir.segment(0) + ": byte " + std::to_string(record3) + " (offset 3): crc mismatch");
}

TEST_CASE("event_log: segments() and sealed_count() from another thread while the owner appends and seals") {
  temp_dir dir;
  sluice::event_log log(dir.str(), quick(3000));
  std::atomic<bool> done{false};
  std::string problem;
  std::thread reader([&] {
    std::uint64_t last_sealed = 0;
    while (!done.load() && problem.empty()) {
      const std::uint64_t sealed = log.sealed_count();
      const auto segments = log.segments();
      std::uint64_t expect_base = 0;
      for (const auto& s : segments) {
        if (s.base_offset != expect_base) {
          problem = "segment " + std::to_string(s.index) + " does not start where the one before ends";
        }
        expect_base = s.end_offset;
      }
      if (sealed < last_sealed || segments.size() < sealed + 1) {
        problem = "sealed_count went back or ran ahead of segments()";
      }
      last_sealed = sealed;
      const std::uint64_t n = sluice::read_log(segments, 0, UINT64_MAX, [](const sluice::log_record&) {});
      if (n != segments.back().end_offset) {
        problem = "read_log of a snapshot saw " + std::to_string(n) + " records, not " +
                  std::to_string(segments.back().end_offset);
      }
    }
  });
  for (std::uint64_t o = 0; o < 4000; ++o) {
    log.append(millis{1}, tail_payload(o));
    if (o % 7 == 0) {
      log.commit();
      log.seal_if_due();
    }
  }
  log.commit();
  done.store(true);
  reader.join();
  CHECK(problem == "");
  CHECK(log.sealed_count() > 20);
}

TEST_CASE("event_log: batches encoded on other threads read back as appended records; syncs from other threads run while the owner writes and seals") {
  temp_dir dir;
  sluice::log_options opts = quick(3000);
  opts.fsync = sluice::fsync_policy::parse("always");
  opts.max_record_bytes = 200;
  sluice::event_log log(dir.str(), opts);
  // encode on any thread; an oversized record is refused and leaves the batch as it was.
  sluice::log_batch batch;
  std::thread([&] {
    log.encode(batch, millis{7}, "first");
    CHECK_THROWS_AS(log.encode(batch, millis{8}, std::string(201, 'x')), std::length_error);
    log.encode(batch, millis{9}, "");
  }).join();
  CHECK(batch.size() == 2);
  std::vector<seen> in_batch;
  batch.for_each([&](millis t, std::string_view p) { in_batch.push_back({0, t.count(), std::string(p)}); });
  check_same(in_batch, {{0, 7, "first"}, {0, 9, ""}});
  CHECK(log.append(millis{1}, "appended") == 0);
  CHECK(log.write(batch) == 1);  // after what append buffered, which write writes out first
  CHECK(log.head() == 3);
  check_same(read_range(sluice::list_segments(dir.str()), 0, 10), {{0, 1, "appended"}, {1, 7, "first"}, {2, 9, ""}});

  // Syncs from two other threads while the owner writes batches and seals (closing the files the
  // syncs may hold): every record reads back in order, and a sync that finds the written bytes
  // on disk already returns without syncing.
  std::atomic<bool> done{false};
  std::atomic<std::uint64_t> syncs{0};
  auto syncer = [&] {
    while (!done.load()) {
      syncs += log.sync_if_due() ? 1 : 0;
    }
  };
  std::thread s1(syncer);
  std::thread s2(syncer);
  std::vector<seen> want = read_range(log.segments(), 0, 10);
  for (std::uint64_t o = 3; o < 3000; o += 5) {
    sluice::log_batch b;
    for (std::uint64_t i = o; i < o + 5; ++i) {
      log.encode(b, millis{static_cast<std::int64_t>(i)}, tail_payload(i));
      want.push_back({i, static_cast<std::int64_t>(i), tail_payload(i)});
    }
    CHECK(log.write(b) == o);
    log.seal_if_due();
  }
  done.store(true);
  s1.join();
  s2.join();
  CHECK(syncs.load() > 0);
  CHECK(log.sealed_count() > 20);
  log.sync_if_due();
  CHECK_FALSE(log.sync_if_due());  // all of it on disk already
  check_same(read_range(sluice::list_segments(dir.str()), 0, UINT64_MAX), want);
}

// ---- record batches (segment version 2) and version 1 ----

namespace {

/// Every record of the log in `dir` as a tail from offset 0 delivers it.
std::vector<seen> tail_all(const std::string& dir) {
  sluice::log_tail tail(dir);
  std::vector<seen> out;
  while (tail.poll([&](const sluice::log_record& r) {
    out.push_back({r.offset, r.event_time.count(), std::string(r.payload)});
  }) > 0) {
  }
  return out;
}

/// One version-2 batch of `records` (times and payloads), as log_batch encodes it.
std::string encode_batch(const std::vector<seen>& records, std::uint32_t max_record = 1U << 20U) {
  std::string out;
  sluice::detail::open_batch open;
  for (const seen& r : records) {
    sluice::detail::encode_record(out, open, sluice::detail::max_batch_bytes(max_record),
                                  static_cast<std::uint64_t>(r.time), r.payload);
  }
  return out;
}

/// Sets the CRC of the batch at the start of `batch` to match its first time and its records
/// (as its length field bounds them): a forged batch that only the parse can refuse.
void fix_batch_crc(std::string& batch) {
  const auto length =
      std::min<std::uint64_t>(sluice::detail::get_le<std::uint32_t>(batch.data()), batch.size() - batch_header);
  sluice::detail::put_le<std::uint32_t>(batch.data() + 8, sluice::crc32c(batch.data() + 12, 8 + length));
}

}  // namespace

TEST_CASE(
    "log_batch: random records (empty, max-size, extreme times) round-trip through encode, write and every reader") {
  temp_dir dir;
  std::mt19937 rng(99);
  sluice::log_options opts = quick(std::uint64_t{3} << 20U);
  opts.max_record_bytes = 6000;  // a big round's 500 max-size records still fill several 1 MiB batches
  std::vector<seen> all;
  const std::int64_t extremes[] = {std::numeric_limits<std::int64_t>::min(), std::numeric_limits<std::int64_t>::max(),
                                   0, -1, 1700000000000};
  {
    sluice::event_log log(dir.str(), opts);
    for (int round = 0; round < 60; ++round) {
      sluice::log_batch batch;
      std::vector<seen> want;
      // Mostly small batches; some past the 1 MiB batch bound, which encode cuts into several.
      const std::size_t n = round % 10 == 9 ? 1500 : 1 + rng() % 40;
      std::int64_t t = static_cast<std::int64_t>(rng() % 2'000'000'000'000ULL);
      for (std::size_t i = 0; i < n; ++i) {
        const int pick = static_cast<int>(rng() % 20);
        if (pick == 0) {
          t = extremes[rng() % 5];
        } else if (pick == 1) {
          t = static_cast<std::int64_t>(std::uint64_t{rng()} * 12345678901ULL);  // far from the batch's first
        } else {
          t = static_cast<std::int64_t>(static_cast<std::uint64_t>(t) + rng() % 2001 - 1000);  // near it (wrapping)
        }
        std::string payload = round % 10 == 9 && i % 3 == 0
                                  ? std::string(opts.max_record_bytes, static_cast<char>(i))  // batches of max-size records
                                  : random_payload(rng, opts.max_record_bytes);
        log.encode(batch, millis{t}, payload);
        want.push_back({all.size() + want.size(), t, std::move(payload)});
      }
      REQUIRE(batch.size() == n);
      std::vector<seen> in_batch;
      batch.for_each([&](millis time, std::string_view p) {
        in_batch.push_back({all.size() + in_batch.size(), time.count(), std::string(p)});
      });
      check_same(in_batch, want);
      CHECK(log.write(batch) == all.size());
      all.insert(all.end(), want.begin(), want.end());
      if (rng() % 4 == 0) {
        const std::int64_t at = extremes[rng() % 5];
        CHECK(log.append(millis{at}, "appended") == all.size());
        all.push_back({all.size(), at, "appended"});
        log.commit();
      }
      log.seal_if_due();
    }
  }
  const auto segments = sluice::list_segments(dir.str());
  check_same(read_range(segments, 0, UINT64_MAX), all);
  check_same(tail_all(dir.str()), all);
  for (int i = 0; i < 50; ++i) {
    const std::uint64_t a = rng() % all.size();
    const std::uint64_t b = a + rng() % 3000;
    check_same(read_range(segments, a, b), slice(all, a, b));
  }
  // Every batch is within the bound a reader accepts, and big writes were cut into several.
  std::size_t batches = 0;
  for (const auto& s : segments) {
    for (const auto& b : batches_of(s.path)) {
      CHECK(b.bytes <= sluice::detail::max_batch_bytes(opts.max_record_bytes));
      ++batches;
    }
  }
  CHECK(batches > 60);
  CHECK(segments.size() > 1);
}

TEST_CASE("log_tail: a batch arriving in pieces is delivered only once it is whole, all of it") {
  temp_dir dir;
  {
    sluice::event_log log(dir.str(), quick());
    log.append(millis{1}, "first");
  }
  std::vector<seen> records;
  for (std::uint64_t o = 1; o < 40; ++o) {
    records.push_back({o, static_cast<std::int64_t>(o) * 3 - 50, std::string(o % 7, 'r')});
  }
  const std::string batch = encode_batch(records);
  sluice::log_tail tail(dir.str());
  std::vector<seen> got;
  const auto collect = [&](const sluice::log_record& r) {
    got.push_back({r.offset, r.event_time.count(), std::string(r.payload)});
  };
  CHECK(tail.poll(collect) == 1);
  for (std::size_t at = 0; at < batch.size();) {
    const std::size_t piece = std::min<std::size_t>(batch.size() - at, 1 + at % 9);
    append_bytes(dir.segment(0), batch.substr(at, piece));
    at += piece;
    CAPTURE(at);
    CHECK(tail.poll(collect, 5) == (at == batch.size() ? 5 : 0));  // at most 5: the rest on later polls
    if (at < batch.size()) {
      CHECK(sluice::list_segments(dir.str()).back().end_offset == 1);
    }
  }
  while (tail.poll(collect, 5) > 0) {
  }
  REQUIRE(got.size() == 40);
  got.erase(got.begin());
  check_same(got, records);
  sluice::event_log log(dir.str(), quick());
  CHECK_FALSE(log.recovery());
  CHECK(log.head() == 40);
}

TEST_CASE(
    "event_log: version-1 segments are read; a version-1 active segment is sealed on open, new records go to version "
    "2") {
  SUBCASE("records in the active version-1 segment") {
    temp_dir dir;
    auto all = write_v1_log(dir, 5, {2});  // v1 segments [0, 3) sealed and [3, 5) active
    check_same(read_range(sluice::list_segments(dir.str()), 0, UINT64_MAX), all);
    check_same(read_range(sluice::list_segments(dir.str()), 4, 5), slice(all, 4, 5));
    check_same(tail_all(dir.str()), all);
    CHECK(sluice::first_offset_at_or_after(sluice::list_segments(dir.str()), millis{25}) == 3);
    {
      sluice::event_log log(dir.str(), quick());
      CHECK_FALSE(log.recovery());
      CHECK(log.head() == 5);
      CHECK(log.sealed_count() == 2);  // the version-1 active segment, sealed with a version-1 marker
      for (std::uint64_t o = 5; o < 9; ++o) {
        all.push_back({o, static_cast<std::int64_t>(o), "v2 record " + std::to_string(o)});
        CHECK(log.append(millis{all.back().time}, all.back().payload) == o);
      }
    }
    const auto segments = sluice::list_segments(dir.str());
    REQUIRE(segments.size() == 3);
    CHECK(read_file(dir.segment(3))[9] == 1);
    CHECK(read_file(dir.segment(5))[9] == 2);
    CHECK(segments[1].end_offset == 5);
    check_same(read_range(segments, 0, UINT64_MAX), all);
    check_same(read_range(segments, 4, 7), slice(all, 4, 7));
    check_same(tail_all(dir.str()), all);
  }
  SUBCASE("an empty active version-1 segment gets a version-2 header") {
    temp_dir dir;
    const auto all = write_v1_log(dir, 3, {2});  // segment 3 is empty
    {
      sluice::event_log log(dir.str(), quick());
      CHECK(log.sealed_count() == 1);
      CHECK(log.append(millis{7}, "new") == 3);
    }
    CHECK(read_file(dir.segment(3))[9] == 2);
    auto want = all;
    want.push_back({3, 7, "new"});
    check_same(read_range(sluice::list_segments(dir.str()), 0, UINT64_MAX), want);
  }
}

TEST_CASE("read_log: a forged batch length, count or varint is a log_error in a sealed segment and cut in the last") {
  const std::vector<seen> records = {{0, 5, "abc"}, {1, -9, ""}, {2, 6, "defgh"}};
  struct forgery {
    const char* what;
    std::string batch;
    std::string reason;
  };
  std::vector<forgery> cases;
  const std::string good = encode_batch(records);
  const auto with = [&](const char* what, std::string reason, auto&& change) {
    std::string b = good;
    change(b);
    cases.push_back({what, std::move(b), std::move(reason)});
  };
  with("a length past the largest batch", "batch length 4294967294 exceeds the largest batch (1048576 bytes)",
       [](std::string& b) { sluice::detail::put_le<std::uint32_t>(b.data(), 0xFFFFFFFEU); });
  with("a count no batch of its length can hold", "says it holds 2147483647 records",
       [](std::string& b) { sluice::detail::put_le<std::uint32_t>(b.data() + 4, 0x7FFFFFFFU); });
  with("no records", "says it holds 0 records",
       [](std::string& b) { sluice::detail::put_le<std::uint32_t>(b.data() + 4, 0); });
  with("one record more than there are", "record 3 of the batch runs past its end",
       [](std::string& b) { sluice::detail::put_le<std::uint32_t>(b.data() + 4, 4); });
  with("one record fewer", "records end 7 bytes before its end",
       [](std::string& b) { sluice::detail::put_le<std::uint32_t>(b.data() + 4, 2); });
  with("a payload length past the batch's end", "record 2 of the batch runs past its end", [](std::string& b) {
    b[batch_header + 5 + 2] = 0x7F;  // the third record's length
    fix_batch_crc(b);
  });
  with("a varint of eleven bytes", "record 0 of the batch runs past its end", [](std::string& b) {
    std::string body(11, static_cast<char>(0x80));
    body += std::string(b.begin() + batch_header, b.end());
    b = b.substr(0, batch_header) + body;
    sluice::detail::put_le<std::uint32_t>(b.data(), static_cast<std::uint32_t>(b.size() - batch_header));
    fix_batch_crc(b);
  });
  with("a payload over the segment's max record size", "exceeds max record size 5", [](std::string& b) {
    b = encode_batch({{0, 1, "123456"}});
  });
  for (const forgery& f : cases) {
    CAPTURE(f.what);
    temp_dir dir;
    std::filesystem::create_directories(dir.path);
    const auto header = [](std::uint64_t base) { return sluice::detail::encode_segment_header(base, 5); };
    // Segment 0: the good batch, the forged one, a seal marker at 3 + 3; segment 6 follows.
    std::string sealed = header(0) + encode_batch({{0, 1, "a"}, {1, 2, "b"}, {2, 3, "c"}}) + f.batch +
                         sluice::detail::encode_seal_marker(sluice::detail::segment_version, 6);
    write_file(dir.segment(0), sealed);
    write_file(dir.segment(6), header(6));
    const std::uint64_t forged_at = header_bytes + encode_batch({{0, 1, "a"}, {1, 2, "b"}, {2, 3, "c"}}).size();
    const std::string message = log_error_of([&] { read_range(sluice::list_segments(dir.str()), 0, UINT64_MAX); });
    CHECK(message.find("log " + dir.segment(0) + ": byte " + std::to_string(forged_at) + " (offset 3): ") == 0);
    CHECK(message.find(f.reason) != std::string::npos);
    CHECK(log_error_of([&] { tail_all(dir.str()); }) == message);

    // The same as the last segment: cut whole on open, reported with its reason.
    std::filesystem::remove(dir.segment(6));
    write_file(dir.segment(0), sealed.substr(0, forged_at + f.batch.size()));
    check_same(tail_all(dir.str()), {{0, 1, "a"}, {1, 2, "b"}, {2, 3, "c"}});
    sluice::event_log log(dir.str(), quick());
    REQUIRE(log.recovery());
    CHECK(log.recovery()->kept_bytes == forged_at);
    CHECK(log.recovery()->first_lost_offset == 3);
    CHECK(log.recovery()->reason.find(f.reason) != std::string::npos);
    CHECK(log.head() == 3);
  }
}

TEST_CASE("varints: bounds-checked both ways; zigzag time deltas round-trip any pair of times") {
  char buf[10];
  for (const std::uint64_t v : {std::uint64_t{0}, std::uint64_t{127}, std::uint64_t{128}, std::uint64_t{1} << 35U,
                                std::numeric_limits<std::uint64_t>::max()}) {
    const char* end = sluice::detail::put_varint(buf, v);
    std::uint64_t back = 1;
    CHECK(sluice::detail::get_varint(buf, end, back) == end);
    CHECK(back == v);
    CHECK(sluice::detail::get_varint(buf, end - 1, back) == nullptr);  // cut short
  }
  const char too_big[10] = {'\xff', '\xff', '\xff', '\xff', '\xff', '\xff', '\xff', '\xff', '\xff', '\x02'};
  std::uint64_t v = 0;
  CHECK(sluice::detail::get_varint(too_big, too_big + 10, v) == nullptr);  // past 64 bits
  for (const std::int64_t a : {std::numeric_limits<std::int64_t>::min(), std::int64_t{-1}, std::int64_t{0},
                               std::numeric_limits<std::int64_t>::max()}) {
    for (const std::int64_t b :
         {std::numeric_limits<std::int64_t>::min(), std::int64_t{7}, std::numeric_limits<std::int64_t>::max()}) {
      const auto first = static_cast<std::uint64_t>(a);
      const std::uint64_t z = sluice::detail::zigzag(static_cast<std::uint64_t>(b) - first);
      CHECK(static_cast<std::int64_t>(first + sluice::detail::unzigzag(z)) == b);
    }
  }
  CHECK(sluice::detail::zigzag(static_cast<std::uint64_t>(-1)) == 1);
  CHECK(sluice::detail::zigzag(1) == 2);
}
