// fraud: card-fraud rules over a stream of transactions: per-card state and event-time timers
// (sluice::process), the seed's "fraud detection" use case. The same flow runs over a file
// (batch mode, every core) and over TCP (stream mode) and prints the same alerts.
//
//   fraud generate ROWS FILE [--seed S]
//   fraud --input FILE [--threads N] [--burst N]
//   fraud --listen HOST:PORT [--connections N] [--max-delay D] [--burst N]
//
// Transactions are CSV `ts,card,amount,country` (ts in ms since the Unix epoch). Rules, per card:
//   burst      more than N transactions (--burst, default 5) within one minute: one alert when
//              the count first passes N, again only after it has fallen back to N or less
//   countries  a payment from another country than one the card paid from in the last 10 minutes
// Alerts are CSV `time,card,rule,detail`, in event-time order. A card's state is dropped 10 minutes
// after its last transaction (a timer), so memory follows the active cards, not the history.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <optional>
#include <queue>
#include <stop_token>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/core.h>

#include "common/cli.hpp"
#include "common/splitmix64.hpp"
#include "sluice/io/csv_text.hpp"
#include "sluice/io/file_source.hpp"
#include "sluice/io/signals.hpp"
#include "sluice/io/stream_format.hpp"
#include "sluice/io/tcp_source.hpp"
#include "sluice/run/batch.hpp"
#include "sluice/run/stream.hpp"
#include "sluice/sluice.hpp"

namespace {

using namespace std::chrono_literals;

constexpr const char* usage =
    "usage: fraud generate ROWS FILE [--seed S]\n"
    "       fraud --input FILE [--threads N] [--burst N]\n"
    "       fraud --listen HOST:PORT [--connections N] [--max-delay D] [--burst N]\n"
    "  Card-fraud alerts over transactions (CSV ts,card,amount,country; ts in ms):\n"
    "    burst      more than N transactions of a card within one minute (--burst, default 5)\n"
    "    countries  a card pays from a second country within 10 minutes\n"
    "  Prints CSV time,card,rule,detail in event-time order; the same alerts in both modes.\n"
    "  generate      write ROWS synthetic transactions to FILE, with bursts and country hops\n"
    "  --input FILE  batch mode over the file (--threads N, default every core)\n"
    "  --listen H:P  stream mode: accept TCP connections sending CSV lines (no header); port 0\n"
    "                picks a free port, printed on stderr; --connections N: stop after N closed\n"
    "  --max-delay D how far out of order events may arrive (default 2s); later ones are late\n";

constexpr const char* csv_header = "ts,card,amount,country";

/// A transaction as the parser gives it: strings borrow the input.
struct txn_line {
  sluice::millis ts;
  std::string_view card;
  std::int64_t amount_cents = 0;
  std::string_view country;
};

/// A transaction as the process function holds it until the watermark passes it: owned.
struct txn {
  sluice::millis ts;
  std::string card;
  std::int64_t amount_cents = 0;
  std::string country;
};

struct alert {
  sluice::millis time;
  std::string card;
  std::string_view rule;
  std::string detail;
};

auto txn_schema() {
  return sluice::schema<txn_line>(sluice::column("ts", &txn_line::ts), sluice::column("card", &txn_line::card),
                                  sluice::column("amount", &txn_line::amount_cents, sluice::fixed_point<2>{}),
                                  sluice::column("country", &txn_line::country));
}

constexpr auto burst_span = 1min;
constexpr auto country_span = 10min;

struct card_state {
  std::deque<sluice::millis> last_minute;                         // the card's transaction times within the last minute
  bool bursting = false;                                          // alerted, and the count has not fallen back since
  std::vector<std::pair<std::string, sluice::millis>> countries;  // last payment time per country
  std::optional<sluice::millis> forget_at;                        // the one cleanup timer
};

/// Both rules, per card, as one process function (on_event and on_timer).
struct detector {
  std::size_t burst_limit = 5;

