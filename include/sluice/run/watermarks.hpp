// Watermarks of a stream: "no event older than W is still expected". Each input (a TCP
// connection, a queue, a tailed file) has its own bounded-out-of-orderness watermark, the
// latest event time it delivered minus the max delay; the stream's watermark is the minimum over
// the inputs that can still deliver something:
//
//   - an input that has closed no longer holds the watermark back;
//   - an input silent for `idle_timeout` (processing time) stops holding it back until it speaks;
//   - with no input left to wait for, the watermark is that of everything seen so far;
//   - until `expected_inputs` inputs have opened, it does not move (a scripted run with N
//     connections must not let the first one race ahead of the others).
//
// The watermark never goes back. Thread-safe: inputs report from worker threads.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>
#include <mutex>
#include <unordered_map>

#include "sluice/core/time.hpp"

namespace sluice {

/// Identifies one input of a stream (a connection, a file, a queue) for its whole life.
using input_id = std::uint64_t;

struct watermark_options {
  std::chrono::milliseconds max_delay{0};     // bounded out-of-orderness
  std::chrono::milliseconds idle_timeout{0};  // 0: an input never counts as idle
  std::size_t expected_inputs = 0;            // hold the watermark until this many have opened
};

class watermark_tracker {
 public:
  using clock = std::chrono::steady_clock;

  explicit watermark_tracker(watermark_options opts) : opts_(opts) {}

  input_id open(clock::time_point now) {
    std::lock_guard lock(mutex_);
    const input_id id = next_id_++;
    inputs_.emplace(id, input{millis::min(), now});
    return id;
  }

  /// Input `id` delivered events up to `latest` (millis::min() if none carried a time). Returns
  /// the latest event time seen on any input.
  millis observe(input_id id, millis latest, clock::time_point now) {
    std::lock_guard lock(mutex_);
    auto it = inputs_.find(id);
    if (it != inputs_.end()) {
      it->second.latest = std::max(it->second.latest, latest);
      it->second.last_active = now;
      seen_latest_ = std::max(seen_latest_, latest);
    }
    return seen_latest_;
  }

  void close(input_id id) {
    std::lock_guard lock(mutex_);
    inputs_.erase(id);
  }

  /// Recompute the stream's watermark; returns it (it never decreases).
  millis advance(clock::time_point now) {
    std::lock_guard lock(mutex_);
    millis candidate = millis::max();
    bool waiting_for_any = false;
    for (const auto& [id, in] : inputs_) {
      const bool idle = opts_.idle_timeout.count() > 0 && now - in.last_active >= opts_.idle_timeout;
      if (!idle) {
        candidate = std::min(candidate, delayed(in.latest));
        waiting_for_any = true;
      }
    }
    if (!waiting_for_any) {
      candidate = delayed(seen_latest_);
    }
    if (next_id_ < opts_.expected_inputs) {
      candidate = millis::min();
    }
    const millis w = std::max(current_.load(std::memory_order_relaxed), candidate);
    current_.store(w, std::memory_order_release);
    return w;
  }

  /// The end of the stream: every window may fire.
  void finish() { current_.store(millis::max(), std::memory_order_release); }

  [[nodiscard]] millis current() const { return current_.load(std::memory_order_acquire); }
  [[nodiscard]] millis latest_event_time() const {
    std::lock_guard lock(mutex_);
    return seen_latest_;
  }
  [[nodiscard]] std::size_t open_inputs() const {
    std::lock_guard lock(mutex_);
    return inputs_.size();
  }

 private:
  struct input {
    millis latest;
    clock::time_point last_active;
  };

  [[nodiscard]] millis delayed(millis latest) const {
    const std::int64_t delay = opts_.max_delay.count();
    if (latest.count() < std::numeric_limits<std::int64_t>::min() + delay) {
      return millis::min();
    }
    return millis{latest.count() - delay};
  }

  watermark_options opts_;
  mutable std::mutex mutex_;
  std::unordered_map<input_id, input> inputs_;
  input_id next_id_ = 0;
  millis seen_latest_ = millis::min();
  std::atomic<millis> current_{millis::min()};
};

}  // namespace sluice
