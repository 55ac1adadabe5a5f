// An in-memory range as a bounded source: tests, benchmarks, and hosts that already hold their
// events. Chunks are index ranges; events are exact, so there are no bad records.
#pragma once

#include <cstddef>
#include <iterator>
#include <ranges>
#include <string_view>
#include <utility>

#include "sluice/io/bad_record.hpp"
#include "sluice/io/bounded_input.hpp"

namespace sluice {

template <std::ranges::random_access_range R>
class memory_source {
 public:
  using value_type = std::ranges::range_value_t<R>;

  explicit memory_source(R range) : range_(std::move(range)) {}

  class opened {
   public:
    explicit opened(const memory_source& src) : src_(&src) {}
    [[nodiscard]] std::size_t begin() const { return 0; }
    [[nodiscard]] std::size_t end() const { return static_cast<std::size_t>(std::ranges::size(src_->range_)); }
    [[nodiscard]] std::uint64_t first_line() const { return 1; }
    [[nodiscard]] std::string_view name() const { return "memory"; }
    [[nodiscard]] const input_options& options() const { return src_->options_; }
    [[nodiscard]] std::string_view text(std::uint64_t /*offset*/, std::uint64_t /*length*/) const { return {}; }
    [[nodiscard]] std::size_t align(std::size_t pos) const { return pos < end() ? pos : end(); }

    template <class Emit, class Report>
    chunk_outcome parse(std::size_t begin, std::size_t stop, Emit&& emit, Report&& /*report*/) const {
      chunk_outcome out;
      auto it = std::ranges::begin(src_->range_) + static_cast<std::ptrdiff_t>(begin);
      for (std::size_t i = begin; i < stop; ++i, ++it) {
        emit(*it);
      }
      out.records = stop > begin ? stop - begin : 0;
      out.lines = out.records;
      out.next = stop;
      return out;
    }

   private:
    const memory_source* src_;
  };

  [[nodiscard]] opened open() const { return opened(*this); }

 private:
  R range_;
  input_options options_;
};

/// A view of events the host already holds (a vector, an array, any random-access range).
template <std::ranges::random_access_range R>
auto from_range(R&& range) {
  return memory_source<std::views::all_t<R>>(std::views::all(std::forward<R>(range)));
}

}  // namespace sluice
