// The event log as a bounded source: run_batch over the records [from, to) of a log snapshot,
// each record's payload decoded into the flow's input type. This is the batch layer's input
// in Lambda mode and what `sales --log DIR` reads.
//
// Chunks are ranges of record offsets (every offset starts a record, so a chunk boundary never
// needs checking). A payload that does not decode is a bad record whose "line" is its log
// offset; a corrupt record is a log_error (never skipped), thrown by run_batch.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sluice/io/bad_record.hpp"
#include "sluice/io/bounded_input.hpp"
#include "sluice/io/csv.hpp"
#include "sluice/store/event_log.hpp"

namespace sluice {

/// Log payloads that are CSV records (no newline) in the column order `header` names: how a
/// CSV ingest keeps the accepted lines. Both Lambda layers decode the same bytes with this, so
/// both see exactly the same values.
template <class Schema>
class csv_payloads {
 public:
  using value_type = typename Schema::record_type;

  csv_payloads(Schema schema, std::string_view header, csv_options csv = {}) : format_(std::move(schema), csv) {
    format_.bind_header(header, "log header");
  }

  /// Decodes payloads on one thread (it owns the CSV tokenizer's scratch space).
  class decoder {
   public:
    explicit decoder(const csv_payloads& p) : parser_(p.format_) {}

    /// emit(value) for the payload's record; returns the reason it is not one, or "" if it was.
    /// Values' text fields are views valid until the next decode.
    template <class Emit>
    std::string decode(std::string_view payload, Emit&& emit) {
      if (decode_padded(payload, emit)) {
        return {};
      }
      return decode_exactly(payload, emit);
    }

   private:
    static constexpr std::size_t padding = 16;

    // The common case at the batch parser's speed: the tokenizer's 16-bytes-at-a-time path and
    // the field parsers' 8-byte reads need readable bytes past the record, which a payload alone
    // does not have. So parse a copy that ends in a newline and padding. It emits only a payload
    // that is exactly one good record, whose fields come out as they do from the payload alone
    // (the newline ends the last field as the end of input does, a CR before it included);
    // anything else (a bad or empty payload, two records) it leaves, having emitted nothing, to
    // decode_exactly, so reasons and emits stay what they always were.
    template <class Emit>
    bool decode_padded(std::string_view payload, Emit& emit) {
      const std::size_t size = payload.size() + 1 + padding;
      if (size > padded_size_) {  // grown, never shrunk: no allocation once warm
        padded_size_ = std::max(size, 2 * padded_size_);
        padded_ = std::make_unique_for_overwrite<char[]>(padded_size_);
      }
      char* b = padded_.get();
      std::memcpy(b, payload.data(), payload.size());
      b[payload.size()] = '\n';
      std::memset(b + payload.size() + 1, 0, padding);
      std::optional<value_type> only;
      const chunk_outcome out = parser_.parse(
          b, b, b + payload.size(), b + size, true, payload.size() + 1,
          [&](const value_type& v) { only = v; },
          [&](const chunk_bad_record& /*bad*/) { return false; });
      if (out.records != 1 || out.bad != 0) {
        return false;
      }
      emit(*only);
      return true;
    }

    template <class Emit>
    std::string decode_exactly(std::string_view payload, Emit& emit) {
      std::string reason;
      const char* b = payload.data();
      const char* e = b + payload.size();
      const chunk_outcome out = parser_.parse(
          b, b, e, e, true, payload.size() + 1, [&](const value_type& v) { emit(v); },
          [&](chunk_bad_record bad) {
            reason = std::move(bad.reason);
            return false;
          });
      if (reason.empty() && out.records != 1) {
        reason = out.records == 0 ? "empty payload" : "payload holds more than one record";
      }
      return reason;
    }

    typename csv_format<Schema>::parser parser_;
    std::unique_ptr<char[]> padded_;  // the payload, a newline, `padding` bytes
    std::size_t padded_size_ = 0;
  };

 private:
  csv_format<Schema> format_;
};

/// Records [from, to) of a log snapshot (event_log::segments() or list_segments(dir)).
template <class Payloads>
class log_source {
 public:
  using value_type = typename Payloads::value_type;

  log_source(std::vector<log_segment> segments, std::uint64_t from, std::uint64_t to, Payloads payloads,
             input_options options = {}, std::string name = "log")
      : segments_(std::move(segments)), from_(from), to_(to), payloads_(std::move(payloads)),
        options_(std::move(options)), name_(std::move(name)) {}

  /// All the records of the directory's log (read-only: a writer may be appending; its
  /// incomplete last record is not read).
  static log_source whole(const std::string& dir, Payloads payloads, input_options options = {}) {
    auto segments = list_segments(dir);
    const std::uint64_t end = segments.empty() ? 0 : segments.back().end_offset;
    return log_source(std::move(segments), 0, end, std::move(payloads), std::move(options), "log " + dir);
  }

  class opened {
   public:
    explicit opened(const log_source& src) : src_(&src) {}
    [[nodiscard]] std::size_t begin() const { return src_->from_; }
    [[nodiscard]] std::size_t end() const { return src_->to_; }
    [[nodiscard]] std::uint64_t first_line() const { return src_->from_; }  // "lines" are log offsets
    [[nodiscard]] std::string_view name() const { return src_->name_; }
    [[nodiscard]] const input_options& options() const { return src_->options_; }
    [[nodiscard]] std::string_view text(std::uint64_t /*offset*/, std::uint64_t /*length*/) const { return {}; }
    [[nodiscard]] std::size_t align(std::size_t pos) const { return pos < end() ? pos : end(); }
    /// The average record size on disk: the batch runner sizes its chunks in bytes.
    [[nodiscard]] std::size_t bytes_per_unit() const {
      std::uint64_t bytes = 0;
      std::uint64_t records = 0;
      for (const log_segment& s : src_->segments_) {
        bytes += s.bytes;
        records += s.end_offset - s.base_offset;
      }
      return records == 0 ? 1 : static_cast<std::size_t>(bytes / records);
    }

    template <class Emit, class Report>
    chunk_outcome parse(std::size_t begin, std::size_t stop, Emit&& emit, Report&& report) const {
      typename Payloads::decoder decoder(src_->payloads_);
      chunk_outcome out;
      out.next = stop;
      read_log(src_->segments_, begin, stop, [&](const log_record& r) {
        ++out.lines;
        std::string reason = decoder.decode(r.payload, emit);
        if (reason.empty()) {
          ++out.records;
          return true;
        }
        ++out.bad;
        if (!report(chunk_bad_record{r.offset, 1, r.offset - begin, "log record: " + reason})) {
          out.stopped = true;
          out.next = r.offset + 1;
          return false;
        }
        return true;
      });
      return out;
    }

   private:
    const log_source* src_;
  };

  [[nodiscard]] opened open() const { return opened(*this); }

 private:
  std::vector<log_segment> segments_;
  std::uint64_t from_;
  std::uint64_t to_;
  Payloads payloads_;
  input_options options_;
  std::string name_;
};

}  // namespace sluice
