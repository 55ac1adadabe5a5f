// The bytes of a file that is still being written, followed like `tail -F`: appends are read as
// they land, and the reader survives the file being truncated, rotated away, or not existing yet.
// What an unbounded file source of stream mode reads through.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <utility>

#include "sluice/core/hash.hpp"
#include "sluice/io/bad_record.hpp"

namespace sluice {

namespace detail {
/// Sleep for `interval`, waking at once if `stop` is requested: a stopped run does not wait out
/// a poll interval. Returns whether stop was requested.
inline bool sleep_unless_stopped(const std::stop_token& stop, std::chrono::milliseconds interval) {
  // Local, not members: the reader stays movable, and one small allocation per poll is noise.
  std::mutex m;
  std::condition_variable_any wake;
  std::unique_lock lock(m);
  return wake.wait_for(lock, stop, interval, [] { return false; }) || stop.stop_requested();
}
}  // namespace detail

struct tail_options {
  std::chrono::milliseconds poll{10};  // how often to look again when there is nothing new
  bool from_start = true;              // false: skip what the file holds when the reader is built
                                       // (a file that appears later is read from its start)
};

/// Follows a file by name, like `tail -F`:
///   - appended bytes are read in order, each once;
///   - a missing file is waited for, and read from its start once it appears;
///   - a truncated file (shorter than what was read) is read again from offset 0;
///   - a rotated file (the path now names another file) is read to its end first, then the new
///     file from offset 0.
/// Limits it shares with tail -F, because it only looks by polling: a file truncated and then
/// regrown past the read position between two looks is not seen as truncated; bytes a writer
/// appends to the old file after the reader has moved to the new one are not read; a file that
/// is rotated in and out again before the reader reaches it is skipped.
/// Not thread-safe: read_some, position and generation belong to the thread that reads.
/// Performance notes: one pread per call while there are bytes; at the end of the file, a stat
/// and an fstat per poll interval.
class tail_file {
 public:
  explicit tail_file(std::string path, tail_options opts = {}) : path_(std::move(path)), opts_(opts) {
    if (open_path() && !opts_.from_start) {
      pos_ = current_size();
    }
  }

  tail_file(const tail_file&) = delete;
  tail_file& operator=(const tail_file&) = delete;
  tail_file(tail_file&& o) noexcept
      : path_(std::move(o.path_)),
        opts_(o.opts_),
        fd_(std::exchange(o.fd_, -1)),
        dev_(o.dev_),
        ino_(o.ino_),
        pos_(o.pos_),
        generation_(o.generation_) {}
  tail_file& operator=(tail_file&& o) noexcept {
    if (this != &o) {
      close_fd();
      path_ = std::move(o.path_);
      opts_ = o.opts_;
      fd_ = std::exchange(o.fd_, -1);
      dev_ = o.dev_;
      ino_ = o.ino_;
      pos_ = o.pos_;
      generation_ = o.generation_;
    }
    return *this;
  }
  ~tail_file() { close_fd(); }

  /// Read up to `n` bytes into `buf`, blocking until at least one is there. Returns 0 only when
  /// `stop` is requested (or `n` is 0). One call's bytes all come from one file: if generation()
  /// changed since the previous call, a new file begins with these bytes (a line cut short at
  /// the end of the old file ends there). Throws bad_input_error when the file exists but cannot
  /// be read (permission denied, a directory, an I/O error).
  std::size_t read_some(char* buf, std::size_t n, const std::stop_token& stop) {
    if (n == 0) {
      return 0;
    }
    while (!stop.stop_requested()) {
      if (fd_ < 0 && !open_path()) {
        detail::sleep_unless_stopped(stop, opts_.poll);
        continue;
      }
      if (const std::size_t got = read_here(buf, n); got > 0) {
        return got;
      }
      // At the end of the open file: has the path moved on to another file, or was this one cut short?
      if (path_names_another_file()) {
        // The writer may have appended to the old file between our read and the look at the path.
        if (const std::size_t got = read_here(buf, n); got > 0) {
          return got;
        }
        if (open_path()) {
          continue;
        }
      } else if (current_size() < pos_) {
        pos_ = 0;
        ++generation_;
        continue;
      }
      detail::sleep_unless_stopped(stop, opts_.poll);
    }
    return 0;
  }

  /// Waits until the path names a file and opens it (at once if it is open already). False only
  /// when `stop` is requested first. Errors as read_some.
  bool wait_until_open(const std::stop_token& stop) {
    while (fd_ < 0 && !open_path()) {
      if (detail::sleep_unless_stopped(stop, opts_.poll)) {
        return false;
      }
    }
    return true;
  }

  /// Continue reading the open file at `offset` (a checkpoint's position in it), which must not
  /// be past its end. Call after wait_until_open.
  void resume_at(std::uint64_t offset) {
    if (const std::uint64_t size = current_size(); offset > size) {
      throw bad_input_error(path_ + ": cannot resume at byte " + std::to_string(offset) + ": the file holds " +
                            std::to_string(size));
    }
    pos_ = offset;
  }

  /// Which file is open (its device and inode, hashed): the same file keeps it across reopens
  /// and restarts, a file that replaced it at the path has another. 0 when none is open.
  [[nodiscard]] std::uint64_t origin() const { return fd_ < 0 ? 0 : origin_of(dev_, ino_); }

