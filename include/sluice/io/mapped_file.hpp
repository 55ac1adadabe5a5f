// A read-only memory map of a whole file: bounded sources parse it in place, so a record's
// string fields are views into the map and the input is never copied or loaded into the heap.
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace sluice {

class mapped_file {
 public:
  mapped_file() = default;
  explicit mapped_file(const std::string& path) : path_(path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      throw std::runtime_error(path + ": cannot open: " + std::strerror(errno));
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      const int err = errno;
      ::close(fd);
      throw std::runtime_error(path + ": cannot stat: " + std::strerror(err));
    }
    if (!S_ISREG(st.st_mode)) {
      ::close(fd);
      throw std::runtime_error(path + ": not a regular file (batch mode reads bounded files)");
    }
    size_ = static_cast<std::size_t>(st.st_size);
    if (size_ > 0) {
      void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) {
        const int err = errno;
        ::close(fd);
        throw std::runtime_error(path + ": cannot map: " + std::strerror(err));
      }
      data_ = static_cast<const char*>(p);
      // Parsers read each byte once, front to back: let the kernel read ahead aggressively.
      ::madvise(p, size_, MADV_SEQUENTIAL);
    }
    ::close(fd);
  }

  mapped_file(const mapped_file&) = delete;
  mapped_file& operator=(const mapped_file&) = delete;
  mapped_file(mapped_file&& o) noexcept
      : path_(std::move(o.path_)), data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  mapped_file& operator=(mapped_file&& o) noexcept {
    if (this != &o) {
      unmap();
      path_ = std::move(o.path_);
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  ~mapped_file() { unmap(); }

  [[nodiscard]] const char* data() const { return data_; }
  [[nodiscard]] std::size_t size() const { return size_; }
  [[nodiscard]] std::string_view view() const { return {data_, size_}; }
  [[nodiscard]] const std::string& path() const { return path_; }

  /// Drop the pages wholly inside [from, to) from this process's memory (they stay in the page
  /// cache and fault back in if read again): a parsed region stops counting against RSS, so a
  /// batch run's memory is its state, not the size of its input.
  void release(std::size_t from, std::size_t to) const {
    static const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    const std::size_t first = (from + page - 1) / page * page;
    const std::size_t last = std::min(to, size_) / page * page;
    if (data_ != nullptr && first < last) {
      ::madvise(const_cast<char*>(data_) + first, last - first, MADV_DONTNEED);  // NOLINT: madvise's signature
    }
  }

 private:
  void unmap() {
    if (data_ != nullptr) {
      ::munmap(const_cast<char*>(data_), size_);  // NOLINT(cppcoreguidelines-pro-type-const-cast): munmap's signature
      data_ = nullptr;
    }
  }

  std::string path_;
  const char* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace sluice
