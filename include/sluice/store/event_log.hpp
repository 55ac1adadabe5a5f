// event_log: the master dataset of the Lambda architecture. An append-only log of (event time,
// payload) records in a directory of segment files, every record CRC-checked, with one writer
// (an flock on DIR/LOCK) and any number of readers in other threads or processes
// (sluice/store/log_reader.hpp). Offsets are global and consecutive; a segment's index is its
// epoch, and every segment but the last is sealed: complete and never written again, so a
// batch layer can compute over it while the speed layer follows the active one.
//
// Durability is the fsync policy's: a record is written to the file by commit() or write()
// (readers see it then) and is on disk after the next fdatasync. Opening a log after a crash
// cuts the last segment at its first torn or corrupt batch, whole (a batch is written in one
// write, so none of its records was acknowledged), and says so in recovery(). The format is
// sluice/store/detail/log_format.hpp's: version-2 segments (record batches); version-1 ones
// (a record at a time) are still read, and a version-1 active segment is sealed on open.
//
// For a writer shared by threads (the Lambda ingest) the costly parts run outside its lock:
// encode() builds record batches with their CRCs on the caller's thread, write() appends them
// in one pwrite, and sync_if_due() runs the fdatasync on any thread, one at a time, each
// covering every record written before it began (group commit). A seal must sync its segment
// before the next one exists (so that a crash leaves no hole in the offsets); sync_before_seal()
// does the bulk of that on any thread first, so that seal() under the writer's lock is quick.
#pragma once

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sluice/core/time.hpp"
#include "sluice/store/detail/log_format.hpp"
#include "sluice/store/log_reader.hpp"

namespace sluice {

/// When commit() makes records durable: every commit, at most every `every`, or never (the OS decides).
struct fsync_policy {
  enum class kind { always, interval, never };
  kind what = kind::interval;
  std::chrono::milliseconds every{100};

  /// "always", "never" or "interval:MS" (MS a whole number of milliseconds > 0).
  static fsync_policy parse(std::string_view text) {
    if (text == "always") {
      return {kind::always};
    }
    if (text == "never") {
      return {kind::never};
    }
    constexpr std::string_view prefix = "interval:";
    if (text.starts_with(prefix)) {
      const std::string_view digits = text.substr(prefix.size());
      const char* end = digits.data() + digits.size();
      std::int64_t ms = 0;
      const auto parsed = std::from_chars(digits.data(), end, ms);
      if (!digits.empty() && digits.front() != '-' && parsed.ec == std::errc{} && parsed.ptr == end && ms > 0) {
        return {kind::interval, std::chrono::milliseconds{ms}};
      }
    }
    throw std::invalid_argument("fsync policy is always, never or interval:MS, not '" + std::string(text) + "'");
  }

  [[nodiscard]] std::string to_string() const {
    switch (what) {
      case kind::always:
        return "always";
      case kind::never:
        return "never";
      case kind::interval:
        break;
    }
    return "interval:" + std::to_string(every.count());
  }
};

struct log_options {
  /// seal_if_due seals once the active segment reaches this size (header and records)...
  std::uint64_t segment_bytes = std::uint64_t{64} << 20U;
  /// ... or is this old (0: never by age), counted from this process's first append to it. The
  /// default bounds how long a quiet log keeps its last records out of the batch layer's reach.
  std::chrono::milliseconds segment_age{std::chrono::minutes(1)};
  fsync_policy fsync{};
  /// append throws std::length_error beyond; readers take a larger length for corruption.
  std::uint32_t max_record_bytes = std::uint32_t{1} << 20U;
};

/// Records encoded as the log keeps them (version-2 batches: header, CRC, varint lengths and
/// time deltas, payloads; a new batch at the size bound), by event_log::encode on any thread,
/// for event_log::write to append in one step. Its bytes are whole batches after every encode.
class log_batch {
 public:
  void clear() {
    bytes_.clear();
    open_ = {};
    records_ = 0;
  }
  [[nodiscard]] std::uint64_t size() const { return records_; }
  [[nodiscard]] bool empty() const { return records_ == 0; }
  [[nodiscard]] std::string_view bytes() const { return bytes_; }

  /// fn(event_time, payload) for each record in order; the payload views the batch's bytes.
  template <class Fn>
  void for_each(Fn&& fn) const {
    detail::for_each_batch_record(bytes_, fn);
  }

