// Reading an event log: a listing of its segments, ranges of records from a snapshot of them,
// the first offset at an event time, and a tailing reader that follows a writer. None of them
// takes the writer's lock or changes a byte: they may run in another thread or process while
// the log is being written. (The writer itself is sluice/store/event_log.hpp.)
#pragma once

#include <sys/stat.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "sluice/core/time.hpp"
#include "sluice/store/detail/log_format.hpp"

namespace sluice {

/// One segment file of a log. Segment i holds the offsets [base_offset, end_offset); its index is
/// its epoch.
struct log_segment {
  std::uint64_t index = 0;        // the epoch
  std::uint64_t base_offset = 0;  // first record offset
  std::uint64_t end_offset = 0;   // one past its last record (the last segment: its last complete valid record)
  std::uint64_t bytes = 0;        // file size (the last segment: of its valid prefix)
  std::string path;
  bool sealed = false;
};

namespace detail {

/// The segments of a directory, checked for holes from their headers and seal markers alone,
/// and how the last one ends, found by scanning it.
struct log_survey {
  std::vector<log_segment> segments;  // all of them; the last one unsealed, its end and bytes from the scan
  std::uint64_t last_file_bytes = 0;  // the last segment's size on disk
  std::string last_stop;              // why its valid prefix ends short of the file end ("" when it does not)
  bool last_header_torn = false;      // shorter than a header: being created, or cut by a crash
  bool last_has_seal = false;         // ends with a seal marker: its successor is not created yet
  std::uint32_t last_max_record = 0;
  char last_version = segment_version;
};

inline log_survey survey_log(const std::string& dir, const std::vector<segment_file>& files) {
  log_survey s;
  if (!files.empty() && files.front().base != 0) {
    throw_missing(dir, 0, files.front().base, "(the first segment is " + files.front().path + ")");
  }
  for (std::size_t i = 0; i < files.size(); ++i) {
    const segment_file& f = files[i];
    const bool last = i + 1 == files.size();
    auto r = segment_reader::open(f.path, f.base);
    if (!r) {
      throw log_error("log " + f.path + ": removed while the log was being listed");
    }
    const auto header = r->read_header();
    if (header == segment_reader::header_state::bad || (header == segment_reader::header_state::torn && !last)) {
      r->fail();
    }
    log_segment seg{i, f.base, f.base, r->size(), f.path, !last};
    if (!last) {
      const std::uint64_t next = files[i + 1].base;
      seg.end_offset = r->sealed_end_from_trailer().value_or(next);  // no marker: a crash under fsync never
      if (seg.end_offset < next) {
        throw_missing(dir, seg.end_offset, next,
                      "(" + f.path + " ends at offset " + std::to_string(seg.end_offset) + ", the next segment is " +
                          files[i + 1].path + ")");
      }
      if (seg.end_offset > next) {
        throw log_error("log " + f.path + ": its seal marker says it ends at offset " + std::to_string(seg.end_offset) +
                        ", past the base offset of " + files[i + 1].path);
      }
    } else if (header == segment_reader::header_state::torn) {
      s.last_header_torn = true;
      seg.bytes = 0;
      s.last_stop = r->reason();
    } else {
      s.last_max_record = r->max_record();
      s.last_version = r->version();
      auto step = segment_reader::step::record;
      while ((step = r->next()) == segment_reader::step::record) {
      }
      seg.end_offset = r->offset();
      seg.bytes = r->pos();
      if (step == segment_reader::step::sealed) {
        s.last_has_seal = true;
        seg.bytes += seal_marker_bytes(r->version());
        if (seg.bytes < r->size()) {
          s.last_stop = "bytes after the seal marker";
        }
      } else if (step != segment_reader::step::end) {
        s.last_stop = r->reason();
      }
    }
    s.last_file_bytes = r->size();
    s.segments.push_back(std::move(seg));
  }
  return s;
}

/// Visits the records [from, stop) of one segment; false when fn asked to stop or an unsealed
/// segment ended early (nothing after it can be read either).
template <class Fn>
bool read_segment(const log_segment& seg, std::uint64_t from, std::uint64_t stop, Fn& fn, std::uint64_t& visited) {
  auto r = segment_reader::open(seg.path, seg.base_offset);
  if (!r) {
    if (!seg.sealed) {
      return false;
    }
    throw log_error("log " + seg.path + ": the segment file is missing");
  }
  const auto header = r->read_header();
  if (header != segment_reader::header_state::ok) {
    if (!seg.sealed && header == segment_reader::header_state::torn) {
      return false;
    }
    r->fail();
  }
  while (r->offset() < stop) {
    const auto step = r->next(from);
    if (step == segment_reader::step::record) {
      ++visited;
      if (!visit_record(fn, r->record())) {
        return false;
      }
      continue;
    }
    if (!seg.sealed) {
      return false;  // a writer may be mid-write: what is there so far is all there is
    }
    if (step == segment_reader::step::end || step == segment_reader::step::sealed) {
      r->fail("the records end at offset " + std::to_string(r->offset()) + ", before the segment's end offset " +
              std::to_string(seg.end_offset));
    }
    r->fail();
  }
  return true;
}

}  // namespace detail

/// A read-only view of a log directory another process (or thread) may be writing: all its
/// segments, the last one unsealed with its end found by scanning to its last complete valid
/// record. Nothing is truncated or locked. A hole in the offsets is a log_error.
inline std::vector<log_segment> list_segments(const std::string& dir) {
  const auto files = detail::list_segment_files(dir);
  if (!files) {
    throw log_error("log " + dir + ": no such directory");
  }
  return detail::survey_log(dir, *files).segments;
}

/// Calls fn(const log_record&) for the records with offsets in [from, to) of `segments` (a
/// snapshot: event_log::segments() or list_segments()), in offset order. fn may return void, or
/// bool (false stops). Returns the number of records visited.
///
/// Every visited record's CRC is checked (its batch's, whole); skipping to `from` hops batch
/// headers. In a sealed segment a torn or corrupt batch (or record), or records ending before
/// its end offset, is a log_error naming the file, byte position and offset; the unsealed last
/// segment ends quietly at its first incomplete or corrupt batch. Memory: one buffer of about
/// 1 MiB (or the largest batch).
template <class Fn>
std::uint64_t read_log(const std::vector<log_segment>& segments, std::uint64_t from, std::uint64_t to, Fn&& fn) {
  std::uint64_t visited = 0;
  auto it = std::upper_bound(segments.begin(), segments.end(), from,
                             [](std::uint64_t offset, const log_segment& s) { return offset < s.base_offset; });
  if (it != segments.begin()) {
    --it;
  }
  for (; it != segments.end() && it->base_offset < to; ++it) {
    const std::uint64_t stop = std::min(to, it->end_offset);
    if (stop > from && stop > it->base_offset && !detail::read_segment(*it, from, stop, fn, visited)) {
      break;
    }
  }
  return visited;
}

/// The first offset whose record's event time is >= t (Kafka's offsetsForTimes), by scanning;
/// the end offset of the log when there is none.
inline std::uint64_t first_offset_at_or_after(const std::vector<log_segment>& segments, millis t) {
  const std::uint64_t end = segments.empty() ? 0 : segments.back().end_offset;
  std::uint64_t found = end;
  read_log(segments, 0, end, [&](const log_record& r) {
    if (r.event_time >= t) {
      found = r.offset;
      return false;
    }
    return true;
  });
  return found;
}

/// A tailing reader: a stream source over a log that another thread or process appends to,
/// from offset `from`. poll() never blocks or sleeps; the caller decides how often to call it.
class log_tail {
 public:
  explicit log_tail(std::string dir, std::uint64_t from = 0) : dir_(std::move(dir)), position_(from) {}

