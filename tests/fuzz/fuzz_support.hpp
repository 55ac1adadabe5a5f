// What every fuzz target shares: reading the fuzzer's bytes as a few choices (a config byte,
// split points) followed by the payload, and FUZZ_CHECK, which aborts with the broken invariant
// so that libFuzzer saves the input as a crash.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/io/bad_record.hpp"
#include "sluice/io/bounded_input.hpp"

#define FUZZ_CHECK(cond)                                                                      \
  do {                                                                                        \
    if (!(cond)) {                                                                            \
      std::fprintf(stderr, "fuzz invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                                           \
    }                                                                                         \
  } while (false)

namespace fuzz {

/// The fuzzer's input, consumed from the front: choices first, then the rest as the payload.
/// Past the end a choice reads as 0, so a short input is still a valid one.
class input {
 public:
  input(const std::uint8_t* data, std::size_t size) : p_(reinterpret_cast<const char*>(data)), left_(size) {}

  std::uint8_t byte() {
    if (left_ == 0) {
      return 0;
    }
    --left_;
    return static_cast<std::uint8_t>(*p_++);
  }
  std::uint16_t u16() {
    const std::uint16_t lo = byte();
    return static_cast<std::uint16_t>(lo | (byte() << 8U));
  }
  std::uint32_t u32() {
    const std::uint32_t lo = u16();
    return lo | (static_cast<std::uint32_t>(u16()) << 16U);
  }
  /// The next `n` bytes (fewer at the end).
  std::string_view take(std::size_t n) {
    n = std::min(n, left_);
    const std::string_view s(p_, n);
    p_ += n;
    left_ -= n;
    return s;
  }
  /// Everything not consumed yet: it ends where the fuzzer's buffer ends, so AddressSanitizer
  /// catches any read past it.
  [[nodiscard]] std::string_view rest() const { return {p_, left_}; }

 private:
  const char* p_;
  std::size_t left_;
};

/// `s` with every byte that is not printable ASCII (and the backslash) written as \xNN.
inline std::string printable(std::string_view s) {
  std::string out;
  sluice::append_printable(out, s);
  return out;
}

/// A record or a bad record, as a parse reported it, in input order.
struct event {
  bool good = false;
  std::uint64_t offset = 0;
  std::uint64_t length = 0;  // the record's raw length where the parse gives it, the bad record's
  std::uint64_t line = 0;    // bad records only (a record's line is not reported)
  std::string text;          // the record's values, or the bad record's reason
  bool operator==(const event&) const = default;
};

/// What one way of parsing an input reported.
struct parse_log {
  std::vector<event> events;
  std::uint64_t lines = 0;
};

/// Aborts, printing both logs, unless `got` (parsed as `how`) is `want` (the whole input at once).
inline void check_same(const parse_log& got, const parse_log& want, const char* how) {
  if (got.events == want.events && got.lines == want.lines) {
    return;
  }
  const auto print = [](const char* name, const parse_log& log) {
    std::fprintf(stderr, "%s: %llu lines\n", name, static_cast<unsigned long long>(log.lines));
    for (const event& e : log.events) {
      std::fprintf(stderr, "  %s @%llu+%llu line %llu: %s\n", e.good ? "record" : "bad",
                   static_cast<unsigned long long>(e.offset), static_cast<unsigned long long>(e.length),
                   static_cast<unsigned long long>(e.line), printable(e.text).c_str());
    }
  };
  print("whole input", want);
  print(how, got);
  FUZZ_CHECK(!"the same records and bad records however the input is cut");
}

/// Parses [begin, stop) of the input that ends at `end` (offsets from `origin`) with `parser`,
/// appending to `log`: `emit`, the target's own, logs each record; each bad record is checked
/// (inside the input, not empty, with a reason) and logged here. Checks the outcome against the
/// log and returns it.
template <class Parser, class Emit>
sluice::chunk_outcome logged_parse(Parser& parser, const char* origin, const char* begin, const char* stop,
                                   const char* end, bool eof, std::size_t max_record_bytes, parse_log& log,
                                   Emit&& emit) {
  const std::uint64_t line_base = log.lines;
  const std::size_t logged_before = log.events.size();
  const auto out = parser.parse(origin, begin, stop, end, eof, max_record_bytes, emit, [&](sluice::chunk_bad_record b) {
    FUZZ_CHECK(b.offset >= static_cast<std::uint64_t>(begin - origin));
    FUZZ_CHECK(b.offset + b.length <= static_cast<std::uint64_t>(end - origin) && b.length > 0);
    FUZZ_CHECK(!b.reason.empty());
    log.events.push_back({false, b.offset, b.length, line_base + b.local_line, std::move(b.reason)});
    return true;
  });
  const auto added = log.events.begin() + static_cast<std::ptrdiff_t>(logged_before);
  const auto good =
      static_cast<std::uint64_t>(std::count_if(added, log.events.end(), [](const event& e) { return e.good; }));
  const auto bad = static_cast<std::uint64_t>(log.events.end() - added) - good;
  FUZZ_CHECK(out.records == good && out.bad == bad && !out.stopped);
  FUZZ_CHECK(out.next >= static_cast<std::size_t>(begin - origin) &&
             out.next <= static_cast<std::size_t>(end - origin));
  log.lines += out.lines;
  return out;
}

/// 1. The whole input at once, with what every text format owes it: all of it consumed, and a
/// line for every newline. `new_parser` and `parse` as for check_cuts.
template <class NewParser, class Parse>
parse_log parse_whole(NewParser new_parser, Parse parse, const char* origin, const char* begin, const char* end) {
  parse_log whole;
  auto parser = new_parser();
  const auto out = parse(parser, begin, end, end, true, whole);
  FUZZ_CHECK(out.next == static_cast<std::size_t>(end - origin));
  FUZZ_CHECK(whole.lines == static_cast<std::uint64_t>(std::count(begin, end, '\n')));
  return whole;
}

/// The cuts every text-format target compares with the whole input parsed at once (`whole`):
/// 2. two chunks, as the batch runner cuts a file: the records starting before `stop`, then the
///    rest, each with a parser of its own;
/// 3. a stream: the bytes up to `split` arrive first (eof=false), then the rest (eof=true), with
///    one parser. A stream that gave up on a broken line at the split drops the rest of that line
///    when it arrives (as csv_lines does): that bad record then spans to the line's end.
/// `new_parser()` makes a parser; `parse(parser, begin, stop, end, eof, log)` parses [begin, stop)
/// of the input ending at `end` into `log` and returns the chunk outcome (offsets from `origin`).
template <class NewParser, class Parse>
void check_cuts(NewParser new_parser, Parse parse, const parse_log& whole, const char* origin, const char* begin,
                const char* end, std::size_t stop_choice, std::size_t split_choice) {
  const auto body = static_cast<std::size_t>(end - begin);
  const auto input_size = static_cast<std::size_t>(end - origin);
  {
    parse_log chunks;
    auto parser = new_parser();
    const char* stop = begin + stop_choice % (body + 1);
    const auto first = parse(parser, begin, stop, end, true, chunks);
    FUZZ_CHECK(origin + first.next >= stop);
    auto second = new_parser();
    const auto out = parse(second, origin + first.next, end, end, true, chunks);
    FUZZ_CHECK(out.next == input_size);
    check_same(chunks, whole, "two chunks");
  }
  {
    parse_log stream;
    auto parser = new_parser();
    const char* split = begin + split_choice % (body + 1);
    const auto first = parse(parser, begin, split, split, false, stream);
    const char* resume = origin + first.next;
    if (resume == split && split > begin && split[-1] != '\n') {
      FUZZ_CHECK(!stream.events.empty() && !stream.events.back().good);
      event& broken = stream.events.back();
      FUZZ_CHECK(origin + broken.offset + broken.length == split);
      const void* nl = std::memchr(split, '\n', static_cast<std::size_t>(end - split));
      resume = nl == nullptr ? end : static_cast<const char*>(nl) + 1;
      broken.length = static_cast<std::uint64_t>(resume - origin) - broken.offset;
      stream.lines += nl == nullptr ? 0 : 1;
    }
    const auto out = parse(parser, resume, end, end, true, stream);
    FUZZ_CHECK(out.next == input_size);
    check_same(stream, whole, "stream");
  }
}

}  // namespace fuzz
