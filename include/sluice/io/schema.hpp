// Schema binding: which named field of a record fills which member of the user's struct, and
// with which parser. One schema serves CSV and JSON lines.
//
//   auto schema = sluice::schema<Sale>(
//       sluice::column("ts", &Sale::ts),
//       sluice::column("note", &Sale::note).optional(),   // a file without it leaves note empty
//       sluice::column("price", &Sale::price_cents, sluice::fixed_point<2>{}));
//   auto by_price = schema.project(&Sale::price_cents);   // converts price; validates ts and note
//
// A record's validity belongs to the schema, never to the query: every column the schema names
// is checked in every record, whatever the query reads, so rows read, bad records and the
// dead-letter output are the same for every query over the same input. A projection only skips
// converting what the query does not read; the check is the parser's cheap `validate` where it
// has one (digits for integers, UTF-8 for text), else a parse into a scratch value.
#pragma once

#include <cstddef>
#include <stdexcept>
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
  bool converted = true;  // false: outside the query's projection, checked but not stored
  bool required = true;   // false: an input without this column leaves the member at its default

  /// Parse `text` into `record.*member` (or only check it, outside the projection): nullptr, or
  /// the reason it was rejected. `ctx`: what the reader knows about the field's bytes.
  [[gnu::always_inline]] const char* parse_into(std::string_view text, T& record, const field_context& ctx = {}) const {
    return converted ? parse_field(parser, text, record.*member, ctx) : validate_field<M>(parser, text, ctx);
  }

  /// The same column, which an input may lack (a CSV header or a JSON object without it).
  [[nodiscard]] column_binding optional() const {
    column_binding c = *this;
    c.required = false;
    return c;
  }
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

  /// The same schema, converting only the listed members: the other columns are still checked
  /// in every record (see the top of this file). Throws std::invalid_argument for a member that
  /// no column binds.
  template <class... Members>
  [[nodiscard]] record_schema project(Members T::*... members) const {
    record_schema out = *this;
    std::size_t bound = 0;
    const auto listed = [&](const auto& col) { return (same_member(col.member, members) || ...); };
    std::apply([&](auto&... col) { ((col.converted = listed(col), bound += col.converted ? 1 : 0), ...); },
               out.columns);
    if (bound != sizeof...(Members)) {
      throw std::invalid_argument("sluice::schema::project: a member is not bound by any column, or listed twice");
    }
    return out;
  }

  template <class Fn>
  void for_each_column(Fn&& fn) const {
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (fn(std::integral_constant<std::size_t, I>{}, std::get<I>(columns)), ...);
    }
    (std::index_sequence_for<Columns...>{});
  }

 private:
  template <class A, class B>
  static bool same_member(A T::*a, B T::*b) {
    if constexpr (std::is_same_v<A, B>) {
      return a == b;
    } else {
      return false;
    }
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
