// expect: window(...) needs event time
// Session windows need event time too.
#include <chrono>
#include <cstdint>

#include "sluice/sluice.hpp"

struct order {
  std::int64_t ts;
  std::int64_t region;
};

auto bad =
    sluice::flow<order>() | sluice::key_by(&order::region) | sluice::window(sluice::session(std::chrono::seconds(30)));
