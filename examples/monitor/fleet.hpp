// The simulated server fleet of the monitor example: H hosts, each emitting one CPU sample every
// interval of event time. Shared by monitor.cpp (which pushes the samples into sluice from several
// producer threads) and by tests/test_monitor_e2e.cpp (which recomputes the alerts naively from
// the same samples), so the generator is defined once.
//
// Everything is a function of the options: host i draws from its own splitmix64 stream seeded
// from (seed, i), so the samples do not depend on which producer thread owns the host or on
// thread timing. Values are integers: cpu in tenths of a percent (937 = 93.7%), load average in
// hundredths (785 = 7.85), so sums and averages are exact.
//
// A sample is emitted (pushed) at its host's tick, phase + k * interval, but measured up to
// `jitter` earlier: its event time is the tick minus a random delay, so the samples of one host
// arrive slightly out of event-time order, as they do from real agents.
//
//   host web-01:  tick 12:00:00.317 -> ts 12:00:00.317 - delay(0..jitter)   cpu = base + noise
//   hot host:     base --ramp up--> peak (~95%) --plateau (2-5 min)--> ramp down --> base
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "../common/splitmix64.hpp"
#include "sluice/core/time.hpp"

namespace monitor {

/// One CPU-load sample, as an agent on a host would send it. `host` views the fleet's name
/// table, which outlives the run: the queue carries 40-byte values and never allocates per sample.
struct sample {
  sluice::millis ts;  // when it was measured (event time)
  std::string_view host;
  std::int64_t cpu_deci = 0;    // cpu busy, tenths of a percent: 0..1000
  std::int64_t load_centi = 0;  // 1-minute load average, hundredths (8 cores: ~8.00 when saturated)
};

struct fleet_options {
  std::size_t hosts = 50;
  std::size_t hot = 3;                          // hosts that run hot for a while
  std::chrono::milliseconds interval{1000};     // one sample per host per interval
  std::chrono::milliseconds duration{600'000};  // of event time
  std::chrono::milliseconds jitter{2000};       // a sample's event time is up to this before its tick
  std::uint64_t seed = 1;
  sluice::millis start{1'709'294'400'000};  // 2024-03-01T12:00:00Z
};

/// A hot episode: cpu ramps from the host's base to `peak`, stays there, and ramps back down.
struct hot_episode {
  std::int64_t from_ms = 0;  // offset from the fleet's start
  std::int64_t ramp_up_ms = 0;
  std::int64_t plateau_ms = 0;
  std::int64_t ramp_down_ms = 0;
  std::int64_t peak_deci = 0;
};

struct host_profile {
  std::string name;
  std::int64_t base_deci = 0;  // the host's usual load
  std::int64_t phase_ms = 0;   // where in the interval its ticks fall
  bool hot = false;
  hot_episode episode;
};

/// One host's samples in tick order: the producer thread that owns the host pulls them.
class host_feed {
 public:
  host_feed(const host_profile& host, const fleet_options& opts, std::size_t index)
      : host_(&host), opts_(&opts), rng_{opts.seed * 0x9e3779b97f4a7c15ULL + index * 0xd1b54a32d192ed03ULL + 1} {}

  /// The tick (emission time) of the next sample, or millis::max() when the host is done.
  [[nodiscard]] sluice::millis next_tick() const {
    const std::int64_t offset = host_->phase_ms + k_ * opts_->interval.count();
    return offset < opts_->duration.count() ? sluice::millis{opts_->start.count() + offset} : sluice::millis::max();
  }

  /// The next sample; call only while next_tick() is not millis::max().
  sample take() {
    const std::int64_t offset = host_->phase_ms + k_ * opts_->interval.count();
    ++k_;
    const auto delay = static_cast<std::int64_t>(rng_.below(static_cast<std::uint64_t>(opts_->jitter.count()) + 1));
    sample s;
    s.ts = sluice::millis{opts_->start.count() + offset - delay};
    s.host = host_->name;
    s.cpu_deci = cpu_at(offset);
    s.load_centi = s.cpu_deci * 4 / 5 + static_cast<std::int64_t>(rng_.below(51));
    return s;
  }