 private:
  friend class event_log;
  std::string bytes_;
  detail::open_batch open_;
  std::uint64_t records_ = 0;
};

/// What opening a log cut from a torn or corrupt tail of its last segment.
struct log_recovery {
  std::string segment;                  // path
  std::uint64_t kept_bytes = 0;         // the valid prefix kept
  std::uint64_t cut_bytes = 0;          // bytes truncated
  std::uint64_t first_lost_offset = 0;  // the offset the cut batch's first record would have had
  std::string reason;                   // "torn batch (12 of 47 bytes)", "crc mismatch", ...
};

/// The single writer of a log directory.
///
/// Threading: append, write, commit, sync, seal, seal_if_due, head and active_segment from one
/// thread at a time; encode, sync_if_due, sealed_count() and segments() from any thread at any
/// time.
class event_log {
 public:
  /// Opens (or creates) the log in `dir`: takes the writer's lock (a second writer gets a
  /// log_error "... is locked by another writer"), checks the segments for holes ("missing
  /// segment: offsets [a, b) ...") and scans the last one, cutting it at its first torn or
  /// corrupt batch (see recovery()). Sealed segments are not scanned: read_log checks them.
  explicit event_log(std::string dir, log_options opts = {}) : dir_(std::move(dir)), opts_(opts) {
    if (opts_.max_record_bytes > detail::max_record_limit) {
      throw std::invalid_argument("log_options::max_record_bytes must be at most " +
                                  std::to_string(detail::max_record_limit) + " (a batch's length is 32 bits)");
    }
    make_directories();
    take_lock();
    const auto files = detail::list_segment_files(dir_);
    if (!files || files->empty()) {
      start_segment(0);
      head_ = 0;
    } else {
      open_last(detail::survey_log(dir_, *files));
    }
    publish();
  }

  event_log(const event_log&) = delete;
  event_log& operator=(const event_log&) = delete;

  /// Commits what is buffered (with an fdatasync unless the policy is never) and closes.
  ~event_log() {
    try {
      write_out();
      if (durable()) {
        sync_written();
      }
    } catch (...) {  // NOLINT(bugprone-empty-catch): a destructor must not throw; the records stay unsynced
    }
  }

  /// Buffers one record and returns its offset. The buffer is written out once it holds about
  /// 1 MiB; commit() writes the rest. Never seals. A payload over max_record_bytes is a
  /// std::length_error and changes nothing.
  std::uint64_t append(millis event_time, std::string_view payload) {
    check_size(payload);
    if (buf_.bytes().size() >= write_out_bytes) {
      write_out();  // before this record: if it throws, the record was not appended
    }
    if (!first_append_) {
      first_append_ = std::chrono::steady_clock::now();
    }
    encode(buf_, event_time, payload);
    return head_++;
  }

  /// Encodes one record into `batch`, as append would buffer it. Any thread: the encoding and
  /// the CRC cost nothing of the writer's time. A payload over max_record_bytes is a
  /// std::length_error and leaves `batch` as it was.
  void encode(log_batch& batch, millis event_time, std::string_view payload) const {
    check_size(payload);
    detail::encode_record(batch.bytes_, batch.open_, detail::max_batch_bytes(opts_.max_record_bytes),
                          static_cast<std::uint64_t>(event_time.count()), payload);
    ++batch.records_;
  }

  /// Writes what append buffered, then `batch`'s records, to the file (readers see them from
  /// now on) and returns the offset of the batch's first record. Never syncs: see
  /// sync_if_due. Never seals.
  std::uint64_t write(const log_batch& batch) {
    write_out();
    const std::uint64_t first = head_;
    if (batch.empty()) {
      return first;
    }
    if (!first_append_) {
      first_append_ = std::chrono::steady_clock::now();
    }
    write_or_undo(batch.bytes());
    head_ += batch.size();
    publish();
    return first;
  }

  /// Writes the buffered records to the file (readers see them from now on), then fdatasyncs if
  /// the policy is always, or interval and `every` has passed since the last sync.
  void commit() {
    write_out();
    sync_if_due();
  }

  /// Any thread: fdatasyncs what was written if the policy says so now (always: whenever
  /// something written is not on disk yet; interval: once `every` has passed since the last
  /// sync; never: never). Syncs run one at a time; one that finds what was written before the
  /// call on disk already (another thread's sync covered it) returns at once. Returns whether
  /// this call synced.
  bool sync_if_due(std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now()) {
    switch (opts_.fsync.what) {
      case fsync_policy::kind::never:
        return false;
      case fsync_policy::kind::always:
        return sync_written();
      case fsync_policy::kind::interval:
        break;
    }
    if (now - last_sync_.load() < opts_.fsync.every) {
      return false;
    }
    return sync_written(now);
  }

