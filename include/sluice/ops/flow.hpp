// flow<T>: the operator DAG as a value. `flow<Sale>() | map(f) | key_by(g) | aggregate(m)`
// builds a new value at each `|`; binding it to a sink fuses every stage into one chain of
// direct, inlinable calls (no virtual call, no std::function, no allocation per event).
// The same flow value runs in batch mode and in stream mode.
#pragma once

#include <cstddef>
#include <tuple>
#include <type_traits>
#include <utility>

#include "sluice/core/time.hpp"
#include "sluice/ops/aggregate.hpp"
#include "sluice/ops/event_time.hpp"
#include "sluice/ops/keyed.hpp"
#include "sluice/ops/process.hpp"
#include "sluice/ops/window.hpp"

namespace sluice {

template <class First, class Next>
struct chain_stage;  // ops/chain.hpp

namespace detail {
/// flow | stage after an aggregate or a process function: the stage starts the flow over its
/// rows (chain.hpp).
template <class Element, class Last, class Stage>
auto chain_after(const Last& last, Stage stage);

template <class S>
concept terminal_stage = requires {
  requires S::terminal;
};

template <class S>
concept time_assigning_stage = requires {
  requires S::assigns_event_time;
};

/// Whether an event_time stage's function returns a time (millis or integer milliseconds).
template <class S, class E>
inline constexpr bool yields_event_time = true;
template <class S, class E>
requires time_assigning_stage<S> && requires { &S::fn; } &&  // (not a chain's emitted_time_stage)
         (!std::is_same_v<std::remove_cvref_t<decltype(std::declval<const S&>().fn)>, source_time_t>)
inline constexpr bool yields_event_time<S, E> = [] {
  using r = std::remove_cvref_t<std::invoke_result_t<const decltype(S::fn)&, const value_of_t<E>&>>;
  return std::is_same_v<r, millis> || std::is_integral_v<r>;
}();

/// What make_partial() yields for a flow that cannot run (after its static_assert has fired).
struct no_partial {};

template <class S>
inline constexpr bool is_window_stage_v = false;
template <class W>
inline constexpr bool is_window_stage_v<window_stage<W>> = true;

template <class S>
inline constexpr bool is_aggregate_stage_v = false;
template <class A>
inline constexpr bool is_aggregate_stage_v<aggregate_stage<A>> = true;

/// The element type after one stage (window markers and terminal stages pass elements through).
template <class E, class S>
struct element_step {
  using type = typename S::template output<E>;
};
template <class E, class S>
requires terminal_stage<S> || is_window_stage_v<S>
struct element_step<E, S> {
  using type = E;
};

/// The element type after all the non-terminal stages.
template <class E, class... Stages>
struct element_after {
  using type = E;
};
template <class E, class S, class... Rest>
struct element_after<E, S, Rest...> {
  using type = typename element_after<typename element_step<E, S>::type, Rest...>::type;
};

template <class... Ts>
struct last_of {
  using type = void;
};
template <class T, class... Ts>
struct last_of<T, Ts...> {
  using type = typename std::conditional_t<sizeof...(Ts) == 0, std::type_identity<T>, last_of<Ts...>>::type;
};
}  // namespace detail

template <class In, class... Stages>
class flow {
 public:
  using input_type = In;
  /// The element type that reaches the terminal stage (or the end, when there is none).
  using element_type = typename detail::element_after<In, Stages...>::type;
  using last_stage = typename detail::last_of<Stages...>::type;

  static constexpr bool has_event_time = (detail::time_assigning_stage<Stages> || ...);
  static constexpr bool is_aggregating = (detail::terminal_stage<Stages> || ...);
  static constexpr bool order_sensitive = [] {
    if constexpr (is_aggregating) {
      return last_stage::order_sensitive;
    } else {
      return false;
    }
  }();

  flow() = default;
  explicit flow(std::tuple<Stages...> stages) : stages_(std::move(stages)) {}

  [[nodiscard]] const std::tuple<Stages...>& stages() const { return stages_; }

  /// A fresh, empty partial state for the terminal stage (one per worker or shard).
  [[nodiscard]] auto make_partial() const {
    if constexpr (detail::is_window_stage_v<last_stage>) {
      static_assert(!detail::is_window_stage_v<last_stage>, "sluice: window(...) must be followed by aggregate(...)");
      return detail::no_partial{};
    } else if constexpr (!is_aggregating) {
      static_assert(is_aggregating, "sluice: this flow has no aggregate(...) stage, so it has no state to run into");
      return detail::no_partial{};
    } else {
      return std::get<sizeof...(Stages) - 1>(stages_).template make_partial<element_type>();
    }
  }

  /// The fused chain feeding `partial`: call it as chain(event_time, input).
  template <class Partial>
  [[nodiscard]] auto bind(Partial& partial) const {
    return bind_from<0, In>(detail::partial_pusher<Partial>{&partial});
  }

  /// The fused chain ending in `pusher`, which receives pusher(event_time, element) and
  /// finish(): how a runtime puts its own bookkeeping between the chain and the partial.
  template <class Pusher>
  [[nodiscard]] auto bind_into(Pusher pusher) const {
    return bind_from<0, In>(std::move(pusher));
  }

