// Fuzz target: the CSV tokenizer and schema binding (sluice/io/csv.hpp). The header is bound,
// then the rest is parsed three ways: as one bounded input, in two chunks as the batch runner
// cuts a file, and as a stream cut at a point the fuzzer picks (eof=false, then resumed). All
// three must see the same records and bad records; every byte after the header must belong to a
// record, a bad record or a blank line; and the line count must be the input's newlines.
//
// Input: [config byte][u16 stream split][u16 chunk stop][CSV text]. Config: bits 0-1 the
// delimiter (, ; TAB |), bit 2 no header (columns by position), bits 3-5 the max record size.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_sale.hpp"
#include "fuzz_support.hpp"
#include "sluice/io/csv.hpp"

namespace {

using fuzz::event;
using fuzz::parse_log;

using fuzz::sale;
using fuzz::sale_schema;
using format = sluice::csv_format<decltype(sale_schema())>;

/// Parses [begin, stop) of the input ending at `end`, appending to `log`; returns the outcome.
sluice::chunk_outcome parse(format::parser& parser, const char* origin, const char* begin, const char* stop,
                            const char* end, bool eof, std::size_t max_record_bytes, parse_log& log) {
  return fuzz::logged_parse(
      parser, origin, begin, stop, end, eof, max_record_bytes, log, [&](const sale& s, std::string_view raw) {
        FUZZ_CHECK(raw.data() >= begin && raw.data() + raw.size() <= end && !raw.empty());
        // Touch every byte of the string field: a view into freed or foreign memory is caught.
        std::string text = std::to_string(s.id) + '|' + std::to_string(s.qty) + '|' + std::to_string(s.price_cents) +
                           '|' + std::string(s.name) + '|' + std::to_string(s.ts.count());
        log.events.push_back({true, static_cast<std::uint64_t>(raw.data() - origin), raw.size(), 0, std::move(text)});
      });
}

/// Bytes between records: only blank lines ("\n", "\r\n", a lone "\r" at the end).
bool only_blank_lines(std::string_view gap, bool at_end) {
  for (std::size_t i = 0; i < gap.size(); ++i) {
    if (gap[i] == '\n') {
      continue;
    }
    if (gap[i] == '\r' && (i + 1 < gap.size() ? gap[i + 1] == '\n' : at_end)) {
      continue;
    }
    return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::input in(data, size);
  const std::uint8_t config = in.byte();
  const std::uint16_t split_choice = in.u16();
  const std::uint16_t stop_choice = in.u16();
  static constexpr char delimiters[] = {',', ';', '\t', '|'};
  static constexpr std::size_t max_sizes[] = {std::size_t{1} << 20U, 1, 8, 16, 32, 64, 256, 4096};
  sluice::csv_options options;
  options.delimiter = delimiters[config & 3U];
  options.header = (config & 4U) == 0;
  const std::size_t max_record_bytes = max_sizes[(config >> 3U) & 7U];

  const std::string_view text = in.rest();
  format fmt(sale_schema(), options);
  format::header_info header;
  try {
    header = fmt.bind_header(text, "fuzz.csv");
  } catch (const sluice::bad_input_error& e) {
    FUZZ_CHECK(std::strlen(e.what()) > 0);
    return 0;
  }
  FUZZ_CHECK(header.bytes <= text.size());
  const char* origin = text.data();
  const char* begin = origin + header.bytes;
  const char* end = origin + text.size();

  const auto new_parser = [&] { return format::parser(fmt); };
  const auto parse_at = [&](format::parser& parser, const char* from, const char* stop, const char* to, bool eof,
                            parse_log& log) { return parse(parser, origin, from, stop, to, eof, max_record_bytes, log); };

  // 1. The whole input at once.
  const parse_log whole = fuzz::parse_whole(new_parser, parse_at, origin, begin, end);
  std::uint64_t covered = header.bytes;
  for (const event& e : whole.events) {
    FUZZ_CHECK(e.offset >= covered);
    FUZZ_CHECK(only_blank_lines(text.substr(covered, e.offset - covered), false));
    covered = e.offset + e.length;
  }
  FUZZ_CHECK(only_blank_lines(text.substr(covered), true));

  // 2 and 3: the same records and bad records however the input is cut.
  fuzz::check_cuts(new_parser, parse_at, whole, origin, begin, end, stop_choice, split_choice);
  return 0;
}
