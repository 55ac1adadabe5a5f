// quantiles(f): a mergeable quantile sketch over f(x) (DDSketch-style log-spaced buckets), so
// p50/p99 of a keyed or windowed stream merge exactly across threads and epochs.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

#include "sluice/core/monoid.hpp"

namespace sluice {

namespace detail {

/// The value <-> bucket mapping for relative accuracy alpha: bucket i holds magnitudes in
/// (gamma^(i-1), gamma^i] with gamma = (1 + alpha) / (1 - alpha); answering 2 gamma^i / (gamma + 1)
/// for any of them is then off by at most alpha relative (up to floating rounding).
struct log_mapping {
  double alpha = 0.01;
  double gamma = 1.0;
  double inverse_log_gamma = 1.0;
  double log_gamma = 0.0;

  log_mapping() = default;
  explicit log_mapping(double relative_accuracy)
      : alpha(relative_accuracy),
        gamma((1.0 + relative_accuracy) / (1.0 - relative_accuracy)),
        inverse_log_gamma(1.0 / std::log(gamma)),
        log_gamma(std::log(gamma)) {}

  /// Bucket of a finite magnitude m > 0.
  [[nodiscard]] std::int64_t index(double m) const {
    return static_cast<std::int64_t>(std::ceil(std::log(m) * inverse_log_gamma));
  }
  [[nodiscard]] double value(std::int64_t i) const {
    return 2.0 * std::exp(static_cast<double>(i) * log_gamma) / (gamma + 1.0);
  }

  friend bool operator==(const log_mapping&, const log_mapping&) = default;
};

/// Counts of one sign's log buckets: counts_[k] is bucket offset_ + k, a window grown
/// geometrically so an add into an existing bucket never allocates.
///
/// Bounded to max_buckets: when the highest bucket index `top` grows, every bucket below
/// top - max_buckets + 1 (the floor) is folded into the floor. The result is canonical: an input
/// with bucket i always ends in bucket max(i, top - max_buckets + 1), where top is the highest
/// index over all inputs, whatever the add/merge order (the floor only rises, and clamping to
/// a lower floor first and a higher one later is the same as clamping to the higher one once).
/// So collapsing, too, keeps merge exact and order-independent; it only costs accuracy for the
/// smallest magnitudes, and 2048 buckets at alpha = 0.01 span a 10^17 dynamic range.
class bucket_store {
 public:
  [[nodiscard]] std::int64_t total() const { return total_; }
  [[nodiscard]] bool empty() const { return total_ == 0; }

  void add(std::int64_t index, std::int64_t n, std::int64_t max_buckets) {
    if (total_ == 0) {
      top_ = index;
    } else if (index > top_) {
      raise_top(index, max_buckets);
    }
    const std::int64_t j = std::max(index, top_ - max_buckets + 1);
    cover(j, max_buckets);
    counts_[static_cast<std::size_t>(j - offset_)] += n;
    total_ += n;
  }

  void merge(const bucket_store& o, std::int64_t max_buckets) {
    if (o.total_ == 0) {
      return;
    }
    if (total_ == 0) {
      *this = o;
      return;
    }
    if (o.top_ > top_) {
      raise_top(o.top_, max_buckets);
    }
    const std::int64_t floor = top_ - max_buckets + 1;
    const auto [o_lo, o_hi] = o.nonzero_range();
    cover(std::max(o.offset_ + static_cast<std::int64_t>(o_lo), floor), max_buckets);
    cover(std::max(o.top_, floor), max_buckets);
    for (std::size_t k = o_lo; k < o_hi; ++k) {
      const std::int64_t c = o.counts_[k];
      if (c != 0) {
        const std::int64_t j = std::max(o.offset_ + static_cast<std::int64_t>(k), floor);
        counts_[static_cast<std::size_t>(j - offset_)] += c;
      }
    }
    total_ += o.total_;
  }