  template <class Ctx>
  void operator()(Ctx& ctx, const txn& t) const {
    card_state& s = ctx.state();
    const sluice::millis now = ctx.time();
    while (!s.last_minute.empty() && s.last_minute.front() <= now - burst_span) {
      s.last_minute.pop_front();
    }
    s.last_minute.push_back(now);
    if (s.last_minute.size() > burst_limit && !s.bursting) {
      ctx.emit(alert{now, t.card, "burst", fmt::format("{} in 1 min", s.last_minute.size())});
    }
    s.bursting = s.last_minute.size() > burst_limit;

    std::erase_if(s.countries, [&](const auto& c) { return c.second < now - country_span; });
    const auto other =
        std::find_if(s.countries.begin(), s.countries.end(), [&](const auto& c) { return c.first != t.country; });
    if (other != s.countries.end()) {
      ctx.emit(alert{now, t.card, "countries", fmt::format("{} then {}", other->first, t.country)});
    }
    const auto same =
        std::find_if(s.countries.begin(), s.countries.end(), [&](const auto& c) { return c.first == t.country; });
    if (same != s.countries.end()) {
      same->second = now;
    } else {
      s.countries.emplace_back(t.country, now);
    }

    // Ten minutes without a transaction and neither rule can fire from this state: forget it.
    if (s.forget_at) {
      ctx.cancel_timer(*s.forget_at);
    }
    s.forget_at = now + country_span + 1ms;
    ctx.timer_at(*s.forget_at);
  }

