// quickstart: the program docs/guide.md walks through (keep the two in sync; meson builds this
// file so the guide's main example keeps compiling).
//
// Sensor readings in, per site and minute of event time out: how many readings, the mean and
// the highest temperature.
//
//   quickstart readings.csv [THREADS]
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <fmt/core.h>

#include "sluice/io/file_source.hpp"  // sluice::csv_file
#include "sluice/run/batch.hpp"       // sluice::run_batch
#include "sluice/sluice.hpp"          // flows, operators, monoids, the result store

// 1. The event: a plain struct. string_view members point into the input while the event is
//    processed; money-like decimals are read exactly as scaled integers.
struct reading {
  sluice::millis ts;            // event time: ms since the Unix epoch
  std::string_view device;
  std::string_view site;
  std::int64_t temp_centi = 0;  // "21.35" is read as 2135
  std::int64_t battery = 0;     // percent
};

int main(int argc, char** argv) {
  using namespace std::chrono_literals;
  if (argc < 2) {
    fmt::print(stderr, "usage: quickstart readings.csv [THREADS]\n");
    return 2;
  }

  // 2. The schema: which CSV column (by header name, in any order) fills which member.
  auto schema = sluice::schema<reading>(
      sluice::column("ts", &reading::ts), sluice::column("device", &reading::device),
      sluice::column("site", &reading::site),
      sluice::column("temp_c", &reading::temp_centi, sluice::fixed_point<2>{}),
      sluice::column("battery", &reading::battery));

  // 3. The flow: a value that describes the computation. Nothing runs yet.
  auto per_site_minute = sluice::flow<reading>()
      | sluice::filter([](const reading& r) { return r.battery > 0; })  // a flat battery reads garbage
      | sluice::event_time(&reading::ts)
      | sluice::key_by(&reading::site)
      | sluice::window(sluice::tumbling(1min))
      | sluice::aggregate(sluice::count{}, sluice::mean(&reading::temp_centi), sluice::max(&reading::temp_centi));

  // 4. The source: a CSV file bound to the schema. Malformed lines are skipped and reported.
  sluice::input_options input;
  input.on_bad_record = sluice::bad_record_policy::skip;
  input.dead_letters = [](const sluice::bad_record& bad) { fmt::print(stderr, "skipped {}\n", sluice::describe(bad)); };
  auto source = sluice::csv_file(argv[1], schema, input);

  // 5. Run it on every core (or THREADS), then read the result store: rows ordered by key.
  sluice::batch_options options;
  options.threads = argc > 2 ? static_cast<unsigned>(std::atoi(argv[2])) : 0;
  try {
    auto store = sluice::run_batch(source, per_site_minute, options);
    fmt::print("site,minute_start,readings,mean_temp_c,max_temp_c\n");
    for (const auto& row : store.scan()) {
      const auto& [n, mean, max] = row.value;  // int64, optional<double>, optional<int64>
      fmt::print("{},{},{},{:.2f},{:.2f}\n", row.key.key, row.key.window.start.count(), n, *mean / 100.0,
                 static_cast<double>(*max) / 100.0);
    }
  } catch (const sluice::bad_input_error& e) {  // unreadable file, missing column, or policy fail
    fmt::print(stderr, "quickstart: {}\n", e.what());
    return 1;
  }
  return 0;
}
