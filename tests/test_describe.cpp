// describe(flow): the stages of a stateless chain, a windowed aggregate with several monoids,
// joins (event-time and lookup), a process function, a chained flow and a fan_out, in order and
// with their parameters and element types; named(...) names a function without changing what
// it computes; to_text lines up one stage a line; to_dot is well-formed Graphviz (and renders
// with `dot` where Graphviz is installed; the test does not need it).
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <variant>
#include <vector>

#include "dot_check.hpp"
#include "sluice/io/memory_source.hpp"
#include "sluice/ops/describe.hpp"
#include "sluice/run/batch.hpp"
#include "sluice/sluice.hpp"

using namespace std::chrono_literals;

namespace shop {  // a namespace, which descriptions leave out
struct order {
  sluice::millis ts;
  std::string_view region;
  std::int64_t customer = 0;
  std::int64_t cents = 0;
};
struct customer {
  std::int64_t id = 0;
  std::string name;
};
struct alert {
  std::int64_t customer = 0;
  std::int64_t total = 0;
};
struct spend {
  std::int64_t total = 0;
};
struct payment {
  sluice::millis ts;
  std::int64_t customer = 0;
  std::int64_t cents = 0;
};
}  // namespace shop

namespace {

using shop::order;

std::vector<std::string> kinds(const sluice::flow_description& d) {
  std::vector<std::string> out;
  for (const auto& s : d.stages) {
    out.push_back(s.kind);
  }
  return out;
}

using strings = std::vector<std::string>;

void check_dot(const sluice::flow_description& d) {
  dot_check::check_graph(sluice::to_dot(d, "a \"quoted\" title"));
}

}  // namespace

TEST_CASE("type_name shows types as a reader writes them: fixed-width integers, no namespaces, tuples in parens") {
  CHECK(sluice::type_name<std::int64_t>() == "int64");
  CHECK(sluice::type_name<std::uint32_t>() == "uint32");
  CHECK(sluice::type_name<const std::string&>() == "string");
  CHECK(sluice::type_name<std::string_view>() == "string_view");
  CHECK(sluice::type_name<order>() == "order");
  CHECK(sluice::type_name<std::tuple<std::int64_t, std::optional<double>>>() == "(int64, optional<double>)");
  CHECK(sluice::type_name<std::variant<shop::customer, order>>() == "variant<customer, order>");
  CHECK(sluice::type_name<sluice::keyed<std::string_view, order>>() == "keyed<string_view, order>");
  CHECK(sluice::type_name<std::vector<shop::alert>>() == "vector<alert>");
}

TEST_CASE("named(name, f) computes what f computes, keeps a borrowed field a reference, and shows the name") {
  const auto region = sluice::named("region", &order::region);
  const order o{sluice::millis{5}, "eu", 7, 250};
  static_assert(std::is_same_v<decltype(region(o)), const std::string_view&>);
  CHECK(region(o) == "eu");
  CHECK(region.name() == "region");
  // In a running flow: the same answer as the unnamed function.
  const std::vector<order> orders{
      {sluice::millis{1}, "eu", 1, 100}, {sluice::millis{2}, "us", 2, 50}, {sluice::millis{3}, "eu", 3, 25}};
  const auto f = sluice::flow<order>() | sluice::key_by(region) |
                 sluice::aggregate(sluice::sum(sluice::named("cents", [](const order& x) { return x.cents; })));
  const auto store = sluice::run_batch(sluice::from_range(orders), f);
  CHECK(store.get("eu") == 125);
  CHECK(store.get("us") == 50);
}

TEST_CASE("a stateless chain: each stage in order, named functions by name, element types as they change") {
  const auto f = sluice::flow<order>() |
                 sluice::filter(sluice::named("big", [](const order& o) { return o.cents > 100; })) |
                 sluice::map([](const order& o) {
                   return shop::alert{o.customer, o.cents};
                 }) |
                 sluice::flat_map<shop::spend>([](const shop::alert& a, auto emit) { emit(shop::spend{a.total}); }) |
                 sluice::collect();
  const auto d = sluice::describe(f);
  CHECK(d.input == "order");
  CHECK(kinds(d) == strings{"filter", "map", "flat_map", "collect"});
  CHECK(d.stages[0].detail == "big");
  CHECK(d.stages[0].output == "order");
  CHECK(d.stages[1].detail == "");
  CHECK(d.stages[1].output == "alert");
  CHECK(d.stages[3].output == "spend");
  check_dot(d);
}