  /// The lowest non-empty bucket's index and its counts up to the highest non-empty one:
  /// the canonical content, independent of how the window grew.
  [[nodiscard]] std::int64_t lowest_index() const { return offset_ + static_cast<std::int64_t>(nonzero_range().first); }
  [[nodiscard]] std::vector<std::int64_t> trimmed_counts() const {
    const auto [lo, hi] = nonzero_range();
    return {counts_.begin() + static_cast<std::ptrdiff_t>(lo), counts_.begin() + static_cast<std::ptrdiff_t>(hi)};
  }

  friend bool operator==(const bucket_store& a, const bucket_store& b) {
    if (a.total_ != b.total_) {
      return false;
    }
    if (a.total_ == 0) {
      return true;
    }
    const auto [alo, ahi] = a.nonzero_range();
    const auto [blo, bhi] = b.nonzero_range();
    return a.lowest_index() == b.lowest_index() && ahi - alo == bhi - blo &&
           std::equal(a.counts_.begin() + static_cast<std::ptrdiff_t>(alo),
                      a.counts_.begin() + static_cast<std::ptrdiff_t>(ahi),
                      b.counts_.begin() + static_cast<std::ptrdiff_t>(blo));
  }

 private:
  std::vector<std::int64_t> counts_;
  std::int64_t offset_ = 0;  // bucket index of counts_[0]
  std::int64_t top_ = 0;     // highest non-empty bucket index; meaningful only when total_ > 0
  std::int64_t total_ = 0;

  [[nodiscard]] std::pair<std::size_t, std::size_t> nonzero_range() const {
    std::size_t lo = 0;
    std::size_t hi = counts_.size();
    while (lo < hi && counts_[lo] == 0) {
      ++lo;
    }
    while (hi > lo && counts_[hi - 1] == 0) {
      --hi;
    }
    return {lo, hi};
  }

  // top_ moves up to `index`: fold everything below the new floor into the floor bucket.
  void raise_top(std::int64_t index, std::int64_t max_buckets) {
    const std::int64_t floor = index - max_buckets + 1;
    std::int64_t folded = 0;
    const std::int64_t end = std::min(floor, offset_ + static_cast<std::int64_t>(counts_.size()));
    for (std::int64_t i = offset_; i < end; ++i) {
      std::int64_t& c = counts_[static_cast<std::size_t>(i - offset_)];
      folded += c;
      c = 0;
    }
    top_ = index;
    if (folded != 0) {
      cover(floor, max_buckets);
      counts_[static_cast<std::size_t>(floor - offset_)] += folded;
    }
  }

