// Fuzz target: stream framing (sluice/io/stream_format.hpp). The same bytes are fed to a fresh
// input of csv_lines (or length_prefixed) three times: in one piece, in the pieces the fuzzer
// chooses, and one byte at a time, each piece in its own heap block freed after its feed. The
// records (values, raw text, offsets) and bad records (line, offset, reason, text) must be the
// same whatever the pieces.
//
// Input: [config byte][piece count byte][u16 piece sizes...][stream bytes]. Config: bit 0 the
// framing (0 CSV lines, 1 length-prefixed), bits 1-3 the max record size, bit 4 whether the
// input needs a final newline (a socket) or not (a file).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_sale.hpp"
#include "fuzz_support.hpp"
#include "sluice/io/stream_format.hpp"

namespace {

using fuzz::sale;
using fuzz::sale_schema;

struct frame {
  std::string text;
};
constexpr auto decode_frame = [](std::string_view payload, frame& out) -> const char* {
  if (!payload.empty() && payload[0] == '!') {
    return "payload starts with '!'";
  }
  out.text.assign(payload);
  return nullptr;
};

std::string describe(const sale& s) {
  return std::to_string(s.id) + '|' + std::to_string(s.qty) + '|' + std::to_string(s.price_cents) + '|' +
         std::string(s.name) + '|' + std::to_string(s.ts.count());
}
std::string describe(const frame& f) {
  return f.text;
}

struct seen {
  std::vector<std::string> records;  // value, then raw text
  std::vector<std::uint64_t> offsets;
  std::vector<std::string> bad;  // line, offset, reason, text
  bool operator==(const seen&) const = default;
};

template <class Format>
seen feed_pieces(const Format& fmt, std::string_view bytes, const std::vector<std::size_t>& sizes,
                 bool needs_final_newline) {
  seen out;
  auto in = fmt.new_input("fuzz");
  auto emit = [&](const auto& value, std::string_view raw, std::uint64_t offset) {
    out.records.push_back(describe(value));
    out.records.emplace_back(raw);
    out.offsets.push_back(offset);
  };
  auto report = [&](const sluice::bad_record& b) {
    FUZZ_CHECK(b.source == "fuzz" && !b.reason.empty());
    FUZZ_CHECK(b.offset <= bytes.size() && b.text.size() <= fmt.options().max_record_bytes);
    out.bad.push_back(std::to_string(b.line) + ':' + std::to_string(b.offset) + ": " + std::string(b.reason) + " [" +
                      std::string(b.text) + "]");
    return true;
  };
  std::size_t at = 0;
  for (const std::size_t n : sizes) {
    FUZZ_CHECK(at + n <= bytes.size());
    // Its own block of exactly its size: a view kept past the feed is a use after free.
    const auto piece = std::make_unique<char[]>(n);
    std::copy_n(bytes.data() + at, n, piece.get());
    FUZZ_CHECK(fmt.feed(in, std::string_view(piece.get(), n), emit, report));
    FUZZ_CHECK(in.at.offset <= at + n);
    at += n;
  }
  FUZZ_CHECK(at == bytes.size());
  FUZZ_CHECK(fmt.close(in, needs_final_newline, emit, report));
  for (std::size_t i = 1; i < out.offsets.size(); ++i) {
    FUZZ_CHECK(out.offsets[i - 1] < out.offsets[i]);
  }
  return out;
}

/// Aborts, printing both, unless `got` (fed as `how`) is `want`.
void check_same(const seen& got, const seen& want, const char* how) {
  if (got == want) {
    return;
  }
  const auto print = [](const char* name, const seen& s) {
    std::fprintf(stderr, "%s:\n", name);
    for (std::size_t i = 0; i < s.offsets.size(); ++i) {
      std::fprintf(stderr, "  record @%llu: %s [%s]\n", static_cast<unsigned long long>(s.offsets[i]),
                   fuzz::printable(s.records[2 * i]).c_str(), fuzz::printable(s.records[2 * i + 1]).c_str());
    }
    for (const std::string& b : s.bad) {
      std::fprintf(stderr, "  bad %s\n", fuzz::printable(b).c_str());
    }
  };
  print("one piece", want);
  print(how, got);
  FUZZ_CHECK(!"the same records and bad records however the stream is cut");
}

template <class Format>
void check_pieces(const Format& fmt, std::string_view bytes, const std::vector<std::size_t>& chosen,
                  bool needs_final_newline) {
  const seen whole = feed_pieces(fmt, bytes, {bytes.size()}, needs_final_newline);
  check_same(feed_pieces(fmt, bytes, chosen, needs_final_newline), whole, "the chosen pieces");
  if (bytes.size() <= 512) {
    const std::vector<std::size_t> ones(bytes.size(), 1);
    check_same(feed_pieces(fmt, bytes, ones, needs_final_newline), whole, "one byte at a time");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::input in(data, size);
  const std::uint8_t config = in.byte();
  const std::size_t piece_count = in.byte() % 16;
  std::vector<std::size_t> wanted;
  for (std::size_t i = 0; i < piece_count; ++i) {
    wanted.push_back(in.u16());
  }
  const std::string_view bytes = in.rest();
  // The chosen pieces (each clipped to what is left, empty pieces allowed), then the rest.
  std::vector<std::size_t> chosen;
  std::size_t at = 0;
  for (const std::size_t n : wanted) {
    chosen.push_back(std::min(n % 257, bytes.size() - at));
    at += chosen.back();
  }
  chosen.push_back(bytes.size() - at);

  static constexpr std::size_t max_sizes[] = {std::size_t{1} << 20U, 1, 4, 8, 16, 32, 64, 300};
  sluice::input_options options;
  options.max_record_bytes = max_sizes[(config >> 1U) & 7U];
  const bool needs_final_newline = (config & 16U) != 0;
  if ((config & 1U) == 0) {
    const auto fmt = sluice::csv_lines(sale_schema(), "id,qty,price,name,ts", options);
    check_pieces(fmt, bytes, chosen, needs_final_newline);
  } else {
    const sluice::length_prefixed<frame, std::remove_const_t<decltype(decode_frame)>> fmt(decode_frame, options);
    check_pieces(fmt, bytes, chosen, needs_final_newline);
  }
  return 0;
}
