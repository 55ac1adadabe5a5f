// Fuzz target: the event log's segment reader and crash recovery (sluice/store/log_reader.hpp,
// event_log.hpp, detail/log_format.hpp). The input becomes up to four segment files in a fresh
// directory, which are then listed, read whole and in a range, searched by time, tailed, and
// opened by the writer (which cuts a torn tail), appended to, sealed and read again. Nothing may
// crash or throw anything but sluice::log_error; and what does not throw must agree: the
// listing has no holes, read_log yields offsets 0..end in order, the tail yields a prefix of
// them, and the writer keeps exactly the records read_log saw and adds its own after them.
//
// Input: [flags][u16 from][u16 span][u64 time][u16 size per segment but the last][segment
// bytes...]. Flags: bits 0-1 the number of segments - 1; bit 2 fix the CRCs (header, batches,
// version-1 records, seal markers) and the batches' record counts so that the fuzzer's changes
// reach past them; bit 3 (with bit 2) make the segments consecutive (each header's base and file
// name the previous segment's end, each seal marker's offset the records before it); bit 4 a
// small max record size for the writer. A file is named after the base offset in its header, or
// the previous one's end if it has none. Segments of version 1 (a record at a time) and 2
// (record batches) are both read, as the header's version byte says.
//
// Flags 0xFF instead: the rest is records ([u64 time][u8 + u8 payload size][payload]...) that
// log_batch encodes; for_each, and read_log after write, must give them back.
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "fuzz_support.hpp"
#include "sluice/store/event_log.hpp"
#include "sluice/store/log_reader.hpp"