 private:
  std::int64_t cpu_at(std::int64_t offset) {
    const std::int64_t noise = static_cast<std::int64_t>(rng_.below(161)) - 80;  // +-8%
    const bool spike = rng_.below(200) == 0;  // a lone busy sample: the 1-minute average shrugs it off
    const std::int64_t spike_deci = 800 + static_cast<std::int64_t>(rng_.below(191));
    std::int64_t cpu = host_->base_deci + noise;
    if (host_->hot) {
      const hot_episode& e = host_->episode;
      const std::int64_t t = offset - e.from_ms;
      const std::int64_t rise = e.peak_deci - host_->base_deci;
      const std::int64_t hot_noise = noise / 4;  // +-2% around the peak
      if (t >= 0 && t < e.ramp_up_ms) {
        cpu = host_->base_deci + rise * t / e.ramp_up_ms + noise;
      } else if (t >= e.ramp_up_ms && t < e.ramp_up_ms + e.plateau_ms) {
        cpu = e.peak_deci + hot_noise;
      } else if (const std::int64_t down = t - e.ramp_up_ms - e.plateau_ms; down >= 0 && down < e.ramp_down_ms) {
        cpu = e.peak_deci - rise * down / e.ramp_down_ms + noise;
      }
    }
    if (spike) {
      cpu = std::max(cpu, spike_deci);
    }
    return std::clamp<std::int64_t>(cpu, 0, 1000);
  }

  const host_profile* host_;
  const fleet_options* opts_;
  cli::splitmix64 rng_;
  std::int64_t k_ = 0;
};

class fleet {
 public:
  explicit fleet(const fleet_options& opts) : opts_(opts) {
    static constexpr const char* roles[] = {"web", "api", "db", "cache"};
    cli::splitmix64 rng{opts.seed ^ 0x5eed'f1ee'7000'0001ULL};
    const std::size_t per_role = (opts.hosts + 3) / 4;
    const int width = per_role < 100 ? 2 : per_role < 1000 ? 3 : per_role < 10000 ? 4 : 6;
    hosts_.resize(opts.hosts);
    for (std::size_t i = 0; i < opts.hosts; ++i) {
      host_profile& h = hosts_[i];
      char name[48];
      std::snprintf(name, sizeof name, "%s-%0*zu", roles[i % 4], width, i / 4 + 1);
      h.name = name;
      h.base_deci = 150 + static_cast<std::int64_t>(rng.below(401));  // 15% .. 55%
      h.phase_ms = static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(opts.interval.count())));
    }
    // The hot hosts: a partial Fisher-Yates shuffle picks them, each gets one episode.
    std::vector<std::size_t> order(opts.hosts);
    for (std::size_t i = 0; i < order.size(); ++i) {
      order[i] = i;
    }
    const std::size_t hot = std::min(opts.hot, opts.hosts);
    for (std::size_t i = 0; i < hot; ++i) {
      std::swap(order[i], order[i + rng.below(order.size() - i)]);
      host_profile& h = hosts_[order[i]];
      h.hot = true;
      hot_episode& e = h.episode;
      e.ramp_up_ms = 30'000 + static_cast<std::int64_t>(rng.below(60'001));
      e.plateau_ms = 120'000 + static_cast<std::int64_t>(rng.below(180'001));
      e.ramp_down_ms = 30'000 + static_cast<std::int64_t>(rng.below(30'001));
      e.peak_deci = 930 + static_cast<std::int64_t>(rng.below(46));  // 93.0% .. 97.5%
      const std::int64_t length = e.ramp_up_ms + e.plateau_ms + e.ramp_down_ms;
      const std::int64_t room = std::max<std::int64_t>(1, opts.duration.count() - length);
      e.from_ms = static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(room)));
    }
  }
  fleet(const fleet&) = delete;  // feeds and samples point into it
  fleet& operator=(const fleet&) = delete;

  [[nodiscard]] std::size_t size() const { return hosts_.size(); }
  [[nodiscard]] const host_profile& host(std::size_t i) const { return hosts_[i]; }
  [[nodiscard]] const fleet_options& options() const { return opts_; }

  /// Host i's samples from the beginning.
  [[nodiscard]] host_feed feed(std::size_t i) const { return host_feed(hosts_[i], opts_, i); }

  /// Every sample of every host, host by host (for references and tests; the program streams).
  [[nodiscard]] std::vector<sample> all_samples() const {
    std::vector<sample> out;
    for (std::size_t i = 0; i < hosts_.size(); ++i) {
      host_feed f = feed(i);
      while (f.next_tick() != sluice::millis::max()) {
        out.push_back(f.take());
      }
    }
    return out;
  }

 private:
  fleet_options opts_;
  std::vector<host_profile> hosts_;
};

}  // namespace monitor
