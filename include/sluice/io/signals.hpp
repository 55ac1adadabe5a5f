// stop_on_signals: turn SIGINT and SIGTERM into a stop request, for a graceful shutdown (stop
// taking input, finish what was received, fire the final windows, flush the sinks, exit 0).
// A thread waits for the signals synchronously (sigtimedwait) instead of a signal handler,
// which could do almost nothing safely. Construct it before starting any other thread: the
// signals are blocked in the constructing thread and every thread it starts afterwards.
#pragma once

#include <csignal>
#include <ctime>
#include <stop_token>
#include <thread>

#include <pthread.h>

namespace sluice {

class stop_on_signals {
 public:
  explicit stop_on_signals(std::stop_source target) {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set_, nullptr);
    thread_ = std::jthread([set = set_, target](std::stop_token done) mutable {
      const timespec tick{0, 50'000'000};  // re-check `done` every 50 ms
      while (!done.stop_requested()) {
        if (sigtimedwait(&set, nullptr, &tick) > 0) {
          target.request_stop();
        }
      }
    });
  }

 private:
  sigset_t set_{};
  std::jthread thread_;
};

}  // namespace sluice
