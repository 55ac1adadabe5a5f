// A progress line on stderr, redrawn in place a few times a second, as long-running command-line
// tools draw them: only when stderr is a terminal (a pipe or a file gets nothing), cleared before
// any other line is printed on stderr and when the run ends.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <functional>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

#include "sluice/run/progress.hpp"

namespace sluice {

class terminal_progress {
 public:
  /// `prefix` starts every line ("sales: "); `enabled` defaults to whether stderr is a terminal.
  explicit terminal_progress(std::string prefix, bool enabled = ::isatty(STDERR_FILENO) == 1)
      : prefix_(std::move(prefix)), enabled_(enabled) {}
  terminal_progress(const terminal_progress&) = delete;
  terminal_progress& operator=(const terminal_progress&) = delete;
  ~terminal_progress() { clear(); }

  [[nodiscard]] bool enabled() const { return enabled_; }

  /// Redraw the line with `p`; a finished run's line is cleared instead (its summary follows).
  void draw(const run_progress& p) {
    if (!enabled_) {
      return;
    }
    std::lock_guard lock(mutex_);
    if (p.finished) {
      erase();
      line_.clear();
      return;
    }
    line_ = prefix_ + progress_text(p);
    std::fprintf(stderr, "\r%s\033[K", line_.c_str());  // \033[K: erase the rest of a longer old line
    std::fflush(stderr);
  }

  /// Print `text` as a line of its own on stderr, above the progress line (which comes back).
  void print(std::string_view text) {
    std::lock_guard lock(mutex_);
    const bool shown = !line_.empty();
    erase();
    std::fprintf(stderr, "%.*s\n", static_cast<int>(text.size()), text.data());
    if (shown) {
      std::fprintf(stderr, "%s", line_.c_str());
    }
    std::fflush(stderr);
  }

  void clear() {
    std::lock_guard lock(mutex_);
    erase();
    line_.clear();
  }

 private:
  void erase() {
    if (!line_.empty()) {
      std::fputs("\r\033[K", stderr);
      std::fflush(stderr);
    }
  }

  std::string prefix_;
  bool enabled_;
  std::mutex mutex_;
  std::string line_;  // what is on the screen now; empty: nothing
};

/// Draws `sample()` on `line` every `interval`, on a thread of its own, while sample() has
/// something to show; once it returns nullopt (the catch-up is over), or on destruction, the
/// line is cleared and the thread ends. For progress that is read from a status, not pushed.
class progress_follower {
 public:
  progress_follower(terminal_progress& line, std::function<std::optional<run_progress>()> sample,
                    std::chrono::milliseconds interval = std::chrono::milliseconds{250}) {
    if (!line.enabled()) {
      return;
    }
    interval = std::max(interval, std::chrono::milliseconds{10});  // a sample is a status() call: not in a spin
    thread_ = std::jthread([&line, sample = std::move(sample), interval](std::stop_token stop) {
      std::mutex m;
      std::condition_variable_any cv;
      std::unique_lock lock(m);
      while (!stop.stop_requested()) {
        const auto p = sample();
        if (!p) {
          break;
        }
        line.draw(*p);
        cv.wait_for(lock, stop, interval, [] { return false; });
      }
      line.clear();
    });
  }

 private:
  std::jthread thread_;
};

}  // namespace sluice
