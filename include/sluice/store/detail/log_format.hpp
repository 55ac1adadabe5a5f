// The event log's bytes on disk, and the one reader every consumer of them shares (the writer's
// recovery scan, read_log, list_segments, log_tail), so that all of them agree on what a valid,
// a torn and a corrupt record is.
//
// A segment file, DIR/<base offset, 20 digits>.seg, all integers little-endian:
//   header (32 bytes): "SLUICELOG" | version 1 | 2 zero bytes | u32 max record bytes | u64 base offset
//                      | u32 crc32c of the 24 bytes before it | 4 zero bytes
//   records:           u32 payload length | u32 crc32c(length bytes, time bytes, payload) | i64 event time ms
//                      | payload
//   seal marker:       a record-shaped trailer with length 0xFFFFFFFF, an empty payload and the segment's
//                      end offset in the time field: written last, so "sealed" and "where it ends" are
//                      known from the segment itself without rewriting anything in place.
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
#include "sluice/core/time.hpp"

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
inline constexpr std::size_t record_header_bytes = 16;
inline constexpr std::uint32_t seal_length = 0xFFFFFFFFU;  // the seal marker's length field
inline constexpr std::string_view segment_magic = "SLUICELOG";
inline constexpr char segment_version = 1;
inline constexpr std::size_t read_chunk_bytes = std::size_t{1} << 20U;

template <class U>
void put_le(char* out, U v) {
  for (std::size_t i = 0; i < sizeof(U); ++i) {
    out[i] = static_cast<char>((v >> (8U * i)) & 0xFFU);
  }
}

template <class U>
U get_le(const char* in) {
  U v = 0;
  for (std::size_t i = 0; i < sizeof(U); ++i) {
    v |= static_cast<U>(static_cast<U>(static_cast<unsigned char>(in[i])) << (8U * i));
  }
  return v;
}

/// The CRC of a record (or seal marker) at `rec`: its length bytes, then time and payload.
inline std::uint32_t record_crc(const char* rec, std::size_t payload_bytes) {
  return crc32c(rec + 8, 8 + payload_bytes, crc32c(rec, 4));
}

