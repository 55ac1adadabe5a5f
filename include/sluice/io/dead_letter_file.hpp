// A dead-letter file: one JSON object per bad record, with everything needed to find and fix it:
//   {"source":"sales.csv","line":17,"offset":1042,"reason":"...","record":"..."}
#pragma once

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>

#include "sluice/io/bad_record.hpp"
#include "sluice/io/json_text.hpp"

namespace sluice {

class dead_letter_file {
 public:
  explicit dead_letter_file(const std::string& path) : path_(path), file_(std::fopen(path.c_str(), "wb")) {
    if (file_ == nullptr) {
      throw std::runtime_error(path + ": cannot open dead-letter file: " + std::strerror(errno));
    }
  }
  dead_letter_file(const dead_letter_file&) = delete;
  dead_letter_file& operator=(const dead_letter_file&) = delete;
  ~dead_letter_file() {
    if (file_ != nullptr) {
      std::fclose(file_);
    }
  }

  void write(const bad_record& r) {
    line_.clear();
    line_ += "{\"source\":";
    detail::append_json_string(line_, r.source);
    line_ += ",\"line\":" + std::to_string(r.line) + ",\"offset\":" + std::to_string(r.offset) + ",\"reason\":";
    detail::append_json_string(line_, r.reason);
    line_ += ",\"record\":";
    detail::append_json_string(line_, r.text);
    line_ += "}\n";
    if (std::fwrite(line_.data(), 1, line_.size(), file_) != line_.size()) {
      throw std::runtime_error(path_ + ": write failed: " + std::strerror(errno));
    }
    ++written_;
  }

  /// Flush and close, reporting a failed write (a full disk) instead of losing records quietly.
  void close() {
    if (file_ != nullptr) {
      const bool ok = std::fclose(file_) == 0;
      file_ = nullptr;
      if (!ok) {
        throw std::runtime_error(path_ + ": closing the dead-letter file failed");
      }
    }
  }

  [[nodiscard]] std::uint64_t written() const { return written_; }

 private:
  std::string path_;
  std::FILE* file_;
  std::string line_;
  std::uint64_t written_ = 0;
};

}  // namespace sluice
