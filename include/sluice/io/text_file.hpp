// An output text file whose write errors (a full disk) surface as exceptions instead of
// losing lines quietly: what sinks and dead-letter files write through.
#pragma once

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace sluice {

/// A text file written in large blocks; write errors (a full disk) surface as exceptions.
class text_file {
 public:
  explicit text_file(const std::string& path) : path_(path), file_(std::fopen(path.c_str(), "wb")) {
    if (file_ == nullptr) {
      throw std::runtime_error(path + ": cannot open for writing: " + std::strerror(errno));
    }
  }
  text_file(const text_file&) = delete;
  text_file& operator=(const text_file&) = delete;
  ~text_file() {
    if (file_ != nullptr) {
      std::fclose(file_);
    }
  }
  void write(std::string_view s) {
    if (std::fwrite(s.data(), 1, s.size(), file_) != s.size()) {
      throw std::runtime_error(path_ + ": write failed: " + std::strerror(errno));
    }
  }
  void close() {
    if (file_ != nullptr && std::fclose(std::exchange(file_, nullptr)) != 0) {
      throw std::runtime_error(path_ + ": close failed");
    }
  }

 private:
  std::string path_;
  std::FILE* file_;
};


}  // namespace sluice
