// type_name<T>(): a type as a reader wants to see it in a description of a flow: "int64",
// "string_view", "optional<double>", "(int64, int64)" for a tuple, "sale" for sales::sale (the
// compiler's own name with namespaces trimmed). For pictures and messages, not for identity:
// two types may share a label.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "sluice/core/time.hpp"

namespace sluice {

namespace detail {
/// The compiler's spelling of T (g++ and clang both put it in __PRETTY_FUNCTION__ after "T = ").
template <class T>
std::string_view raw_type_name() {
  const std::string_view f = __PRETTY_FUNCTION__;
  const std::size_t start = f.find("T = ") + 4;
  std::size_t end = f.find(';', start);  // g++: "[with T = X; std::string_view = ...]"
  if (end == std::string_view::npos) {
    end = f.rfind(']');  // clang: "[T = X]"
  }
  return f.substr(start, end - start);
}

inline bool is_identifier_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/// "ns::inner::foo<ns::bar>" -> "foo<bar>"; a lambda's long spelling -> "lambda".
inline std::string without_namespaces(std::string_view name) {
  if (name.find("lambda") != std::string_view::npos) {
    return "lambda";
  }
  std::string out;
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (name.substr(i).starts_with("(anonymous namespace)::")) {
      i += std::string_view("(anonymous namespace)::").size() - 1;
    } else if (name.substr(i).starts_with("::")) {
      while (!out.empty() && is_identifier_char(out.back())) {
        out.pop_back();  // the namespace (or enclosing class) just written
      }
      ++i;
    } else {
      out += name[i];
    }
  }
  return out;
}

template <class T>
struct type_label;

template <class... Ts>
std::string type_labels() {
  std::string out;
  ((out += (out.empty() ? "" : ", ") + type_label<std::remove_cvref_t<Ts>>::get()), ...);
  return out;
}

/// Any type: its name without namespaces. A class template's arguments are labelled in turn.
template <class T>
struct type_label {
  static std::string get() { return without_namespaces(raw_type_name<T>()); }
};
template <template <class...> class Template, class... Ts>
struct type_label<Template<Ts...>> {
  static std::string get() {
    const std::string_view raw = raw_type_name<Template<Ts...>>();
    return without_namespaces(raw.substr(0, raw.find('<'))) + "<" + type_labels<Ts...>() + ">";
  }
};

template <class T>
requires std::is_integral_v<T>
struct type_label<T> {
  static std::string get() {
    if constexpr (std::is_same_v<T, bool>) {
      return "bool";
    } else if constexpr (std::is_same_v<T, char>) {
      return "char";
    } else {
      return std::string(std::is_signed_v<T> ? "int" : "uint") + std::to_string(sizeof(T) * 8);
    }
  }
};
template <>
struct type_label<double> {
  static std::string get() { return "double"; }
};
template <>
struct type_label<float> {
  static std::string get() { return "float"; }
};
template <>
struct type_label<std::string> {
  static std::string get() { return "string"; }
};
template <>
struct type_label<std::string_view> {
  static std::string get() { return "string_view"; }
};
template <>
struct type_label<millis> {
  static std::string get() { return "millis"; }
};
template <>
struct type_label<std::monostate> {
  static std::string get() { return "none"; }
};
template <class T>
struct type_label<std::optional<T>> {
  static std::string get() { return "optional<" + type_label<T>::get() + ">"; }
};
template <class T, class A>
struct type_label<std::vector<T, A>> {
  static std::string get() { return "vector<" + type_label<T>::get() + ">"; }
};
template <class... Ts>
struct type_label<std::tuple<Ts...>> {
  static std::string get() { return "(" + type_labels<Ts...>() + ")"; }
};
template <class A, class B>
struct type_label<std::pair<A, B>> {
  static std::string get() { return "(" + type_labels<A, B>() + ")"; }
};
template <class... Ts>
struct type_label<std::variant<Ts...>> {
  static std::string get() { return "variant<" + type_labels<Ts...>() + ">"; }
};
}  // namespace detail

/// T as a reader wants to see it (see the top of this header).
template <class T>
std::string type_name() {
  return detail::type_label<std::remove_cvref_t<T>>::get();
}

}  // namespace sluice
