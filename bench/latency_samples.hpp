// Percentiles of latency samples for the standalone latency programs (stream_latency,
// lambda_query_latency): samples in microseconds, answers in milliseconds.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace bench {

/// The sample at rank p * (n - 1) (p from 0 to 1), in ms; 0 without samples. Reorders `us`.
inline double percentile_ms(std::vector<std::int64_t>& us, double p) {
  if (us.empty()) {
    return 0;
  }
  const auto k = static_cast<std::size_t>(p * static_cast<double>(us.size() - 1));
  std::nth_element(us.begin(), us.begin() + static_cast<std::ptrdiff_t>(k), us.end());
  return static_cast<double>(us[k]) / 1000.0;
}

/// The largest sample in ms; 0 without samples.
inline double max_ms(const std::vector<std::int64_t>& us) {
  return us.empty() ? 0 : static_cast<double>(*std::max_element(us.begin(), us.end())) / 1000.0;
}

}  // namespace bench
