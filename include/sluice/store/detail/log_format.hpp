// The event log's bytes on disk, and the one reader every consumer of them shares (the writer's
// recovery scan, read_log, list_segments, log_tail), so that all of them agree on what a valid,
// a torn and a corrupt record is.
//
// A segment file, DIR/<base offset, 20 digits>.seg, all integers little-endian:
//   header (32 bytes): "SLUICELOG" | version (2; 1 is still read) | 2 zero bytes | u32 max record bytes
//                      | u64 base offset | u32 crc32c of the 24 bytes before it | 4 zero bytes
//   version 2, batches of records (Kafka's v2 record batch, cut down):
//     batch header (20 bytes): u32 records bytes (L, after this header) | u32 record count (N)
//                      | u32 crc32c(first event time, records) | i64 first event time ms
//     records (L bytes, N of them): varint payload length | zigzag varint (event time - the batch's
//                      first event time, mod 2^64) | payload
//     seal marker:     a batch header with L = 0xFFFFFFFF, N = 0 and the segment's end offset in
//                      the time field (its crc over that field)
//   version 1, a record at a time:
//     record:          u32 payload length | u32 crc32c(length bytes, time bytes, payload) | i64 event time ms
//                      | payload
//     seal marker:     a record-shaped trailer with length 0xFFFFFFFF, an empty payload and the
//                      segment's end offset in the time field
// The seal marker is written last, so "sealed" and "where it ends" are known from the segment
// itself without rewriting anything in place.
//
// Version 2: a record costs its payload plus 2-4 bytes (16 in version 1), and one CRC covers a
// batch. A record's offset is implicit, as in version 1: the segment's base plus the records
// before it. (Kafka stores a batch's base offset outside its CRC, so that a broker may assign it;
// here the CRC is computed when the batch is encoded, off the writer's thread, before its offset
// is known, and a stored offset would need the CRC to skip it or be recomputed by the writer.)
// The count and the records' length are outside the CRC, so that an encoder updates them as it
// adds records: the reader parses a batch's N records and requires them to end exactly at its
// length (a wrong count cannot pass), and a wrong length moves the bytes the CRC covers. A batch
// holds at most max_batch_bytes (1 MiB, or one record of the segment's max size), so a forged
// length or count is refused before anything is allocated for it, and a reader's buffer stays
// bounded. A reader delivers a batch's records only once the whole batch is read and checked.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "sluice/core/crc32c.hpp"
#include "sluice/core/detail/bytes.hpp"
#include "sluice/core/time.hpp"
#include "sluice/io/posix_files.hpp"