  /// Writes the buffered records and fdatasyncs now, whatever the policy.
  void sync() {
    write_out();
    sync_written();
  }

  /// Seals the active segment if it holds a record and has reached segment_bytes, or
  /// segment_age has passed since this process first appended to it. Returns whether it sealed.
  bool seal_if_due(std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now()) {
    const bool due = seal_due(now);
    if (due) {
      seal();
    }
    return due;
  }

  /// Whether seal_if_due(now) would seal.
  [[nodiscard]] bool seal_due(std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now()) const {
    return head_ != active_base_ && due_at(file_bytes_ + buf_.bytes().size(), first_append_, now);
  }

  /// Any thread, while the writer may be writing: if the records written so far make a seal
  /// due, fdatasyncs them (unless the policy is never) and returns true. For a writer shared
  /// by threads under a lock: seal() syncs the whole segment before the next one exists, and
  /// every writer waits for that sync. Called first, without the lock, it leaves seal() only
  /// the records written meanwhile to sync.
  bool sync_before_seal(std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now()) {
    {
      const std::lock_guard<std::mutex> lock(mu_);
      if (active_view_.end_offset == active_view_.base_offset ||
          !due_at(active_view_.bytes, first_append_written_, now)) {
        return false;
      }
    }
    return durable() && sync_written(now);
  }

  /// If the active segment holds records: writes them and a seal marker, syncs (unless the policy
  /// is never) and starts the next segment. All of the old segment is written before the next
  /// file exists, so a reader that sees the new file has everything of the old. Else a no-op.
  void seal() {
    if (head_ == active_base_) {
      return;
    }
    write_out();
    write_or_undo(detail::encode_seal_marker(active_version_, head_));
    if (durable()) {
      sync_written();
    }
    log_segment done{sealed_count_.load(), active_base_, head_, file_bytes_, active_path_, true};
    set_fd(nullptr);
    start_segment(head_);
    publish(&done);
  }

  /// The offset the next append will get.
  [[nodiscard]] std::uint64_t head() const { return head_; }
  /// The index (epoch) of the segment the next append goes to.
  [[nodiscard]] std::uint64_t active_segment() const { return sealed_count_.load(); }
  /// Segments [0, sealed_count()) are sealed. Any thread.
  [[nodiscard]] std::uint64_t sealed_count() const { return sealed_count_.load(); }

  /// The sealed segments, then the active one with the records written to its file so far. Any thread.
  [[nodiscard]] std::vector<log_segment> segments() const {
    const std::lock_guard<std::mutex> lock(mu_);
    std::vector<log_segment> all;
    all.reserve(sealed_.size() + 1);
    all = sealed_;
    all.push_back(active_view_);
    return all;
  }

  [[nodiscard]] const std::optional<log_recovery>& recovery() const { return recovery_; }
  [[nodiscard]] const std::string& dir() const { return dir_; }
  [[nodiscard]] const log_options& options() const { return opts_; }

 private:
  static constexpr std::size_t write_out_bytes = std::size_t{1} << 20U;

  [[nodiscard]] bool durable() const { return opts_.fsync.what != fsync_policy::kind::never; }

  /// Whether a segment of `bytes` whose first record was appended at `first` is due to seal.
  [[nodiscard]] bool due_at(std::uint64_t bytes, std::optional<std::chrono::steady_clock::time_point> first,
                            std::chrono::steady_clock::time_point now) const {
    const bool big = bytes >= opts_.segment_bytes;
    const bool old = opts_.segment_age.count() > 0 && first && now - *first >= opts_.segment_age;
    return big || old;
  }

  void check_size(std::string_view payload) const {
    if (payload.size() > opts_.max_record_bytes) {
      throw std::length_error("log " + dir_ + ": a record of " + std::to_string(payload.size()) +
                              " bytes exceeds max_record_bytes " + std::to_string(opts_.max_record_bytes));
    }
  }

