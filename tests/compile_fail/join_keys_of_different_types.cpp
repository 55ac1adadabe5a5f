// expect: the calls return types with nothing in common
// A person's key is a number and an auction's a string: one join key cannot be both.
#include <cstdint>
#include <string>
#include <variant>

#include "sluice/sluice.hpp"

struct person {
  sluice::millis ts;
  std::int64_t id;
};
struct auction {
  sluice::millis ts;
  std::string seller;
};
using event = std::variant<person, auction>;

auto bad = sluice::flow<event>() | sluice::event_time(sluice::by_type(&person::ts, &auction::ts)) |
           sluice::key_by(sluice::by_type(&person::id, &auction::seller));