  /// The fused chain feeding a callable sink(event_time, element) (flows without aggregate).
  template <class Sink>
  [[nodiscard]] auto bind_sink(Sink sink) const {
    static_assert(!is_aggregating, "sluice: an aggregating flow runs into its partial state; use bind(partial)");
    static_assert(!detail::is_window_stage_v<last_stage>, "sluice: window(...) must be followed by aggregate(...)");
    return bind_from<0, In>(callable_pusher<Sink>{std::move(sink)});
  }

 private:
  template <class Sink>
  struct callable_pusher {
    Sink sink;
    template <class E>
    void operator()(millis t, const E& e) {
      sink(t, e);
    }
    void finish() {}
  };

  template <std::size_t I, class E, class Tail>
  auto bind_from(Tail tail) const {
    if constexpr (I == sizeof...(Stages)) {
      return tail;
    } else {
      using stage = std::tuple_element_t<I, std::tuple<Stages...>>;
      if constexpr (detail::terminal_stage<stage> || detail::is_window_stage_v<stage>) {
        return bind_from<I + 1, E>(std::move(tail));
      } else {
        auto next = bind_from<I + 1, typename stage::template output<E>>(std::move(tail));
        return std::get<I>(stages_).template bind<E>(std::move(next));
      }
    }
  }

  std::tuple<Stages...> stages_;
};

namespace detail {
template <class In, class... Stages, class Stage, std::size_t... I>
auto replace_last(const flow<In, Stages...>& f, Stage s, std::index_sequence<I...> /*keep*/) {
  using kept = std::tuple<std::tuple_element_t<I, std::tuple<Stages...>>...>;
  return std::apply([&](auto... k) { return flow<In, decltype(k)..., Stage>(std::tuple(k..., s)); },
                    kept{std::get<I>(f.stages())...});
}
}  // namespace detail

/// Append a stage. Misuse fails here, at the `|`, with one message: each misuse is its own
/// branch, and a failed branch returns `f` unchanged so no follow-on error buries the message.
template <class In, class... Stages, class Stage>
auto operator|(const flow<In, Stages...>& f, Stage stage) {
  using current = flow<In, Stages...>;
  using element = typename current::element_type;
  if constexpr (current::is_aggregating) {
    return detail::replace_last(f, detail::chain_after<element>(std::get<sizeof...(Stages) - 1>(f.stages()), stage),
                                std::make_index_sequence<sizeof...(Stages) - 1>{});
  } else if constexpr (detail::is_aggregate_stage_v<Stage>) {
    using agg = decltype(stage.aggregator);
    if constexpr (!aggregator_for<agg, detail::value_of_t<element>>) {
      static_assert(aggregator_for<agg, detail::value_of_t<element>>,
                    "sluice: aggregate(m): m is not a monoid over this flow's values (needs state, identity(), "
                    "add(state&, const T&), merge(state&, const state&), result(const state&))");
      return f;
    } else if constexpr (detail::is_window_stage_v<typename current::last_stage>) {
      auto w = std::get<sizeof...(Stages) - 1>(f.stages()).spec;
      using fused = windowed_aggregate_stage<decltype(w), agg>;
      return detail::replace_last(f, fused{w, stage.aggregator}, std::make_index_sequence<sizeof...(Stages) - 1>{});
    } else {
      return flow<In, Stages..., Stage>(std::tuple_cat(f.stages(), std::tuple(stage)));
    }
  } else if constexpr (detail::is_window_stage_v<typename current::last_stage>) {
    static_assert(!detail::is_window_stage_v<typename current::last_stage>,
                  "sluice: window(...) must be followed by aggregate(...)");
    return f;
  } else if constexpr (detail::is_window_stage_v<Stage>) {
    if constexpr (!current::has_event_time && !std::is_same_v<decltype(stage.spec), count_window>) {
      static_assert(current::has_event_time,
                    "sluice: window(...) needs event time: add sluice::event_time(&T::ts) earlier in the flow");
      return f;
    } else {
      return flow<In, Stages..., Stage>(std::tuple_cat(f.stages(), std::tuple(stage)));
    }
  } else if constexpr (detail::in_order_stage<Stage> && !current::has_event_time) {
    static_assert(current::has_event_time,
                  "sluice: process(...) handles events in event-time order: add sluice::event_time(&T::ts) earlier");
    return f;
  } else if constexpr (!Stage::template accepts<element>) {
    static_assert(Stage::template accepts<element>,
                  "sluice: this stage cannot take the flow's element type here (check the function's parameter type)");
    return f;
  } else if constexpr (!detail::yields_event_time<Stage, element>) {
    static_assert(detail::yields_event_time<Stage, element>,
                  "sluice::event_time(f): f must return sluice::millis or integer milliseconds");
    return f;
  } else {
    return flow<In, Stages..., Stage>(std::tuple_cat(f.stages(), std::tuple(stage)));
  }
}

}  // namespace sluice

#include "sluice/ops/chain.hpp"  // after flow: a chained flow is made of flows
