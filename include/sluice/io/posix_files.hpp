// The few POSIX file chores the event log, checkpoints and the serving layer share: a descriptor
// closed with its scope, creating a directory with its parents, and syncing a directory so that
// a file just created or renamed in it survives a crash. Each reports failure through errno and
// leaves the error message (which names the file) to its caller.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <utility>

namespace sluice::detail {

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

/// Creates `dir` and every missing parent. Returns "" on success, else the part that could not
/// be created (errno says why).
inline std::string make_directories(const std::string& dir) {
  for (std::size_t i = 1; i <= dir.size(); ++i) {
    if (i == dir.size() || dir[i] == '/') {
      std::string part = dir.substr(0, i);
      if (::mkdir(part.c_str(), 0755) != 0 && errno != EEXIST) {
        return part;
      }
    }
  }
  return {};
}

/// fsyncs the directory `dir`, so that the names created or renamed in it are durable. False on
/// failure (errno says why).
inline bool sync_directory(const std::string& dir) {
  const unique_fd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  return d.is_open() && ::fsync(d.get()) == 0;
}

}  // namespace sluice::detail
