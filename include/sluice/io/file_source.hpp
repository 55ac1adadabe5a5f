// A bounded file read through a record format (CSV, JSON lines): memory-mapped, header bound
// once, then cut into chunks that worker threads parse in place.
#pragma once

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "sluice/io/bad_record.hpp"
#include "sluice/io/bounded_input.hpp"
#include "sluice/io/csv.hpp"
#include "sluice/io/mapped_file.hpp"

namespace sluice {

template <class Format>
class file_source {
 public:
  using value_type = typename Format::value_type;

  file_source(std::string path, Format format, input_options options)
      : path_(std::move(path)), format_(std::move(format)), options_(std::move(options)) {}

  [[nodiscard]] const input_options& options() const { return options_; }
  [[nodiscard]] std::string_view name() const { return path_; }

  /// The file, mapped, with its header bound: what the batch runner cuts into chunks.
  class opened {
   public:
    opened(const file_source& src, mapped_file file, Format format)
        : src_(&src), file_(std::move(file)), format_(std::move(format)) {
      auto header = format_.bind_header(file_.view(), src.name());
      data_begin_ = header.bytes;
      header_lines_ = header.lines;
    }

    [[nodiscard]] std::size_t begin() const { return data_begin_; }
    [[nodiscard]] std::size_t end() const { return file_.size(); }
    [[nodiscard]] std::uint64_t first_line() const { return 1 + header_lines_; }
    [[nodiscard]] std::string_view name() const { return src_->name(); }
    [[nodiscard]] const input_options& options() const { return src_->options(); }
    [[nodiscard]] std::string_view text(std::uint64_t offset, std::uint64_t length) const {
      return file_.view().substr(offset, length);
    }

    /// The first line start at or after `pos`: a chunk boundary guess, checked by the runner.
    [[nodiscard]] std::size_t align(std::size_t pos) const {
      if (pos <= data_begin_) {
        return data_begin_;
      }
      if (pos >= file_.size()) {
        return file_.size();
      }
      const void* nl = std::memchr(file_.data() + pos - 1, '\n', file_.size() - pos + 1);
      return nl == nullptr ? file_.size() : static_cast<std::size_t>(static_cast<const char*>(nl) - file_.data()) + 1;
    }

    /// Parse the records starting in [begin, stop), a window at a time, releasing each parsed
    /// window's pages so that resident memory stays bounded however large the file is.
    template <class Emit, class Report>
    chunk_outcome parse(std::size_t begin, std::size_t stop, Emit&& emit, Report&& report) const {
      constexpr std::size_t window = std::size_t{8} << 20U;
      typename Format::parser p(format_);
      const char* base = file_.data();
      chunk_outcome total;
      auto report_in_chunk = [&](chunk_bad_record bad) {
        bad.local_line += total.lines;  // the parser counts lines from the window's start
        return report(std::move(bad));
      };
      std::size_t pos = begin;
      while (true) {
        const std::size_t window_stop = std::min(stop, pos + window);
        const chunk_outcome o = p.parse(base, base + pos, base + window_stop, base + file_.size(), true,
                                        options().max_record_bytes, emit, report_in_chunk);
        total.lines += o.lines;
        total.records += o.records;
        total.bad += o.bad;
        total.next = o.next;
        file_.release(pos, o.next);
        if (o.stopped || window_stop == stop || o.next >= stop) {
          total.stopped = o.stopped;
          break;
        }
        pos = o.next;
      }
      return total;
    }

   private:
    const file_source* src_;
    mapped_file file_;
    Format format_;
    std::size_t data_begin_ = 0;
    std::uint64_t header_lines_ = 0;
  };

  [[nodiscard]] opened open() const { return opened(*this, mapped_file(path_), format_); }

 private:
  std::string path_;
  Format format_;
  input_options options_;
};

/// A CSV file bound to `schema` (sluice::schema<T>(sluice::column(...), ...)).
template <class Schema>
file_source<csv_format<Schema>> csv_file(std::string path, Schema schema, input_options options = {},
                                         csv_options csv = {}) {
  return {std::move(path), csv_format<Schema>(std::move(schema), csv), std::move(options)};
}

}  // namespace sluice
