// An in-memory range as a bounded source: tests, benchmarks, and hosts that already hold their
// events. Chunks are index ranges; events are exact, so there are no bad records.
// (Plain random-access iterators rather than <ranges>: clang 14 cannot compile libstdc++ 12's
// <ranges>, and a host may build with either compiler.)
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <iterator>
#include <string_view>
#include <type_traits>
#include <utility>

#include "sluice/io/bad_record.hpp"
#include "sluice/io/bounded_input.hpp"

namespace sluice {

template <class Iterator>
class memory_source {
  static_assert(
      std::is_base_of_v<std::random_access_iterator_tag, typename std::iterator_traits<Iterator>::iterator_category>,
      "sluice::from_range needs a random-access range (a vector, an array, a deque, ...)");

 public:
  using value_type = typename std::iterator_traits<Iterator>::value_type;

  memory_source(Iterator first, std::size_t size) : first_(first), size_(size) {}

  class opened {
   public:
    explicit opened(const memory_source& src) : src_(&src) {}
    [[nodiscard]] std::size_t begin() const { return 0; }
    [[nodiscard]] std::size_t end() const { return src_->size_; }
    [[nodiscard]] std::uint64_t first_line() const { return 1; }
    [[nodiscard]] std::string_view name() const { return "memory"; }
    [[nodiscard]] const input_options& options() const { return src_->options_; }
    [[nodiscard]] std::string_view text(std::uint64_t /*offset*/, std::uint64_t /*length*/) const { return {}; }
    [[nodiscard]] std::size_t align(std::size_t pos) const { return pos < end() ? pos : end(); }
    static constexpr bool units_are_records = true;  // progress counts elements, not bytes

    template <class Emit, class Report>
    chunk_outcome parse(std::size_t begin, std::size_t stop, Emit&& emit, Report&& /*report*/) const {
      chunk_outcome out;
      auto it = src_->first_ + static_cast<std::ptrdiff_t>(begin);
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
  Iterator first_;
  std::size_t size_;
  input_options options_;
};

/// Events made on demand by a function of their number, fn(i) for i in [0, count): a generator
/// (a benchmark's data generator, like Flink's datagen source) run in batch mode on every core,
/// each chunk making its own range. fn is called from several threads at once.
template <class Fn>
class index_source {
 public:
  using value_type = std::remove_cvref_t<std::invoke_result_t<const Fn&, std::uint64_t>>;

  index_source(std::uint64_t count, Fn fn) : count_(count), fn_(std::move(fn)) {}

  class opened {
   public:
    explicit opened(const index_source& src) : src_(&src) {}
    [[nodiscard]] std::size_t begin() const { return 0; }
    [[nodiscard]] std::size_t end() const { return static_cast<std::size_t>(src_->count_); }
    [[nodiscard]] std::uint64_t first_line() const { return 1; }
    [[nodiscard]] std::string_view name() const { return "generator"; }
    [[nodiscard]] const input_options& options() const { return src_->options_; }
    [[nodiscard]] std::string_view text(std::uint64_t /*offset*/, std::uint64_t /*length*/) const { return {}; }
    [[nodiscard]] std::size_t align(std::size_t pos) const { return pos < end() ? pos : end(); }
    static constexpr bool units_are_records = true;  // progress counts elements, not bytes

    template <class Emit, class Report>
    chunk_outcome parse(std::size_t begin, std::size_t stop, Emit&& emit, Report&& /*report*/) const {
      for (std::size_t i = begin; i < stop; ++i) {
        emit(std::as_const(src_->fn_)(static_cast<std::uint64_t>(i)));
      }
      chunk_outcome out;
      out.records = stop > begin ? stop - begin : 0;
      out.lines = out.records;
      out.next = stop;
      return out;
    }

   private:
    const index_source* src_;
  };

  [[nodiscard]] opened open() const { return opened(*this); }

 private:
  std::uint64_t count_;
  Fn fn_;
  input_options options_;
};

/// fn(0), fn(1), ..., fn(count - 1) as a bounded source; see index_source.
template <class Fn>
index_source<Fn> from_index(std::uint64_t count, Fn fn) {
  return index_source<Fn>(count, std::move(fn));
}

/// A view of events the host already holds (a vector, an array, any random-access container).
/// The container must outlive the run; a temporary is refused at compile time.
template <class R>
auto from_range(const R& range) {
  return memory_source<decltype(std::begin(range))>(std::begin(range), static_cast<std::size_t>(std::size(range)));
}
template <class R>
requires(!std::is_lvalue_reference_v<R>) auto from_range(R&& range) = delete;

}  // namespace sluice
