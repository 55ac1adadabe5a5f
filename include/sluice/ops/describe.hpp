// describe(flow): what a flow will do, stage by stage, as data; to_text() prints it one line a
// stage (like SQL's EXPLAIN), to_dot() as a Graphviz graph (joins and fan_out drawn as the DAG
// they are: a join's two sides, a lookup join's table, one branch per fan_out flow).
//
//   auto f = flow<sale>() | event_time(&sale::ts) | key_by(named("region", &sale::region))
//          | window(tumbling(1min)) | aggregate(count{}, sum(named("revenue", revenue_cents)));
//   std::fputs(to_text(describe(f)).c_str(), stdout);
//
//   input          sale
//   1  event_time                      -> sale
//   2  key_by      region              -> keyed<string_view, sale>
//   3  window      tumbling(1min)      -> keyed<string_view, sale>
//   4  aggregate   count, sum(revenue) -> window_row<string, time_window, (int64, int64)>
//
// Each stage shows its kind, its parameters (window sizes, monoids, join kind and bounds) and
// the element type it hands on (core/type_name.hpp). Functions are shown by their name when they
// have one (core/named.hpp); a monoid of the user's by its type's name. The description is
// built from the flow's types and parameters only: nothing runs.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "sluice/core/dedupe.hpp"
#include "sluice/core/distinct_count.hpp"
#include "sluice/core/filtered.hpp"
#include "sluice/core/monoid.hpp"
#include "sluice/core/named.hpp"
#include "sluice/core/quantiles.hpp"
#include "sluice/core/top_k.hpp"
#include "sluice/core/type_name.hpp"
#include "sluice/ops/aggregate.hpp"
#include "sluice/ops/chain.hpp"
#include "sluice/ops/collect.hpp"
#include "sluice/ops/event_time.hpp"
#include "sluice/ops/fan_out.hpp"
#include "sluice/ops/filter.hpp"
#include "sluice/ops/flat_map.hpp"
#include "sluice/ops/flow.hpp"
#include "sluice/ops/join.hpp"
#include "sluice/ops/key_by.hpp"
#include "sluice/ops/lookup_join.hpp"
#include "sluice/ops/map.hpp"
#include "sluice/ops/process.hpp"
#include "sluice/ops/reduce.hpp"
#include "sluice/ops/tagged.hpp"
#include "sluice/ops/window.hpp"