namespace sluice {

/// One record as a reader sees it. The payload view is valid only during the callback.
struct log_record {
  std::uint64_t offset = 0;
  millis event_time;
  std::string_view payload;
};

/// A corrupt, missing or unreadable part of a log. The message names the file, and for a bad
/// record the byte position and the record offset:
/// "log /d/00000000000000000100.seg: byte 4242 (offset 117): crc mismatch".
class log_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {

inline constexpr std::size_t segment_header_bytes = 32;
inline constexpr std::size_t record_header_bytes = 16;      // version 1: a record's header, and its seal marker
inline constexpr std::size_t batch_header_bytes = 20;       // version 2: a batch's header, and its seal marker
inline constexpr std::size_t max_record_prefix_bytes = 15;  // version 2: a record's two varints, at most
inline constexpr std::uint32_t seal_length = 0xFFFFFFFFU;   // the seal marker's length field
/// The largest max_record_bytes: a batch of one such record still has a length below seal_length.
inline constexpr std::uint32_t max_record_limit = seal_length - 1 - max_record_prefix_bytes;
inline constexpr std::string_view segment_magic = "SLUICELOG";
inline constexpr char segment_version = 2;  // what the writer writes
inline constexpr std::size_t read_chunk_bytes = std::size_t{1} << 20U;
inline constexpr std::size_t batch_target_bytes = std::size_t{1} << 20U;

/// The largest batch (header included) a writer cuts, and a reader accepts, in a segment whose
/// max record size is `max_record`: 1 MiB, or one record of the max size with its header.
inline constexpr std::uint64_t max_batch_bytes(std::uint64_t max_record) {
  return std::max<std::uint64_t>(batch_target_bytes, batch_header_bytes + max_record_prefix_bytes + max_record);
}

/// Decodes the version-2 record at [p, end) of a batch whose first event time is `first_time`:
/// the pointer past it, or nullptr if its varints or payload run past `end` or its length
/// exceeds `max_payload`.
inline const char* decode_batch_record(const char* p, const char* end, std::uint64_t first_time,
                                       std::uint64_t max_payload, millis& time, std::string_view& payload) {
  std::uint64_t length = 0;
  std::uint64_t delta = 0;
  p = get_varint(p, end, length);
  if (p == nullptr || length > max_payload || (p = get_varint(p, end, delta)) == nullptr ||
      length > static_cast<std::uint64_t>(end - p)) {
    return nullptr;
  }
  time = millis{static_cast<std::int64_t>(first_time + unzigzag(delta))};
  payload = std::string_view(p, static_cast<std::size_t>(length));
  return p + length;
}

/// Calls fn(event_time, payload) for each record of the version-2 batches in `bytes` (encoded
/// by encode_record, so trusted but still bounds-checked: a malformed batch ends the walk).
template <class Fn>
void for_each_batch_record(std::string_view bytes, Fn&& fn) {
  for (std::size_t at = 0; bytes.size() - at >= batch_header_bytes;) {
    const char* h = bytes.data() + at;
    const std::size_t length = std::min<std::size_t>(get_le<std::uint32_t>(h), bytes.size() - at - batch_header_bytes);
    const auto count = get_le<std::uint32_t>(h + 4);
    const auto first_time = get_le<std::uint64_t>(h + 12);
    const char* p = h + batch_header_bytes;
    const char* end = p + length;
    millis time{};
    std::string_view payload;
    for (std::uint32_t i = 0; i < count && (p = decode_batch_record(p, end, first_time, UINT64_MAX, time, payload));
         ++i) {
      fn(time, payload);
    }
    at += batch_header_bytes + length;
  }
}

/// The version-2 batch being filled at the end of an encoder's bytes.
struct open_batch {
  std::size_t at = std::string::npos;  // where its header starts; npos: none open
  std::uint32_t count = 0;
  std::uint64_t first_time = 0;
  std::uint32_t crc = 0;  // of its first time and records so far
};

/// Appends one record to the open batch at the end of `out`, or to a new one when none is open
/// or the record would take the open one past `batch_limit` bytes. The batch's header is kept
/// whole after every record (length, count, CRC), so `out` is always a run of complete batches:
/// the CRC grows by the record's bytes alone, while they are in the cache.
inline void encode_record(std::string& out, open_batch& b, std::uint64_t batch_limit, std::uint64_t time,
                          std::string_view payload) {
  char prefix[max_record_prefix_bytes];
  char* const length_end = put_varint(prefix, payload.size());
  char* prefix_end = put_varint(length_end, zigzag(time - b.first_time));
  if (b.at == std::string::npos ||
      out.size() - b.at + static_cast<std::size_t>(prefix_end - prefix) + payload.size() > batch_limit) {
    b = open_batch{out.size(), 0, time, 0};
    char header[batch_header_bytes] = {};
    put_le<std::uint64_t>(header + 12, time);
    out.append(header, batch_header_bytes);
    b.crc = crc32c(header + 12, 8);
    prefix_end = put_varint(length_end, zigzag(0));
  }
  const std::size_t prefix_bytes = static_cast<std::size_t>(prefix_end - prefix);
  const std::size_t rec = out.size();
  out.append(prefix, prefix_bytes);  // append, not resize: no zero fill to overwrite
  out.append(payload);
  b.crc = crc32c(out.data() + rec, prefix_bytes + payload.size(), b.crc);
  ++b.count;
  char* h = out.data() + b.at;
  put_le<std::uint32_t>(h, static_cast<std::uint32_t>(out.size() - b.at - batch_header_bytes));
  put_le<std::uint32_t>(h + 4, b.count);
  put_le<std::uint32_t>(h + 8, b.crc);
}

/// The CRC of a version-1 record (or seal marker) at `rec`: its length, then time and payload.
inline std::uint32_t record_crc(const char* rec, std::size_t payload_bytes) {
  return crc32c(rec + 8, 8 + payload_bytes, crc32c(rec, 4));
}

/// Appends one version-1 record-shaped entry to `out`: a record, or with seal_length a seal marker.
inline void encode_v1_entry(std::string& out, std::uint32_t length, std::uint64_t time_field,
                            std::string_view payload) {
  const std::size_t at = out.size();
  out.resize(at + record_header_bytes + payload.size());
  char* p = out.data() + at;
  put_le<std::uint32_t>(p, length);
  put_le<std::uint64_t>(p + 8, time_field);
  if (!payload.empty()) {
    std::memcpy(p + record_header_bytes, payload.data(), payload.size());
  }
  put_le<std::uint32_t>(p + 4, record_crc(p, payload.size()));
}

/// Whether the seal_marker_bytes(version) bytes at `m` are a valid seal marker of `version`.
inline bool is_seal_marker(const char* m, char version) {
  if (version == 1) {
    return get_le<std::uint32_t>(m) == seal_length && get_le<std::uint32_t>(m + 4) == record_crc(m, 0);
  }
  return get_le<std::uint32_t>(m) == seal_length && get_le<std::uint32_t>(m + 4) == 0 &&
         get_le<std::uint32_t>(m + 8) == crc32c(m + 12, 8);
}
inline std::size_t seal_marker_bytes(char version) {
  return version == 1 ? record_header_bytes : batch_header_bytes;
}
inline std::uint64_t seal_marker_end(const char* m, char version) {
  return get_le<std::uint64_t>(m + (version == 1 ? 8 : 12));
}

/// A segment of `version` ends with this: sealed, its records end at offset `end`.
inline std::string encode_seal_marker(char version, std::uint64_t end) {
  std::string m;
  if (version == 1) {
    encode_v1_entry(m, seal_length, end, {});
  } else {
    m.resize(batch_header_bytes);
    put_le<std::uint32_t>(m.data(), seal_length);
    put_le<std::uint64_t>(m.data() + 12, end);
    put_le<std::uint32_t>(m.data() + 8, crc32c(m.data() + 12, 8));
  }
  return m;
}

inline std::string encode_segment_header(std::uint64_t base, std::uint32_t max_record_bytes,
                                         char version = segment_version) {
  std::string h(segment_header_bytes, '\0');
  segment_magic.copy(h.data(), segment_magic.size());
  h[segment_magic.size()] = version;
  put_le<std::uint32_t>(h.data() + 12, max_record_bytes);
  put_le<std::uint64_t>(h.data() + 16, base);
  put_le<std::uint32_t>(h.data() + 24, crc32c(h.data(), 24));
  return h;
}

[[noreturn]] inline void throw_errno(const std::string& path, const char* action) {
  throw log_error("log " + path + ": cannot " + action + ": " + std::strerror(errno));
}

inline std::string segment_path(const std::string& dir, std::uint64_t base) {
  char name[32];
  std::snprintf(name, sizeof name, "%020llu.seg", static_cast<unsigned long long>(base));
  return dir + (dir.ends_with('/') ? "" : "/") + name;
}

struct segment_file {
  std::uint64_t base = 0;
  std::string path;
};

/// The segment files of `dir` in base-offset order; nullopt when `dir` does not exist.
inline std::optional<std::vector<segment_file>> list_segment_files(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    if (errno == ENOENT) {
      return std::nullopt;
    }
    throw_errno(dir, "list the directory");
  }
  std::vector<segment_file> files;
  while (const dirent* e = ::readdir(d)) {
    const std::string_view name(e->d_name);
    std::uint64_t base = 0;
    const char* digits_end = name.data() + 20;
    if (name.size() == 24 && name.ends_with(".seg") &&
        std::all_of(name.data(), digits_end, [](char c) { return c >= '0' && c <= '9'; }) &&
        std::from_chars(name.data(), digits_end, base).ptr == digits_end) {
      files.push_back({base, segment_path(dir, base)});
    }
  }
  ::closedir(d);
  std::sort(files.begin(), files.end(), [](const segment_file& a, const segment_file& b) { return a.base < b.base; });
  return files;
}

/// "missing segment: offsets [a, b) ...": the error for a hole in the offsets of a log directory.
[[noreturn]] inline void throw_missing(const std::string& dir, std::uint64_t from, std::uint64_t to,
                                       const std::string& where) {
  throw log_error("log " + dir + ": missing segment: offsets [" + std::to_string(from) + ", " + std::to_string(to) +
                  ") " + where);
}

/// Reads one segment front to back through a bounded buffer of large preads (a batch, or a
/// version-1 record, is always whole in the buffer, so a payload is a view). It never allocates on
/// a length it has not checked against the segment's max record size and the file's end, and it
/// never maps the file: a writer truncating a torn tail under it cannot fault the reader.
class segment_reader {
 public:
  enum class step { record, end, sealed, incomplete, corrupt };
  enum class header_state { ok, torn, bad };

