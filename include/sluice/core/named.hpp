// named("revenue", f): f with a name, for the description of a flow (ops/describe.hpp) to show:
//
//   flow<sale>() | key_by(named("category", &sale::category))
//                | aggregate(count{}, sum(named("revenue", revenue_cents)))
//   describe(...):  key_by     category
//                   aggregate  count, sum(revenue)
//
// It works wherever a stage or a monoid takes a function (map, filter, key_by, event_time,
// sum(f), process(on_event), a join's combine, ...). Any function object with a name() member
// is shown by that name, so a user's own functor can name itself instead.
//
// Performance: the call goes straight to f (inlined); the name is read only by describe().
#pragma once

#include <concepts>
#include <functional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace sluice {

template <class F>
class named_fn {
 public:
  named_fn() = default;  // as F is (a monoid's state table default-constructs its monoid)
  named_fn(std::string name, F fn) : name_(std::move(name)), fn_(std::move(fn)) {}

  [[nodiscard]] std::string_view name() const { return name_; }

  // decltype(auto): a reference to a field stays a reference (key_by borrows a string key).
  template <class... Args>
  requires std::invocable<const F&, Args...>
  decltype(auto) operator()(Args&&... args) const { return std::invoke(fn_, std::forward<Args>(args)...); }
  template <class... Args>
  requires(std::invocable<F&, Args...> && !std::invocable<const F&, Args...>) decltype(auto) operator()(
      Args&&... args) {
    return std::invoke(fn_, std::forward<Args>(args)...);
  }

 private:
  std::string name_;
  F fn_{};
};

/// f (a function, lambda or member pointer) called `name` in a flow's description.
template <class F>
named_fn<std::decay_t<F>> named(std::string name, F&& fn) {
  return {std::move(name), std::forward<F>(fn)};
}

}  // namespace sluice