  // Make the window include bucket j (top_ - max_buckets < j <= top_), growing by half
  // its size in the direction needed so that a run of new buckets reallocates O(log) times.
  // The window never reaches below the floor (all zero there), so it stays under ~2 max_buckets.
  void cover(std::int64_t j, std::int64_t max_buckets) {
    const auto size = static_cast<std::int64_t>(counts_.size());
    if (size > 0 && j >= offset_ && j < offset_ + size) {
      return;
    }
    const std::int64_t slack = std::max<std::int64_t>(16, size / 2);
    std::int64_t lo = size > 0 ? std::min(offset_, j) : j - slack;
    std::int64_t hi = size > 0 ? std::max(offset_ + size - 1, j) : j + slack;
    if (size > 0 && j < offset_) {
      lo = j - slack;
    }
    if (size > 0 && j >= offset_ + size) {
      hi = j + slack;
    }
    lo = std::max(lo, top_ - max_buckets + 1);
    std::vector<std::int64_t> grown(static_cast<std::size_t>(hi - lo + 1), 0);
    for (std::int64_t k = 0; k < size; ++k) {
      const std::int64_t i = offset_ + k;
      if (i >= lo && i <= hi) {
        grown[static_cast<std::size_t>(i - lo)] = counts_[static_cast<std::size_t>(k)];
      }
    }
    counts_ = std::move(grown);
    offset_ = lo;
  }
};

}  // namespace detail

/// The sketch state: magnitudes of negative and positive inputs in separate log stores, exact
/// zeros and infinities counted apart (an infinity in a store would push its top so far up that
/// every finite bucket collapsed), exact min and max beside them. Compares equal iff the same
/// multiset of bucketed inputs was seen (window layout is not part of equality).
struct quantiles_state {
  detail::bucket_store negative;
  detail::bucket_store positive;
  std::int64_t zeros = 0;
  std::int64_t negative_infinities = 0;
  std::int64_t positive_infinities = 0;
  double min = std::numeric_limits<double>::infinity();
  double max = -std::numeric_limits<double>::infinity();
  friend bool operator==(const quantiles_state&, const quantiles_state&) = default;
};

/// What a reader sees: counts and the bucket contents, compact and comparable with ==.
class quantile_summary {
 public:
  quantile_summary() = default;
  quantile_summary(const quantiles_state& s, const detail::log_mapping& mapping)
      : mapping_(mapping),
        negative_{s.negative.empty() ? 0 : s.negative.lowest_index(), s.negative.trimmed_counts()},
        positive_{s.positive.empty() ? 0 : s.positive.lowest_index(), s.positive.trimmed_counts()},
        zeros_(s.zeros),
        negative_infinities_(s.negative_infinities),
        count_(s.negative.total() + s.positive.total() + s.zeros + s.negative_infinities + s.positive_infinities),
        min_(s.min),
        max_(s.max) {}

  /// Number of inputs summarised (NaN inputs are not counted: they have no rank).
  [[nodiscard]] std::int64_t count() const { return count_; }
  /// Exact smallest / largest input; NaN when empty.
  [[nodiscard]] double min() const { return count_ == 0 ? std::numeric_limits<double>::quiet_NaN() : min_; }
  [[nodiscard]] double max() const { return count_ == 0 ? std::numeric_limits<double>::quiet_NaN() : max_; }
  [[nodiscard]] double relative_accuracy() const { return mapping_.alpha; }

  /// The q-quantile: an estimate of the input of 0-based rank floor(q * (count() - 1)) in
  /// ascending order, within relative error alpha of it (exact for rank 0 and the last rank,
  /// and for zeros). q is clamped to [0, 1]; NaN when empty or q is NaN. Inputs folded into the
  /// lowest bucket of a store that reached max_buckets lose that guarantee.
  [[nodiscard]] double quantile(double q) const {
    if (count_ == 0 || std::isnan(q)) {
      return std::numeric_limits<double>::quiet_NaN();
    }
    q = std::clamp(q, 0.0, 1.0);
    const auto rank = static_cast<std::int64_t>(q * static_cast<double>(count_ - 1));
    if (rank == 0) {
      return min_;
    }
    if (rank == count_ - 1) {
      return max_;
    }
    // Walk in ascending value order: -inf, negatives (largest magnitude first), zeros,
    // positives, and whatever is left is +inf.
    std::int64_t seen = negative_infinities_;
    if (seen > rank) {
      return -std::numeric_limits<double>::infinity();
    }
    for (std::size_t k = negative_.counts.size(); k-- > 0;) {
      seen += negative_.counts[k];
      if (seen > rank) {
        return clamp(-mapping_.value(negative_.offset + static_cast<std::int64_t>(k)));
      }
    }
    seen += zeros_;
    if (seen > rank) {
      return 0.0;
    }
    for (std::size_t k = 0; k < positive_.counts.size(); ++k) {
      seen += positive_.counts[k];
      if (seen > rank) {
        return clamp(mapping_.value(positive_.offset + static_cast<std::int64_t>(k)));
      }
    }
    return std::numeric_limits<double>::infinity();
  }

  friend bool operator==(const quantile_summary&, const quantile_summary&) = default;