  /// Delivers to fn(const log_record&) the records written now, at most `max`, from position();
  /// returns how many. A batch's records come once the whole batch is there and checked. fn may
  /// return bool (false stops after that record). A segment is left once its seal marker is read
  /// (written after all its records) or, lacking one, once the next segment file exists and a
  /// last look finds nothing more. Corruption in a segment that is followed by another is a
  /// log_error; at the end of the newest one it is a write in progress. If fn throws, the record
  /// it was given is delivered again by the next poll.
  template <class Fn>
  std::size_t poll(Fn&& fn, std::size_t max = SIZE_MAX) {
    using step = detail::segment_reader::step;
    std::size_t delivered = 0;
    bool rechecked = false;
    if (current_) {
      current_->refresh();
    }
    while (delivered < max) {
      if (!current_ && !open_segment_at(position_)) {
        break;
      }
      auto& r = *current_;
      const auto s = r.next(position_);
      if (s == step::record) {
        if (r.record().offset >= next_base_) {
          r.fail("a record at offset " + std::to_string(r.record().offset) + " overlaps the next segment, which starts at " +
                 std::to_string(next_base_));
        }
        bool more = true;
        try {
          more = detail::visit_record(fn, r.record());
        } catch (...) {
          current_.reset();  // reopened at position_ next time: this record again
          throw;
        }
        position_ = r.record().offset + 1;
        ++delivered;
        if (!more) {
          break;
        }
        rechecked = false;
      } else if (s == step::sealed) {
        if (!move_to(r.offset())) {
          break;  // the next segment is being created
        }
        rechecked = false;
      } else if (rechecked) {
        if (s != step::end) {
          r.fail();  // still torn or corrupt, and another segment follows: not a write in progress
        }
        break;
      } else if (s == step::end ? next_file_exists(r) : later_segment_exists(r.base())) {
        // Another segment exists, so all of this one was written before it was created: look once more.
        rechecked = true;
        r.refresh();
        if (s == step::end && r.size() == r.pos()) {  // ended without a seal marker (a crash under fsync never)
          if (!move_to(r.offset())) {
            break;
          }
          rechecked = false;
        }
      } else {
        break;  // the end of the newest segment, or a record a writer is still writing
      }
    }
    return delivered;
  }