/// Appends one record-shaped entry to `out`: a record, or with seal_length a seal marker.
inline void encode_entry(std::string& out, std::uint32_t length, std::uint64_t time_field, std::string_view payload) {
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

inline std::string encode_segment_header(std::uint64_t base, std::uint32_t max_record_bytes) {
  std::string h(segment_header_bytes, '\0');
  segment_magic.copy(h.data(), segment_magic.size());
  h[segment_magic.size()] = segment_version;
  put_le<std::uint32_t>(h.data() + 12, max_record_bytes);
  put_le<std::uint64_t>(h.data() + 16, base);
  put_le<std::uint32_t>(h.data() + 24, crc32c(h.data(), 24));
  return h;
}

[[noreturn]] inline void throw_errno(const std::string& path, const char* action) {
  throw log_error("log " + path + ": cannot " + action + ": " + std::strerror(errno));
}

/// A file descriptor closed when it goes out of scope.
class unique_fd {
 public:
  unique_fd() = default;
  explicit unique_fd(int fd) : fd_(fd) {}
  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;
  unique_fd(unique_fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  unique_fd& operator=(unique_fd&& o) noexcept {
    if (this != &o) {
      reset(std::exchange(o.fd_, -1));
    }
    return *this;
  }
  ~unique_fd() { reset(); }
  void reset(int fd = -1) {
    if (fd_ >= 0) {
      ::close(fd_);
    }
    fd_ = fd;
  }
  [[nodiscard]] int get() const { return fd_; }
  [[nodiscard]] bool is_open() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

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

/// Reads one segment front to back through a bounded buffer of large preads (a record is always
/// whole in the buffer, so its payload is a view). It never allocates on a length it has not
/// checked against the segment's max record size and the file's end, and it never maps the file:
/// a writer truncating a torn tail under it cannot fault the reader.
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
    if (size_ < segment_header_bytes) {
      return problem(header_state::torn, "torn segment header (" + std::to_string(size_) + " of " +
                                             std::to_string(segment_header_bytes) + " bytes)");
    }
    if (!fetch(0, segment_header_bytes, false)) {
      return problem(header_state::torn, "torn segment header");
    }
    const char* h = at(0);
    const auto base = get_le<std::uint64_t>(h + 16);
    if (std::string_view(h, segment_magic.size()) != segment_magic) {
      return problem(header_state::bad, "not a log segment (no SLUICELOG header)");
    }
    if (h[segment_magic.size()] != segment_version) {
      return problem(header_state::bad, "unsupported segment version " + std::to_string(h[segment_magic.size()]));
    }
    if (get_le<std::uint32_t>(h + 24) != crc32c(h, 24)) {
      return problem(header_state::bad, "segment header crc mismatch");
    }
    if (base != base_) {
      return problem(header_state::bad, "segment header says base offset " + std::to_string(base));
    }
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

  /// The next entry at pos(). On `record` the reader moves past it and record() holds it; on any
  /// other step it stays where it is (reason() says why for incomplete and corrupt), and the
  /// buffered bytes are dropped so that a retry reads the file afresh. verify=false skips the CRC
  /// (hopping to a start offset); lengths are checked either way.
  step next(bool verify = true) {
    if (pos_ >= size_) {
      return stop(step::end, "");
    }
    const std::uint64_t avail = size_ - pos_;
    if (avail < record_header_bytes) {
      return stop(step::incomplete, "torn record header (" + std::to_string(avail) + " of " +
                                        std::to_string(record_header_bytes) + " bytes)");
    }
    if (!fetch(pos_, record_header_bytes)) {
      return stop(step::incomplete, "torn record header (the file shrank while being read)");
    }
    const auto length = get_le<std::uint32_t>(at(pos_));
    const auto crc = get_le<std::uint32_t>(at(pos_) + 4);
    const auto time = get_le<std::uint64_t>(at(pos_) + 8);
    if (length == seal_length && crc == record_crc(at(pos_), 0)) {
      if (time != offset_ || offset_ == base_) {  // never sealed empty: a reader would move to itself
        return stop(step::corrupt, "seal marker says the segment ends at offset " + std::to_string(time));
      }
      return step::sealed;
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
    if (verify && crc != record_crc(rec, length)) {
      return stop(step::corrupt, "crc mismatch");
    }
    record_ = log_record{offset_, millis{static_cast<std::int64_t>(time)}, {rec + record_header_bytes, length}};
    pos_ += total;
    ++offset_;
    return step::record;
  }

  /// The segment's end offset from a seal marker in its last bytes, if it has one.
  std::optional<std::uint64_t> sealed_end_from_trailer() {
    if (size_ < segment_header_bytes + record_header_bytes ||
        !fetch(size_ - record_header_bytes, record_header_bytes, false)) {
      return std::nullopt;
    }
    const char* m = at(size_ - record_header_bytes);
    if (get_le<std::uint32_t>(m) != seal_length || get_le<std::uint32_t>(m + 4) != record_crc(m, 0)) {
      return std::nullopt;
    }
    return get_le<std::uint64_t>(m + 8);
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
  [[nodiscard]] std::uint64_t pos() const { return pos_; }        // byte position of the next entry
  [[nodiscard]] std::uint64_t offset() const { return offset_; }  // record offset of the next entry
  [[nodiscard]] std::uint64_t size() const { return size_; }      // the file size at the last refresh
  [[nodiscard]] std::uint32_t max_record() const { return max_record_; }

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

  [[nodiscard]] const char* at(std::uint64_t file_pos) const { return buf_.data() + (file_pos - buf_at_); }

  /// Make bytes [from, from + n) of the file whole in the buffer, reading ahead up to a chunk
  /// unless `ahead` is false (a header or a seal marker alone); false if the file is shorter.
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
  std::uint32_t max_record_ = 0;
  std::uint64_t pos_ = 0;
  std::uint64_t offset_ = 0;
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
