// fan_out(f1, f2, ...): several flows over the same input, fed by one pass. Each event goes
// through every flow's fused chain in turn; each flow keeps its own state, and a run yields one
// result per flow (a tuple). A nightly report that needs three aggregates reads its input once.
//
//   input --+--> flow 1 --> result 1
//           +--> flow 2 --> result 2
//
// Performance: the chains are called one after the other per event, all inlined.
#pragma once

#include <tuple>
#include <type_traits>
#include <utility>

#include "sluice/core/time.hpp"

namespace sluice {

template <class... Flows>
class fan_out_flow {
  static_assert(sizeof...(Flows) >= 1, "sluice::fan_out needs at least one flow");

 public:
  using input_type = typename std::tuple_element_t<0, std::tuple<Flows...>>::input_type;
  static_assert((std::is_same_v<typename Flows::input_type, input_type> && ...),
                "sluice::fan_out: every flow must take the same input type");

  static constexpr bool is_aggregating = (Flows::is_aggregating && ...);
  static constexpr bool order_sensitive = (Flows::order_sensitive || ...);
  static_assert(is_aggregating, "sluice::fan_out: every flow must end in aggregate(...)");

  explicit fan_out_flow(Flows... flows) : flows_(std::move(flows)...) {}

  [[nodiscard]] const std::tuple<Flows...>& flows() const { return flows_; }

  /// The partial state of every flow; merges and finishes part by part.
  class partial {
   public:
    using parts_type = std::tuple<decltype(std::declval<const Flows&>().make_partial())...>;
    explicit partial(parts_type parts) : parts_(std::move(parts)) {}

    void merge(const partial& other) {
      each([](auto& mine, const auto& theirs) { mine.merge(theirs); }, other);
    }
    auto into_result() && {
      return std::apply([](auto&... p) { return std::make_tuple(std::move(p).into_result()...); }, parts_);
    }
    parts_type& parts() { return parts_; }

   private:
    template <class Fn>
    void each(Fn&& fn, const partial& other) {
      [&]<std::size_t... I>(std::index_sequence<I...>) {
        (fn(std::get<I>(parts_), std::get<I>(other.parts_)), ...);
      }
      (std::index_sequence_for<Flows...>{});
    }
    parts_type parts_;
  };

  [[nodiscard]] partial make_partial() const {
    return partial(
        std::apply([](const auto&... f) { return typename partial::parts_type(f.make_partial()...); }, flows_));
  }

  /// One chain per flow, called in turn for each event.
  [[nodiscard]] auto bind(partial& p) const {
    auto chains = [&]<std::size_t... I>(std::index_sequence<I...>) {
      return std::make_tuple(std::get<I>(flows_).bind(std::get<I>(p.parts()))...);
    }
    (std::index_sequence_for<Flows...>{});
    return tee<decltype(chains)>{std::move(chains)};
  }

 private:
  template <class Chains>
  struct tee {
    Chains chains;
    template <class E>
    void operator()(millis t, const E& e) {
      std::apply([&](auto&... c) { (c(t, e), ...); }, chains);
    }
    void finish() {
      std::apply([](auto&... c) { (c.finish(), ...); }, chains);
    }
  };

  std::tuple<Flows...> flows_;
};

/// Several aggregating flows over one input, run in one pass: run_batch returns a tuple of stores.
template <class... Flows>
fan_out_flow<Flows...> fan_out(Flows... flows) {
  return fan_out_flow<Flows...>(std::move(flows)...);
}

}  // namespace sluice