  /// The reader of `path`, or nullopt when the file does not exist (yet, or any more).
  static std::optional<segment_reader> open(std::string path, std::uint64_t base) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) {
        return std::nullopt;
      }
      throw_errno(path, "open");
    }
    return segment_reader(std::move(path), base, unique_fd(fd));
  }

  /// Reads and checks the header; on ok the reader stands at the first record. torn: the file is
  /// shorter than a header (being created, or cut by a crash).
  header_state read_header() {
    refresh();
    pos_ = 0;
    offset_ = base_;
    left_ = 0;
    if (size_ < segment_header_bytes) {
      return problem(header_state::torn, "torn segment header (" + std::to_string(size_) + " of " +
                                             std::to_string(segment_header_bytes) + " bytes)");
    }
    if (!fetch(0, segment_header_bytes, false)) {
      return problem(header_state::torn, "torn segment header");
    }
    const char* h = at(0);
    const auto base = get_le<std::uint64_t>(h + 16);
    const char version = h[segment_magic.size()];
    if (std::string_view(h, segment_magic.size()) != segment_magic) {
      return problem(header_state::bad, "not a log segment (no SLUICELOG header)");
    }
    if (version != 1 && version != 2) {
      return problem(header_state::bad, "unsupported segment version " + std::to_string(version));
    }
    if (get_le<std::uint32_t>(h + 24) != crc32c(h, 24)) {
      return problem(header_state::bad, "segment header crc mismatch");
    }
    if (base != base_) {
      return problem(header_state::bad, "segment header says base offset " + std::to_string(base));
    }
    version_ = version;
    max_record_ = get_le<std::uint32_t>(h + 12);
    pos_ = segment_header_bytes;
    return header_state::ok;
  }

  /// Learn how long the file is now (a writer may have appended).
  void refresh() {
    struct stat st {};
    if (::fstat(fd_.get(), &st) != 0) {
      throw_errno(path_, "stat");
    }
    size_ = static_cast<std::uint64_t>(st.st_size);
  }

  /// The next record at or after offset `from`. On `record` record() holds it; on any other step
  /// the reader stays at the batch (or version-1 record) where it stopped (reason() says why for
  /// incomplete and corrupt), and the buffered bytes are dropped so that a retry reads the file
  /// afresh. A batch with a record at or after `from` is checked whole (its CRC, and every
  /// record's lengths) before any record of it is delivered; batches (version-1 records) wholly
  /// before `from` are hopped by their headers, lengths checked but no CRC.
  step next(std::uint64_t from = 0) {
    while (true) {
      const step s = left_ > 0 ? next_in_batch() : version_ == 1 ? next_v1_record(from) : read_batch(from);
      if (s != step::record || record_.offset >= from) {
        return s;
      }
    }
  }

  /// The segment's end offset from a seal marker in its last bytes, if it has one. (On a reader
  /// that has not started on the records: it reuses their buffer.)
  std::optional<std::uint64_t> sealed_end_from_trailer() {
    const std::size_t n = seal_marker_bytes(version_);
    if (size_ < segment_header_bytes + n || !fetch(size_ - n, n, false)) {
      return std::nullopt;
    }
    const char* m = at(size_ - n);
    if (!is_seal_marker(m, version_)) {
      return std::nullopt;
    }
    return seal_marker_end(m, version_);
  }

  /// Throws log_error naming the file, pos() and offset(), with `why` (default: reason()).
  [[noreturn]] void fail(const std::string& why = {}) const {
    throw log_error("log " + path_ + ": byte " + std::to_string(pos_) + " (offset " + std::to_string(offset_) +
                    "): " + (why.empty() ? reason_ : why));
  }

  [[nodiscard]] const log_record& record() const { return record_; }
  [[nodiscard]] const std::string& reason() const { return reason_; }
  [[nodiscard]] const std::string& path() const { return path_; }
  [[nodiscard]] std::uint64_t base() const { return base_; }
  /// The byte position of the batch holding the next record (of the next batch once the records
  /// of one are all delivered); in version 1 of the next record.
  [[nodiscard]] std::uint64_t pos() const { return pos_; }
  [[nodiscard]] std::uint64_t offset() const { return offset_; }  // record offset of the next record
  [[nodiscard]] std::uint64_t size() const { return size_; }      // the file size at the last refresh
  [[nodiscard]] std::uint32_t max_record() const { return max_record_; }
  [[nodiscard]] char version() const { return version_; }

 private:
  segment_reader(std::string path, std::uint64_t base, unique_fd fd)
      : path_(std::move(path)), fd_(std::move(fd)), base_(base), offset_(base) {}

  template <class State>
  State problem(State s, std::string why) {
    reason_ = std::move(why);
    return s;
  }
  step stop(step s, std::string why) {
    buf_len_ = 0;
    return problem(s, std::move(why));
  }

  /// A seal marker at pos(): sealed if its end offset is where the records ended.
  step sealed(std::uint64_t end) {
    if (end != offset_ || offset_ == base_) {  // never sealed empty: a reader would move to itself
      return stop(step::corrupt, "seal marker says the segment ends at offset " + std::to_string(end));
    }
    return step::sealed;
  }

  /// Makes the `n`-byte header of the batch or version-1 record (`what`) at pos() whole in the
  /// buffer; else the step to stop with: the end, or a torn header.
  std::optional<step> entry_header(std::size_t n, const char* what) {
    if (pos_ >= size_) {
      return stop(step::end, "");
    }
    const std::uint64_t avail = size_ - pos_;
    if (avail < n) {
      return stop(step::incomplete, std::string("torn ") + what + " header (" + std::to_string(avail) + " of " +
                                        std::to_string(n) + " bytes)");
    }
    if (!fetch(pos_, n)) {
      return stop(step::incomplete, std::string("torn ") + what + " header (the file shrank while being read)");
    }
    return std::nullopt;
  }

  /// The version-1 record at pos(); its CRC is checked unless it is before `from`.
  step next_v1_record(std::uint64_t from) {
    if (const auto s = entry_header(record_header_bytes, "record")) {
      return *s;
    }
    const std::uint64_t avail = size_ - pos_;
    const auto length = get_le<std::uint32_t>(at(pos_));
    const auto crc = get_le<std::uint32_t>(at(pos_) + 4);
    const auto time = get_le<std::uint64_t>(at(pos_) + 8);
    if (is_seal_marker(at(pos_), 1)) {
      return sealed(time);
    }
    if (offset_ == UINT64_MAX) {  // its end offset would not fit: only a forged header gets here
      return stop(step::corrupt, "record offset overflows 64 bits");
    }
    if (length > max_record_) {
      return stop(step::corrupt,
                  "length " + std::to_string(length) + " exceeds max record size " + std::to_string(max_record_));
    }
    const std::uint64_t total = record_header_bytes + length;
    if (avail < total) {
      return stop(step::incomplete,
                  "torn record (" + std::to_string(avail) + " of " + std::to_string(total) + " bytes)");
    }
    if (!fetch(pos_, total)) {
      return stop(step::incomplete, "torn record (the file shrank while being read)");
    }
    const char* rec = at(pos_);
    if (offset_ >= from && crc != record_crc(rec, length)) {
      return stop(step::corrupt, "crc mismatch");
    }
    record_ = log_record{offset_, millis{static_cast<std::int64_t>(time)}, {rec + record_header_bytes, length}};
    pos_ += total;
    ++offset_;
    return step::record;
  }

  /// The version-2 batch at pos(): hopped whole while all its records are before `from`, else
  /// checked whole and its first record delivered.
  step read_batch(std::uint64_t from) {
    while (true) {
      if (const auto s = entry_header(batch_header_bytes, "batch")) {
        return *s;
      }
      const std::uint64_t avail = size_ - pos_;
      const char* h = at(pos_);
      const auto length = get_le<std::uint32_t>(h);
      const auto count = get_le<std::uint32_t>(h + 4);
      if (is_seal_marker(h, 2)) {
        return sealed(seal_marker_end(h, 2));
      }
      const std::uint64_t limit = max_batch_bytes(max_record_);
      if (batch_header_bytes + std::uint64_t{length} > limit) {
        return stop(step::corrupt, "batch length " + std::to_string(length) + " exceeds the largest batch (" +
                                       std::to_string(limit) + " bytes) for max record size " +
                                       std::to_string(max_record_));
      }
      if (count == 0 || count > length / 2) {  // a record takes 2 bytes at least
        return stop(step::corrupt, "batch of " + std::to_string(length) + " bytes says it holds " +
                                       std::to_string(count) + " records");
      }
      if (count > UINT64_MAX - offset_) {  // only a forged header gets here
        return stop(step::corrupt, "record offsets overflow 64 bits");
      }
      const std::uint64_t total = batch_header_bytes + length;
      if (avail < total) {
        return stop(step::incomplete,
                    "torn batch (" + std::to_string(avail) + " of " + std::to_string(total) + " bytes)");
      }
      if (from > offset_ && from - offset_ >= count) {
        pos_ += total;
        offset_ += count;
        continue;
      }
      if (!fetch(pos_, total)) {
        return stop(step::incomplete, "torn batch (the file shrank while being read)");
      }
      h = at(pos_);
      if (get_le<std::uint32_t>(h + 8) != crc32c(h + 12, 8 + std::size_t{length})) {
        return stop(step::corrupt, "crc mismatch");
      }
      first_time_ = get_le<std::uint64_t>(h + 12);
      rec_at_ = pos_ + batch_header_bytes;
      batch_end_ = pos_ + total;
      const char* p = at(rec_at_);
      const char* end = at(batch_end_);
      millis time{};
      std::string_view payload;
      for (std::uint32_t i = 0; i < count; ++i) {
        if ((p = decode_batch_record(p, end, first_time_, max_record_, time, payload)) == nullptr) {
          return stop(step::corrupt, "record " + std::to_string(i) +
                                         " of the batch runs past its end or exceeds max "
                                         "record size " +
                                         std::to_string(max_record_));
        }
      }
      if (p != end) {
        return stop(step::corrupt, "the batch's " + std::to_string(count) + " records end " + std::to_string(end - p) +
                                       " bytes before its end");
      }
      left_ = count;
      return next_in_batch();
    }
  }

  /// The next record of the batch read_batch checked.
  step next_in_batch() {
    const char* start = at(rec_at_);
    millis time{};
    std::string_view payload;
    const char* next = decode_batch_record(start, at(batch_end_), first_time_, max_record_, time, payload);
    record_ = log_record{offset_, time, payload};
    rec_at_ += static_cast<std::uint64_t>(next - start);
    ++offset_;
    if (--left_ == 0) {
      pos_ = batch_end_;
    }
    return step::record;
  }

  [[nodiscard]] const char* at(std::uint64_t file_pos) const { return buf_.data() + (file_pos - buf_at_); }

  /// Make bytes [from, from + n) of the file whole in the buffer, reading ahead up to a chunk
  /// unless `ahead` is false (a header or a seal marker alone); false if the file is shorter.
  /// Bytes from `from` on that the buffer holds already are kept, not read again.
  bool fetch(std::uint64_t from, std::uint64_t n, bool ahead = true) {
    if (from >= buf_at_ && from + n <= buf_at_ + buf_len_) {
      return true;
    }
    if (from + n > size_) {
      return false;
    }
    const auto want = static_cast<std::size_t>(
        std::min<std::uint64_t>(std::max<std::uint64_t>(n, ahead ? read_chunk_bytes : 0), size_ - from));
    if (buf_.size() < want) {
      buf_.resize(want);
    }
    std::size_t got = 0;
    if (from >= buf_at_ && from < buf_at_ + buf_len_) {
      got = static_cast<std::size_t>(std::min<std::uint64_t>(buf_at_ + buf_len_ - from, want));
      std::memmove(buf_.data(), buf_.data() + (from - buf_at_), got);
    }
    while (got < want) {
      const ssize_t r = ::pread(fd_.get(), buf_.data() + got, want - got, static_cast<off_t>(from + got));
      if (r < 0 && errno == EINTR) {
        continue;
      }
      if (r < 0) {
        throw_errno(path_, "read");
      }
      if (r == 0) {
        break;
      }
      got += static_cast<std::size_t>(r);
    }
    buf_at_ = from;
    buf_len_ = got;
    return got >= n;
  }

  std::string path_;
  unique_fd fd_;
  std::uint64_t base_ = 0;
  std::uint64_t size_ = 0;
  char version_ = segment_version;
  std::uint32_t max_record_ = 0;
  std::uint64_t pos_ = 0;
  std::uint64_t offset_ = 0;
  // The checked batch being delivered (version 2): records left, where the next one is, its end.
  std::uint64_t left_ = 0;
  std::uint64_t rec_at_ = 0;
  std::uint64_t batch_end_ = 0;
  std::uint64_t first_time_ = 0;
  std::string buf_;
  std::uint64_t buf_at_ = 0;
  std::size_t buf_len_ = 0;
  log_record record_;
  std::string reason_;
};

/// Calls fn(record); false when fn returns a bool and it is false (the caller should stop).
template <class Fn>
bool visit_record(Fn& fn, const log_record& r) {
  if constexpr (std::is_convertible_v<std::invoke_result_t<Fn&, const log_record&>, bool>) {
    return static_cast<bool>(fn(r));
  } else {
    fn(r);
    return true;
  }
}

}  // namespace detail
}  // namespace sluice
