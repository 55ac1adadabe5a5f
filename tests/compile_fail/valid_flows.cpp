// expect: success
// The control: the corrected form of every misuse beside it compiles, so each failure there is
// the misuse itself, not a typo in the test or a broken include path.
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "sluice/sluice.hpp"

struct order {
  std::int64_t ts;
  std::int64_t region;
  std::int64_t qty;
  std::string_view category;
};
struct total_qty {
  using state = std::int64_t;
  static state identity() { return 0; }
  static void add(state& s, const order& o) { s += o.qty; }
  static void merge(state& s, const state& o) { s += o; }
  static state result(const state& s) { return s; }
};

void run() {
  const auto mapped = sluice::flow<order>() | sluice::map([](const order& o) { return std::to_string(o.qty); }) |
                      sluice::filter([](const std::string& s) { return !s.empty(); });
  auto sink = mapped.bind_sink([](sluice::millis, const std::string&) {});
  sink(sluice::millis{0}, order{1, 2, 3, "a"});

  const auto keyed = sluice::flow<order>() | sluice::key_by(&order::region, &order::category) |
                     sluice::aggregate(sluice::count{}, sluice::sum(&order::qty), total_qty{});
  auto p1 = keyed.make_partial();
  keyed.bind(p1)(sluice::millis{0}, order{1, 2, 3, "a"});

  const auto windowed = sluice::flow<order>() | sluice::event_time(&order::ts) | sluice::key_by(&order::region) |
                        sluice::window(sluice::tumbling(std::chrono::minutes(1))) | sluice::aggregate(total_qty{});
  auto p2 = windowed.make_partial();
  windowed.bind(p2)(sluice::millis{0}, order{1, 2, 3, "a"});

  const auto sessions = sluice::flow<order>() | sluice::event_time([](const order& o) { return o.ts; }) |
                        sluice::key_by(&order::region) | sluice::window(sluice::session(std::chrono::seconds(30))) |
                        sluice::aggregate(sluice::sum([](const order& o) { return o.qty; }));
  auto p3 = sessions.make_partial();
  sessions.bind(p3)(sluice::millis{0}, order{1, 2, 3, "a"});

  const auto counted = sluice::flow<order>() | sluice::key_by(&order::region) | sluice::window(sluice::count_of(10)) |
                       sluice::aggregate(sluice::count{});
  auto p4 = counted.make_partial();
  counted.bind(p4)(sluice::millis{0}, order{1, 2, 3, "a"});

  // The corrected forms of chained_not_a_monoid and changelog_into_process (the guide's examples).
  const auto hot = sluice::flow<order>() | sluice::event_time(&order::ts) | sluice::key_by(&order::region) |
                   sluice::window(sluice::tumbling(std::chrono::seconds(10))) | sluice::aggregate(sluice::count{}) |
                   sluice::window(sluice::tumbling(std::chrono::seconds(10))) |
                   sluice::aggregate(sluice::max([](const auto& row) { return row.value; }));
  auto p5 = hot.make_partial();
  hot.bind(p5)(sluice::millis{0}, order{1, 2, 3, "a"});

  const auto avg_max = sluice::flow<order>() | sluice::event_time(&order::ts) | sluice::key_by(&order::region) |
                       sluice::aggregate(sluice::max(&order::qty)) |
                       sluice::key_by([](const auto& row) { return row.key % 10; }) |
                       sluice::aggregate(sluice::mean([](const auto& row) { return *row.value; }));
  auto p6 = avg_max.make_partial();
  avg_max.bind(p6)(sluice::millis{0}, order{1, 2, 3, "a"});
}
