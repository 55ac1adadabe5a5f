// Core vocabulary: event time, hashing, keys, monoids.
#include <doctest/doctest.h>

#include <chrono>

#include "sluice/sluice.hpp"

using namespace std::chrono_literals;

TEST_CASE("millis arithmetic moves event time by chrono durations") {
  const sluice::millis t{1000};
  CHECK((t + 1min).count() == 61000);
  CHECK((t - 1s).count() == 0);
  CHECK((sluice::millis{5000} - t) == 4000ms);
}