TEST_CASE("a windowed aggregate: window kind and size, then every monoid by name, and the row type") {
  const auto revenue = sluice::named("revenue", [](const order& o) { return o.cents; });
  const auto f = sluice::flow<order>() | sluice::event_time(&order::ts) |
                 sluice::key_by(sluice::named("region", &order::region)) | sluice::window(sluice::sliding(5min, 1min)) |
                 sluice::aggregate(sluice::count{}, sluice::sum(revenue), sluice::max(&order::cents),
                                   sluice::mean(revenue), sluice::top_k(10, &order::customer),
                                   sluice::count_if(sluice::named("big", [](const order& o) { return o.cents > 100; })),
                                   sluice::distinct_count(&order::customer), sluice::quantiles(revenue, 0.01));
  const auto d = sluice::describe(f);
  REQUIRE(kinds(d) == strings{"event_time", "key_by", "window", "aggregate"});
  CHECK(d.stages[1].detail == "region");
  CHECK(d.stages[1].output == "keyed<string_view, order>");
  CHECK(d.stages[2].detail == "sliding(5min, every 1min)");
  CHECK(d.stages[3].detail ==
        "count, sum(revenue), max, mean(revenue), top_k(10), count_if(big), distinct_count(hll p=12), "
        "quantiles(revenue, alpha 0.01)");
  CHECK(d.stages[3].output.starts_with("window_row<string, time_window, (int64, int64, optional<int64>, "));

  // The other windows, and the text form: one numbered line a stage, aligned.
  const auto tumbling = sluice::flow<order>() | sluice::event_time(&order::ts) | sluice::key_by(&order::region) |
                        sluice::window(sluice::tumbling(1h)) | sluice::aggregate(sluice::count{});
  CHECK(sluice::describe(tumbling).stages[2].detail == "tumbling(1h)");
  // A key of several extractors: their names when each has one, else the key's type.
  CHECK(sluice::describe(sluice::flow<order>() | sluice::key_by(sluice::named("region", &order::region),
                                                                sluice::named("customer", &order::customer)))
            .stages[0]
            .detail == "region, customer");
  CHECK(sluice::describe(sluice::flow<order>() |
                         sluice::key_by(sluice::named("region", &order::region), &order::customer))
            .stages[0]
            .detail == "(string_view, int64)");
  CHECK(sluice::describe(sluice::flow<order>() | sluice::event_time(&order::ts) | sluice::key_by(&order::region) |
                         sluice::window(sluice::session(90s)) | sluice::aggregate(sluice::count{}))
            .stages[2]
            .detail == "session(gap 90s)");
  CHECK(sluice::describe(sluice::flow<order>() | sluice::key_by(&order::region) |
                         sluice::window(sluice::count_of(100)) | sluice::aggregate(sluice::count{}))
            .stages[1]
            .detail == "count(100 events)");
  CHECK(sluice::to_text(sluice::describe(tumbling)) ==
        "input          order\n"
        "1  event_time               -> order\n"
        "2  key_by      string_view  -> keyed<string_view, order>\n"
        "3  window      tumbling(1h) -> keyed<string_view, order>\n"
        "4  aggregate   count        -> window_row<string, time_window, int64>\n");
  check_dot(d);
}

TEST_CASE("joins: the kind (interval, regular, window, temporal, lookup), inner or left, and both sides") {
  using event = std::variant<shop::payment, order>;
  const auto keyed = sluice::flow<event>() | sluice::event_time(sluice::by_type(&shop::payment::ts, &order::ts)) |
                     sluice::key_by(sluice::by_type(&shop::payment::customer, &order::customer));
  const auto combine = [](const shop::payment& p, const order& o) {
    return shop::alert{p.customer, p.cents + o.cents};
  };

  const auto interval = sluice::describe(keyed | sluice::interval_join<shop::payment, order>(0ms, 1h, combine));
  REQUIRE(kinds(interval) == strings{"event_time", "key_by", "join"});
  CHECK(interval.stages[2].detail == "interval [0ms, 1h], inner");
  CHECK(interval.stages[2].sides == strings{"payment", "order"});
  CHECK(interval.stages[2].output == "alert");
  check_dot(interval);

  CHECK(sluice::describe(keyed | sluice::inner_join<shop::payment, order>(sluice::named("pay+order", combine)))
            .stages[2]
            .detail == "regular, inner, pay+order");
  CHECK(sluice::describe(keyed | sluice::inner_join<shop::payment, order>(combine, 5min)).stages[2].detail ==
        "interval [-5min, 5min], inner");
  CHECK(sluice::describe(keyed | sluice::window_join<shop::payment, order>(sluice::tumbling(10s), combine))
            .stages[2]
            .detail == "window tumbling(10s), inner");
  CHECK(sluice::describe(keyed | sluice::window_join<shop::payment, order>(sluice::session(30s), combine))
            .stages[2]
            .detail == "window session(gap 30s), inner");
  CHECK(sluice::describe(keyed | sluice::temporal_join<shop::payment, order>(combine)).stages[2].detail ==
        "temporal, inner");

  // A lookup join reads a table from outside the flow: drawn as its own input.
  sluice::lookup_table<std::int64_t, shop::customer> customers;
  const auto inner =
      sluice::describe(sluice::flow<order>() |
                       sluice::lookup_join(customers, &order::customer, [](const order& o, const shop::customer& c) {
                         return shop::alert{c.id, o.cents};
                       }));
  REQUIRE(kinds(inner) == strings{"join"});
  CHECK(inner.stages[0].detail == "lookup, inner");
  CHECK(inner.stages[0].table == "lookup_table<int64, customer>");
  const auto left =
      sluice::describe(sluice::flow<order>() |
                       sluice::lookup_join(customers, &order::customer, [](const order& o, const shop::customer* c) {
                         return shop::alert{c != nullptr ? c->id : 0, o.cents};
                       }));
  CHECK(left.stages[0].detail == "lookup, left");
  const std::string dot = sluice::to_dot(left);
  CHECK(dot.find("s1_table -> s1") != std::string::npos);
  check_dot(left);
}