  /// Opens, instead of what the path names, the file in the path's directory whose origin() is
  /// `origin`: the file a checkpoint was reading, rotated away while the reader was stopped
  /// ("app.log" renamed "app.log.1"), so that its rest is read before the path's file (which
  /// read_some then moves on to, as after any rotation). Returns its size, or nullopt if no
  /// such file is there (deleted, compressed, moved elsewhere).
  std::optional<std::uint64_t> open_rotated(std::uint64_t origin) {
    namespace fs = std::filesystem;
    const fs::path parent = fs::path(path_).parent_path();
    std::error_code ec;
    for (auto it = fs::directory_iterator(parent.empty() ? fs::path(".") : parent, ec); !ec && it != fs::directory_iterator();
         it.increment(ec)) {
      struct stat st {};
      if (::stat(it->path().c_str(), &st) != 0 || !S_ISREG(st.st_mode) || origin_of(st.st_dev, st.st_ino) != origin) {
        continue;
      }
      const int fd = ::open(it->path().c_str(), O_RDONLY | O_CLOEXEC);
      struct stat opened {};
      if (fd < 0 || ::fstat(fd, &opened) != 0 || opened.st_dev != st.st_dev || opened.st_ino != st.st_ino) {
        if (fd >= 0) {
          ::close(fd);  // renamed again between the look and the open
        }
        continue;
      }
      close_fd();
      fd_ = fd;
      dev_ = opened.st_dev;
      ino_ = opened.st_ino;
      pos_ = 0;
      return static_cast<std::uint64_t>(opened.st_size);
    }
    return std::nullopt;
  }
  /// The open file's size now.
  [[nodiscard]] std::uint64_t size() const { return fd_ < 0 ? 0 : current_size(); }

  /// Offset, in the file now open, of the next byte read_some returns.
  [[nodiscard]] std::uint64_t position() const { return pos_; }
  /// How many times reading restarted at offset 0 after a rotation or truncation: with
  /// position(), where this reader is.
  [[nodiscard]] std::uint64_t generation() const { return generation_; }
  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  static std::uint64_t origin_of(dev_t dev, ino_t ino) {
    const std::uint64_t h =
        detail::mix64(static_cast<std::uint64_t>(dev) * 0x9E3779B97F4A7C15ULL ^ static_cast<std::uint64_t>(ino));
    return h == 0 ? 1 : h;
  }

  [[noreturn]] void fail(const char* what, int err) const {
    throw bad_input_error(path_ + ": " + what + ": " + std::strerror(err));
  }

  /// Open whatever the path names now and read it from offset 0. False if nothing is there yet.
  bool open_path() {
    // O_NONBLOCK: a FIFO at the path must not block the open; it is refused just below.
    const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
      if (errno == ENOENT) {
        return false;
      }
      fail("cannot open", errno);
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      const int err = errno;
      ::close(fd);
      fail("cannot stat", err);
    }
    if (!S_ISREG(st.st_mode)) {
      ::close(fd);
      if (S_ISDIR(st.st_mode)) {
        fail("cannot follow", EISDIR);
      }
      // Truncation and rotation are told apart by size and inode, which only a regular file has.
      throw bad_input_error(path_ + ": not a regular file (read a pipe or device with fd_reader)");
    }
    const bool reopened = fd_ >= 0;
    close_fd();
    fd_ = fd;
    dev_ = st.st_dev;
    ino_ = st.st_ino;
    pos_ = 0;
    generation_ += reopened ? 1 : 0;
    return true;
  }

  std::size_t read_here(char* buf, std::size_t n) {
    for (;;) {
      const ssize_t got = ::pread(fd_, buf, n, static_cast<off_t>(pos_));
      if (got >= 0) {
        pos_ += static_cast<std::uint64_t>(got);
        return static_cast<std::size_t>(got);
      }
      if (errno != EINTR) {
        fail("read failed", errno);
      }
    }
  }

  /// Whether the path now names a file other than the one open (log rotation). A path with
  /// nothing at it does not count: the writer may still be appending to the file moved away.
  [[nodiscard]] bool path_names_another_file() const {
    struct stat st {};
    if (::stat(path_.c_str(), &st) != 0) {
      if (errno == ENOENT) {
        return false;
      }
      fail("cannot stat", errno);
    }
    return st.st_dev != dev_ || st.st_ino != ino_;
  }

  [[nodiscard]] std::uint64_t current_size() const {
    struct stat st {};
    if (::fstat(fd_, &st) != 0) {
      fail("cannot stat", errno);
    }
    return static_cast<std::uint64_t>(st.st_size);
  }

  void close_fd() {
    if (fd_ >= 0) {
      ::close(std::exchange(fd_, -1));
    }
  }

  std::string path_;
  tail_options opts_;
  int fd_ = -1;
  // The identity of the open file: the path naming another one is how rotation shows. Holding
  // the file open keeps its inode number from being reused by a new file at the path.
  dev_t dev_ = 0;
  ino_t ino_ = 0;
  std::uint64_t pos_ = 0;
  std::uint64_t generation_ = 0;
};

}  // namespace sluice
