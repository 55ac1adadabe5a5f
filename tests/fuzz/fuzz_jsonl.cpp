// Fuzz target: JSON lines (sluice/io/jsonl.hpp, simdjson On Demand). The input is parsed as one
// bounded input, in two chunks, and as a stream cut where the fuzzer says (eof=false, then
// resumed): all three must agree (a line parsed in place and the same line parsed from the
// padded copy near the end of the available bytes must give the same result), every byte must
// belong to a record, a bad record or a blank line, and the line count must be the newlines.
//
// Input: [config byte][u16 stream split][u16 chunk stop][JSON lines]. Config bits 0-2: the max
// record size. (simdjson itself is Debian's shared library: not instrumented.)
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.hpp"
#include "sluice/io/jsonl.hpp"

namespace {

using fuzz::event;
using fuzz::parse_log;

struct sale {
  std::int64_t id = 0;
  std::int32_t qty = 0;
  std::int64_t price_cents = 0;
  std::string_view name;
  sluice::millis ts;
  std::optional<std::string> note;
  bool flag = false;
  std::string_view long_key;           // a name over 15 bytes: the other key comparison
  std::optional<std::int64_t> quoted;  // a name with a quote: only ever written escaped
};

auto sale_schema() {
  using sluice::column;
  return sluice::schema<sale>(
      column("id", &sale::id), column("qty", &sale::qty), column("price", &sale::price_cents, sluice::fixed_point<2>{}),
      column("name", &sale::name), column("ts", &sale::ts), column("note", &sale::note).optional(),
      column("flag", &sale::flag).optional(), column("customer_reference", &sale::long_key).optional(),
      column("we\"ird", &sale::quoted).optional());
}
using format = sluice::jsonl_format<decltype(sale_schema())>;

sluice::chunk_outcome parse(format::parser& parser, const char* origin, const char* begin, const char* stop,
                            const char* end, bool eof, std::size_t max_record_bytes, parse_log& log) {
  return fuzz::logged_parse(parser, origin, begin, stop, end, eof, max_record_bytes, log, [&](const sale& s) {
    std::string text = std::to_string(s.id) + '|' + std::to_string(s.qty) + '|' + std::to_string(s.price_cents) + '|' +
                       std::string(s.name) + '|' + std::to_string(s.ts.count()) + '|' + (s.note ? "+" + *s.note : "-") +
                       '|' + (s.flag ? "t" : "f") + '|' + std::string(s.long_key) + '|' +
                       (s.quoted ? std::to_string(*s.quoted) : "-");
    log.events.push_back({true, 0, 0, 0, std::move(text)});
  });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::input in(data, size);
  const std::uint8_t config = in.byte();
  const std::uint16_t split_choice = in.u16();
  const std::uint16_t stop_choice = in.u16();
  static constexpr std::size_t max_sizes[] = {std::size_t{1} << 20U, 1, 8, 16, 32, 64, 100, 4096};
  const std::size_t max_record_bytes = max_sizes[config & 7U];

  const std::string_view text = in.rest();
  format fmt(sale_schema());
  const auto header = fmt.bind_header(text, "fuzz.jsonl");
  FUZZ_CHECK(header.bytes <= text.size() && header.lines == 0);
  const char* origin = text.data();
  const char* begin = origin + header.bytes;
  const char* end = origin + text.size();

  const auto new_parser = [&] { return format::parser(fmt); };
  const auto parse_at = [&](format::parser& parser, const char* from, const char* stop, const char* to, bool eof,
                            parse_log& log) { return parse(parser, origin, from, stop, to, eof, max_record_bytes, log); };

  // 1. The whole input at once.
  const parse_log whole = fuzz::parse_whole(new_parser, parse_at, origin, begin, end);

  // 2 and 3: the same records and bad records however the input is cut.
  fuzz::check_cuts(new_parser, parse_at, whole, origin, begin, end, stop_choice, split_choice);
  return 0;
}