 private:
  struct buckets {
    std::int64_t offset = 0;           // bucket index of counts[0]
    std::vector<std::int64_t> counts;  // first and last entries non-zero
    friend bool operator==(const buckets&, const buckets&) = default;
  };

  detail::log_mapping mapping_;
  buckets negative_;
  buckets positive_;
  std::int64_t zeros_ = 0;
  std::int64_t negative_infinities_ = 0;
  std::int64_t count_ = 0;
  double min_ = std::numeric_limits<double>::infinity();
  double max_ = -std::numeric_limits<double>::infinity();

  // Moving a bucket's answer into [min, max] only brings it closer to the true value.
  [[nodiscard]] double clamp(double v) const { return std::clamp(v, min_, max_); }
};

// Performance: one std::log, a few compares and one increment per event; no allocation unless
// the input lands outside the buckets seen so far (the window then grows by half). Merge is
// linear in the buckets; reading the result copies them (<= max_buckets per sign).
template <class F>
struct quantiles_monoid {
  F project;
  detail::log_mapping mapping;
  std::int64_t max_buckets = 2048;

  using state = quantiles_state;

  [[nodiscard]] state identity() const { return {}; }

  template <class T>
  void add(state& s, const T& x) const {
    offer(s, static_cast<double>(std::invoke(project, x)));
  }

  void offer(state& s, double v) const {
    if (std::isnan(v)) {
      return;
    }
    v += 0.0;  // -0.0 becomes +0.0, so min/max bits never depend on which zero came first
    s.min = std::min(s.min, v);
    s.max = std::max(s.max, v);
    if (std::isinf(v)) {
      ++(v > 0.0 ? s.positive_infinities : s.negative_infinities);
    } else if (v > 0.0) {
      s.positive.add(mapping.index(v), 1, max_buckets);
    } else if (v < 0.0) {
      s.negative.add(mapping.index(-v), 1, max_buckets);
    } else {
      ++s.zeros;
    }
  }

  void merge(state& s, const state& o) const {
    // Bucket counts add and min/max are exact, so the merged state is the one sequential
    // adding would have built, bit for bit.
    s.negative.merge(o.negative, max_buckets);
    s.positive.merge(o.positive, max_buckets);
    s.zeros += o.zeros;
    s.negative_infinities += o.negative_infinities;
    s.positive_infinities += o.positive_infinities;
    s.min = std::min(s.min, o.min);
    s.max = std::max(s.max, o.max);
  }

  [[nodiscard]] quantile_summary result(const state& s) const { return quantile_summary{s, mapping}; }
};

/// quantiles(f) / quantiles(f, alpha) / quantiles(f, alpha, max_buckets): a quantile sketch of
/// f(x) (anything convertible to double) answering quantile(q) within relative error alpha.
/// alpha in [1e-9, 1); max_buckets >= 1 per sign.
template <class F>
struct quantiles {
  F project;
  double alpha;
  std::int64_t max_buckets;

  constexpr explicit quantiles(F f, double relative_accuracy = 0.01, std::int64_t max_buckets_per_sign = 2048)
      : project(std::move(f)), alpha(relative_accuracy), max_buckets(max_buckets_per_sign) {
    if (!(relative_accuracy >= 1e-9 && relative_accuracy < 1.0)) {
      throw std::invalid_argument("sluice::quantiles: alpha must be in [1e-9, 1)");
    }
    if (max_buckets_per_sign < 1) {
      throw std::invalid_argument("sluice::quantiles: max_buckets must be >= 1");
    }
  }

  template <class T>
  [[nodiscard]] auto bind() const {
    static_assert(detail::projection_for<F, T>, "sluice::quantiles(f): f must be callable with the event type");
    static_assert(std::is_convertible_v<detail::projected_t<F, T>, double>,
                  "sluice::quantiles(f): f(x) must be convertible to double");
    return quantiles_monoid<F>{project, detail::log_mapping{alpha}, max_buckets};
  }
};

}  // namespace sluice
