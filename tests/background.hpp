// Programs run in the background by end-to-end tests (servers, instances of a group): started
// with posix_spawn, their output in files, killed if a test leaves them running; and the port a
// server prints once it listens.
#pragma once

#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "e2e_support.hpp"

extern char** environ;  // NOLINT: POSIX declares it nowhere; posix_spawn passes it on

namespace e2e {

using std::chrono::steady_clock;

// A hang guard only: nothing here asserts how fast anything is.
constexpr auto patience = std::chrono::seconds(60);
constexpr auto poll_pause = std::chrono::milliseconds(5);

// ---- programs in the background -----------------------------------------------------------

/// A program started with posix_spawn, stdout and stderr to fresh files, stdin from /dev/null.
/// Killed (SIGKILL) if the test leaves it running.
class background {
 public:
  background(const std::string& binary, const std::vector<std::string>& args) : files_(next_output_files()) {
    std::vector<std::string> text{binary};
    text.insert(text.end(), args.begin(), args.end());
    std::vector<char*> argv;
    argv.reserve(text.size() + 1);
    for (auto& a : text) {
      argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    ::posix_spawn_file_actions_init(&actions);
    ::posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    ::posix_spawn_file_actions_addopen(&actions, 1, files_.out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::posix_spawn_file_actions_addopen(&actions, 2, files_.err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const int rc = ::posix_spawn(&pid_, binary.c_str(), &actions, nullptr, argv.data(), environ);
    ::posix_spawn_file_actions_destroy(&actions);
    REQUIRE_MESSAGE(rc == 0, "cannot start " << binary << ": " << std::strerror(rc));
  }
  background(const background&) = delete;
  background& operator=(const background&) = delete;
  ~background() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    std::error_code ec;
    std::filesystem::remove(files_.out, ec);
    std::filesystem::remove(files_.err, ec);
  }

  [[nodiscard]] std::string out() const { return read_file(files_.out); }
  [[nodiscard]] std::string err() const { return read_file(files_.err); }

  /// Whether it has exited (it is reaped then; wait() gives its result).
  bool exited() {
    if (pid_ > 0 && ::waitpid(pid_, &wait_status_, WNOHANG) == pid_) {
      pid_ = -1;
    }
    return pid_ <= 0;
  }

  void signal(int sig) const {
    REQUIRE_MESSAGE(pid_ > 0, "signal " << sig << " to a program that has already exited:\n" << err());
    ::kill(pid_, sig);
  }

  /// Returns once `done()` holds; fails with `what` and its stderr if it does not within `patience`.
  template <class Done>
  void wait_until(Done&& done, const std::string& what) const {
    const auto deadline = steady_clock::now() + patience;
    while (!done()) {
      REQUIRE_MESSAGE(steady_clock::now() < deadline, "no " << what << " within " << patience.count()
                                                            << " s; its stderr:\n" << err());
      std::this_thread::sleep_for(poll_pause);
    }
  }

  /// Its exit status and output, once it exits; killed and failed if it has not within `patience`.
  run_result wait() {
    const auto deadline = steady_clock::now() + patience;
    while (!exited()) {
      if (steady_clock::now() > deadline) {
        ::kill(pid_, SIGKILL);
        FAIL("still running after " << patience.count() << " s; its stderr:\n" << err());
      }
      std::this_thread::sleep_for(poll_pause);
    }
    return collect(wait_status_, files_);
  }

 private:
  output_files files_;
  pid_t pid_ = -1;
  int wait_status_ = -1;
};

/// The port at the end of the complete stderr line that contains `prefix`; 0 if not printed yet.
inline int port_after(const std::string& err, const std::string& prefix) {
  const std::size_t at = err.find(prefix);
  const std::size_t eol = at == std::string::npos ? at : err.find('\n', at);
  if (eol == std::string::npos) {
    return 0;
  }
  const std::string line = err.substr(at, eol - at);
  return std::stoi(line.substr(line.rfind(':') + 1));
}

}  // namespace e2e