  /// Makes the active segment the file `fd` (nullptr: none), as sync_written sees it too, and,
  /// if given, its path.
  void set_fd(std::shared_ptr<detail::unique_fd> fd, std::optional<std::string> path = std::nullopt) {
    const std::lock_guard<std::mutex> lock(mu_);
    fd_ = std::move(fd);
    if (path) {
      active_path_ = std::move(*path);
    }
  }
  static std::shared_ptr<detail::unique_fd> open_fd(const std::string& path, int flags) {
    return std::make_shared<detail::unique_fd>(::open(path.c_str(), flags | O_CLOEXEC, 0644));
  }

  void make_directories() const {
    if (const std::string failed = detail::make_directories(dir_); !failed.empty()) {
      detail::throw_errno(failed, "create the directory");
    }
  }

  void take_lock() {
    const std::string path = dir_ + "/LOCK";
    lock_ = detail::unique_fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
    if (!lock_.is_open()) {
      detail::throw_errno(path, "open");
    }
    if (::flock(lock_.get(), LOCK_EX | LOCK_NB) != 0) {
      if (errno == EWOULDBLOCK) {
        throw log_error("log " + dir_ + " is locked by another writer");
      }
      detail::throw_errno(path, "lock");
    }
  }

  /// Continue in the last segment of an existing log, cutting a torn or corrupt tail.
  void open_last(detail::log_survey survey) {
    log_segment last = std::move(survey.segments.back());
    survey.segments.pop_back();
    sealed_ = std::move(survey.segments);
    for (auto& s : sealed_) {
      s.sealed = true;
    }
    sealed_count_.store(sealed_.size());
    active_base_ = last.base_offset;
    active_path_ = last.path;
    active_version_ = survey.last_version;
    head_ = last.end_offset;
    if (!survey.last_stop.empty()) {
      recovery_ = log_recovery{last.path, last.bytes, survey.last_file_bytes - last.bytes, head_, survey.last_stop};
    }
    if (survey.last_header_torn) {  // created but its header never fully written: write it again
      set_fd(open_fd(last.path, O_WRONLY | O_TRUNC));
      write_header();
      return;
    }
    set_fd(open_fd(last.path, O_WRONLY));
    if (!fd_->is_open()) {
      detail::throw_errno(last.path, "open");
    }
    file_bytes_ = last.bytes;
    if (recovery_) {
      if (::ftruncate(fd_->get(), static_cast<off_t>(file_bytes_)) != 0 || ::fsync(fd_->get()) != 0) {
        detail::throw_errno(last.path, "cut the torn tail of");
      }
    }
    if (survey.last_has_seal) {  // a seal interrupted before the next segment was created
      last.sealed = true;
      last.bytes = file_bytes_;
      sealed_.push_back(std::move(last));
      sealed_count_.store(sealed_.size());
      set_fd(nullptr);
      start_segment(head_);
    } else if (survey.last_max_record < opts_.max_record_bytes || active_version_ != detail::segment_version) {
      // Readers bound lengths by the header's max: larger records need a header that says so.
      // And batches are encoded before the writer knows where they go: a version-1 segment (a
      // log written before batches) is sealed, so that every record this writer adds is in a
      // version-2 one.
      if (head_ == active_base_) {
        write_header();
      } else {
        seal();
      }
    }
  }

  /// Creates the segment file starting at `base` and makes it the active one.
  void start_segment(std::uint64_t base) {
    std::string path = detail::segment_path(dir_, base);
    auto fd = open_fd(path, O_WRONLY | O_CREAT | O_EXCL);
    set_fd(std::move(fd), std::move(path));
    active_base_ = base;
    // Neither the new name nor the header is synced here, under a seal's caller's lock: the
    // next sync does both, before any record of the segment counts as on disk. A crash before
    // then leaves no file, or one with a torn header, after a sealed segment: opening the log
    // creates it again.
    write_header(false);
    if (durable()) {
      const std::lock_guard<std::mutex> lock(mu_);
      directory_unsynced_ = true;
    }
    first_append_.reset();
  }

  /// Writes the active segment's header at its start (opened by the caller into fd_), and
  /// syncs it if `sync` and the policy syncs at all.
  void write_header(bool sync = true) {
    if (!fd_ || !fd_->is_open()) {
      detail::throw_errno(active_path_, "create");
    }
    file_bytes_ = 0;
    active_version_ = detail::segment_version;
    write_or_undo(detail::encode_segment_header(active_base_, opts_.max_record_bytes));
    if (sync && durable()) {
      sync_written();
    }
  }

