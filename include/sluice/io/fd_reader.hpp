// The bytes of stdin, a pipe or any other open descriptor, read as they arrive: what an
// unbounded source of stream mode reads through when its input is not a file it can follow.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stop_token>
#include <string>
#include <utility>

#include "sluice/io/bad_record.hpp"

namespace sluice {

/// Reads a descriptor until its end, giving up promptly when asked to stop even if the writer
/// is silent. Does not own the descriptor: whoever opened it closes it (stdin stays open).
/// Not thread-safe: read_some, position and eof belong to the thread that reads.
/// Performance notes: a poll and a read per call while bytes flow; a silent input costs one
/// wakeup per stop_check_interval.
class fd_reader {
 public:
  /// How long a read waits on a silent input before looking at its stop token again: the
  /// longest a stop request waits to be honoured.
  static constexpr int stop_check_interval_ms = 50;

  explicit fd_reader(int fd, std::string name = "stdin") : fd_(fd), name_(std::move(name)) {
    // poll() ignores a negative descriptor and reports a closed one only as POLLNVAL: catch
    // both here, where the message can say which input it is.
    if (fd < 0 || ::fcntl(fd, F_GETFD) < 0) {
      throw bad_input_error(name_ + ": not an open file descriptor");
    }
  }

  // One reader per descriptor: two copies would each count a position the other moves.
  fd_reader(const fd_reader&) = delete;
  fd_reader& operator=(const fd_reader&) = delete;
  fd_reader(fd_reader&&) noexcept = default;
  fd_reader& operator=(fd_reader&&) noexcept = default;
  ~fd_reader() = default;

  /// Read up to `n` bytes into `buf`, blocking until at least one is there. Returns 0 at the
  /// end of the input (then eof() is true) or when `stop` is requested (or `n` is 0).
  std::size_t read_some(char* buf, std::size_t n, const std::stop_token& stop) {
    if (n == 0) {
      return 0;
    }
    while (!eof_ && !stop.stop_requested()) {
      pollfd ready{fd_, POLLIN, 0};
      const int polled = ::poll(&ready, 1, stop_check_interval_ms);
      if (polled < 0) {
        if (errno == EINTR) {
          continue;
        }
        fail("cannot poll", errno);
      }
      if (polled == 0) {
        continue;
      }
      if ((ready.revents & POLLNVAL) != 0) {
        throw bad_input_error(name_ + ": descriptor closed while being read");
      }
      // POLLIN, POLLHUP or POLLERR: read says which (bytes, the end, or the error).
      const ssize_t got = ::read(fd_, buf, n);
      if (got > 0) {
        pos_ += static_cast<std::uint64_t>(got);
        return static_cast<std::size_t>(got);
      }
      if (got == 0) {
        eof_ = true;
      } else if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) {
        // EAGAIN: a non-blocking descriptor whose readiness another reader took first.
        fail("read failed", errno);
      }
    }
    return 0;
  }

  /// Bytes read so far.
  [[nodiscard]] std::uint64_t position() const { return pos_; }
  /// Whether the input has ended (not merely stopped).
  [[nodiscard]] bool eof() const { return eof_; }
  [[nodiscard]] const std::string& name() const { return name_; }

 private:
  [[noreturn]] void fail(const char* what, int err) const {
    throw bad_input_error(name_ + ": " + what + ": " + std::strerror(err));
  }

  int fd_;
  std::string name_;
  std::uint64_t pos_ = 0;
  bool eof_ = false;
};

}  // namespace sluice
