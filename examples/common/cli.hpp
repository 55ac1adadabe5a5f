// Command-line parsing shared by the example programs: flags with values, --help, whole
// numbers, thread counts and the bad-record policy, with one way of reporting a usage error
// ("program: message", the usage text, exit status 2).
#pragma once

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/io/bad_record.hpp"

namespace cli {

class args {
 public:
  args(const char* program, const char* usage, int argc, char** argv)
      : program_(program), usage_(usage), argc_(argc), argv_(argv) {}

  /// Move to the next argument; false when there is none. --help and -h print the usage and exit.
  bool next() {
    if (++i_ >= argc_) {
      return false;
    }
    if (current() == "--help" || current() == "-h") {
      std::fputs(usage_, stdout);
      std::exit(0);
    }
    return true;
  }

  [[nodiscard]] std::string_view current() const { return argv_[i_]; }
  [[nodiscard]] bool is_option() const { return current().starts_with("-") && current() != "-"; }  // "-": stdout

  /// The value that follows the current flag.
  std::string value() {
    if (i_ + 1 >= argc_) {
      fail(std::string(current()) + " needs a value");
    }
    ++i_;
    return argv_[i_];
  }

  [[noreturn]] void fail(const std::string& message) const {
    std::fprintf(stderr, "%s: %s\n%s", program_, message.c_str(), usage_);
    std::exit(2);
  }

  [[noreturn]] void unexpected() const {
    fail((is_option() ? "unknown option " : "unexpected argument ") + std::string(current()));
  }

  /// Keep the current argument as a positional one (at most `max`), or fail on an unknown option.
  void take_positional(std::vector<std::string>& into, std::size_t max) const {
    if (is_option() || into.size() == max) {
      unexpected();
    }
    into.emplace_back(current());
  }

  /// The ROWS FILE arguments of a data generator: the row count and the opened output ("-": stdout).
  struct generator_output {
    std::uint64_t rows = 0;
    std::string path;
    std::FILE* file = nullptr;

    /// Write `buf` out once it holds about 1 MiB, and empty it: generators format into one buffer.
    void write_if_full(std::string& buf) const {
      if (buf.size() >= (std::size_t{1} << 20U) - 1024) {
        std::fwrite(buf.data(), 1, buf.size(), file);
        buf.clear();
      }
    }

    /// Write the rest, close, and turn a failed write (a full disk) into exit status 1.
    [[nodiscard]] int finish(const std::string& buf, const char* program) const {
      std::fwrite(buf.data(), 1, buf.size(), file);
      if (std::ferror(file) != 0 || (file != stdout && std::fclose(file) != 0)) {
        std::fprintf(stderr, "%s: write to %s failed\n", program, path.c_str());
        return 1;
      }
      return 0;
    }
  };
  generator_output rows_and_file(const std::vector<std::string>& positional) const {
    if (positional.size() != 2) {
      fail("expected ROWS and FILE");
    }
    generator_output out{whole_number(positional[0], "ROWS"), positional[1], nullptr};
    out.file = out.path == "-" ? stdout : std::fopen(out.path.c_str(), "wb");
    if (out.file == nullptr) {
      fail("cannot open " + out.path + ": " + std::strerror(errno));
    }
    return out;
  }

  /// A non-negative whole number, or a usage error naming `what`.
  std::uint64_t whole_number(const std::string& text, std::string_view what) const {
    char* end = nullptr;
    const std::uint64_t n = std::strtoull(text.c_str(), &end, 10);
    if (text.empty() || text.front() == '-' || *end != '\0') {
      fail(std::string(what) + " must be a whole number, not '" + text + "'");
    }
    return n;
  }

  /// The value of --threads: 1 to 1024.
  unsigned threads() {
    const std::string v = value();
    const std::uint64_t n = whole_number(v, "--threads");
    if (n < 1 || n > 1024) {
      fail("--threads must be a number from 1 to 1024, not '" + v + "'");
    }
    return static_cast<unsigned>(n);
  }

  /// A duration flag's value: a whole number with a unit, ms, s, min or h ("200ms", "5s"; a bare
  /// number is milliseconds).
  std::chrono::milliseconds duration() {
    const std::string flag(current());
    const std::string v = value();
    std::size_t digits = 0;
    while (digits < v.size() && v[digits] >= '0' && v[digits] <= '9') {
      ++digits;
    }
    const std::string unit = v.substr(digits);
    const std::uint64_t n = digits == 0 ? 0 : whole_number(v.substr(0, digits), flag);
    std::uint64_t scale = 0;
    if (unit.empty() || unit == "ms") {
      scale = 1;
    } else if (unit == "s") {
      scale = 1000;
    } else if (unit == "min" || unit == "m") {
      scale = 60'000;
    } else if (unit == "h") {
      scale = 3'600'000;
    }
    if (digits == 0 || scale == 0 || n > (std::uint64_t{1} << 40U)) {
      fail(flag + " takes a duration such as 500ms, 5s, 2min or 1h, not '" + v + "'");
    }
    return std::chrono::milliseconds{static_cast<std::int64_t>(n * scale)};
  }

  /// The value of --bad-records: skip or fail.
  sluice::bad_record_policy policy() {
    const std::string v = value();
    if (v == "skip") {
      return sluice::bad_record_policy::skip;
    }
    if (v == "fail") {
      return sluice::bad_record_policy::fail;
    }
    fail("--bad-records is skip or fail, not '" + v + "'");
  }

 private:
  const char* program_;
  const char* usage_;
  int argc_;
  char** argv_;
  int i_ = 0;
};

/// The flags of an example that runs one flow over a file (batch mode) or over TCP (stream mode):
/// --input FILE | --listen HOST:PORT [--connections N], --threads N, --max-delay D, --seed S.
struct mode_flags {
  std::string input;
  std::string listen;
  std::uint64_t connections = 0;  // stream mode: stop after this many connections closed (0: never)
  unsigned threads = 0;           // 0: the program's default
  std::chrono::milliseconds max_delay{1000};
  std::uint64_t seed = 42;  // the program's generator

  /// Take the current argument if it is one of these flags (and its value); false if not.
  bool take(args& a) {
    const std::string_view flag = a.current();
    if (flag == "--input") {
      input = a.value();
    } else if (flag == "--listen") {
      listen = a.value();
    } else if (flag == "--connections") {
      connections = a.whole_number(a.value(), "--connections");
    } else if (flag == "--threads") {
      threads = a.threads();
    } else if (flag == "--max-delay") {
      max_delay = a.duration();
    } else if (flag == "--seed") {
      seed = a.whole_number(a.value(), "--seed");
    } else {
      return false;
    }
    return true;
  }

  /// Exactly one of --input and --listen was given.
  [[nodiscard]] bool one_mode() const { return input.empty() != listen.empty(); }
};

}  // namespace cli