  /// Writes `bytes` at the end of the active file; on failure (a full disk) cuts what part of
  /// them reached the file, so the file is as it was, and throws.
  void write_or_undo(std::string_view bytes) {
    if (!fd_ || !fd_->is_open()) {
      throw log_error("log " + dir_ + ": no active segment (an earlier seal failed)");
    }
    std::size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n =
          ::pwrite(fd_->get(), bytes.data() + done, bytes.size() - done, static_cast<off_t>(file_bytes_ + done));
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n <= 0) {
        const int err = n < 0 ? errno : EIO;
        [[maybe_unused]] const int ignored = ::ftruncate(fd_->get(), static_cast<off_t>(file_bytes_));
        errno = err;
        detail::throw_errno(active_path_, "write");
      }
      done += static_cast<std::size_t>(n);
    }
    file_bytes_ += bytes.size();
    const std::lock_guard<std::mutex> lock(mu_);
    written_ += bytes.size();
  }

  void write_out() {
    if (!buf_.empty()) {
      write_or_undo(buf_.bytes());
      buf_.clear();
      publish();
    }
  }

  /// Any thread: fdatasyncs the active segment unless every byte written before this call is on
  /// disk already. The segment is taken with what was written to it under one lock, and kept
  /// open by its shared_ptr, so the writer may go on writing (or seal it) meanwhile: earlier
  /// segments were synced when they were sealed. Returns whether it synced.
  bool sync_written(std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now()) {
    std::uint64_t target = 0;
    {
      const std::lock_guard<std::mutex> lock(mu_);
      target = written_;
    }
    const std::lock_guard<std::mutex> one_at_a_time(sync_mu_);
    if (synced_ >= target) {
      return false;  // a sync that began after those bytes were written covered them
    }
    std::shared_ptr<detail::unique_fd> fd;
    std::string path;
    bool directory = false;
    {
      const std::lock_guard<std::mutex> lock(mu_);
      fd = fd_;
      target = written_;  // all of it: the sync below covers what was written until now
      path = active_path_;
      directory = std::exchange(directory_unsynced_, false);
    }
    if (directory && !detail::sync_directory(dir_)) {  // the active segment's name, before its records
      const int err = errno;
      {
        const std::lock_guard<std::mutex> lock(mu_);
        directory_unsynced_ = true;
      }
      errno = err;
      detail::throw_errno(dir_, "sync the directory");
    }
    if (fd && fd->is_open() && ::fdatasync(fd->get()) != 0) {
      detail::throw_errno(path, "sync");
    }
    synced_ = target;
    last_sync_.store(now);
    return true;
  }

  /// Shows the active segment as written so far to segments() (called with nothing buffered),
  /// and with the segment `sealed` just moved from active to sealed, in one step.
  void publish(log_segment* sealed = nullptr) {
    const std::lock_guard<std::mutex> lock(mu_);
    if (sealed != nullptr) {
      sealed_.push_back(std::move(*sealed));
      sealed_count_.store(sealed_.size());
    }
    active_view_ = log_segment{sealed_.size(), active_base_, head_, file_bytes_, active_path_, false};
    first_append_written_ = first_append_;
  }

  std::string dir_;
  log_options opts_;
  detail::unique_fd lock_;
  std::string active_path_;  // changed under mu_
  std::uint64_t active_base_ = 0;
  std::uint64_t head_ = 0;
  std::uint64_t file_bytes_ = 0;
  char active_version_ = detail::segment_version;  // of the active segment (1: sealed on open)
  log_batch buf_;                                  // what append encoded, for write_out
  std::optional<std::chrono::steady_clock::time_point> first_append_;
  std::optional<log_recovery> recovery_;

  mutable std::mutex mu_;  // guards sealed_, active_view_ and first_append_written_ for readers, fd_ and written_ for syncs
  std::shared_ptr<detail::unique_fd> fd_;  // the active segment, written at file_bytes_ (changed under mu_)
  std::uint64_t written_ = 0;              // bytes written to segment files by this process
  bool directory_unsynced_ = false;        // the active segment's name is not synced yet
  std::optional<std::chrono::steady_clock::time_point> first_append_written_;  // first_append_ as published
  std::vector<log_segment> sealed_;
  log_segment active_view_;
  std::atomic<std::uint64_t> sealed_count_{0};

  std::mutex sync_mu_;      // one fdatasync at a time
  std::uint64_t synced_ = 0;  // written_ as it was when the last sync began: all of it is on disk
  std::atomic<std::chrono::steady_clock::time_point> last_sync_{std::chrono::steady_clock::now()};
};

}  // namespace sluice
