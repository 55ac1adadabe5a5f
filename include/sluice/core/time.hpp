// Event time: milliseconds since the Unix epoch as a strong type, and duration helpers.
#pragma once

#include <chrono>
#include <compare>
#include <cstdint>
#include <limits>

namespace sluice {

/// A point in event time: milliseconds since the Unix epoch.
/// A strong type so that an event time is never confused with a count or a duration.
class millis {
 public:
  constexpr millis() = default;
  constexpr explicit millis(std::int64_t ms) : ms_(ms) {}

  [[nodiscard]] constexpr std::int64_t count() const { return ms_; }

  static constexpr millis min() { return millis{std::numeric_limits<std::int64_t>::min()}; }
  static constexpr millis max() { return millis{std::numeric_limits<std::int64_t>::max()}; }

  constexpr auto operator<=>(const millis&) const = default;

  template <class Rep, class Period>
  friend constexpr millis operator+(millis t, std::chrono::duration<Rep, Period> d) {
    return millis{t.ms_ + std::chrono::duration_cast<std::chrono::milliseconds>(d).count()};
  }
  template <class Rep, class Period>
  friend constexpr millis operator-(millis t, std::chrono::duration<Rep, Period> d) {
    return millis{t.ms_ - std::chrono::duration_cast<std::chrono::milliseconds>(d).count()};
  }
  friend constexpr std::chrono::milliseconds operator-(millis a, millis b) {
    return std::chrono::milliseconds{a.ms_ - b.ms_};
  }

 private:
  std::int64_t ms_ = 0;
};

/// A duration in whole milliseconds, whatever chrono unit the caller used.
template <class Rep, class Period>
constexpr std::int64_t to_millis(std::chrono::duration<Rep, Period> d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

}  // namespace sluice
