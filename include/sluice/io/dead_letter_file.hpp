// A dead-letter file: one JSON object per bad record, with everything needed to find and fix it:
//   {"source":"sales.csv","line":17,"offset":1042,"reason":"...","record":"..."}
#pragma once

#include <cstdint>
#include <string>

#include "sluice/io/bad_record.hpp"
#include "sluice/io/json_text.hpp"
#include "sluice/io/text_file.hpp"

namespace sluice {

class dead_letter_file {
 public:
  explicit dead_letter_file(const std::string& path) : file_(path) {}

  void write(const bad_record& r) {
    line_.clear();
    line_ += "{\"source\":";
    detail::append_json_string(line_, r.source);
    line_ += ",\"line\":" + std::to_string(r.line) + ",\"offset\":" + std::to_string(r.offset) + ",\"reason\":";
    detail::append_json_string(line_, r.reason);
    line_ += ",\"record\":";
    detail::append_json_string(line_, r.text);
    line_ += "}\n";
    file_.write(line_);
    ++written_;
  }

  /// Flush and close, reporting a failed write (a full disk) instead of losing records quietly.
  void close() { file_.close(); }

  [[nodiscard]] std::uint64_t written() const { return written_; }

 private:
  text_file file_;
  std::string line_;
  std::uint64_t written_ = 0;
};

}  // namespace sluice
