// Several event types in one flow: a flow over std::variant<A, B, ...> (one source carrying
// several kinds of record, or two inputs merged), the functions that read a field of whichever
// type an event holds, and the stage that keeps one type.
//
//   using event = std::variant<person, auction>;
//   flow<event>() | event_time(by_type(&person::ts, &auction::ts))
//                 | key_by(by_type(&person::id, &auction::seller))       // one key for both
//   flow<event>() | only<auction>() | ...                                // a typed branch
//
// Performance: one std::visit (a jump on the variant's index) per call.
#pragma once

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>

#include "sluice/core/time.hpp"
#include "sluice/ops/keyed.hpp"

namespace sluice {

namespace detail {
/// The index of the first of Fs callable with a const T&, or sizeof...(Fs) when none is.
template <class T, class... Fs>
constexpr std::size_t first_callable() {
  constexpr bool callable[] = {std::invocable<const Fs&, const T&>..., false};
  std::size_t i = 0;
  while (i < sizeof...(Fs) && !callable[i]) {
    ++i;
  }
  return i;
}
}  // namespace detail

namespace detail {
/// What by_type returns for a variant of Ts: the calls' type when they all agree (a reference
/// to a field stays a reference, so a string key is borrowed, not copied), else their common
/// value type.
template <class... Rs>
struct visit_result {
  static_assert(requires { typename std::common_type<std::remove_cvref_t<Rs>...>::type; },
                "sluice::by_type(f...): the calls return types with nothing in common (a join key of "
                "different types on the two sides?): make them return one type");
  using type = std::common_type_t<std::remove_cvref_t<Rs>...>;
};
template <class R, class... Rs>
requires(std::is_same_v<R, Rs>&&...) struct visit_result<R, Rs...> {
  using type = R;
};
}  // namespace detail

/// by_type(f1, f2, ...): a function of a std::variant that calls, for the alternative held, the
/// first f callable with it (a member pointer of that type, or a lambda taking it). It is what
/// key_by or event_time then sees, so the calls must return one type or types with a common one.
template <class... Fs>
class by_type_fn {
  template <class T>
  static constexpr std::size_t index_for() {
    constexpr std::size_t i = detail::first_callable<T, Fs...>();
    static_assert(i < sizeof...(Fs), "sluice::by_type(f...): some alternative of the variant has no f that takes it");
    return std::min(i, sizeof...(Fs) - 1);
  }
  template <class T>
  using call_result = std::invoke_result_t<const std::tuple_element_t<index_for<T>(), std::tuple<Fs...>>&, const T&>;
  template <class... Ts>
  using result = typename detail::visit_result<call_result<Ts>...>::type;

 public:
  explicit by_type_fn(std::tuple<Fs...> fns) : fns_(std::move(fns)) {}

  template <class... Ts>
  auto operator()(const std::variant<Ts...>& v) const -> result<Ts...> {
    return std::visit(
        [this](const auto& x) -> result<Ts...> {
          return std::invoke(std::get<index_for<std::remove_cvref_t<decltype(x)>>()>(fns_), x);
        },
        v);
  }

 private:
  std::tuple<Fs...> fns_;
};

template <class... Fs>
by_type_fn<std::decay_t<Fs>...> by_type(Fs&&... fns) {
  return by_type_fn<std::decay_t<Fs>...>(std::tuple<std::decay_t<Fs>...>(std::forward<Fs>(fns)...));
}

namespace detail {
template <class T, class V>
inline constexpr bool holds_alternative_type = false;
template <class T, class... Ts>
inline constexpr bool holds_alternative_type<T, std::variant<Ts...>> = (std::is_same_v<T, Ts> || ...);
}  // namespace detail

template <class T, class Next>
struct only_pusher {
  Next next;
  template <class E>
  void operator()(millis t, const E& e) {
    if (const T* x = std::get_if<T>(&detail::value_of<E>::get(e))) {
      detail::push_like(next, t, e, *x);
    }
  }
  void finish() { next.finish(); }
};

template <class T>
struct only_stage {
  template <class E>
  static constexpr bool accepts = detail::holds_alternative_type<T, detail::value_of_t<E>>;
  template <class E>
  using output = detail::rewrap_t<E, T>;

  template <class E, class Next>
  auto bind(Next next) const {
    return only_pusher<T, Next>{std::move(next)};
  }
};

/// only<T>(): the events of a std::variant flow that hold a T, as T (a typed branch). Keeps the
/// key after key_by.
template <class T>
only_stage<T> only() {
  return {};
}

}  // namespace sluice