TEST_CASE("a process function: its name, its state type and whether it sets timers; then the stages over its rows") {
  const auto on_event = [](auto& ctx, const order& o) {
    ctx.state().total += o.cents;
    ctx.timer_at(ctx.time() + 1min);
  };
  const auto on_timer = [](auto& ctx) { ctx.emit(shop::alert{ctx.key(), ctx.state().total}); };
  const auto f = sluice::flow<order>() | sluice::event_time(&order::ts) | sluice::key_by(&order::customer) |
                 sluice::process<shop::alert, shop::spend>(sluice::named("spend rules", on_event), on_timer)
                     .max_held_events(1000) |
                 sluice::key_by(&shop::alert::customer) | sluice::aggregate(sluice::max(&shop::alert::total));
  const auto d = sluice::describe(f);
  REQUIRE(kinds(d) == strings{"event_time", "key_by", "process", "key_by", "aggregate"});
  CHECK(d.stages[2].detail == "spend rules, state spend, timers, holds at most 1000 events");
  CHECK(d.stages[2].output == "alert");
  CHECK(d.stages[3].output == "keyed<int64, alert>");
  CHECK(d.stages[4].output == "key_row<int64, optional<int64>>");
  check_dot(d);
}

TEST_CASE("a chained flow: a window's rows into a second aggregate, with no stage the chain adds by itself") {
  const auto f = sluice::flow<order>() | sluice::event_time(&order::ts) | sluice::key_by(&order::customer) |
                 sluice::window(sluice::tumbling(10s)) | sluice::aggregate(sluice::count{}) |
                 sluice::key_by([](const auto& row) { return row.window; }) |
                 sluice::aggregate(sluice::all_max([](const auto& row) { return row.value; }));
  const auto d = sluice::describe(f);
  CHECK(kinds(d) == strings{"event_time", "key_by", "window", "aggregate", "key_by", "aggregate"});
  CHECK(d.stages[3].output == "window_row<int64, time_window, int64>");
  CHECK(d.stages[4].detail == "time_window");
  CHECK(d.stages[5].detail == "all_max");
  check_dot(d);
}

TEST_CASE("fan_out: one branch per flow over the one input, each drawn as its own cluster") {
  const auto f =
      sluice::fan_out(sluice::flow<order>() | sluice::key_by(&order::region) | sluice::aggregate(sluice::count{}),
                      sluice::flow<order>() | sluice::aggregate(sluice::sum(&order::cents)));
  const auto d = sluice::describe(f);
  CHECK(d.input == "order");
  CHECK(d.stages.empty());
  REQUIRE(d.branches.size() == 2);
  CHECK(kinds(d.branches[0]) == strings{"key_by", "aggregate"});
  CHECK(kinds(d.branches[1]) == strings{"aggregate"});
  CHECK(d.branches[1].stages[0].output == "key_row<none, int64>");  // no key_by: one key
  const std::string text = sluice::to_text(d);
  CHECK(text.starts_with("fan_out of 2 flows over order\nflow 1:\n  input"));
  const std::string dot = sluice::to_dot(d);
  CHECK(dot.find("subgraph cluster_1") != std::string::npos);
  CHECK(dot.find("subgraph cluster_2") != std::string::npos);
  CHECK(dot.find("input -> f2_s1") != std::string::npos);
  check_dot(d);
}

TEST_CASE("the DOT check itself rejects unbalanced braces, open strings and edges to undeclared nodes") {
  CHECK(dot_check::dot_problem("digraph g {\n  a [label=\"a\"];\n  a -> a;\n}\n") == "");
  CHECK(dot_check::dot_problem("digraph g {\n  a [label=\"a\"];\n  a -> a;\n") == "unbalanced braces");
  CHECK(dot_check::dot_problem("digraph g {\n  a [label=\"a];\n  a -> a;\n}\n") == "an unterminated string");
  CHECK(dot_check::dot_problem("digraph g {\n  a [label=\"a\"];\n  a -> b;\n}\n") ==
        "edge a -> b to an undeclared node");
}