  /// The next offset poll() will deliver.
  [[nodiscard]] std::uint64_t position() const { return position_; }

 private:
  /// Opens the segment holding `offset`; false when the log has no segment yet.
  bool open_segment_at(std::uint64_t offset) {
    const auto files = detail::list_segment_files(dir_);
    if (!files || files->empty()) {
      return false;
    }
    if (offset < files->front().base) {
      detail::throw_missing(dir_, offset, files->front().base, "(the first segment is " + files->front().path + ")");
    }
    auto holding =
        std::prev(std::upper_bound(files->begin(), files->end(), offset,
                                   [](std::uint64_t o, const detail::segment_file& f) { return o < f.base; }));
    const auto next = std::next(holding);
    return open_segment(holding->base, next == files->end(), next == files->end() ? no_next_base : next->base);
  }

  /// Moves to the segment starting at `base`; false when it does not exist (yet).
  bool move_to(std::uint64_t base) {
    const auto files = detail::list_segment_files(dir_);
    std::uint64_t next = no_next_base;
    if (files) {
      const auto later = std::upper_bound(files->begin(), files->end(), base,
                                          [](std::uint64_t o, const detail::segment_file& f) { return o < f.base; });
      if (later != files->end()) {
        next = later->base;
      }
    }
    return open_segment(base, true, next);
  }

  /// Opens the segment file at `base`; `next_base` is where the segment after it starts, when one
  /// exists already: a record at or past it means two files claim the same offsets.
  bool open_segment(std::uint64_t base, bool newest, std::uint64_t next_base) {
    auto r = detail::segment_reader::open(detail::segment_path(dir_, base), base);
    if (!r) {
      return false;
    }
    const auto header = r->read_header();
    if (header == detail::segment_reader::header_state::torn && newest) {
      return false;  // being created: its header is not all there yet
    }
    if (header != detail::segment_reader::header_state::ok) {
      r->fail();
    }
    current_ = std::move(r);
    next_base_ = next_base;
    return true;
  }

  /// Whether a segment file starts where `r` ends (an empty segment has no successor: the file
  /// at its end offset is itself).
  [[nodiscard]] bool next_file_exists(const detail::segment_reader& r) const {
    struct stat st {};
    return r.offset() > r.base() && ::stat(detail::segment_path(dir_, r.offset()).c_str(), &st) == 0;
  }

  [[nodiscard]] bool later_segment_exists(std::uint64_t base) const {
    const auto files = detail::list_segment_files(dir_);
    return files && !files->empty() && files->back().base > base;
  }

  static constexpr std::uint64_t no_next_base = UINT64_MAX;

  std::string dir_;
  std::uint64_t position_;
  std::optional<detail::segment_reader> current_;
  std::uint64_t next_base_ = no_next_base;  // the base of the segment after current_, if it existed when opened
};

}  // namespace sluice
