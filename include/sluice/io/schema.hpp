// Schema binding: which named field of a record fills which member of the user's struct, and
// with which parser. One schema serves CSV and JSON lines.
//
//   auto schema = sluice::schema<Sale>(
//       sluice::column("ts", &Sale::ts),
//       sluice::column("price", &Sale::price_cents, sluice::fixed_point<2>{}));
#pragma once

#include <cstddef>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

#include "sluice/io/field_parse.hpp"

namespace sluice {

template <class T, class M, class Parser>
struct column_binding {
  using record_type = T;
  using member_type = M;
  std::string_view name;
  M T::*member;
  Parser parser;

  /// Parse `text` into `record.*member`: nullptr, or the reason it was rejected.
  const char* parse_into(std::string_view text, T& record) const { return parser.parse(text, record.*member); }
};

template <class T, class M>
column_binding<T, M, field_parser<M>> column(std::string_view name, M T::*member) {
  static_assert(
      requires(std::string_view s, M & m) { field_parser<M>::parse(s, m); },
      "sluice::column: no field_parser for this member type; pass a parser or specialise "
      "sluice::field_parser<T>");
  return {name, member, {}};
}

template <class T, class M, class Parser>
column_binding<T, M, Parser> column(std::string_view name, M T::*member, Parser parser) {
  return {name, member, std::move(parser)};
}

template <class T, class... Columns>
struct record_schema {
  using record_type = T;
  std::tuple<Columns...> columns;
  static constexpr std::size_t size = sizeof...(Columns);

  template <class Fn>
  void for_each_column(Fn&& fn) const {
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (fn(std::integral_constant<std::size_t, I>{}, std::get<I>(columns)), ...);
    }
    (std::index_sequence_for<Columns...>{});
  }
};

/// The schema of record type T: the columns to bind, by name.
template <class T, class... Columns>
requires(std::is_same_v<typename Columns::record_type, T>&&...)
    record_schema<T, Columns...> schema(Columns... columns) {
  static_assert(std::is_default_constructible_v<T>, "sluice::schema<T>: T must be default-constructible");
  return {{std::move(columns)...}};
}

}  // namespace sluice
