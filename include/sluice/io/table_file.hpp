// read_table(source, to_entry): a lookup_table's rows from a bounded source (a CSV or JSON-lines
// file, a memory range), one record at a time in file order; a later row of a key replaces an
// earlier one. to_entry(record) returns the std::pair<K, V> to keep, owning its strings (the
// record's string_views point into the file). Bad records follow the source's policy: skipped
// to its dead-letter sink, or, under bad_record_policy::fail, bad_input_error with the position.
//
//   sluice::lookup_table<std::int64_t, product> catalogue(sluice::read_table<std::int64_t, product>(
//       sluice::csv_file("products.csv", schema), [](const product_row& r) { return std::pair{r.id, product{r}}; }));
//   ... later, while a stream runs: catalogue.replace(sluice::read_table<...>(...));
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "sluice/io/bad_record.hpp"
#include "sluice/io/bounded_input.hpp"
#include "sluice/ops/lookup_join.hpp"

namespace sluice {

template <class K, class V, class Source, class ToEntry>
typename lookup_table<K, V>::map_type read_table(const Source& source, ToEntry to_entry) {
  auto input = source.open();
  typename lookup_table<K, V>::map_type rows;
  std::optional<std::string> failure;
  auto emit = [&](const auto& record) {
    auto [key, value] = to_entry(record);
    rows.insert_or_assign(std::move(key), std::move(value));
  };
  auto report = [&](const chunk_bad_record& bad) {
    const bad_record full = absolute_bad_record(input, input.first_line(), bad);
    if (input.options().on_bad_record == bad_record_policy::fail) {
      failure = describe(full);
      return false;
    }
    if (input.options().dead_letters) {
      input.options().dead_letters(full);
    }
    return true;
  };
  input.parse(input.begin(), input.end(), emit, report);
  if (failure) {
    throw bad_input_error(*failure);
  }
  return rows;
}

}  // namespace sluice
