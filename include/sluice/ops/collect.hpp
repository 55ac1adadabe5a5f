// collect(): ends a flow of stateless stages (map, filter, flat_map, only) by handing on its
// elements as rows, for queries that select and project without aggregating (Nexmark q0-q2,
// q14, q21, q22: SELECT ... FROM bid WHERE ...).
//
//   auto f = flow<event>() | only<bid>() | filter(...) | map(...) | collect();
//   std::vector<row> rows = run_batch(source, f);                   // batch mode
//   run_stream(source, f, [](const std::vector<row>& rows) { ... });  // stream mode
//
// Batch mode returns every row: in input order with one thread, in no fixed order across
// threads (each thread's rows stay in their input order). Stream mode hands the rows each worker
// produced to the sink each time the watermark moves (nothing waits for a window), one call at
// a time, on any number of workers. A keyed element hands on its value. Rows are kept as they
// are, so they must own what they refer to (a std::string, not a view into the input).
#pragma once

#include <utility>
#include <vector>

#include "sluice/core/time.hpp"
#include "sluice/ops/aggregate.hpp"
#include "sluice/ops/process.hpp"

namespace sluice {

namespace detail {
/// The rows a worker or a chunk produced since they were last taken.
template <class Row>
class collect_partial : public window_firing {
 public:
  using result_type = emitted_rows<Row>;

  template <class K, class V>
  void add(millis /*t*/, const K& /*key*/, const V& value) {
    rows_.rows.push_back(value);
  }
  /// A row made by the stage before (a temporary): kept without a copy.
  void take(millis /*t*/, Row&& row) { rows_.rows.push_back(std::move(row)); }
  void merge(collect_partial& o) {
    if (rows_.rows.empty()) {
      rows_.rows = std::move(o.rows_.rows);
    } else {
      rows_.rows.insert(rows_.rows.end(), std::make_move_iterator(o.rows_.rows.begin()),
                        std::make_move_iterator(o.rows_.rows.end()));
    }
    o.rows_.rows.clear();
  }
  /// Every row so far: rows wait for nothing.
  result_type advance(millis w) {
    set_watermark(w);
    return std::exchange(rows_, result_type{});
  }
  result_type into_result() && { return std::move(rows_); }

 private:
  result_type rows_;
};
}  // namespace detail

struct collect_stage {
  static constexpr bool terminal = true;
  static constexpr bool needs_event_time = false;
  static constexpr bool order_sensitive = false;

  template <class E>
  static constexpr bool accepts = true;

  template <class E>
  auto make_partial() const {
    return detail::collect_partial<typename detail::aggregate_input<E>::value>{};
  }
};

/// collect(): the flow's elements as its rows; see the top of this header.
inline collect_stage collect() { return {}; }

}  // namespace sluice
