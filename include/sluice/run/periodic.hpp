// run_every: a thread that calls fn() every `period` until it is stopped (or destroyed). The
// wait is on the thread's stop token, so stopping is immediate, not at the next tick.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <stop_token>
#include <thread>
#include <utility>

namespace sluice {

template <class Fn>
std::jthread run_every(std::chrono::milliseconds period, Fn fn) {
  return std::jthread([period, fn = std::move(fn)](std::stop_token stop) mutable {
    std::mutex m;
    std::condition_variable_any cv;
    std::unique_lock lock(m);
    while (true) {
      cv.wait_for(lock, stop, period, [] { return false; });  // wakes early only when stopped
      if (stop.stop_requested()) {
        return;
      }
      fn();
    }
  });
}

}  // namespace sluice