namespace sluice {

/// One stage of a flow as a reader sees it.
struct stage_description {
  std::string kind;    // "map", "filter", "key_by", "window", "aggregate", "join", "process", ...
  std::string detail;  // its parameters: "tumbling(1min)", "count, sum(revenue)", "interval [0ms, 1h], inner"
  std::string output;  // the element (or row) type it hands on
  std::vector<std::string> sides;  // a join's two inputs, both from the stage before: "person", "auction"
  std::string table;               // a lookup join's table (its type): an input from outside the flow
};

/// A flow: its input type and its stages in order; or, for fan_out, one branch per flow.
struct flow_description {
  std::string input;
  std::vector<stage_description> stages;
  std::vector<flow_description> branches;  // fan_out's flows, each over `input` (then no stages)
};

namespace detail {
/// "1h", "5min", "10s", "250ms": the largest unit that divides ms.
inline std::string duration_label(std::int64_t ms) {
  if (ms == std::numeric_limits<std::int64_t>::max()) {
    return "inf";
  }
  if (ms == std::numeric_limits<std::int64_t>::min() || ms == -std::numeric_limits<std::int64_t>::max()) {
    return "-inf";
  }
  const std::string sign = ms < 0 ? "-" : "";
  const std::int64_t m = ms < 0 ? -ms : ms;
  if (m != 0 && m % 3'600'000 == 0) {
    return sign + std::to_string(m / 3'600'000) + "h";
  }
  if (m != 0 && m % 60'000 == 0) {
    return sign + std::to_string(m / 60'000) + "min";
  }
  if (m != 0 && m % 1000 == 0) {
    return sign + std::to_string(m / 1000) + "s";
  }
  return sign + std::to_string(m) + "ms";
}

/// 0.01 -> "0.01" (std::to_string gives "0.010000").
inline std::string number_label(double x) {
  std::string s = std::to_string(x);
  while (s.size() > 1 && s.back() == '0') {
    s.pop_back();
  }
  if (s.back() == '.') {
    s.pop_back();
  }
  return s;
}

/// A function's name: its name() (named(...) or the user's functor), else empty.
template <class F>
std::string function_name(const F& f) {
  if constexpr (requires { std::string(f.name()); }) {
    return std::string(f.name());
  } else {
    return {};
  }
}

/// "(name)" for a named function, else nothing: sum(revenue), filter's "(big)".
template <class F>
std::string name_suffix(const F& f) {
  const std::string n = function_name(f);
  return n.empty() ? n : "(" + n + ")";
}

inline std::string joined(const std::vector<std::string>& parts, std::string_view sep = ", ") {
  std::string out;
  for (const auto& p : parts) {
    if (!p.empty()) {
      out += (out.empty() ? "" : std::string(sep)) + p;
    }
  }
  return out;
}

// ---- monoids by name ----------------------------------------------------------------------

/// A monoid of the user's: its name(), else its type's name.
template <class A>
std::string aggregator_label(const A& a) {
  std::string n = function_name(a);
  return n.empty() ? type_name<A>() : n;
}
inline std::string aggregator_label(const count& /*c*/) {
  return "count";
}

/// The monoids of one projection f: "sum" + "(name)" when f has one.
template <template <class> class M>
inline constexpr const char* projecting_monoid = nullptr;
template <>
inline constexpr const char* projecting_monoid<sum> = "sum";
template <>
inline constexpr const char* projecting_monoid<min> = "min";
template <>
inline constexpr const char* projecting_monoid<max> = "max";
template <>
inline constexpr const char* projecting_monoid<mean> = "mean";
template <>
inline constexpr const char* projecting_monoid<all_max> = "all_max";
template <>
inline constexpr const char* projecting_monoid<exact_distinct_count> = "exact_distinct_count";
template <template <class> class M, class F>
requires(projecting_monoid<M> != nullptr) std::string aggregator_label(const M<F>& a) {
  return projecting_monoid<M> + name_suffix(a.project);
}
template <class F, class C>
std::string aggregator_label(const top_k<F, C>& a) {
  if constexpr (std::is_same_v<F, whole_event>) {
    return "top_n(" + std::to_string(a.k) + ")";
  } else {
    return "top_k(" + joined({std::to_string(a.k), function_name(a.project)}) + ")";
  }
}
template <class F>
std::string aggregator_label(const quantiles<F>& a) {
  return "quantiles(" + joined({function_name(a.project), "alpha " + number_label(a.alpha)}) + ")";
}
template <class F>
std::string aggregator_label(const distinct_count<F>& a) {
  return "distinct_count(" + joined({function_name(a.project), "hll p=" + std::to_string(a.precision)}) + ")";
}
template <class P, class A>
std::string aggregator_label(const filtered<P, A>& a) {
  if constexpr (std::is_same_v<A, count>) {
    return "count_if" + name_suffix(a.pred);
  } else {
    return "filtered(" + joined({function_name(a.pred), aggregator_label(a.aggregator)}) + ")";
  }
}
template <class F, class Better>
std::string aggregator_label(const pick<F, Better>& a) {
  return (std::is_same_v<Better, std::less<>> ? "first_by" : "last_by") + name_suffix(a.project);
}
template <class F>
std::string aggregator_label(const reducer<F>& a) {
  return "reduce" + name_suffix(a.fn);
}
template <class... As>
std::string aggregator_label(const product_aggregator<As...>& a) {
  return std::apply([](const auto&... parts) { return joined({aggregator_label(parts)...}); }, a.parts);
}

// ---- windows ------------------------------------------------------------------------------

inline std::string window_label(const tumbling_window& w) {
  return "tumbling(" + duration_label(w.size_ms) + ")";
}
inline std::string window_label(const sliding_window& w) {
  return "sliding(" + duration_label(w.size_ms) + ", every " + duration_label(w.slide_ms) + ")";
}
inline std::string window_label(const session_window& w) {
  return "session(gap " + duration_label(w.gap_ms) + ")";
}
inline std::string window_label(const count_window& w) {
  return "count(" + std::to_string(w.n) + " events)";
}

// ---- process functions and the joins built on them ----------------------------------------

/// A join's kind and parameters from its process function's type, or nothing for a user's own.
template <class OnEvent>
struct join_of {
  static constexpr bool is_join = false;
};
template <class L, class R>
struct join_of_sides {
  static constexpr bool is_join = true;
  static std::vector<std::string> sides() { return {type_name<L>(), type_name<R>()}; }
};
template <class L, class R, class C>
struct join_of<interval_join_fn<L, R, C>> : join_of_sides<L, R> {
  static std::string detail(const interval_join_fn<L, R, C>& f) {
    constexpr std::int64_t unbounded = std::numeric_limits<std::int64_t>::max();
    const std::string bounds = f.lower == -unbounded && f.upper == unbounded
                                   ? std::string("regular")
                                   : "interval [" + duration_label(f.lower) + ", " + duration_label(f.upper) + "]";
    return joined({bounds + ", inner", function_name(f.combine)});
  }
};
template <class L, class R, class W, class C>
struct join_of<window_join_fn<L, R, W, C>> : join_of_sides<L, R> {
  static std::string detail(const window_join_fn<L, R, W, C>& f) {
    return joined({"window " + window_label(f.spec) + ", inner", function_name(f.combine)});
  }
};
template <class L, class R, class C>
struct join_of<session_join_fn<L, R, C>> : join_of_sides<L, R> {
  static std::string detail(const session_join_fn<L, R, C>& f) {
    return joined({"window " + window_label(session_window{f.gap}) + ", inner", function_name(f.combine)});
  }
};
template <class L, class R, class C>
struct join_of<temporal_join_fn<L, R, C>> : join_of_sides<L, R> {
  static std::string detail(const temporal_join_fn<L, R, C>& f) {
    return joined({"temporal, inner", function_name(f.combine)});
  }
};

// ---- stages -------------------------------------------------------------------------------

/// What reaches the next stage after S, given the element E that reaches S.
template <class E, class S>
struct described_output {
  using type = typename element_step<E, S>::type;
};
template <class E, class S>
requires terminal_stage<S>
struct described_output<E, S> {
  using type = typename rows_of<E, S>::type;  // a terminal stage's rows
};

template <class E, class S>
stage_description stage_entry(std::string kind, std::string detail = {}) {
  return {std::move(kind), std::move(detail), type_name<typename described_output<E, S>::type>(), {}, {}};
}

template <class E, class F>
void describe_stage(const event_time_stage<F>& s, std::vector<stage_description>& out) {
  if constexpr (!std::is_same_v<F, window_row_time>) {  // a chain's own: a window row's time
    out.push_back(stage_entry<E, event_time_stage<F>>("event_time", function_name(s.fn)));
  }
}
template <class E>
void describe_stage(const emitted_time_stage& /*s*/, std::vector<stage_description>& /*out*/) {
  // a chain's own: a process function's rows keep the time they were emitted at
}
template <class E, class F>
void describe_stage(const map_stage<F>& s, std::vector<stage_description>& out) {
  out.push_back(stage_entry<E, map_stage<F>>("map", function_name(s.fn)));
}
template <class E, class P>
void describe_stage(const filter_stage<P>& s, std::vector<stage_description>& out) {
  out.push_back(stage_entry<E, filter_stage<P>>("filter", function_name(s.pred)));
}
template <class E, class R, class F>
void describe_stage(const flat_map_stage<R, F>& s, std::vector<stage_description>& out) {
  out.push_back(stage_entry<E, flat_map_stage<R, F>>("flat_map", function_name(s.fn)));
}
template <class E, class T>
void describe_stage(const only_stage<T>& /*s*/, std::vector<stage_description>& out) {
  out.push_back(stage_entry<E, only_stage<T>>("only", type_name<T>()));
}
template <class E, class... Fs>
void describe_stage(const key_by_stage<Fs...>& s, std::vector<stage_description>& out) {
  // The extractors' names when each has one (a tuple key: "region, category"), else the key's type.
  const std::vector<std::string> names =
      std::apply([](const auto&... f) { return std::vector{function_name(f)...}; }, s.extractors);
  const bool all_named = std::none_of(names.begin(), names.end(), [](const std::string& n) { return n.empty(); });
  using key = typename key_of<E, Fs...>::type;
  out.push_back(stage_entry<E, key_by_stage<Fs...>>("key_by", all_named ? joined(names) : type_name<key>()));
}
template <class E, class W>
void describe_stage(const window_stage<W>& s, std::vector<stage_description>& out) {
  out.push_back({"window", window_label(s.spec), type_name<E>(), {}, {}});
}
template <class E, class A>
void describe_stage(const aggregate_stage<A>& s, std::vector<stage_description>& out) {
  out.push_back(stage_entry<E, aggregate_stage<A>>("aggregate", aggregator_label(s.aggregator)));
}
template <class E, class W, class A>
void describe_stage(const windowed_aggregate_stage<W, A>& s, std::vector<stage_description>& out) {
  out.push_back({"window", window_label(s.spec), type_name<E>(), {}, {}});  // window | aggregate, as written
  out.push_back(stage_entry<E, windowed_aggregate_stage<W, A>>("aggregate", aggregator_label(s.aggregator)));
}
template <class E>
void describe_stage(const collect_stage& /*s*/, std::vector<stage_description>& out) {
  out.push_back(stage_entry<E, collect_stage>("collect"));
}
template <class E, class Out, class State, class OnEvent, class OnTimer>
void describe_stage(const process_stage<Out, State, OnEvent, OnTimer>& s, std::vector<stage_description>& out) {
  using stage = process_stage<Out, State, OnEvent, OnTimer>;
  if constexpr (join_of<OnEvent>::is_join) {
    auto entry = stage_entry<E, stage>("join", join_of<OnEvent>::detail(s.on_event));
    entry.sides = join_of<OnEvent>::sides();
    out.push_back(std::move(entry));
  } else {
    std::vector<std::string> parts{function_name(s.on_event)};
    if constexpr (!std::is_same_v<State, std::monostate>) {
      parts.push_back("state " + type_name<State>());
    }
    if constexpr (!std::is_same_v<OnTimer, no_timers>) {
      parts.push_back("timers");
    }
    if (s.held_limit != max_held) {
      parts.push_back("holds at most " + std::to_string(s.held_limit) + " events");
    }
    out.push_back(stage_entry<E, stage>("process", joined(parts)));
  }
}
template <class E, class K, class V, class KeyOf, class Combine>
void describe_stage(const lookup_join_stage<K, V, KeyOf, Combine>& s, std::vector<stage_description>& out) {
  constexpr bool left = std::is_invocable_v<const Combine&, const value_of_t<E>&, const V*>;
  auto entry = stage_entry<E, lookup_join_stage<K, V, KeyOf, Combine>>(
      "join", joined({left ? "lookup, left" : "lookup, inner", function_name(s.key_of), function_name(s.combine)}));
  entry.table = "lookup_table<" + type_name<K>() + ", " + type_name<V>() + ">";
  out.push_back(std::move(entry));
}

template <class E, class... Stages>
void describe_stages(const std::tuple<Stages...>& stages, std::vector<stage_description>& out);

template <class E, class First, class Next>
void describe_stage(const chain_stage<First, Next>& s, std::vector<stage_description>& out) {
  describe_stage<E>(s.first, out);  // the aggregate or process function, then the stages over its rows
  describe_stages<typename Next::input_type>(s.next.stages(), out);
}

/// A stage of the user's own: shown by its type's name.
template <class E, class S>
void describe_stage(const S& /*s*/, std::vector<stage_description>& out) {
  out.push_back(stage_entry<E, S>(type_name<S>()));
}

template <class E, std::size_t I, class... Stages>
void describe_stages_from(const std::tuple<Stages...>& stages, std::vector<stage_description>& out) {
  if constexpr (I < sizeof...(Stages)) {
    using stage = std::tuple_element_t<I, std::tuple<Stages...>>;
    describe_stage<E>(std::get<I>(stages), out);
    describe_stages_from<typename element_step<E, stage>::type, I + 1>(stages, out);
  }
}

template <class E, class... Stages>
void describe_stages(const std::tuple<Stages...>& stages, std::vector<stage_description>& out) {
  describe_stages_from<E, 0>(stages, out);
}
}  // namespace detail

/// The stages of `f` in order, with their parameters and element types.
template <class In, class... Stages>
flow_description describe(const flow<In, Stages...>& f) {
  flow_description d;
  d.input = type_name<In>();
  detail::describe_stages<In>(f.stages(), d.stages);
  return d;
}

/// fan_out: one branch per flow, all over the same input.
template <class... Flows>
flow_description describe(const fan_out_flow<Flows...>& f) {
  flow_description d;
  d.input = type_name<typename fan_out_flow<Flows...>::input_type>();
  std::apply([&](const auto&... flows) { (d.branches.push_back(describe(flows)), ...); }, f.flows());
  return d;
}

namespace detail {
inline void append_padded(std::string& out, std::string_view s, std::size_t width) {
  out += s;
  out.append(width > s.size() ? width - s.size() : 0, ' ');
}

inline std::string side_list(const stage_description& s) {
  std::string out;
  if (s.sides.size() == 2) {
    out = "left " + s.sides[0] + ", right " + s.sides[1];
  }
  if (!s.table.empty()) {
    out += (out.empty() ? "" : ", ") + std::string("table ") + s.table;
  }
  return out;
}

inline void append_text(std::string& out, const flow_description& d, const std::string& indent) {
  if (!d.branches.empty()) {
    out += indent + "fan_out of " + std::to_string(d.branches.size()) + " flows over " + d.input + "\n";
    for (std::size_t i = 0; i < d.branches.size(); ++i) {
      out += indent + "flow " + std::to_string(i + 1) + ":\n";
      append_text(out, d.branches[i], indent + "  ");
    }
    return;
  }
  constexpr std::size_t widest_aligned = 40;  // a longer detail (a dozen monoids) is not padded to
  std::size_t kind_width = 0;
  std::size_t detail_width = 0;
  std::vector<std::string> details;
  for (const auto& s : d.stages) {
    details.push_back(joined({s.detail, side_list(s)}, "; "));
    kind_width = std::max(kind_width, s.kind.size());
    if (details.back().size() <= widest_aligned) {
      detail_width = std::max(detail_width, details.back().size());
    }
  }
  const std::size_t number_width = std::to_string(d.stages.size()).size();
  append_padded(out, indent + "input", indent.size() + number_width + 2 + kind_width + 2);
  out += d.input + "\n";
  for (std::size_t i = 0; i < d.stages.size(); ++i) {
    const std::string n = std::to_string(i + 1);
    out += indent + std::string(number_width - n.size(), ' ') + n + "  ";
    append_padded(out, d.stages[i].kind, kind_width + 2);
    append_padded(out, details[i], detail_width + 1);
    out += "-> " + d.stages[i].output + "\n";
  }
}

/// A DOT string literal's body: quotes and backslashes escaped.
inline std::string dot_escaped(std::string_view s) {
  std::string out;
  for (const char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
    }
    out += c;
  }
  return out;
}

/// A node's label: the kind, then the detail on lines of about 40 characters (broken after a
/// comma: a dozen monoids make a tall node, not a wide one).
inline std::string dot_label(std::string_view kind, std::string_view detail) {
  std::string out = "\"" + dot_escaped(kind);
  std::size_t line = 41;  // start a new line before the first part
  while (!detail.empty()) {
    const std::size_t comma = detail.find(", ");
    const std::string_view part = detail.substr(0, comma == std::string_view::npos ? detail.size() : comma + 1);
    if (line + part.size() > 40) {
      out += "\\n";
      line = 0;
    } else {
      out += ' ';
      ++line;
    }
    out += dot_escaped(part);
    line += part.size();
    detail.remove_prefix(comma == std::string_view::npos ? detail.size() : comma + 2);
  }
  return out + "\"";
}

/// Writes a flow's nodes and edges after the node `from` (whose output has type `from_type`).
inline void append_dot(std::string& out, const flow_description& d, const std::string& from, std::string from_type,
                       const std::string& prefix, const std::string& indent) {
  std::string prev = from;
  for (std::size_t i = 0; i < d.stages.size(); ++i) {
    const stage_description& s = d.stages[i];
    const std::string node = prefix + std::to_string(i + 1);
    out += indent + node + " [label=" + dot_label(s.kind, s.detail) + "];\n";
    if (s.sides.empty()) {
      out += indent + prev + " -> " + node + " [label=\"" + dot_escaped(from_type) + "\"];\n";
    } else {
      // A join: both sides come from the stage before, in one stream of std::variant<L, R>,
      // which splits into the join's two inputs.
      out += indent + "subgraph { rank=same;";
      for (std::size_t side = 0; side < s.sides.size(); ++side) {
        out += " " + node + "_side" + std::to_string(side + 1);
      }
      out += " }\n";
      for (std::size_t side = 0; side < s.sides.size(); ++side) {
        const std::string side_node = node + "_side" + std::to_string(side + 1);
        out += indent + side_node + " [label=\"" + (side == 0 ? "left\\n" : "right\\n") + dot_escaped(s.sides[side]) +
               "\", shape=ellipse, fillcolor=\"#f4f4f4\", fontsize=11];\n";
        out += indent + prev + " -> " + side_node + (side == 0 ? " [label=\"" + dot_escaped(from_type) + "\"]" : "") +
               ";\n";
        out += indent + side_node + " -> " + node + ";\n";
      }
    }
    if (!s.table.empty()) {
      out += indent + node + "_table [label=\"" + dot_escaped(s.table) + "\", shape=cylinder];\n";
      out += indent + node + "_table -> " + node + " [label=\"lookup\", style=dashed];\n";
    }
    prev = node;
    from_type = s.output;
  }
  out += indent + prefix + "out [label=\"rows\", shape=note];\n";
  out += indent + prev + " -> " + prefix + "out [label=\"" + dot_escaped(from_type) + "\"];\n";
}
}  // namespace detail

/// One line a stage, numbered, with its parameters and the type it hands on (see the top).
inline std::string to_text(const flow_description& d) {
  std::string out;
  detail::append_text(out, d, "");
  return out;
}

/// A Graphviz digraph of the flow: `dot -Tsvg` renders it.
inline std::string to_dot(const flow_description& d, std::string_view title = "flow") {
  std::string out = "digraph \"" + detail::dot_escaped(title) + "\" {\n";
  out += "  graph [fontname=\"Helvetica\", label=\"" + detail::dot_escaped(title) + "\", labelloc=t];\n";
  out += "  node [shape=box, style=\"rounded,filled\", fillcolor=\"#eef3fb\", fontname=\"Helvetica\"];\n";
  out += "  edge [fontname=\"Helvetica\", fontsize=10];\n";
  out += "  input [label=\"input\", shape=cylinder, fillcolor=\"#fdf3e1\"];\n";
  if (d.branches.empty()) {
    detail::append_dot(out, d, "input", d.input, "s", "  ");
  }
  for (std::size_t b = 0; b < d.branches.size(); ++b) {
    const std::string n = std::to_string(b + 1);
    out += "  subgraph cluster_" + n + " {\n    label=\"flow " + n + "\";\n";
    detail::append_dot(out, d.branches[b], "input", d.input, "f" + n + "_s", "    ");
    out += "  }\n";
  }
  out += "}\n";
  return out;
}

}  // namespace sluice