  template <class Ctx>
  void operator()(Ctx& ctx) const {
    ctx.clear();
  }
};

auto fraud_flow(std::size_t burst_limit) {
  const detector d{burst_limit};
  return sluice::flow<txn_line>() | sluice::map([](const txn_line& l) {
           return txn{l.ts, std::string(l.card), l.amount_cents, std::string(l.country)};
         }) |
         sluice::event_time(&txn::ts) | sluice::key_by(&txn::card) | sluice::process<alert, card_state>(d, d);
}

void print_alerts(const std::vector<alert>& alerts) {
  std::string out;
  for (const alert& a : alerts) {
    fmt::format_to(std::back_inserter(out), "{},", a.time.count());
    sluice::append_csv_field(out, a.card);
    fmt::format_to(std::back_inserter(out), ",{},", a.rule);
    sluice::append_csv_field(out, a.detail);
    out += '\n';
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fflush(stdout);  // stream mode: an alert is visible at once
}

// ---- the generator ----------------------------------------------------------------------------

/// Transactions about 20 ms apart over 5000 cards, each card mostly at home. Now and then a card
/// makes a burst (7 payments 2-9 s apart) or pays abroad a few minutes after paying at home.
/// Rows are written up to 500 ms out of time order, as a real feed would deliver them.
int generate(const cli::args& args, const std::vector<std::string>& positional, std::uint64_t seed) {
  auto out = args.rows_and_file(positional);
  static constexpr std::string_view countries[] = {"FR", "DE", "ES", "IT", "NL", "PL", "SE", "PT"};
  constexpr std::uint64_t cards = 5000;
  cli::splitmix64 rng{seed};
  struct row {
    std::int64_t ts;
    std::uint64_t card;
    std::int64_t cents;
    std::string_view country;
    bool operator>(const row& o) const { return ts > o.ts; }
  };
  std::priority_queue<row, std::vector<row>, std::greater<>> due;  // rows scheduled for later
  auto home = [&](std::uint64_t card) { return countries[(card * 2654435761U) % std::size(countries)]; };
  std::int64_t clock = 1'767'225'600'000;  // 2026-01-01T00:00:00Z
  std::string buf = std::string(csv_header) + "\n";
  std::uint64_t written = 0;
  while (written < out.rows) {
    clock += 5 + static_cast<std::int64_t>(rng.below(30));
    const std::uint64_t card = rng.below(cards);
    const auto cents = static_cast<std::int64_t>(100 + rng.below(20'000));
    due.push(row{clock, card, cents, home(card)});
    const std::uint64_t pick = rng.below(1000);
    if (pick < 2) {  // a burst
      std::int64_t t = clock;
      for (int i = 0; i < 6; ++i) {
        t += 2'000 + static_cast<std::int64_t>(rng.below(7'000));
        due.push(row{t, card, 500 + static_cast<std::int64_t>(rng.below(5'000)), home(card)});
      }
    } else if (pick < 4) {  // a payment abroad a few minutes later
      const std::int64_t t = clock + 60'000 + static_cast<std::int64_t>(rng.below(480'000));
      due.push(row{t, card, 1'000 + static_cast<std::int64_t>(rng.below(90'000)),
                   countries[rng.below(std::size(countries))]});
    }
    while (!due.empty() && due.top().ts <= clock && written < out.rows) {
      const row r = due.top();
      due.pop();
      const std::int64_t shown = r.ts - static_cast<std::int64_t>(rng.below(500));  // delivery disorder
      fmt::format_to(std::back_inserter(buf), "{},4000-{:04}-{:04}-{:04},{}.{:02},{}\n", shown, r.card / 100,
                     r.card % 100, (r.card * 7) % 10'000, r.cents / 100, r.cents % 100, r.country);
      ++written;
      out.write_if_full(buf);
    }
  }
  return out.finish(buf, "fraud");
}

// ---- the two modes ------------------------------------------------------------------------------

struct options : cli::mode_flags {
  std::size_t burst = 5;
};

int batch_mode(const options& o) {
  sluice::batch_stats stats;
  const std::vector<alert> alerts = sluice::run_batch(sluice::csv_file(o.input, txn_schema()), fraud_flow(o.burst),
                                                      sluice::batch_options{.threads = o.threads}, &stats);
  std::fputs("time,card,rule,detail\n", stdout);
  print_alerts(alerts);
  std::fprintf(stderr, "fraud: %llu transactions, %zu alerts, %llu bad records, %.3f s\n",
               static_cast<unsigned long long>(stats.records), alerts.size(),
               static_cast<unsigned long long>(stats.bad_records), stats.seconds);
  return 0;
}

int stream_mode(const options& o, std::stop_token stop) {
  sluice::tcp_source source(sluice::csv_lines(txn_schema(), csv_header),
                            sluice::tcp_options{.listen = o.listen, .stop_after = o.connections});
  std::fprintf(stderr, "fraud: listening on %s\n", source.local_endpoint().c_str());
  std::fflush(stderr);
  sluice::stream_options opts;
  opts.max_delay = o.max_delay;
  opts.expected_inputs = o.connections;
  std::fputs("time,card,rule,detail\n", stdout);
  std::size_t alerts = 0;
  const auto stats = sluice::run_stream(
      source, fraud_flow(o.burst),
      [&](const std::vector<alert>& fired) {
        alerts += fired.size();
        print_alerts(fired);
      },
      opts, stop);
  std::fprintf(stderr,
               "fraud: %llu transactions over %llu connections, %zu alerts, %llu bad records, %llu late, %.3f s\n",
               static_cast<unsigned long long>(stats.events), static_cast<unsigned long long>(stats.inputs), alerts,
               static_cast<unsigned long long>(stats.bad_records), static_cast<unsigned long long>(stats.late_events),
               stats.seconds);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  cli::args args("fraud", usage, argc, argv);
  options o;
  o.max_delay = 2s;
  std::vector<std::string> positional;
  while (args.next()) {
    if (o.take(args)) {
      continue;
    }
    if (args.current() == "--burst") {
      o.burst = args.whole_number(args.value(), "--burst");
    } else {
      args.take_positional(positional, 3);
    }
  }
  try {
    if (!positional.empty() && positional.front() == "generate") {
      positional.erase(positional.begin());
      return generate(args, positional, o.seed);
    }
    if (!positional.empty() || !o.one_mode()) {
      args.fail("give generate ROWS FILE, --input FILE or --listen HOST:PORT");
    }
    if (!o.input.empty()) {
      return batch_mode(o);
    }
    std::stop_source stop;
    const sluice::stop_on_signals signals(stop);  // Ctrl-C: drain, fire what is due, print the summary
    return stream_mode(o, stop.get_token());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fraud: %s\n", e.what());
    return 1;
  }
}
