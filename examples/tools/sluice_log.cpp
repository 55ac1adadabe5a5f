// sluice-log: looks inside an event log directory without writing to it or taking its lock, so
// it runs beside a live writer: the segments (info), the records (dump), and whether every
// record's CRC holds (verify).
//
//   sluice-log info DIR
//   sluice-log dump DIR [--from OFFSET] [--to OFFSET] [--limit N]
//   sluice-log verify DIR
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <iterator>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <fmt/core.h>

#include "../common/cli.hpp"
#include "sluice/io/iso8601.hpp"
#include "sluice/store/event_log.hpp"

namespace {

constexpr const char* usage =
    "usage: sluice-log info DIR\n"
    "       sluice-log dump DIR [--from OFFSET] [--to OFFSET] [--limit N]\n"
    "       sluice-log verify DIR\n"
    "  Reads an event log directory; never writes it and takes no lock (a writer may be running).\n"
    "  info     a line per segment: index, base and end offset, records, bytes, event time range,\n"
    "           sealed or active; then the totals\n"
    "  dump     offset<TAB>event time ms<TAB>payload, a line per record; payload bytes that are not\n"
    "           printable ASCII are escaped as \\xNN (newline \\n, tab \\t, backslash \\\\)\n"
    "  verify   reads every record and checks its CRC: exit 0 with the count, 1 at the first bad one\n"
    "  --from OFFSET   the first record to dump (default 0)\n"
    "  --to OFFSET     dump the records before this offset (default: to the end)\n"
    "  --limit N       dump at most N records\n";

struct options {
  std::string command;
  std::string dir;
  std::uint64_t from = 0;
  std::uint64_t to = UINT64_MAX;
  std::uint64_t limit = UINT64_MAX;
};

options parse_args(int argc, char** argv) {
  options o;
  cli::args args("sluice-log", usage, argc, argv);
  std::vector<std::string> positional;
  while (args.next()) {
    const std::string_view a = args.current();
    if (a == "--from" || a == "--to" || a == "--limit") {
      const std::string flag(a);
      std::uint64_t& into = a == "--from" ? o.from : a == "--to" ? o.to : o.limit;
      into = args.whole_number(args.value(), flag);
    } else {
      args.take_positional(positional, 2);
    }
  }
  if (positional.size() != 2) {
    args.fail("expected a command (info, dump or verify) and DIR");
  }
  o.command = positional[0];
  o.dir = positional[1];
  if (o.command != "info" && o.command != "dump" && o.command != "verify") {
    args.fail("unknown command '" + o.command + "'");
  }
  if (o.command != "dump" && (o.from != 0 || o.to != UINT64_MAX || o.limit != UINT64_MAX)) {
    args.fail("--from, --to and --limit go with dump");
  }
  return o;
}

std::string time_text(sluice::millis t) {
  return fmt::format("{} ({})", sluice::format_iso8601(t, true), t.count());
}

struct time_range {
  sluice::millis min = sluice::millis::max();
  sluice::millis max = sluice::millis::min();
  std::uint64_t records = 0;

  void add(sluice::millis t) {
    min = std::min(min, t);
    max = std::max(max, t);
    ++records;
  }
  void add(const time_range& r) {
    min = std::min(min, r.min);
    max = std::max(max, r.max);
    records += r.records;
  }
  [[nodiscard]] std::string text() const {
    return records == 0 ? "no records" : time_text(min) + " .. " + time_text(max);
  }
};

/// A line about bytes after the last valid record of the last segment, or "".
std::string torn_tail_note(const std::vector<sluice::log_segment>& segments) {
  if (segments.empty()) {
    return "";
  }
  const auto& last = segments.back();
  std::error_code ec;
  const std::uint64_t size = std::filesystem::file_size(last.path, ec);
  if (ec || size <= last.bytes) {
    return "";
  }
  return fmt::format(
      "torn tail: {} has {} bytes after its last valid record (byte {}): a write in progress, or a crash's "
      "leftovers that the next writer cuts\n",
      last.path, size - last.bytes, last.bytes);
}

int info(const std::string& dir) {
  const auto segments = sluice::list_segments(dir);
  std::string out;
  auto put = std::back_inserter(out);
  fmt::format_to(put, "{:>7}  {:>12}  {:>12}  {:>10}  {:>12}  {:<40}  {:<40}  {}\n", "segment", "base", "end",
                 "records", "bytes", "min event time", "max event time", "state");
  time_range total;
  std::uint64_t bytes = 0;
  for (const auto& s : segments) {
    time_range r;
    sluice::read_log(segments, s.base_offset, s.end_offset,
                     [&](const sluice::log_record& rec) { r.add(rec.event_time); });
    fmt::format_to(put, "{:>7}  {:>12}  {:>12}  {:>10}  {:>12}  {:<40}  {:<40}  {}\n", s.index, s.base_offset,
                   s.end_offset, s.end_offset - s.base_offset, s.bytes, r.records == 0 ? "-" : time_text(r.min),
                   r.records == 0 ? "-" : time_text(r.max), s.sealed ? "sealed" : "active");
    total.add(r);
    bytes += s.bytes;
  }
  fmt::format_to(put, "total: {} segments, {} records, {} bytes, head offset {}, event time {}\n", segments.size(),
                 total.records, bytes, segments.empty() ? 0 : segments.back().end_offset, total.text());
  out += torn_tail_note(segments);
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

void escape_into(std::string& out, std::string_view payload) {
  constexpr const char* hex = "0123456789abcdef";
  for (const char ch : payload) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\\') {
      out += "\\\\";
    } else if (c >= 0x20 && c < 0x7f) {
      out += ch;
    } else {
      out += {'\\', 'x', hex[c >> 4U], hex[c & 15U]};
    }
  }
}

int dump(const options& o) {
  const auto segments = sluice::list_segments(o.dir);
  std::string out;
  std::uint64_t left = o.limit;
  if (left > 0) {
    sluice::read_log(segments, o.from, o.to, [&](const sluice::log_record& r) {
      fmt::format_to(std::back_inserter(out), "{}\t{}\t", r.offset, r.event_time.count());
      escape_into(out, r.payload);
      out += '\n';
      if (out.size() >= (std::size_t{1} << 20U)) {
        std::fwrite(out.data(), 1, out.size(), stdout);
        out.clear();
      }
      return --left > 0;
    });
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  if (std::fflush(stdout) != 0 || std::ferror(stdout) != 0) {
    std::fputs("sluice-log: write to stdout failed\n", stderr);
    return 1;
  }
  return 0;
}

int verify(const std::string& dir) {
  const auto segments = sluice::list_segments(dir);
  const std::uint64_t records = sluice::read_log(segments, 0, UINT64_MAX, [](const sluice::log_record&) {});
  fmt::print("ok: {} records in {} segments, every CRC checked\n{}", records, segments.size(),
             torn_tail_note(segments));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const options o = parse_args(argc, argv);
  try {
    if (o.command == "info") {
      return info(o.dir);
    }
    if (o.command == "dump") {
      return dump(o);
    }
    return verify(o.dir);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sluice-log: %s\n", e.what());
    return 1;
  }
}