namespace {

namespace d = sluice::detail;

struct seen_record {
  std::uint64_t offset = 0;
  std::int64_t time = 0;
  std::string payload;
  bool operator==(const seen_record&) const = default;
};

/// Version 1: the number of whole records in a segment from `pos` on. With `fix`, rewrites the
/// CRCs of every whole record and seal marker; with `base` too, each seal marker's end offset
/// (the records before it).
std::uint64_t walk_v1_records(std::string& seg, std::size_t pos, bool fix, const std::uint64_t* base) {
  std::uint64_t records = 0;
  while (pos + d::record_header_bytes <= seg.size()) {
    char* rec = seg.data() + pos;
    const auto length = d::get_le<std::uint32_t>(rec);
    std::size_t payload = 0;
    if (length == d::seal_length) {
      if (fix && base != nullptr) {
        d::put_le<std::uint64_t>(rec + 8, *base + records);
      }
    } else if (length <= seg.size() - pos - d::record_header_bytes) {
      payload = length;
      ++records;
    } else {
      break;  // a torn record: leave it torn
    }
    if (fix) {
      d::put_le<std::uint32_t>(rec + 4, d::record_crc(rec, payload));
    }
    pos += d::record_header_bytes + payload;
  }
  return records;
}

/// Version 2: the number of records in the whole batches of a segment from `pos` on (as their
/// counts say). With `fix`, rewrites the CRC of every whole batch and seal marker, and a batch's
/// count to the records that parse in it when they fill it exactly; with `base` too, each seal
/// marker's end offset (the records before it).
std::uint64_t walk_batches(std::string& seg, std::size_t pos, bool fix, const std::uint64_t* base) {
  std::uint64_t records = 0;
  while (pos + d::batch_header_bytes <= seg.size()) {
    char* h = seg.data() + pos;
    const auto length = d::get_le<std::uint32_t>(h);
    std::size_t body = 0;
    if (length == d::seal_length) {
      if (fix && base != nullptr) {
        d::put_le<std::uint64_t>(h + 12, *base + records);
      }
      if (fix) {
        d::put_le<std::uint32_t>(h + 4, 0);
      }
    } else if (length <= seg.size() - pos - d::batch_header_bytes) {
      body = length;
      if (fix) {
        const char* p = h + d::batch_header_bytes;
        const char* end = p + length;
        std::uint32_t parsed = 0;
        sluice::millis time{};
        std::string_view payload;
        while (p != nullptr && p != end) {
          p = d::decode_batch_record(p, end, 0, UINT64_MAX, time, payload);
          parsed += p != nullptr ? 1 : 0;
        }
        if (p == end) {
          d::put_le<std::uint32_t>(h + 4, parsed);
        }
      }
      records += d::get_le<std::uint32_t>(h + 4);
    } else {
      break;  // a torn batch: leave it torn
    }
    if (fix) {
      d::put_le<std::uint32_t>(h + 8, sluice::crc32c(h + 12, 8 + body));
    }
    pos += d::batch_header_bytes + body;
  }
  return records;
}

/// The number of records in the whole batches (version 1: records) of a segment. With `fix`,
/// rewrites the CRCs of its header and of its batches, records and seal markers; with `base`
/// too, the header's base offset and each seal marker's end offset.
std::uint64_t walk_segment(std::string& seg, bool fix, const std::uint64_t* base) {
  if (seg.size() < d::segment_header_bytes) {
    return 0;
  }
  if (fix && base != nullptr) {
    d::put_le<std::uint64_t>(seg.data() + 16, *base);
  }
  if (fix) {
    d::put_le<std::uint32_t>(seg.data() + 24, sluice::crc32c(seg.data(), 24));
  }
  return seg[d::segment_magic.size()] == 1 ? walk_v1_records(seg, d::segment_header_bytes, fix, base)
                                           : walk_batches(seg, d::segment_header_bytes, fix, base);
}

/// log_batch: what encode puts in a batch, for_each gives back, records cut from the fuzzer's
/// bytes (sizes up to the max, times from them too) into batches of a small max record size.
void check_log_batch(std::string_view bytes, const std::string& dir) {
  sluice::log_options opts;
  opts.fsync = sluice::fsync_policy{sluice::fsync_policy::kind::never};
  opts.max_record_bytes = 300;
  sluice::event_log log(dir, opts);
  sluice::log_batch batch;
  std::vector<seen_record> want;
  fuzz::input in(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
  while (in.rest().size() > 0) {
    const std::uint32_t lo = in.u32();
    const auto time = static_cast<std::int64_t>(static_cast<std::uint64_t>(in.u32()) << 32U | lo);
    const std::size_t size = in.byte() + in.byte();
    const std::string payload(in.take(std::min<std::size_t>(size, opts.max_record_bytes)));
    log.encode(batch, sluice::millis{time}, payload);
    want.push_back({want.size(), time, payload});
  }
  std::vector<seen_record> got;
  batch.for_each([&](sluice::millis t, std::string_view p) { got.push_back({got.size(), t.count(), std::string(p)}); });
  FUZZ_CHECK(got == want);
  FUZZ_CHECK(batch.size() == want.size());
  FUZZ_CHECK(log.write(batch) == 0);
  std::vector<seen_record> read;
  sluice::read_log(log.segments(), 0, UINT64_MAX, [&](const sluice::log_record& r) {
    read.push_back({r.offset, r.event_time.count(), std::string(r.payload)});
  });
  FUZZ_CHECK(read == want);
}

void write_file(const std::string& path, std::string_view bytes) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  FUZZ_CHECK(f != nullptr);
  FUZZ_CHECK(std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size());
  FUZZ_CHECK(std::fclose(f) == 0);
}

/// A directory for this process's logs, on tmpfs where there is one.
const std::string& scratch_root() {
  static const std::string& root = *new std::string([] {  // never destroyed: the atexit cleanup uses it
    std::string tmpl = (std::filesystem::is_directory("/dev/shm") ? "/dev/shm" : "/tmp");
    tmpl += "/sluice_fuzz_log_XXXXXX";
    FUZZ_CHECK(::mkdtemp(tmpl.data()) != nullptr);
    std::atexit([] {
      std::error_code ignored;
      std::filesystem::remove_all(scratch_root(), ignored);
    });
    return tmpl;
  }());
  return root;
}

/// The records [from, to) of the log, by read_log (which throws log_error for a corrupt one).
std::vector<seen_record> read_all(const std::vector<sluice::log_segment>& segs, std::uint64_t from, std::uint64_t to,
                                  std::uint64_t& visited) {
  std::vector<seen_record> out;
  visited = sluice::read_log(segs, from, to, [&](const sluice::log_record& r) {
    out.push_back({r.offset, r.event_time.count(), std::string(r.payload)});
  });
  FUZZ_CHECK(visited == out.size());
  return out;
}

void check_listing(const std::vector<sluice::log_segment>& segs) {
  for (std::size_t i = 0; i < segs.size(); ++i) {
    FUZZ_CHECK(segs[i].index == i);
    FUZZ_CHECK(segs[i].base_offset <= segs[i].end_offset);
    FUZZ_CHECK(segs[i].sealed == (i + 1 < segs.size()));
    FUZZ_CHECK(i == 0 ? segs[i].base_offset == 0 : segs[i].base_offset == segs[i - 1].end_offset);
  }
}

void fuzz_log(fuzz::input& in, const std::string& dir) {
  const std::uint8_t flags = in.byte();
  const std::uint16_t range_from = in.u16();
  const std::uint16_t range_span = in.u16();
  const std::uint32_t time_low = in.u32();
  const auto time = static_cast<std::int64_t>(static_cast<std::uint64_t>(in.u32()) << 32U | time_low);
  const std::size_t count = 1 + (flags & 3U);
  const bool fix = (flags & 4U) != 0;
  const bool consecutive = fix && (flags & 8U) != 0;
  std::vector<std::size_t> sizes;
  for (std::size_t i = 0; i + 1 < count; ++i) {
    sizes.push_back(in.u16());
  }
  std::vector<std::string> segments;
  for (const std::size_t n : sizes) {
    segments.emplace_back(in.take(n));
  }
  segments.emplace_back(in.rest());

  // The segment files, named after the base offsets in their headers (or, consecutive or too
  // short to have one, after the previous segment's end).
  std::uint64_t next_base = 0;
  for (std::string& seg : segments) {
    const std::uint64_t walked_base = next_base;
    next_base += walk_segment(seg, fix, consecutive ? &walked_base : nullptr);
    const std::uint64_t base = consecutive || seg.size() < 24 ? walked_base : d::get_le<std::uint64_t>(seg.data() + 16);
    write_file(d::segment_path(dir, base), seg);
  }

  // Readers.
  std::vector<seen_record> all;
  bool read_ok = false;
  try {
    const auto segs = sluice::list_segments(dir);
    check_listing(segs);
    const std::uint64_t end = segs.empty() ? 0 : segs.back().end_offset;
    std::uint64_t visited = 0;
    all = read_all(segs, 0, end, visited);
    FUZZ_CHECK(visited == end);
    for (std::size_t i = 0; i < all.size(); ++i) {
      FUZZ_CHECK(all[i].offset == i);
    }
    read_ok = true;
    const std::uint64_t from = range_from % (end + 2);
    const std::uint64_t to = from + range_span % (end + 2);
    const auto some = read_all(segs, from, to, visited);
    const std::uint64_t want = from >= end ? 0 : std::min(to, end) - from;
    FUZZ_CHECK(some.size() == want);
    for (std::size_t i = 0; i < some.size(); ++i) {
      FUZZ_CHECK(some[i] == all[from + i]);
    }
    std::uint64_t first = end;
    for (const auto& r : all) {
      if (r.time >= time) {
        first = r.offset;
        break;
      }
    }
    FUZZ_CHECK(sluice::first_offset_at_or_after(segs, sluice::millis{time}) == first);
  } catch (const sluice::log_error&) {
  }

  try {
    sluice::log_tail tail(dir);
    std::vector<seen_record> tailed;
    for (int polls = 0; polls < 100; ++polls) {
      if (tail.poll([&](const sluice::log_record& r) {
            tailed.push_back({r.offset, r.event_time.count(), std::string(r.payload)});
          }) == 0) {
        break;
      }
    }
    FUZZ_CHECK(tail.position() == (tailed.empty() ? 0 : tailed.back().offset + 1));
    if (read_ok) {
      FUZZ_CHECK(tailed.size() <= all.size());
      for (std::size_t i = 0; i < tailed.size(); ++i) {
        FUZZ_CHECK(tailed[i] == all[i]);
      }
    }
  } catch (const sluice::log_error&) {
  }

  // The writer: recovery, then two appends around a seal.
  sluice::log_options opts;
  opts.fsync = sluice::fsync_policy{sluice::fsync_policy::kind::never};
  opts.max_record_bytes = (flags & 16U) != 0 ? 64 : std::uint32_t{1} << 20U;
  const std::string payload = segments.front().substr(0, 8);
  const std::int64_t later_time = ~time;  // another time, without overflow
  std::uint64_t head = 0;
  try {
    sluice::event_log log(dir, opts);
    head = log.head();
    if (read_ok) {
      FUZZ_CHECK(head == all.size());
    }
    FUZZ_CHECK(log.append(sluice::millis{time}, payload) == head);
    log.commit();
    log.seal();
    FUZZ_CHECK(log.append(sluice::millis{later_time}, "after the seal") == head + 1);
    log.commit();
  } catch (const sluice::log_error&) {
    return;
  }
  if (!read_ok) {
    return;  // a sealed segment the writer does not scan may be corrupt: nothing to compare
  }
  const auto segs = sluice::list_segments(dir);
  check_listing(segs);
  std::uint64_t visited = 0;
  const auto after = read_all(segs, 0, segs.back().end_offset, visited);
  FUZZ_CHECK(after.size() == head + 2);
  for (std::size_t i = 0; i < head; ++i) {
    FUZZ_CHECK(after[i] == all[i]);
  }
  FUZZ_CHECK((after[head] == seen_record{head, time, payload}));
  FUZZ_CHECK((after[head + 1] == seen_record{head + 1, later_time, "after the seal"}));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static unsigned long long run = 0;
  const std::string dir = scratch_root() + "/" + std::to_string(run++);
  std::filesystem::create_directory(dir);
  fuzz::input in(data, size);
  if (size > 0 && data[0] == 0xFF) {  // flags no other input uses
    check_log_batch(in.rest().substr(1), dir);
  } else {
    fuzz_log(in, dir);
  }
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
  return 0;
}
