// gen_nexmark: writes Nexmark events as JSON lines (the suite's Kafka/JSON shape), made by the
// generator (generator.hpp), for the nexmark program's --input and --listen modes.
//
//   gen_nexmark N FILE [--seed S] [--rate EVENTS_PER_SECOND] [--out-of-order D]
//
// `nexmark QUERY --generate N` with the same settings runs over the same events without the file.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "../common/cli.hpp"
#include "generator.hpp"
#include "json.hpp"

namespace {

constexpr const char* usage =
    "usage: gen_nexmark N FILE [--seed S] [--rate EVENTS_PER_SECOND] [--out-of-order D]\n"
    "  Writes N Nexmark events (person, auction, bid: 1:3:46) as JSON lines to FILE ('-': stdout).\n"
    "  --seed S          the generator's seed (default 42); the same settings give the same file\n"
    "  --rate R          events per second of event time (default 10000000, the suite's V1)\n"
    "  --out-of-order D  each event up to D behind the latest (default 0: in time order)\n";

}  // namespace

int main(int argc, char** argv) {
  cli::args args("gen_nexmark", usage, argc, argv);
  nexmark::generator_config cfg;
  cfg.seed = 42;  // the nexmark program's default too
  std::vector<std::string> positional;
  while (args.next()) {
    const std::string_view a = args.current();
    if (a == "--seed") {
      cfg.seed = args.whole_number(args.value(), "--seed");
    } else if (a == "--rate") {
      const std::uint64_t rate = args.whole_number(args.value(), "--rate");
      if (rate == 0) {
        args.fail("--rate must be at least 1");
      }
      cfg.events_per_second = static_cast<double>(rate);
    } else if (a == "--out-of-order") {
      cfg.out_of_order = sluice::millis{args.duration().count()};
    } else {
      args.take_positional(positional, 2);
    }
  }
  auto out = args.rows_and_file(positional);
  const auto started = std::chrono::steady_clock::now();
  std::string buf;
  std::uint64_t bytes = 0;
  try {
    for (std::uint64_t n = 0; n < out.rows; ++n) {
      const std::size_t before = buf.size();
      nexmark::append_json(buf, nexmark::make_event(cfg, n));
      bytes += buf.size() - before;
      out.write_if_full(buf);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gen_nexmark: %s\n", e.what());
    return 1;
  }
  const int status = out.finish(buf, "gen_nexmark");
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::fprintf(stderr, "gen_nexmark: %llu events, %llu bytes in %.2f s\n", static_cast<unsigned long long>(out.rows),
               static_cast<unsigned long long>(bytes), seconds);
  return status;
}
